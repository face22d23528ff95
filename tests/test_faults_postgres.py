"""PostgreSQL down, frozen or locked: 503 + Retry-After within a bound, nothing lost.

The frozen server is a throwaway cluster of this module's own whose every process gets
SIGSTOP (the kernel still accepts and acknowledges TCP; nothing answers); the app runs
under gunicorn in a subprocess, as in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from flask_tracking.engine import grace, is_unavailable, make_engine, statement_timeout

import services
from faults_support import (
    Gunicorn,
    batch,
    call,
    ids,
    run_forking,
    stored,
    throwaway_postgres,
    wait_until,
)
from support import reset_database, service_url

#: TRACKING_DB_TIMEOUT of these tests: the default.
TIMEOUT = 1.0
#: "Within about twice the timeout", with room for a busy machine.
BOUND = 2 * TIMEOUT + 0.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[services.PostgresCluster]:
    server = throwaway_postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def frozen_url(cluster: services.PostgresCluster) -> Iterator[str]:
    """The cluster's database, clean; thawed after the test whatever happened."""
    reset_database(cluster.url)
    try:
        yield cluster.url
    finally:
        cluster.thaw()


@pytest.fixture
def engine(frozen_url: str) -> Iterator[Engine]:
    made = make_engine(frozen_url, timeout=0.5)
    yield made
    made.dispose()


def test_a_frozen_server_fails_a_statement_within_its_deadline(
    engine: Engine, cluster: services.PostgresCluster
) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        cluster.freeze()
        start = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            conn.execute(text("SELECT 1"))
        took = time.monotonic() - start
    assert is_unavailable(raised.value)
    assert 0.5 <= took < 0.5 + grace(0.5) + 0.5
    start = time.monotonic()  # a new connection: connect_timeout (libpq's 2 s minimum)
    with pytest.raises(OperationalError) as raised, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert is_unavailable(raised.value) and time.monotonic() - start < 2.5
    cluster.thaw()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_frozen_server_fails_a_streaming_read_between_fetches(
    engine: Engine, cluster: services.PostgresCluster
) -> None:
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=10).execute(
            text("SELECT n FROM generate_series(1, 1000) AS n")
        )
        assert [row.n for row in result.fetchmany(10)] == list(range(1, 11))
        cluster.freeze()
        start = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            result.fetchall()
        assert is_unavailable(raised.value)
        assert time.monotonic() - start < 0.5 + grace(0.5) + 0.5


def test_a_slow_statement_is_cancelled_by_the_server_and_may_opt_out(engine: Engine) -> None:
    start = time.monotonic()
    with pytest.raises(OperationalError) as raised, engine.connect() as conn:
        conn.execute(text("SELECT pg_sleep(5)"))
    assert "statement timeout" in str(raised.value) and is_unavailable(raised.value)
    assert time.monotonic() - start < 0.5 + grace(0.5)
    with engine.connect() as conn, statement_timeout(conn, None):
        conn.execute(text("SELECT pg_sleep(0.8)"))  # longer than the bound, allowed
    with engine.connect() as conn:
        with statement_timeout(conn, 2.0):
            conn.execute(text("SELECT pg_sleep(0.8)"))
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "2s"
        conn.rollback()  # the transaction's end restores the bound
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "500ms"


PG_FORK = """
import os, sys
from sqlalchemy import text
from flask_tracking.engine import make_engine
engine = make_engine(sys.argv[1])
backend = text("SELECT pg_backend_pid()")
with engine.connect() as conn:
    parent = conn.execute(backend).scalar()
pid = os.fork()
if pid == 0:
    with engine.connect() as conn:
        os._exit(0 if conn.execute(backend).scalar() != parent else 1)
_, status = os.waitpid(pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(1)
with engine.connect() as conn:  # the parent's session was left alone by the child
    sys.exit(0 if conn.execute(backend).scalar() == parent else 2)
"""


