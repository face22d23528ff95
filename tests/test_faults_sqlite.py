"""SQLite locked by another process, or its write-lock file held: 503 within the bound.

The other process is real: a Python subprocess holding ``BEGIN EXCLUSIVE`` on the
database, or an exclusive ``flock`` on ``<database>.write-lock``, until the test lets
it go. The app is driven through the Flask test client (threads of this process).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from flask_tracking import Tracking
from flask_tracking.engine import WriteLock, is_unavailable
from flask_tracking.errors import StoreUnavailable

from faults_support import batch, holder, ids, release, run_forking, stored
from support import partition_config, reset_database

TIMEOUT = 1.0
#: "Within about twice the timeout", with room for a busy machine.
BOUND = 2 * TIMEOUT + 0.5

HOLD_EXCLUSIVE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("ready", flush=True)
sys.stdin.read()
conn.execute("COMMIT")
"""

HOLD_FLOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, str]:
    """``(url, path)`` of a clean SQLite tracking database."""
    path = tmp_path / "tracking.db"
    url = f"sqlite:///{path}"
    reset_database(url)
    return url, str(path)


@pytest.fixture
def app(database: tuple[str, str], tmp_path: Path) -> Any:
    app = Flask("faults_sqlite", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="k",
        TRACKING_DATABASE_URL=database[0],
        **partition_config(database[0]),
        TRACKING_DB_TIMEOUT=TIMEOUT,
        TRACKING_RATE_LIMIT=None,
    )
    Tracking(app)

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    yield app
    app.extensions["tracking"].engine.dispose()


def post(app: Flask, body: Any) -> tuple[int, dict[str, str], float]:
    start = time.monotonic()
    answer = app.test_client().post("/activity/events", json=body)
    return answer.status_code, dict(answer.headers), time.monotonic() - start


def test_database_locked_by_another_process_answers_503_then_stores(
    app: Flask, database: tuple[str, str]
) -> None:
    url, path = database
    body = batch(3)
    with holder(HOLD_EXCLUSIVE, path) as process:
        status, headers, seconds = post(app, body)
        assert status == 503 and headers.get("Retry-After") == "1"
        assert TIMEOUT * 0.9 <= seconds < BOUND, seconds  # SQLite's busy timeout
        release(process)
        status, _, _ = post(app, body)
    assert status == 200
    assert stored(url, ids(body)) == dict.fromkeys(ids(body), 1)


def test_write_lock_held_by_another_process_answers_503_other_pages_answer(
    app: Flask, database: tuple[str, str]
) -> None:
    url, path = database
    first, second = batch(2), batch(2)
    with holder(HOLD_FLOCK, path + ".write-lock") as process, ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(post, app, first), pool.submit(post, app, second)]
        start = time.monotonic()
        page = app.test_client().get("/hello")
        assert page.status_code == 200 and time.monotonic() - start < 0.5
        assert not any(w.done() for w in waiting)
        for future in waiting:  # one waits for the file, the other for the first
            status, headers, seconds = future.result(timeout=10)
            assert status == 503 and headers.get("Retry-After") == "1"
            assert seconds < BOUND, seconds
        release(process)
        assert post(app, first)[0] == 200 and post(app, second)[0] == 200
    wanted = ids(first) + ids(second)
    assert stored(url, wanted) == dict.fromkeys(wanted, 1)


def test_write_lock_waits_at_most_its_timeout_and_is_handed_over_on_release(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "db.write-lock")
    with holder(HOLD_FLOCK, path) as process:
        lock = WriteLock(path, timeout=0.3)
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as raised, lock.held():
            pass
        assert 0.3 <= time.monotonic() - start < 0.8
        assert is_unavailable(raised.value) and path in str(raised.value)
        patient = WriteLock(path, timeout=10)
        with ThreadPoolExecutor(1) as pool:

            def take() -> float:
                with patient.held():
                    return time.monotonic()

            taken = pool.submit(take)
            released_at = time.monotonic()
            release(process)
            assert taken.result(timeout=10) - released_at < 0.5
    with lock.held():  # free again: no wait, and the late grant was given back
        pass


# The fork tests fork a fresh interpreter, not the pytest process: a fork copies only the
# forking thread, so a lock held at that moment by any other thread of the test run (a
# browser driver, an earlier test's forwarding thread) would hang the child forever.
# Each runs bounded in time; a hang fails the test.
WRITE_LOCK_FORK = """
import os, sys
from flask_tracking.engine import WriteLock
from flask_tracking.errors import StoreUnavailable
lock = WriteLock(sys.argv[1], timeout=0.2)
with lock.held():
    pid = os.fork()
    if pid == 0:  # the child opens its own lock file: the parent's lock holds it off
        try:
            with lock.held():
                os._exit(1)
        except StoreUnavailable:
            os._exit(0)
        os._exit(2)
    _, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""

POOL_FORK = """
import os, sys
from sqlalchemy import text
from flask_tracking.engine import make_engine
engine = make_engine(sys.argv[1])
with engine.connect() as conn:
    conn.execute(text("SELECT 1"))
    parent = id(conn.connection.dbapi_connection)
pid = os.fork()
if pid == 0:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        os._exit(0 if id(conn.connection.dbapi_connection) != parent else 1)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_write_lock_is_not_shared_with_a_forked_child(tmp_path: Path) -> None:
    assert run_forking(WRITE_LOCK_FORK, str(tmp_path / "db.write-lock")) == 0


def test_a_forked_child_gets_its_own_pooled_connections(tmp_path: Path) -> None:
    assert run_forking(POOL_FORK, f"sqlite:///{tmp_path / 'fork.db'}") == 0


def test_a_full_database_answers_503_says_why_and_the_retried_batch_is_stored_once(
    app: Flask, database: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite's own limit on its size (``max_page_count``) fails a write the way a full
    disk does (SQLITE_FULL): the batch is refused whole with a 503, the log says the
    disk is full, and the same batch sent again once there is room is stored once."""
    engine = app.extensions["tracking"].engine
    app.extensions["tracking"].store.create_all()
    with engine.connect() as conn:
        room = conn.exec_driver_sql("PRAGMA page_count").scalar_one() + 2
    engine.dispose()

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {room}")

    event.listen(engine, "connect", cap)
    body = batch(40)
    for item in body["events"]:
        item["page"] = "https://courses.example/" + "p" * 2000  # more than 2 pages
    with caplog.at_level("WARNING", logger="flask_tracking"):
        status, headers, _ = post(app, body)
    assert status == 503 and "Retry-After" in headers
    assert "database or disk is full" in caplog.text
    assert stored(database[0], ids(body)) == {}

    event.remove(engine, "connect", cap)
    engine.dispose()  # room again: the cap was per connection
    status, _, _ = post(app, body)
    assert status == 200
    assert stored(database[0], ids(body)) == dict.fromkeys(ids(body), 1)
