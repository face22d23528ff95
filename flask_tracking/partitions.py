"""Time partitions of ``tracking_events`` on PostgreSQL (``TRACKING_PARTITION``).

With ``TRACKING_PARTITION = "month"`` (or ``"day"``) the table is ``PARTITION BY RANGE
(time)``, one partition per month (day) named ``tracking_events_p2026_12``
(``tracking_events_p2026_12_02``). Its columns and indexes are those of the plain table;
its primary key is ``(id, time)`` (a partitioned table's unique keys must hold the
partition key), so ``UNIQUE(event_id)`` cannot be a constraint of the table.

Event-id uniqueness across partitions is the narrow table ``tracking_event_ids
(event_id PRIMARY KEY, time)``, written in the same statement as the events (see
:func:`partitioned_insert`): the ids go in first with ``ON CONFLICT DO NOTHING``, and
only the rows whose id went in are inserted into ``tracking_events``; a concurrent
insert of the same id waits on the primary key, as with the plain table. Retention
removes an id with its event.

Partitions are made ahead of time (``flask tracking init-db`` and the worker: the current
period and :data:`AHEAD` more) and on demand: before an insert, the store makes sure the
partitions of the batch's times exist (:meth:`Partitions.ensure`), so an imported 2014
log stores as a 2026 event does. There is no DEFAULT partition: a row there would stop
the partition of its period from ever being created.
"""

from __future__ import annotations

import logging
import re
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)
from sqlalchemy.exc import DBAPIError

from .errors import ConfigError
from .models import events_table, metadata

logger = logging.getLogger(__name__)

UNITS = ("month", "day")
#: Periods made ahead of the current one (by init-db and the worker).
AHEAD = {"month": 3, "day": 14}
PARENT = "tracking_events"
IDS = "tracking_event_ids"

_ids_metadata = MetaData(naming_convention=metadata.naming_convention)
#: ``tracking_event_ids``: one row per stored event id (partitioned tables only).
ids_table = Table(
    IDS,
    _ids_metadata,
    Column("event_id", String(36), primary_key=True),
    Column("time", DateTime(), nullable=False),
    Index(None, "time"),
)


def _partitioned_events_table() -> Table:
    """``tracking_events`` as created when partitioned: the same columns and indexes, the
    primary key ``(id, time)``, no unique ``event_id``, ``PARTITION BY RANGE (time)``."""
    md = MetaData(naming_convention=metadata.naming_convention)
    columns = []
    for c in events_table.columns:
        columns.append(
            Column(
                c.name,
                c.type,
                nullable=False if c.name in ("id", "time") else c.nullable,
                autoincrement=c.name == "id",
            )
        )
    indexes = [Index(ix.name, *[c.name for c in ix.columns]) for ix in events_table.indexes]
    return Table(
        PARENT,
        md,
        *columns,
        PrimaryKeyConstraint("id", "time", name="pk_tracking_events"),
        *indexes,
        postgresql_partition_by="RANGE (time)",
    )


partitioned_table = _partitioned_events_table()

_SHAPE = re.compile(
    r"^(?P<head>INSERT INTO tracking_events \([^)]*\)) (?P<select>SELECT .*)"
    r" ON CONFLICT \(event_id\) DO NOTHING RETURNING event_id$",
    re.S,
)


def partitioned_insert(plain: str) -> str:
    """The store's PostgreSQL insert (``INSERT INTO tracking_events (...) SELECT ... ON
    CONFLICT (event_id) DO NOTHING RETURNING event_id``) for a partitioned table: the
    rows read once (a CTE), their ids put into ``tracking_event_ids`` first, and only
    the rows whose id went in inserted; the same parameter, the same ``RETURNING``."""
    match = _SHAPE.match(plain)
    if match is None:  # the store's statement changed shape: adapt this function
        raise RuntimeError("partitions: the PostgreSQL insert has an unexpected shape")
    return (
        f"WITH r AS ({match['select']}),"
        f" ids AS (INSERT INTO {IDS} (event_id, time) SELECT event_id, time FROM r"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
        f" {match['head']} SELECT r.* FROM r JOIN ids USING (event_id) RETURNING event_id"
    )


@dataclass(frozen=True, slots=True)
class Period:
    """One partition: its name and its range ``[start, end)`` (naive UTC)."""

    name: str
    start: datetime
    end: datetime


