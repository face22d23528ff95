"""The catalog of event specs and the lookups on it.

Every spec is keyed by (source, type) for its canonical type and each alias. Source
``mobile`` is looked up like ``browser`` and ``task`` like ``server``. All tables are
built at import time; :func:`check_payload` is one dict lookup and one checker call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .. import event_types as et
from . import book, capa_server, open_ended, page, problem, sequence, video
from .spec import Checker, EventSpec, Verdict


@dataclass(frozen=True, slots=True)
class Family:
    """A group of related event specs, as the docs show them."""

    title: str
    intro: str
    specs: tuple[EventSpec, ...]


FAMILIES: Final[tuple[Family, ...]] = tuple(
    Family(module.TITLE, module.INTRO, module.SPECS)
    for module in (book, page, video, sequence, problem, capa_server, open_ended)
)

#: One spec per (source, canonical type); aliases are listed on the spec.
CATALOG: Final[tuple[EventSpec, ...]] = tuple(spec for family in FAMILIES for spec in family.specs)

#: Sources that are looked up as another one.
SOURCE_ALIASES: Final[dict[str, str]] = {"mobile": "browser", "task": "server"}

VALID: Final = Verdict("valid", {})
UNKNOWN: Final = Verdict("unknown", {})


def _index() -> tuple[dict[tuple[str, str], EventSpec], dict[tuple[str, str], Checker]]:
    specs: dict[tuple[str, str], EventSpec] = {}
    for spec in CATALOG:
        for name in spec.names:
            key = (spec.source, name)
            if key in specs:
                raise RuntimeError(f"duplicate event spec for {key}")
            specs[key] = spec
    for alias, source in SOURCE_ALIASES.items():
        for (spec_source, name), spec in list(specs.items()):
            if spec_source == source:
                specs[(alias, name)] = spec
    checks = {key: spec.check for key, spec in specs.items()}
    return specs, checks


_SPECS, _CHECKS = _index()


def check_payload(source: str, event_type: str, data: Any) -> Verdict:
    """Check a decoded payload against the spec of (source, event_type).

    ``unknown`` when there is no spec (the type, or the type for that source, is not in
    the catalog); otherwise ``valid`` or ``invalid`` with marshmallow-style errors.
    """
    check = _CHECKS.get((source, event_type))
    if check is None:
        return UNKNOWN
    errors = check(data)
    if not errors:
        return VALID
    return Verdict("invalid", errors)


def spec_for(source: str, event_type: str) -> EventSpec | None:
    """The spec of (source, event_type), aliases and source aliases included."""
    return _SPECS.get((source, event_type))


#: Server-only types, normalised (see :func:`normalised_type`).
_SERVER_ONLY: Final = frozenset(t.lower() for t in et.SERVER_ONLY)
_PROBLEM_CHECK: Final = et.PROBLEM_CHECK.lower()


def normalised_type(event_type: str) -> str:
    """An event type as the server-only check compares it: no surrounding white space or
    control characters, case folded (``" ShowAnswer\n"`` is ``showanswer``)."""
    if not event_type.isprintable():
        event_type = "".join(ch for ch in event_type if ch.isprintable())
    return event_type.strip().lower()


def _has_correct_map(data: Any) -> bool:
    """Whether a decoded payload carries a ``correct_map`` (as an object key, or in
    query-string form: ``correct_map[...]=``, ``correct_map.x=``, or anywhere in a
    payload left as text)."""
    if isinstance(data, str):
        return "correct_map" in data.lower()
    if not isinstance(data, dict):
        return False
    for key in data:
        if isinstance(key, str):
            folded = key.strip().lower()
            if folded == "correct_map" or folded.startswith(("correct_map[", "correct_map.")):
                return True
    return False


def server_only_reason(event_type: str, data: Any) -> str | None:
    """Why this (type, payload) must be refused from a browser, or ``None`` if it may come.

    The server capa types are always refused, whatever their spelling (case, white
    space); ``problem_check`` when its decoded payload (object, JSON string or query
    string) carries a ``correct_map``: a browser ``problem_check`` carries answers.
    """
    name = normalised_type(event_type)
    if name in _SERVER_ONLY:
        return f"{name} is a server event and cannot be sent from the browser."
    if name == _PROBLEM_CHECK and _has_correct_map(data):
        return (
            "problem_check with a correct_map is a server event "
            "and cannot be sent from the browser."
        )
    return None


def spec_as_data(spec: EventSpec) -> dict[str, Any]:
    """One spec as JSON-able data (see :func:`catalog_as_data`)."""
    return {
        "event_type": spec.event_type,
        "aliases": list(spec.aliases),
        "source": spec.source,
        "description": spec.description,
        "payload": spec.payload,
        "fields": [
            {
                "name": f.name,
                "type": f.type,
                "required": f.required,
                "nullable": f.nullable,
                "description": f.description,
            }
            for f in spec.fields
        ],
    }


def catalog_as_data() -> list[dict[str, Any]]:
    """The whole catalog as JSON-able data, one entry per (source, canonical type)."""
    return [spec_as_data(spec) for spec in CATALOG]
