"""The whole catalog: the built-in types and an app's own, as data, Markdown and files.

One :class:`Entry` per (source, type, version), with its JSON Schema. The served
``catalog.json``, the CLI, the ``tracking_event_types`` table and the files written
beside an export all come from :func:`entries`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from ..schemas import CATALOG
from ..schemas.docs import render_markdown
from ..schemas.examples import EXAMPLES
from .convert import DRAFT, JsonSchema, document, object_schema, payload_schema
from .types import BUILTIN_VERSION, VERSION_KEY, TypeRegistry

#: What ``source=`` filters may be.
SOURCES: Final = ("browser", "server")


@dataclass(frozen=True, slots=True)
class Entry:
    """One (source, type, version) of the catalog."""

    event_type: str
    source: str
    version: int
    description: str
    builtin: bool
    #: ``object``, ``query``, ``list`` or ``any`` (what the payload is, decoded).
    payload: str
    #: The JSON Schema document of the decoded payload.
    json_schema: JsonSchema = field(repr=False)
    aliases: tuple[str, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """The entry as JSON-able data (the items of ``catalog.json``)."""
        return {
            "event_type": self.event_type,
            "source": self.source,
            "version": self.version,
            "aliases": list(self.aliases),
            "builtin": self.builtin,
            "description": self.description,
            "payload": self.payload,
            "json_schema": self.json_schema,
        }


@cache
def builtin_entries() -> tuple[Entry, ...]:
    """The built-in Open edX types (all version 1), built once."""
    return tuple(
        Entry(
            spec.event_type,
            spec.source,
            BUILTIN_VERSION,
            spec.description,
            True,
            spec.payload,
            document(
                spec.event_type,
                spec.description,
                payload_schema(spec),
                (EXAMPLES[spec.source, spec.event_type],),
            ),
            spec.aliases,
        )
        for spec in CATALOG
    )


def registered_entries(types: TypeRegistry) -> list[Entry]:
    """The app's own types, each version (the payload may name it, see ``types.py``)."""
    found = []
    for t in types:
        payload = object_schema(t.schema)
        payload["properties"] = {**payload["properties"], VERSION_KEY: _version_property(t.version)}
        found.append(
            Entry(
                t.event_type,
                t.source,
                t.version,
                t.description,
                False,
                "object",
                document(t.event_type, t.description, payload, t.examples),
            )
        )
    return found


def _version_property(version: int) -> JsonSchema:
    return {
        "description": "The schema version the payload was written for (optional: the"
        " newest applies without it).",
        "const": version,
    }


def entries(types: TypeRegistry, source: str | None = None) -> list[Entry]:
    """Built-in then registered entries, of one source when ``source`` is given."""
    found = [*builtin_entries(), *registered_entries(types)]
    return [e for e in found if source is None or e.source == source]


def find(
    types: TypeRegistry, source: str, event_type: str, version: int | None = None
) -> Entry | None:
    """The entry of (source, type), its newest version unless ``version``; aliases too."""
    matches = [
        e
        for e in entries(types, source)
        if event_type == e.event_type or event_type in e.aliases
        if version is None or e.version == version
    ]
    return max(matches, key=lambda e: e.version) if matches else None


def catalog_data(types: TypeRegistry, source: str | None = None) -> dict[str, Any]:
    """The catalog as served at ``catalog.json``."""
    return {
        "json_schema_dialect": DRAFT,
        "version_key": VERSION_KEY,
        "source": source,
        "types": [e.as_data() for e in entries(types, source)],
    }


# --- Markdown -------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _kind(schema: JsonSchema) -> str:
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(k for k in kind if k != "null")
    if kind:
        return str(kind)
    return "any" if not schema.get("anyOf") else "several"


def registered_markdown(types: TypeRegistry) -> str:
    """The app's own types as Markdown: one table per (source, type, version)."""
    lines: list[str] = []
    for entry in registered_entries(types):
        schema = entry.json_schema
        lines += [f"### `{entry.event_type}` ({entry.source}, version {entry.version})", ""]
        if entry.description:
            lines += [entry.description, ""]
        lines += ["| Field | Type | Required | Nullable | Notes |", "|---|---|---|---|---|"]
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            kind = prop.get("type")
            nullable = "yes" if isinstance(kind, list) and "null" in kind else ""
            lines.append(
                f"| `{name}` | {_kind(prop)} | {'yes' if name in required else ''} "
                f"| {nullable} | {_cell(prop.get('description', ''))} |"
            )
        lines.append("")
    return "\n".join(lines)


def markdown(types: TypeRegistry) -> str:
    """The whole catalog as Markdown: the built-in tables, then the app's own types."""
    text = render_markdown()
    own = registered_markdown(types)
    return f"{text}\n## The app's own event types\n\n{own}" if own else text


# --- files beside an export -----------------------------------------------------------


def schema_path(entry: Entry) -> str:
    """Where an entry's JSON Schema goes in a written catalog (relative)."""
    return f"schemas/{entry.source}/{entry.event_type}.v{entry.version}.schema.json"


def write_catalog(directory: str | Path, types: TypeRegistry) -> list[Path]:
    """Write ``catalog.json``, ``events.md`` and one JSON Schema file per entry into
    ``directory`` (created if missing); return the files written."""
    root = Path(directory)
    written: list[Path] = []

    def put(relative: str, text: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("catalog.json", _json(catalog_data(types)))
    put("events.md", "# Event types\n\n" + markdown(types))
    for entry in entries(types):
        put(schema_path(entry), _json(entry.json_schema))
    return written


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
