"""An app's own event types: registered marshmallow schemas, by (source, type, version).

One :class:`TypeRegistry` belongs to one ``Tracking`` instance (never global state), so
two apps in one process keep their types apart. The pipeline asks it for every event
(:meth:`TypeRegistry.check`): a registered type is checked by its schema, a built-in one
by the built-in catalog (``flask_tracking.schemas``, version 1), anything else is
unknown.

Versions: a changed schema is registered again with the next version; the old one stays,
so events written for it stay valid. An object payload names the version it was written
for with the reserved key :data:`VERSION_KEY` (``{"schema_version": 1, ...}``); without
it the newest version applies. The key is kept in the stored payload (exports are
unchanged) but never passed to the schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from marshmallow import Schema

from ..errors import ConfigError
from ..schemas import CATALOG, Verdict, check_payload
from ..schemas.registry import SOURCE_ALIASES, normalised_type

Source = Literal["browser", "server"]
#: What ``source=`` of a registration may be; ``"both"`` registers one type per source.
SOURCES: Final = ("browser", "server", "both")
#: The payload key naming the schema version an event was written for.
VERSION_KEY: Final = "schema_version"
#: The version of every built-in type.
BUILTIN_VERSION: Final = 1

_NOT_AN_OBJECT: Final = "Invalid payload: expected an object."
_BUILTIN_NAMES: Final = frozenset(normalised_type(name) for spec in CATALOG for name in spec.names)


class EventTypeError(ConfigError, ValueError):
    """A registration that cannot be accepted; the message names the type and the fix."""


@dataclass(frozen=True, slots=True)
class EventType:
    """One registered (source, type, version) and its marshmallow schema."""

    event_type: str
    source: Source
    version: int
    description: str
    schema: Schema
    examples: tuple[Any, ...] = ()

    def check(self, data: Any) -> dict[str, Any]:
        """marshmallow-style errors of a decoded payload, ``{}`` when it is valid."""
        if not isinstance(data, dict):
            return {"_schema": [_NOT_AN_OBJECT]}
        if VERSION_KEY in data:
            data = {k: v for k, v in data.items() if k != VERSION_KEY}
        return self.schema.validate(data)


class TypeRegistry:
    """The event types one ``Tracking`` instance registered (see the module doc)."""

    def __init__(self) -> None:
        #: (source, type) -> {version: type}.
        self._versions: dict[tuple[str, str], dict[int, EventType]] = {}
        #: (source, type) -> its newest version; built when a type is registered.
        self._newest: dict[tuple[str, str], EventType] = {}
        #: Bumped at every change (lets callers keep derived data current cheaply).
        self.generation = 0

    def register(
        self,
        event_type: str,
        schema: type[Schema] | Schema,
        *,
        source: str = "server",
        description: str | None = None,
        version: int = 1,
        examples: Iterable[Any] = (),
    ) -> None:
        """Register ``schema`` for ``event_type``; raise :class:`EventTypeError`.

        Registering the same (source, type, version) again with the same schema class
        does nothing; with another one it is an error, as is a built-in type's name.
        """
        _check_name(event_type)
        if source not in SOURCES:
            raise EventTypeError(
                f"Event type {event_type!r}: source must be one of"
                f" {', '.join(map(repr, SOURCES))}, not {source!r}."
            )
        if type(version) is not int or version < 1:
            raise EventTypeError(
                f"Event type {event_type!r}: version must be an integer from 1, not {version!r}."
            )
        instance = _schema_instance(event_type, schema)
        text = description if description is not None else (type(instance).__doc__ or "")
        sources: tuple[Source, ...] = ("browser", "server") if source == "both" else (source,)  # type: ignore[assignment]
        entries = [
            EventType(event_type, s, version, " ".join(text.split()), instance, tuple(examples))
            for s in sources
        ]
        for entry in entries:
            known = self._versions.get((entry.source, event_type), {}).get(version)
            if known is not None and type(known.schema) is not type(instance):
                raise EventTypeError(
                    f"Event type {event_type!r} ({entry.source}) version {version} is already"
                    f" registered with {type(known.schema).__name__}: register the changed"
                    f" schema {type(instance).__name__} as version {self._next(entry)}."
                )
        for entry in entries:
            key = (entry.source, event_type)
            versions = self._versions.setdefault(key, {})
            if version in versions:
                continue
            versions[version] = entry
            self._newest[key] = versions[max(versions)]
        self.generation += 1

    def _next(self, entry: EventType) -> int:
        return max(self._versions[(entry.source, entry.event_type)]) + 1

    # -- lookups ------------------------------------------------------------------------

    def get(self, source: str, event_type: str, version: int | None = None) -> EventType | None:
        """The registered type (its newest version unless ``version``), or ``None``."""
        key = (SOURCE_ALIASES.get(source, source), event_type)
        if version is None:
            return self._newest.get(key)
        return self._versions.get(key, {}).get(version)

    def versions(self, source: str, event_type: str) -> list[int]:
        """The registered versions of (source, type), oldest first."""
        key = (SOURCE_ALIASES.get(source, source), event_type)
        return sorted(self._versions.get(key, {}))

    def __iter__(self) -> Iterator[EventType]:
        """Every registered (source, type, version), by type, source and version."""
        for key in sorted(self._versions, key=lambda k: (k[1], k[0])):
            versions = self._versions[key]
            yield from (versions[v] for v in sorted(versions))

    def __len__(self) -> int:
        return sum(len(v) for v in self._versions.values())

    # -- validation ---------------------------------------------------------------------

    def server_only_reason(self, event_type: str) -> str | None:
        """Why a browser may not send ``event_type``: it is registered for the server
        only (like the built-in server events). ``None`` if it may come."""
        if ("server", event_type) in self._newest and ("browser", event_type) not in self._newest:
            return f"{event_type} is a server event and cannot be sent from the browser."
        return None

    def check(self, source: str, event_type: str, data: Any) -> tuple[Verdict, int | None]:
        """The verdict on a decoded payload and the schema version it was checked by.

        Registered types first (one dict lookup), then the built-in catalog; ``unknown``
        with version ``None`` when neither has the type.
        """
        newest = self._newest.get((SOURCE_ALIASES.get(source, source), event_type))
        if newest is None:
            verdict = check_payload(source, event_type, data)
            return verdict, None if verdict.status == "unknown" else BUILTIN_VERSION
        entry = newest
        if isinstance(data, dict) and VERSION_KEY in data:
            asked = data[VERSION_KEY]
            found = self.get(source, event_type, asked) if type(asked) is int else None
            if found is None:
                known = ", ".join(map(str, self.versions(source, event_type)))
                message = f"Not a registered version of {event_type} (registered: {known})."
                return Verdict("invalid", {VERSION_KEY: [message]}), None
            entry = found
        errors = entry.check(data)
        if errors:
            return Verdict("invalid", errors), entry.version
        return Verdict("valid", {}), entry.version


def _check_name(event_type: Any) -> None:
    if not isinstance(event_type, str) or not event_type.strip():
        raise EventTypeError(f"An event type must be a non-empty string, not {event_type!r}.")
    if event_type != event_type.strip() or not event_type.isprintable():
        raise EventTypeError(
            f"Event type {event_type!r}: no surrounding white space or control characters."
        )
    if normalised_type(event_type) in _BUILTIN_NAMES:
        raise EventTypeError(
            f"Event type {event_type!r} is a built-in Open edX type: it has its schema"
            " already. Give your own types a name of their own (myapp.enrollment.activated)."
        )


def _schema_instance(event_type: str, schema: Any) -> Schema:
    if isinstance(schema, type) and issubclass(schema, Schema):
        return schema()
    if isinstance(schema, Schema):
        return schema
    raise EventTypeError(
        f"Event type {event_type!r}: the schema must be a marshmallow Schema class or"
        f" instance, not {schema!r}."
    )
