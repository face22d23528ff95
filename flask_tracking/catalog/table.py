"""``tracking_event_types``: the catalog kept with the events, in the same database.

One row per (type, source, version) with its description and JSON Schema, and when
events of it were first and last stored. Written by ``flask tracking init-db`` and kept
current without work on the ingest path: :func:`sync_catalog` (one select, and writes
only for what changed) runs after the first successful write of each process and after
a type is registered later; :func:`refresh_seen` (one grouped select over the events)
runs at ``init-db`` and with ``flask tracking catalog --sync``; :func:`widen_seen` after
an import (over the imported time range only) and :func:`seen_after_prune` after a prune
(the rows first seen before its cutoff only).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..engine import statement_timeout
from ..models import BigId, events_table, metadata
from ..schemas import spec_for
from ..schemas.registry import SOURCE_ALIASES
from .document import entries
from .types import TypeRegistry

logger = logging.getLogger(__name__)

#: ``tracking_event_types``: the catalog, one row per (type, source, version).
event_types_table = Table(
    "tracking_event_types",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_type", Text(), nullable=False),
    Column("source", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("builtin", Boolean(), nullable=False),
    Column("description", Text(), nullable=False),
    Column("json_schema", JSON(), nullable=False),
    #: When the first and the last stored event of it happened (``None``: none yet).
    Column("first_seen", DateTime(), nullable=True),
    Column("last_seen", DateTime(), nullable=True),
    Column("updated_at", DateTime(), nullable=False),
    UniqueConstraint("event_type", "source", "version"),
)

Key = tuple[str, str, int]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def sync_catalog(engine: Engine, types: TypeRegistry) -> int:
    """Write the catalog's rows that are missing or changed; return how many."""
    table = event_types_table
    wanted = {(e.event_type, e.source, e.version): e for e in entries(types)}
    try:
        with engine.begin() as conn:
            have = {
                (row.event_type, row.source, row.version): row
                for row in conn.execute(
                    select(
                        table.c.id,
                        table.c.event_type,
                        table.c.source,
                        table.c.version,
                        table.c.description,
                        table.c.json_schema,
                    )
                )
            }
            now = _now()
            new = [
                {
                    "event_type": key[0],
                    "source": key[1],
                    "version": key[2],
                    "builtin": entry.builtin,
                    "description": entry.description,
                    "json_schema": entry.json_schema,
                    "updated_at": now,
                }
                for key, entry in wanted.items()
                if key not in have
            ]
            if new:
                conn.execute(insert(table), new)
            changed = 0
            for key, row in have.items():
                entry = wanted.get(key)
                if entry is None or (
                    row.description == entry.description and row.json_schema == entry.json_schema
                ):
                    continue
                values = {"description": entry.description, "json_schema": entry.json_schema}
                conn.execute(
                    update(table).where(table.c.id == row.id).values(updated_at=now, **values)
                )
                changed += 1
    except IntegrityError:
        # Another process wrote the same rows first: theirs are as good as ours.
        return 0
    return len(new) + changed


def refresh_seen(engine: Engine) -> int:
    """Set first and last seen of every row from the stored events; return the rows set.

    Events of a built-in type's alias count for its canonical type; ``mobile`` events
    for ``browser``, ``task`` ones for ``server``.
    """
    return _set_seen(engine, _seen_spans(engine, None), widen=False)


def widen_seen(engine: Engine, since: datetime, until: datetime) -> int:
    """After events with times in ``[since, until]`` (aware or naive UTC) were stored:
    widen first and last seen by the events of that range (one grouped select over it,
    through the time index); return the rows set."""
    return _set_seen(engine, _seen_spans(engine, (_naive(since), _naive(until))), widen=True)


def _naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _seen_spans(
    engine: Engine, window: tuple[datetime, datetime] | None
) -> dict[Key, tuple[datetime, datetime]]:
    """``{catalog key: (first, last)}`` of the stored events (of ``window`` only)."""
    events = events_table
    query = (
        select(
            events.c.event_type,
            events.c.event_source,
            events.c.schema_version,
            func.min(events.c.time),
            func.max(events.c.time),
        )
        .where(events.c.schema_version.is_not(None))
        .group_by(events.c.event_type, events.c.event_source, events.c.schema_version)
    )
    if window is not None:
        query = query.where(events.c.time.between(*window))
    seen: dict[Key, tuple[datetime, datetime]] = {}
    with engine.connect() as conn, statement_timeout(conn, None):
        for event_type, source, version, first, last in conn.execute(query):
            key = _catalog_key(event_type, source, version)
            if key in seen:
                first, last = min(first, seen[key][0]), max(last, seen[key][1])
            seen[key] = (first, last)
    return seen


