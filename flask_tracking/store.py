"""The SQL store: the backend that is the point of truth.

One transaction stores a batch; a unique ``event_id`` makes a retried batch store
nothing twice (``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL). Hooks let
other parts (forwarding) add rows in the same transaction and act after the commit.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from .engine import WriteLock, is_unavailable
from .models import events_table, failed_table, metadata
from .sqlite_wal import Checkpointer

logger = logging.getLogger(__name__)

#: Called inside the storing transaction with the ids just stored.
InsertHook = Callable[[Connection, list[str]], None]
#: Called after the commit with the ids just stored.
CommitHook = Callable[[list[str]], None]

_EVENT_COLUMNS = [c.name for c in events_table.columns if c.name != "id"]
#: Rows per SQLite INSERT statement (SQLite allows 32,766 parameters per statement).
SQLITE_ROWS_PER_STATEMENT = 500


@dataclass(slots=True)
class StoreResult:
    """The ids of a batch that were stored now, and those already stored before."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(event_id, reason)`` of rows the database refused (a value it cannot hold).
    rejected: list[tuple[str, str]] = field(default_factory=list)


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of an event dict."""
    context = event.get("context") or {}
    row = {name: event.get(name) for name in _EVENT_COLUMNS}
    row["time"] = _naive_utc(event["time"])
    row["received_at"] = _naive_utc(event["received_at"])
    row["client_time"] = _naive_utc(event.get("client_time"))
    row["course_id"] = _text(context.get("course_id"))
    row["org_id"] = _text(context.get("org_id"))
    row["user_id"] = _text(context.get("user_id"))
    return row


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


#: The column order ``_sqlite_values`` writes; checked against the model at import.
_SQLITE_ORDER = [
    "event_id",
    "name",
    "event_type",
    "event_source",
    "time",
    "username",
    "session",
    "ip",
    "agent",
    "host",
    "referer",
    "accept_language",
    "page",
    "course_id",
    "org_id",
    "user_id",
    "event",
    "event_format",
    "event_raw",
    "context",
    "schema_status",
    "received_at",
    "client_time",
    "clock_skew_ms",
    "seq",
    "original",
]
if _SQLITE_ORDER != _EVENT_COLUMNS:  # pragma: no cover - a model change must update this
    raise RuntimeError("store._sqlite_values no longer matches the tracking_events columns.")


def _sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it: naive UTC, microseconds."""
    if value.tzinfo is UTC and type(value) is datetime:  # the usual case
        return _utc_time_text(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=256)
def _utc_time_text(value: datetime) -> str:
    """``_sqlite_time`` of a UTC datetime (the "+00:00" cut off); remembered, as every
    event of a batch has the same ``received_at``."""
    return value.isoformat(" ", "microseconds")[:-6]


def _sqlite_values(e: Mapping[str, Any]) -> tuple[Any, ...]:
    """An event as SQLite parameters, encoded as SQLAlchemy's types store them (JSON with
    ``json.dumps``, NULL for None), without SQLAlchemy's per-row work (the hot path)."""
    dumps = json.dumps
    context = e.get("context")
    ctx = context or {}
    payload, original, client_time = e.get("event"), e.get("original"), e.get("client_time")
    return (
        e["event_id"],
        e.get("name"),
        e["event_type"],
        e["event_source"],
        _sqlite_time(e["time"]),
        e.get("username"),
        e.get("session"),
        e.get("ip"),
        e.get("agent"),
        e.get("host"),
        e.get("referer"),
        e.get("accept_language"),
        e.get("page"),
        _text(ctx.get("course_id")),
        _text(ctx.get("org_id")),
        _text(ctx.get("user_id")),
        None if payload is None else dumps(payload),
        e["event_format"],
        e.get("event_raw"),
        None if context is None else dumps(context),
        e["schema_status"],
        _sqlite_time(e["received_at"]),
        None if client_time is None else _sqlite_time(client_time),
        e.get("clock_skew_ms"),
        e.get("seq"),
        None if original is None else dumps(original),
    )


def _storable(value: str | None) -> str | None:
    """Text any database can hold: lone surrogates and NULs written as escapes."""
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


