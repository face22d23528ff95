"""The outbox: rows written with the events, claimed, settled; the sweeper; re-drives.

These tests drive the forwarder by hand (its thread is stopped) with a scripted custom
destination, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    delete,
    select,
    update,
)

from flask_tracking.extension import get_state
from flask_tracking.forwarding import (
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryError,
    Destination,
    Forwarder,
    OutgoingEvent,
    PermanentError,
    RetryableError,
    deliveries_table,
)
from flask_tracking.forwarding.batches import Batch, idempotency_key
from flask_tracking.forwarding.newrows import PG_INSERT, SQLITE_INSERT, statements, write_new
from flask_tracking.forwarding.sql import utcnow
from flask_tracking.models import events_table

from forwarding_app import FAST, event, forwarder_of, make_app, states, store
from support import partition_config

D = deliveries_table


class Scripted(Destination):
    """A custom destination: records batches, raises what the test scripted."""

    def __init__(self, name: str, options: Any) -> None:
        super().__init__(name, options)
        self.batches: list[list[OutgoingEvent]] = []
        self.errors: list[BaseException | None] = []
        self.during: Callable[[Sequence[OutgoingEvent]], None] | None = None

    def send(self, events: Sequence[OutgoingEvent]) -> None:
        if self.during is not None:
            self.during(events)
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        self.batches.append(list(events))

    @property
    def sent(self) -> list[str]:
        return [e.event_id for batch in self.batches for e in batch]


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = make_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            **partition_config(database_url),
            "TRACKING_DESTINATIONS": {
                "x": {"kind": Scripted, "batch_size": 50, "max_attempts": 3, "backoff": 30}
            },
            **FAST,
        }
    )
    forwarder_of(app).close()  # no thread: the test runs batches itself
    yield app
    app.extensions["tracking"].engine.dispose()


def parts(app: Flask) -> tuple[Forwarder, Scripted]:
    forwarder = forwarder_of(app)
    destination = forwarder.targets["x"].destination
    assert isinstance(destination, Scripted)
    return forwarder, destination


def pks(app: Flask) -> list[int]:
    with get_state(app).engine.connect() as conn:
        return list(conn.execute(select(D.c.event_pk).order_by(D.c.event_pk)).scalars())


def rows(app: Flask) -> list[Any]:
    with get_state(app).engine.connect() as conn:
        return list(conn.execute(select(D).order_by(D.c.event_pk)))


def test_rows_are_written_in_the_storing_transaction(app: Flask) -> None:
    ids = store(app, [event(n) for n in range(120)])
    found = rows(app)
    assert len(found) == 120
    assert {r.state for r in found} == {PENDING}
    assert {r.attempts for r in found} == {0}
    # 120 events, batches of 50: two full jobs, and 20 left to gather with later events.
    assert sum(r.job_id is not None for r in found) == 100
    assert len({r.job_id for r in found if r.job_id}) == 2
    assert set(states(app, "x")) == set(ids)

    def boom(conn: Any, stored: list[Any]) -> None:
        raise RuntimeError("a later hook failed")

    state = get_state(app)
    state.store.insert_hooks.append(boom)
    try:
        with pytest.raises(RuntimeError):
            state.store.send([event(n) for n in range(500, 510)])
    finally:
        state.store.insert_hooks.remove(boom)
    assert len(rows(app)) == 120  # rolled back with the events
    assert state.store.count() == 120


def test_a_new_row_resets_one_left_by_a_reused_key(app: Flask) -> None:
    """A delivery row whose event key comes back (SQLite hands out the key of pruned
    rows again) becomes a new pending row with the new job, every field reset."""
    assert rows(app) == []
    store(app, [event(1)])
    (row,) = rows(app)
    old = utcnow() - timedelta(days=3)
    with get_state(app).engine.begin() as conn:
        conn.execute(
            update(D).values(
                state=FAILED,
                attempts=3,
                last_error="gone",
                delivered_at=old,
                created_at=old,
                claim_token="t",
                claimed_until=old,
                job_id="old-job",
            )
        )
    now = utcnow().replace(microsecond=0)
    with get_state(app).engine.begin() as conn:
        write_new(
            conn,
            [(row.event_pk, "x", "new-job"), (row.event_pk, "y", None)],
            now,
            postgresql=conn.dialect.name == "postgresql",
        )
    again = {r.destination: r for r in rows(app)}
    assert set(again) == {"x", "y"}
    for destination, job in (("x", "new-job"), ("y", None)):
        fresh = again[destination]
        assert (fresh.event_pk, fresh.state, fresh.attempts, fresh.job_id) == (
            row.event_pk,
            PENDING,
            0,
            job,
        )
        assert fresh.last_error is fresh.delivered_at is fresh.claim_token is None
        assert fresh.claimed_until is None
        assert fresh.created_at == fresh.updated_at == fresh.next_attempt_at == now


def _written(statement: str) -> tuple[list[str], list[str], list[str]]:
    """The columns ``statement`` inserts, the values it gives them (``SELECT`` or
    ``VALUES`` list), and the columns its ``ON CONFLICT`` sets again."""
    head, rest = statement.split(") ", 1)
    values = rest.split(" FROM unnest(")[0] if rest.startswith("SELECT ") else rest.split(")")[0]
    reset = statement.split(" DO UPDATE SET ", 1)[1].split(", ")
    return (
        head.split(" (", 1)[1].split(", "),
        values.split(" ", 1)[1].lstrip("(").split(", "),
        [item.split(" = ")[0] for item in reset],
    )


@pytest.mark.parametrize("statement", [PG_INSERT, SQLITE_INSERT], ids=["postgresql", "sqlite"])
def test_the_new_row_statements_write_every_column_of_the_table(statement: str) -> None:
    """The delivery rows' statements write each column of ``deliveries_table`` but the
    generated key (a column added to the model shows here, not as a missing value), a
    value each, and a row there already gets every column but its conflict key anew."""
    columns = [c.name for c in D.columns if not c.primary_key]
    inserted, values, reset = _written(statement)
    assert inserted == columns
    assert len(values) == len(columns)
    assert reset == [name for name in columns if name not in ("event_pk", "destination")]


def _deliveries(*extra: Column[Any], without: str = "") -> Table:
    """A table like ``tracking_deliveries``, with ``extra`` columns or ``without`` one."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key) for c in D.columns if c.name != without
    ]
    return Table(D.name, MetaData(), *columns, *extra, UniqueConstraint("event_pk", "destination"))