def period_of(unit: str, when: datetime) -> Period:
    """The partition that holds ``when`` (naive UTC, or aware: converted)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if unit == "day":
        start = datetime(when.year, when.month, when.day)
        return Period(f"{PARENT}_p{start:%Y_%m_%d}", start, start + timedelta(days=1))
    start = datetime(when.year, when.month, 1)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return Period(f"{PARENT}_p{start:%Y_%m}", start, end)


def upcoming(unit: str, now: datetime, ahead: int | None = None) -> list[Period]:
    """The current period and ``ahead`` (default :data:`AHEAD`) more."""
    periods = [period_of(unit, now)]
    for _ in range(AHEAD[unit] if ahead is None else ahead):
        periods.append(period_of(unit, periods[-1].end))
    return periods


def check_backend(unit: str | None, dialect: str) -> None:
    """``TRACKING_PARTITION`` is for PostgreSQL: refused elsewhere, not ignored."""
    if unit is not None and dialect != "postgresql":
        raise ConfigError(
            f"TRACKING_PARTITION = {unit!r} partitions tables on PostgreSQL only, and this"
            f" app's tracking database is {dialect}: set TRACKING_PARTITION = None for it"
            " (retention, TRACKING_RETENTION_DAYS and `flask tracking prune`, works without"
            " partitions)."
        )


def is_partitioned(conn: Connection) -> bool | None:
    """Whether ``tracking_events`` is partitioned (``None``: it does not exist)."""
    row = conn.execute(
        text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:name)"),
        {"name": PARENT},
    ).first()
    if row is None:
        return None
    return str(row[0]) == "p"


#: The partitions of ``tracking_events``: ``(name, bound)`` rows (see :func:`parse_existing`).
EXISTING_SQL = (
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid"
    f" WHERE i.inhparent = to_regclass('{PARENT}')"
)


def existing(conn: Connection) -> dict[str, tuple[datetime, datetime]]:
    """The partitions of ``tracking_events``: name -> (start, end), read from the catalog."""
    return parse_existing(conn.exec_driver_sql(EXISTING_SQL).all())


def parse_existing(rows: Iterable[Any]) -> dict[str, tuple[datetime, datetime]]:
    """The rows of :data:`EXISTING_SQL` as name -> (start, end)."""
    found = {}
    for name, bound in rows:
        times = re.findall(r"'([^']+)'", bound or "")
        if len(times) == 2:
            found[str(name)] = (datetime.fromisoformat(times[0]), datetime.fromisoformat(times[1]))
    return found


def create_tables(engine: Engine, unit: str, now: datetime | None = None) -> list[str]:
    """Create the tracking tables with ``tracking_events`` partitioned (those missing),
    and the partitions of now and ahead; the partitions created."""
    with engine.begin() as conn:
        state = is_partitioned(conn)
        if state is False:
            raise ConfigError(
                f"TRACKING_PARTITION = {unit!r}, but {PARENT} already exists as a plain"
                " (unpartitioned) table: a table cannot be partitioned in place. Either"
                " set TRACKING_PARTITION = None, or move the events to a partitioned"
                " table (docs/partitions.md, 'Partitioning an existing table')."
            )
        if state is None:
            partitioned_table.create(conn)
        others = [t for t in metadata.sorted_tables if t.name != PARENT]
        metadata.create_all(conn, tables=others)
        ids_table.create(conn, checkfirst=True)
    return make_partitions(engine, upcoming(unit, now or datetime.now(UTC)))


def check_plain(engine: Engine) -> None:
    """With ``TRACKING_PARTITION = None``: refuse a partitioned ``tracking_events``."""
    with engine.connect() as conn:
        if is_partitioned(conn):
            raise ConfigError(
                f"TRACKING_PARTITION is None, but {PARENT} in this database is"
                " partitioned: set TRACKING_PARTITION to the unit it was created with"
                " ('month' or 'day')."
            )


def make_partitions(engine: Engine, periods: Iterable[Period]) -> list[str]:
    """Create the partitions of ``periods`` that do not exist yet; their names.

    Each in its own short transaction (creating a partition locks the parent table)."""
    made = []
    for period in periods:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.execute(text("SELECT to_regclass(:n)"), {"n": period.name}).scalar():
                continue
            try:
                conn.exec_driver_sql(
                    f'CREATE TABLE IF NOT EXISTS "{period.name}" PARTITION OF {PARENT}'
                    f" FOR VALUES FROM ('{period.start.isoformat(' ')}')"
                    f" TO ('{period.end.isoformat(' ')}')"
                )
            except DBAPIError:  # made by another process at the same moment
                if not conn.execute(text("SELECT to_regclass(:n)"), {"n": period.name}).scalar():
                    raise
                continue
            made.append(period.name)
            logger.info("Tracking: created partition %s.", period.name)
    return made


class Partitions:
    """What the store needs: the insert statement, and partitions made on demand.

    It knows which ranges exist: the catalog's list is read once, then kept up to date
    with the partitions this process creates, so checking a batch's times costs no query.
    The list is read again only when a batch needs a period it lacks (another process may
    have made it), and after an insert failed for a partition dropped meanwhile
    (:meth:`dropped_meanwhile`) or retention in this process dropped some (:meth:`forget`).
    """

    def __init__(self, engine: Engine, unit: str) -> None:
        self.engine = engine
        self.unit = unit
        #: name -> (start, end) of the partitions known to exist (empty until the list
        #: is read: every period is missing then); replaced, never changed in place
        #: (threads read it without a lock).
        self._known: dict[str, tuple[datetime, datetime]] = {}
        self._retried_at = float("-inf")

    def create_all(self) -> list[str]:
        made = create_tables(self.engine, self.unit)
        self.forget()
        return made

    def missing(self, times: Iterable[datetime]) -> list[Period]:
        """The periods of ``times`` not known to exist (none, usually); no query."""
        day = self.unit == "day"
        keys: set[tuple[int, int, int]] = set()
        for when in times:  # cheap per event: the periods are built once per key
            if when.tzinfo is not None and when.tzinfo is not UTC:
                when = when.astimezone(UTC)
            keys.add((when.year, when.month, when.day if day else 1))
        known = self._known
        periods = (period_of(self.unit, datetime(*key)) for key in keys)
        return [p for p in periods if not _covered(known, p)]

    def ensure(self, conn: Connection, times: Iterable[datetime]) -> None:
        """Make sure the partitions holding ``times`` exist (before inserting them).

        The list, when it must be read, is read on ``conn``, the insert's own connection
        (no second checkout, one wait at most when the server is down)."""
        self.make(self.missing(times), lambda: existing(conn))

    def make(
        self, periods: list[Period], read: Callable[[], dict[str, tuple[datetime, datetime]]]
    ) -> None:
        """Make the partitions of ``periods`` (from :meth:`missing`) that do not exist.

        ``read`` reads the list on the insert's connection (see :func:`existing`); only a
        partition still missing then takes a connection of its own, to be created outside
        the insert's transaction."""
        if not periods:
            return
        self._known = read()  # another process may have made them
        periods = [p for p in periods if not _covered(self._known, p)]
        if periods:
            make_partitions(self.engine, periods)
            self._known = {**self._known, **{p.name: (p.start, p.end) for p in periods}}

    def dropped_meanwhile(self, exc: BaseException) -> bool:
        """Whether an insert failed for a partition the list said exists (dropped by
        another process since it was read): then the list is read again."""
        if "no partition of relation" not in str(exc):
            return False
        if _time.monotonic() - self._retried_at < 1:  # read again just now: no loop
            return False
        self._retried_at = _time.monotonic()
        self.forget()
        return True

    def forget(self) -> None:
        """Read the partitions again before the next insert (one may have been dropped)."""
        self._known = {}


def _covered(known: dict[str, tuple[datetime, datetime]], period: Period) -> bool:
    """Whether ``period`` is a known partition, or lies within one (made by hand with
    another name or unit)."""
    if period.name in known:
        return True
    return any(start <= period.start and period.end <= end for start, end in known.values())


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's ``include_object`` for a database with partitioned tracking tables:
    autogenerate leaves alone the partitions, ``tracking_event_ids`` (made by
    ``flask tracking init-db``, not in the metadata) and the ``UNIQUE(event_id)`` that a
    partitioned ``tracking_events`` cannot have; columns and indexes are compared as usual.

    ``context.configure(..., include_object=include_object)`` in ``migrations/env.py``."""
    if type_ == "table" and name is not None:
        return not made_for_partitions(name)
    return not (type_ == "unique_constraint" and name == "uq_tracking_events_event_id")


def made_for_partitions(name: str) -> bool:
    """Whether ``name`` is a table of a partitioned layout that is not in the metadata:
    ``tracking_event_ids`` or a partition of ``tracking_events``."""
    return name == IDS or bool(_PARTITION_NAME.match(name))


_PARTITION_NAME = re.compile(rf"^{PARENT}_p\d{{4}}_\d{{2}}(_\d{{2}})?$")