class SqlStore:
    """Stores events and failed events in the tracking tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.insert_hooks: list[InsertHook] = []
        self.commit_hooks: list[CommitHook] = []
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        base = dialect.insert(events_table).on_conflict_do_nothing(index_elements=["event_id"])
        self._insert_returning = base.returning(events_table.c.event_id)
        #: Whether a plain executemany reports the inserted count: sqlite3 sums it;
        #: on PostgreSQL SQLAlchemy batches rows into one statement, so use RETURNING.
        self._multi_rowcount = engine.dialect.name == "sqlite"
        #: SQLite has one writer at a time: threads of this process take turns here
        #: instead of sleeping in SQLite's busy handler (which makes p99 latency soar).
        self._write_lock = threading.Lock() if self._multi_rowcount else None
        self._sqlite_returning_sql: dict[int, str] = {}
        #: Processes take turns through a lock file beside the database: a writer waits
        #: in the kernel, not in SQLite's busy handler that sleeps up to 100 ms a try.
        database = engine.url.database if self._write_lock is not None else None
        on_disk = bool(database) and database != ":memory:"
        self._file_lock = WriteLock(f"{database}.write-lock" if on_disk else None)
        self._checkpointer = Checkpointer(str(database), self) if on_disk else None
        #: The bulk insert on SQLite, fed ready-made tuples (see ``_sqlite_values``).
        self._sqlite_bulk_sql = (
            f"INSERT INTO tracking_events ({', '.join(_EVENT_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
            " ON CONFLICT (event_id) DO NOTHING"
        )

    def create_all(self) -> None:
        """Create the tables and indexes that do not exist yet (idempotent)."""
        metadata.create_all(self.engine)

    def send(self, events: Sequence[Mapping[str, Any]]) -> StoreResult:
        """Store a batch in one transaction; ids already stored are duplicates."""
        return self._send_rows(self._records(events))

    def _records(self, events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """What the insert takes: the events themselves on SQLite, column dicts elsewhere."""
        if self._write_lock is not None:
            return list(events)
        return [event_row(e) for e in events]

    def _send_rows(self, rows: list[Mapping[str, Any]]) -> StoreResult:
        if not rows:
            return StoreResult()
        try:
            stored = self._transaction(rows)
        except (StatementError, UnicodeError) as exc:
            if isinstance(exc, StatementError) and is_unavailable(exc):
                raise
            if len(rows) == 1:
                reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
                return StoreResult(rejected=[(rows[0]["event_id"], f"Database refused: {reason}")])
            return self._send_one_by_one(rows)
        kept = set(stored)
        result = StoreResult()
        for row in rows:
            event_id = row["event_id"]
            if event_id in kept:
                kept.discard(event_id)
                result.stored.append(event_id)
            else:
                result.duplicates.append(event_id)
        self._after_commit(result.stored)
        return result

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction (taking this process's turn first on SQLite)."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self._file_lock.held(), self.engine.begin() as conn:
            yield conn
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    def _transaction(self, rows: list[Mapping[str, Any]]) -> list[str]:
        with self._writing() as conn:
            stored = self._insert(conn, rows)
            for hook in self.insert_hooks:
                hook(conn, stored)
        return stored

    def _send_one_by_one(self, rows: list[Mapping[str, Any]]) -> StoreResult:
        """After a batch failed on a bad value: store each row alone, keep the refusals."""
        result = StoreResult()
        for row in rows:
            part = self._send_rows([row])
            result.stored += part.stored
            result.duplicates += part.duplicates
            result.rejected += part.rejected
        return result

    def _insert(self, conn: Connection, rows: list[Mapping[str, Any]]) -> list[str]:
        unique: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            unique.setdefault(row["event_id"], row)
        if self._write_lock is not None:
            return self._sqlite_insert(conn, list(unique.values()))
        result = conn.execute(self._insert_returning, list(unique.values()))
        return list(result.scalars())

    def _sqlite_insert(self, conn: Connection, rows: list[Mapping[str, Any]]) -> list[str]:
        """One multi-row ``INSERT ... RETURNING`` per chunk, fed ready-made tuples."""
        stored: list[str] = []
        for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
            chunk = rows[start : start + SQLITE_ROWS_PER_STATEMENT]
            sql = self._sqlite_returning_sql.get(len(chunk))
            if sql is None:
                one = f"({', '.join('?' for _ in _EVENT_COLUMNS)})"
                sql = (
                    f"INSERT INTO tracking_events ({', '.join(_EVENT_COLUMNS)})"
                    f" VALUES {', '.join(one for _ in chunk)}"
                    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
                )
                self._sqlite_returning_sql[len(chunk)] = sql
            params = tuple(chain.from_iterable(map(_sqlite_values, chunk)))
            stored.extend(r[0] for r in conn.exec_driver_sql(sql, params))
        return stored

    def insert_many(self, events: Iterable[Mapping[str, Any]]) -> tuple[int, list[tuple[str, str]]]:
        """Bulk path (import): ``(how many were new, refused rows)``; no RETURNING on SQLite."""
        rows = self._records(events)
        if not rows:
            return 0, []
        if not (self.insert_hooks or self.commit_hooks) and self._multi_rowcount:
            try:
                with self._writing() as conn:
                    values = [_sqlite_values(e) for e in rows]
                    cursor = conn.exec_driver_sql(self._sqlite_bulk_sql, values)
                    return max(cursor.rowcount, 0), []
            except (StatementError, UnicodeError) as exc:
                if isinstance(exc, StatementError) and is_unavailable(exc):
                    raise
        result = self._send_rows(rows)
        return len(result.stored), result.rejected

    def _after_commit(self, stored: list[str]) -> None:
        if not stored:
            return
        for hook in self.commit_hooks:
            try:
                hook(stored)
            except Exception:
                logger.exception("Tracking after-commit hook %r failed.", hook)

    def save_failed(self, failures: Sequence[Mapping[str, Any]]) -> None:
        """Keep failed events, raw, with their reasons. Never raises for bad content."""
        if not failures:
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [
            {
                "failed_at": now,
                "origin": _storable(f.get("origin") or "unknown"),
                "event_id": _storable(_text(f.get("event_id"))),
                "event_type": _storable(_text(f.get("event_type"))),
                "raw": _storable(
                    f["raw"] if isinstance(f.get("raw"), str) else json.dumps(f.get("raw"))
                ),
                "reasons": f.get("reasons") or {},
                "detail": _storable(f.get("detail")),
            }
            for f in failures
        ]
        with self._writing() as conn:
            conn.execute(insert(failed_table), rows)

    def count(self) -> int:
        """How many events are stored."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())