def test_a_column_added_to_the_deliveries_table_stops_newrows() -> None:
    """A table with a column ``newrows`` gives no value (or without one it gives) is
    refused when the statements are built (at import), never written without it."""
    with pytest.raises(RuntimeError, match=r"no value for \['priority'\]"):
        statements(_deliveries(Column("priority", Integer())))
    with pytest.raises(RuntimeError, match=r"a value for no column \['claim_token'\]"):
        statements(_deliveries(without="claim_token"))
    assert statements(_deliveries())[:2] == (PG_INSERT, SQLITE_INSERT)


def test_a_job_run_again_sends_nothing_twice(app: Flask) -> None:
    forwarder, destination = parts(app)
    ids = store(app, [event(n) for n in range(50)])
    first = forwarder.run_batch("x", pks(app))
    assert (first.delivered, first.skipped) == (50, 0)
    again = forwarder.run_batch("x", pks(app))
    assert (again.delivered, again.skipped) == (0, 50)
    assert destination.sent == ids
    assert {r.state for r in rows(app)} == {DELIVERED}
    assert all(r.delivered_at is not None and r.attempts == 1 for r in rows(app))


def test_a_job_sends_nothing_another_job_holds(app: Flask) -> None:
    forwarder, destination = parts(app)
    store(app, [event(n) for n in range(20)])
    inner: list[Any] = []

    def duplicate_job_meanwhile(events: Sequence[OutgoingEvent]) -> None:
        destination.during = None
        inner.append(forwarder.run_batch("x", pks(app)))

    # While the first job sends, a duplicate of it runs: the rows are claimed.
    destination.during = duplicate_job_meanwhile
    outcome = forwarder.run_batch("x", pks(app))
    assert outcome.delivered == 20
    assert inner[0].delivered == 0 and inner[0].skipped == 20
    assert len(destination.sent) == 20


