"""One run at a time across processes, for work that must not overlap itself.

Every ``flask tracking worker`` runs the housekeeping (retention) when it starts and then
every hour, so a deploy that starts four workers starts four prunes at once, and an
operator's ``flask tracking prune`` may meet them. On PostgreSQL :func:`exclusive` holds
a session advisory lock, named by the work, for as long as the run lasts: a second run
gets :class:`Busy` at once instead of racing the first (two processes dropping the same
partition, deleting the same rows). The lock is the session's, so a process that dies
mid-run lets it go with its connection. SQLite serialises writers by itself: no lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


class Busy(Exception):
    """Another process is doing this work on this database now."""


def lock_key(name: str) -> int:
    """The advisory-lock key of ``name``: a stable signed 64-bit number."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Run the block as the only run of ``name`` on ``engine``'s database (:class:`Busy`
    if another process holds it)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = {"key": lock_key(name)}
    conn = engine.connect()
    try:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar()
        conn.commit()  # the lock is the session's: no transaction left open
        if not got:
            raise Busy(f"Another process is running {name} on this database.")
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                conn.commit()
            except Exception:  # the session is gone, and its lock with it
                conn.invalidate()
    finally:
        conn.close()