def test_a_forked_child_never_talks_through_its_parents_connection() -> None:
    """In a fresh interpreter (see faults_support.run_forking)."""
    assert run_forking(PG_FORK, service_url("postgresql")) == 0


def test_frozen_server_ingest_answers_503_quickly_other_pages_answer_and_nothing_is_lost(
    frozen_url: str, cluster: services.PostgresCluster, tmp_path: Path
) -> None:
    env = {
        "FAULTS_DATABASE_URL": frozen_url,
        "FAULTS_DB_TIMEOUT": str(TIMEOUT),
        "FAULTS_SPOOL": str(tmp_path / "spool.jsonl"),
    }
    with Gunicorn(env, tmp_path / "gunicorn.log", threads=4) as server:
        assert call(f"{server.url}/activity/events", batch(2)).status == 200  # pool warm
        body = batch(3)
        cluster.freeze()
        with ThreadPoolExecutor(2) as pool:
            ingest = pool.submit(call, f"{server.url}/activity/events", body)
            emitted = pool.submit(call, f"{server.url}/emit", {})
            page = call(f"{server.url}/hello")
            assert page.status == 200 and page.seconds < 0.5
            assert not ingest.done(), "the ingest request should still be waiting"
            refused, spooled = ingest.result(timeout=10), emitted.result(timeout=10)
        assert refused.status == 503, refused.body
        assert refused.headers.get("Retry-After") == "1"
        assert refused.seconds < BOUND, refused.seconds
        assert spooled.status == 200 and spooled.body["event_id"], spooled.body
        assert spooled.seconds < BOUND, spooled.seconds
        cluster.thaw()

        def retried() -> bool:  # as the Logger does
            return call(f"{server.url}/activity/events", body).status == 200

        wait_until(retried, "the batch stored after the thaw")
        wanted = [*ids(body), spooled.body["event_id"]]
        counts = wait_until(
            lambda: (found := stored(frozen_url, wanted)) and len(found) == 4 and found,
            "the batch and the spooled server event stored",
        )
        assert set(counts.values()) == {1}


def test_locked_table_answers_503_within_the_lock_timeout(tmp_path: Path) -> None:
    url = service_url("postgresql")
    reset_database(url)
    env = {"FAULTS_DATABASE_URL": url, "FAULTS_DB_TIMEOUT": str(TIMEOUT)}
    locker = create_engine(url)
    try:
        with Gunicorn(env, tmp_path / "gunicorn.log") as server:
            body = batch(2)
            with locker.connect() as conn:
                conn.execute(text("LOCK TABLE tracking_events IN ACCESS EXCLUSIVE MODE"))
                answer = call(f"{server.url}/activity/events", body)
                assert answer.status == 503 and answer.headers.get("Retry-After") == "1"
                assert answer.seconds < BOUND, answer.seconds
                conn.rollback()
            assert call(f"{server.url}/activity/events", body).status == 200
            assert stored(url, ids(body)) == dict.fromkeys(ids(body), 1)
    finally:
        locker.dispose()


def test_preload_workers_never_share_a_connection_every_200_is_stored_once(
    tmp_path: Path,
) -> None:
    url = service_url("postgresql")
    reset_database(url)
    env = {"FAULTS_DATABASE_URL": url, "FAULTS_USE_DB_AT_START": "1"}
    answered: list[str] = []
    problems: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(60):
            body = batch(4)
            try:
                answer = call(f"{server.url}/activity/events", body, timeout=10)
            except OSError as exc:  # a hung or dropped request
                with lock:
                    problems.append(repr(exc))
                continue
            with lock:
                if answer.status == 200 and answer.body.get("accepted") == 4:
                    answered.extend(ids(body))
                else:
                    problems.append(f"{answer.status} {answer.body}")

    with Gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2, preload=True) as server:
        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    assert not problems, problems[:5]
    assert len(answered) == 4 * 60 * 4
    counts = stored(url, answered)
    assert len(counts) == len(answered) and set(counts.values()) == {1}