def test_retryable_errors_back_off_then_give_up(app: Flask) -> None:
    forwarder, destination = parts(app)
    store(app, [event(n) for n in range(5)])
    destination.errors = [RetryableError("HTTP 503 from receiver")] * 3
    before = utcnow()
    outcome = forwarder.run_batch("x", pks(app))
    assert (outcome.retrying, outcome.failed) == (5, 0)
    first = rows(app)
    assert {(r.state, r.attempts, r.last_error) for r in first} == {
        (PENDING, 1, "HTTP 503 from receiver")
    }
    assert all(r.claim_token is None for r in first)
    # Due again after the backoff (30 s), not before.
    assert all(r.next_attempt_at >= before + timedelta(seconds=29) for r in first)
    assert all(r.next_attempt_at <= utcnow() + timedelta(seconds=31) for r in first)
    before = utcnow()
    forwarder.run_batch("x", pks(app))
    # The row's own attempt count picks the backoff: 60 s after the second failure.
    assert all(r.next_attempt_at >= before + timedelta(seconds=59) for r in rows(app))
    last = forwarder.run_batch("x", pks(app))
    assert (last.retrying, last.failed) == (0, 5)
    assert {(r.state, r.attempts) for r in rows(app)} == {(FAILED, 3)}
    assert "gave up after 3 attempts" in rows(app)[0].last_error
    assert destination.sent == []


def test_permanent_errors_fail_at_once(app: Flask) -> None:
    forwarder, destination = parts(app)
    store(app, [event(n) for n in range(5)])
    destination.errors = [PermanentError("HTTP 400 from receiver: bad")]
    outcome = forwarder.run_batch("x", pks(app))
    assert (outcome.failed, outcome.retrying) == (5, 0)
    assert {(r.state, r.attempts, r.last_error) for r in rows(app)} == {
        (FAILED, 1, "HTTP 400 from receiver: bad")
    }


def test_partial_progress_is_kept(app: Flask) -> None:
    forwarder, destination = parts(app)
    ids = store(app, [event(n) for n in range(4)])
    destination.errors = [RetryableError("mail server hung up", delivered=ids[:2])]
    outcome = forwarder.run_batch("x", pks(app))
    assert (outcome.delivered, outcome.retrying) == (2, 2)
    assert states(app, "x") == {
        ids[0]: DELIVERED,
        ids[1]: DELIVERED,
        ids[2]: PENDING,
        ids[3]: PENDING,
    }
    again = forwarder.run_batch("x", pks(app))
    assert (again.delivered, again.skipped) == (2, 2)
    assert [e.event_id for e in destination.batches[0]] == ids[2:]


def test_a_crashing_destination_counts_as_retryable(app: Flask) -> None:
    forwarder, destination = parts(app)
    store(app, [event(n) for n in range(3)])
    destination.errors = [KeyError("bug")]
    outcome = forwarder.run_batch("x", pks(app))
    assert outcome.retrying == 3
    assert "KeyError" in (outcome.error or "")


def test_an_interrupted_job_gives_its_rows_back(app: Flask) -> None:
    forwarder, destination = parts(app)
    store(app, [event(n) for n in range(3)])
    destination.errors = [KeyboardInterrupt()]  # like RQ's job timeout: a BaseException
    with pytest.raises(KeyboardInterrupt):
        forwarder.run_batch("x", pks(app))
    assert {(r.state, r.attempts, r.claim_token) for r in rows(app)} == {(PENDING, 1, None)}
    assert forwarder.run_batch("x", pks(app)).delivered == 3


