"""What the frozen-server deadline costs per statement on PostgreSQL.

``make_engine`` arms a watchdog around every wait on a PostgreSQL server (see
``flask_tracking/deadline.py`` and ``pgdeadline.py``): psycopg connection and cursor
subclasses arm it before each execute, fetch, commit and rollback and disarm it after.
Measured here against an engine with the very same settings (pool, ``statement_timeout``
options) but plain psycopg connections, in the same run, in alternating rounds (the
machine is shared; client CPU is steadier than wall time there):

- ``select1``: ``SELECT 1`` on one checked-out connection (the cost, undiluted);
- ``store``: ``SqlStore.send`` of one event, as ingest does (insert, commit and the
  pool's rollback on checkin: three armed waits);
- ``arm+disarm``: the watchdog's own cost, without the database.

PostgreSQL: the tests' (``tests/services.py``), tables in the schema ``bench_deadline``
(dropped at the end). Environment: ``BENCH_DEADLINE_N`` (1000 calls per round),
``BENCH_DEADLINE_ROUNDS`` (21).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, text

from flask_tracking.deadline import Watchdog
from flask_tracking.engine import TIMEOUT_OPTION, _postgresql_args, make_engine
from flask_tracking.store import SqlStore

from . import postgres_url as shared_postgres_url

N = int(os.environ.get("BENCH_DEADLINE_N", "1000"))
ROUNDS = int(os.environ.get("BENCH_DEADLINE_ROUNDS", "21"))
SCHEMA = "bench_deadline"
TIMEOUT = 1.0


def postgres_url() -> str:
    return shared_postgres_url(SCHEMA)


def without_watchdog(url: str) -> Engine:
    """``make_engine``'s PostgreSQL engine, minus the watchdog."""
    return create_engine(
        url,
        pool_timeout=TIMEOUT,
        execution_options={TIMEOUT_OPTION: TIMEOUT},
        connect_args=_postgresql_args(url, TIMEOUT),
    )


def event() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "name": "x",
        "event_type": "x",
        "event_source": "server",
        "time": now,
        "received_at": now,
        "event": {"n": 1},
        "event_format": "object",
        "schema_status": "unvalidated",
        "context": {},
    }


#: A round: (wall seconds, CPU seconds of this process).
Round = Callable[[], tuple[float, float]]


def select1(engine: Engine) -> Round:
    def run() -> tuple[float, float]:
        with engine.connect() as conn:
            statement = text("SELECT 1")
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(N):
                conn.execute(statement)
            return time.perf_counter() - start, time.process_time() - cpu

    return run


def store(engine: Engine) -> Round:
    sql = SqlStore(engine)

    def run() -> tuple[float, float]:
        batches = [[event()] for _ in range(N)]
        start, cpu = time.perf_counter(), time.process_time()
        for one in batches:
            sql.send(one)
        return time.perf_counter() - start, time.process_time() - cpu

    return run


def arm_disarm() -> float:
    watchdog, conn = Watchdog(), object()
    start = time.perf_counter()
    for _ in range(N * 10):
        watchdog.arm(conn, 60.0)
        watchdog.disarm(conn)
    return (time.perf_counter() - start) / (N * 10)


def compare(label: str, ours: Round, bare: Round) -> str:
    """Wall and client CPU per call, each the median of the rounds (alternating)."""
    ours(), bare()  # warm-up: connections, statement caches
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    for n in range(ROUNDS):  # which goes first alternates too
        if n % 2:
            theirs.append(bare())
            mine.append(ours())
        else:
            mine.append(ours())
            theirs.append(bare())

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2] / N * 1e6

    wall = median([w for w, _ in mine]), median([w for w, _ in theirs])
    cpu = median([c for _, c in mine]), median([c for _, c in theirs])
    low = min(c for _, c in mine) / N * 1e6, min(c for _, c in theirs) / N * 1e6
    return (
        f"deadline {label}: per call with vs without the watchdog: wall {wall[0]:.0f} vs"
        f" {wall[1]:.0f} µs ({100 * (wall[0] - wall[1]) / wall[1]:+.1f}%), client CPU"
        f" {cpu[0]:.1f} vs {cpu[1]:.1f} µs ({cpu[0] - cpu[1]:+.1f}); fastest round's CPU"
        f" {low[0]:.1f} vs {low[1]:.1f} µs ({low[0] - low[1]:+.1f}); medians of {ROUNDS}"
        f" alternating rounds of {N}"
    )


def run() -> list[str]:
    url = postgres_url()
    setup = create_engine(url)
    with setup.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    ours, bare = make_engine(url, timeout=TIMEOUT), without_watchdog(url)
    try:
        SqlStore(ours).create_all()
        lines = [
            compare("select1", select1(ours), select1(bare)),
            compare("store", store(ours), store(bare)),
            f"deadline arm+disarm: {arm_disarm() * 1e9:.0f} ns (no database)",
        ]
    finally:
        ours.dispose()
        bare.dispose()
        with setup.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        setup.dispose()
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