def _set_seen(engine: Engine, seen: dict[Key, tuple[datetime, datetime]], *, widen: bool) -> int:
    table = event_types_table
    with engine.begin() as conn:
        for (event_type, source, version), (first, last) in seen.items():
            first_value: Any = first
            last_value: Any = last
            if widen:  # NULL (never seen) or later / earlier: the range's value
                first_value = case(
                    (table.c.first_seen.is_(None), first),
                    (table.c.first_seen > first, first),
                    else_=table.c.first_seen,
                )
                last_value = case(
                    (table.c.last_seen.is_(None), last),
                    (table.c.last_seen < last, last),
                    else_=table.c.last_seen,
                )
            conn.execute(
                update(table)
                .where(
                    table.c.event_type == event_type,
                    table.c.source == source,
                    table.c.version == version,
                )
                .values(first_seen=first_value, last_seen=last_value)
            )
    return len(seen)


def seen_after_prune(engine: Engine, cutoff: datetime) -> int:
    """Set first and last seen again for the rows whose events a prune before ``cutoff``
    (naive UTC) may have removed; return the rows changed.

    Only rows first seen before the cutoff are looked at. For each, one select (one
    round trip) of two scalar subqueries per type name (the canonical type and its
    aliases): its first and last stored event by ``ORDER BY time LIMIT 1``, each an
    index probe from one end (``(event_type, time)``, or ``time`` for a type that is
    most of the table; PostgreSQL and SQLite plan both so), never a read of the type's
    events as a grouped ``min``/``max`` over the names would be. A row none of whose
    events is left gets ``None`` for both; the rows are then written by one executemany.
    """
    table, events = event_types_table, events_table
    found: list[dict[str, Any]] = []
    with engine.begin() as conn, statement_timeout(conn, None):
        rows = conn.execute(
            select(table.c.id, table.c.event_type, table.c.source, table.c.version).where(
                table.c.first_seen < cutoff
            )
        ).all()
        for row in rows:
            spec = spec_for(row.source, row.event_type)
            names = spec.names if spec is not None else (row.event_type,)
            sources = [row.source, *(s for s, to in SOURCE_ALIASES.items() if to == row.source)]
            ends = [
                select(events.c.time)
                .where(
                    events.c.event_type == name,
                    events.c.event_source.in_(sources),
                    events.c.schema_version == row.version,
                )
                .order_by(order)
                .limit(1)
                .scalar_subquery()
                for name in names
                for order in (events.c.time.asc(), events.c.time.desc())
            ]
            times = [when for when in conn.execute(select(*ends)).one() if when is not None]
            first, last = (min(times), max(times)) if times else (None, None)
            found.append({"row_id": row.id, "first": first, "last": last})
        if found:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("row_id"))
                .values(first_seen=bindparam("first"), last_seen=bindparam("last")),
                found,
            )
    return len(found)


class CatalogKeeper:
    """Runs :func:`sync_catalog` once per registry generation (the pipeline calls
    :meth:`keep` after each successful write: a comparison, unless the catalog changed)."""

    def __init__(self, engine: Engine, types: TypeRegistry) -> None:
        self.engine = engine
        self.types = types
        self.generation = -1

    def keep(self) -> None:
        """Write the table if the catalog changed since the last time; never raises."""
        if self.generation == self.types.generation:
            return
        self.generation = self.types.generation
        try:
            sync_catalog(self.engine, self.types)
        except Exception as exc:
            logger.warning(
                "The tracking_event_types table could not be written (%s); run"
                " `flask tracking init-db`.",
                type(exc).__name__,
            )


def _catalog_key(event_type: str, source: str, version: int) -> Key:
    source = SOURCE_ALIASES.get(source, source)
    spec = spec_for(source, event_type)
    return (spec.event_type if spec else event_type, source, version)


def catalog_rows(engine: Engine) -> list[dict[str, Any]]:
    """The rows of ``tracking_event_types``, by type, source and version."""
    table = event_types_table
    query = select(table).order_by(table.c.event_type, table.c.source, table.c.version)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