def test_an_event_deleted_meanwhile_fails_its_delivery(app: Flask) -> None:
    forwarder, destination = parts(app)
    ids = store(app, [event(n) for n in range(3)])
    with get_state(app).engine.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.event_id == ids[0]))
    outcome = forwarder.run_batch("x", pks(app))
    assert (outcome.delivered, outcome.failed) == (2, 1)
    assert destination.sent == ids[1:]


def test_outgoing_events_carry_key_and_edx_line(app: Flask) -> None:
    forwarder, destination = parts(app)
    [event_id] = store(app, [event(7, event_type="problem_check", username="ann")])
    forwarder.run_batch("x", pks(app))
    [sent] = destination.batches[0]
    assert sent.event_id == event_id
    assert sent.idempotency_key == idempotency_key("x", event_id)
    assert sent.idempotency_key != idempotency_key("y", event_id)
    assert sent.line["event_type"] == "problem_check"
    assert sent.line["username"] == "ann"
    assert sent.line["time"] == "2024-03-01T12:00:07+00:00"
    assert sent.line["context"]["course_id"] == "course-v1:Org+Num+Run"


def test_the_sweeper_takes_orphans_only(app: Flask) -> None:
    forwarder, _ = parts(app)
    store(app, [event(n) for n in range(60)])  # 50 with a job id, 10 gathering
    engine = get_state(app).engine
    handed: list[Batch] = []
    # Just stored: their job may still be on its way to the queue.
    assert forwarder.sweep(handoff=handed.extend) == 0
    found = rows(app)
    held, backing_off = found[0].id, found[1].id
    now = utcnow()
    with engine.begin() as conn:
        # stored a while ago (a sweep leaves rows due for less than a second alone)...
        conn.execute(update(D).values(next_attempt_at=now - timedelta(seconds=5)))
        # ...one row is being sent by a live job; one waits for its backoff
        conn.execute(
            update(D)
            .where(D.c.id == held)
            .values(claim_token="t", claimed_until=now + timedelta(minutes=5))
        )
        conn.execute(
            update(D)
            .where(D.c.id == backing_off)
            .values(next_attempt_at=now + timedelta(minutes=5))
        )
    # The 48 others of the job were never enqueued (its job id is unknown): orphans.
    # The 10 without a job are younger than the grace period: the producer still has them.
    assert forwarder.sweep(handoff=handed.extend) == 48
    assert [len(b.event_pks) for b in handed] == [48]
    # They now belong to the new job, which the sweeper knows nothing of either: a later
    # sweep with a live job for them would leave them alone (see the RQ tests).
    assert {r.job_id for r in rows(app) if r.id not in (held, backing_off)} >= {handed[0].job_id}
    handed.clear()
    # force: also rows in backoff and young rows (not the claimed one).
    assert forwarder.sweep(force=True, handoff=handed.extend) == 59
    # An expired claim means the job died: its row is an orphan again.
    with engine.begin() as conn:
        conn.execute(
            update(D).where(D.c.id == held).values(claimed_until=now - timedelta(seconds=1))
        )
    handed.clear()
    assert forwarder.sweep(force=True, handoff=handed.extend) == 60


def test_failed_rows_are_redriven_with_a_fresh_budget(app: Flask) -> None:
    forwarder, destination = parts(app)
    ids = store(app, [event(n) for n in range(4)])
    destination.errors = [PermanentError("HTTP 404 from receiver")]
    forwarder.run_batch("x", pks(app))
    assert set(states(app, "x").values()) == {FAILED}
    assert forwarder.redrive_failed() == 4
    assert {(r.state, r.attempts, r.job_id) for r in rows(app)} == {(PENDING, 0, None)}
    result = forwarder.forward_pending()
    assert result["delivered"] == 4
    assert destination.sent == ids


def test_unknown_destination_in_a_job_is_an_error(app: Flask) -> None:
    forwarder, _ = parts(app)
    with pytest.raises(LookupError, match="workers need the same configuration"):
        forwarder.run_batch("gone", [1, 2])


def test_delivery_error_is_exported() -> None:
    assert issubclass(RetryableError, DeliveryError)
    assert issubclass(PermanentError, DeliveryError)
