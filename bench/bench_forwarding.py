"""Forwarding to a loopback webhook with one worker, beside the same POSTs sent directly.

``BENCH_FORWARDING_EVENTS`` events (default 20,000: the corpus lines, or the built-in
ones, each stored with a new event id) are stored in a fresh database with one webhook
destination (batches of 500) while no worker runs, so their jobs wait in Redis (database
14 of the machine's Redis, a queue of its own). A receiver in its own process
(``tests/receivers.py``) checks every HMAC signature and counts idempotency keys.

- *forwarded*: one ``flask tracking worker --burst`` process drains the queue: claim,
  read and render the events, POST the signed batch, record the result. Rate = events /
  (end of the last job - start of the first one), from RQ's job times (the worker's
  start-up is not counted). Every event must arrive exactly once per round with a valid
  signature, or the bench fails. Best of 3 rounds (the same events made pending again,
  handed out by ``forward_pending()``).
- *ceiling*: the same batches, read and rendered beforehand, with the same bodies and
  signatures, POSTed one after the other from this process over one kept-alive
  connection to a fresh receiver process: the rate the receiver and the loopback allow.
  Best of 3.
- *direct*: the same POSTs built inside the timed loop (render, encode, sign) from
  events already in memory: a forwarder with no outbox and no queue. Best of 3.

One line per database: SQLite (a temporary file) and PostgreSQL (a throwaway cluster,
when the binaries are there). The target is forwarded >= 50% of the ceiling.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import ROOT, corpus_lines, note, percent, rate, tests_module

EVENTS = int(os.environ.get("BENCH_FORWARDING_EVENTS", "20000"))
BATCH = 500
ROUNDS = 3
TARGET = 50.0  # percent of the ceiling
SECRET = "bench-forwarding-secret"
REDIS_DB = 14
CONFIG_VAR = "BENCH_FORWARDING_CONFIG"


def create_app() -> Any:
    """The worker's app (``flask --app bench.bench_forwarding:create_app``)."""
    from flask import Flask

    from flask_tracking import Tracking

    config = json.loads(os.environ[CONFIG_VAR])
    app = Flask("bench_forwarding", instance_path=config.pop("INSTANCE_PATH"))
    app.config.update(SECRET_KEY="bench-secret", TRACKING_RATE_LIMIT=None, **config)
    Tracking(app)
    return app


@contextmanager
def receiver() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A webhook receiver in its own process; yields (url, process)."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "receivers.py"), "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/hook", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def stats(url: str) -> dict[str, Any]:
    host = url.removeprefix("http://").partition("/")[0]
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("GET", "/stats")
        result: dict[str, Any] = json.loads(conn.getresponse().read())
        return result
    finally:
        conn.close()


def make_events(count: int) -> list[dict[str, Any]]:
    """``count`` events parsed from the corpus lines, each with a new id."""
    from flask_tracking.logformat import parse_line

    lines, label = corpus_lines()
    note(f"forwarding: {count:,} events made from {label}")
    parsed = [json.loads(line) for line in lines]
    now = datetime.now(UTC)
    events = []
    for index in range(count):
        event = parse_line(parsed[index % len(parsed)], received_at=now)
        event["event_id"] = str(uuid.uuid4())
        events.append(event)
    return events


def measure(database_url: str, label: str, folder: Path) -> str:
    from flask import Flask
    from rq.job import Job
    from sqlalchemy import select, update

    from flask_tracking import Tracking
    from flask_tracking.extension import get_state
    from flask_tracking.forwarding import (
        DELIVERED,
        PENDING,
        OutgoingEvent,
        deliveries_table,
        get_forwarder,
    )
    from flask_tracking.forwarding.batches import idempotency_key
    from flask_tracking.forwarding.destinations import SIGNATURE_HEADER, WebhookDestination, sign
    from flask_tracking.forwarding.jobs import RqDispatcher
    from flask_tracking.logformat import render_line
    from flask_tracking.models import events_table, metadata

    services = tests_module("services")
    base = services.redis_url()
    redis_url = base.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    queue = f"bench-forwarding-{uuid.uuid4().hex[:8]}"
    events = make_events(EVENTS)
    with receiver() as (url, _proc):
        config = {
            "INSTANCE_PATH": str(folder / "instance"),
            "TRACKING_DATABASE_URL": database_url,
            "TRACKING_REDIS_URL": redis_url,
            "TRACKING_FORWARD_QUEUE": queue,
            "TRACKING_DESTINATIONS": {
                "hook": {
                    "kind": "webhook",
                    "options": {"url": url, "secret": SECRET, "timeout": 10},
                    "batch_size": BATCH,
                }
            },
        }
        app = Flask("bench_forwarding", instance_path=config["INSTANCE_PATH"])
        app.config.update(SECRET_KEY="bench-secret", TRACKING_RATE_LIMIT=None)
        app.config.update({k: v for k, v in config.items() if k != "INSTANCE_PATH"})
        Tracking(app)
        state = get_state(app)
        forwarder = get_forwarder(app)
        try:
            metadata.create_all(state.engine)
            note(f"forwarding {label}: storing {EVENTS:,} events (their jobs wait in Redis)")
            for start in range(0, EVENTS, BATCH):
                state.tracker.record(events[start : start + BATCH], processed=True)
            forwarder.flush()
            env = dict(os.environ, **{CONFIG_VAR: json.dumps(config)})
            dispatcher = forwarder.dispatcher
            assert isinstance(dispatcher, RqDispatcher)
            forwarded_s = float("inf")
            for round_ in range(ROUNDS):
                if round_:  # the same events again: pending, in new jobs
                    with state.engine.begin() as conn:
                        conn.execute(
                            update(deliveries_table).values(
                                state=PENDING, attempts=0, job_id=None, delivered_at=None
                            )
                        )
                    forwarder.forward_pending()
                with state.engine.connect() as conn:
                    job_ids = list(
                        conn.execute(select(deliveries_table.c.job_id).distinct()).scalars()
                    )
                note(f"forwarding {label}: {len(job_ids)} jobs queued; running one worker")
                worker = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "flask",
                        "--app",
                        "bench.bench_forwarding:create_app",
                        "tracking",
                        "worker",
                        "--burst",
                        "--quiet",
                    ],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if worker.returncode != 0:
                    raise RuntimeError(f"the worker failed:\n{worker.stderr[-3000:]}")
                jobs = [j for j in Job.fetch_many(job_ids, connection=dispatcher.redis) if j]
                if len(jobs) != len(job_ids) or any(
                    j.started_at is None or j.ended_at is None for j in jobs
                ):
                    raise RuntimeError("some jobs did not run")
                first = min(j.started_at for j in jobs if j.started_at)
                last = max(j.ended_at for j in jobs if j.ended_at)
                forwarded_s = min(forwarded_s, (last - first).total_seconds())
                got = stats(url)
                with state.engine.connect() as conn:
                    states = list(conn.execute(select(deliveries_table.c.state)).scalars())
                if (
                    got["unique"] != EVENTS
                    or got["received"] != EVENTS * (round_ + 1)
                    or got["bad_signatures"]
                    or states != [DELIVERED] * EVENTS
                ):
                    raise RuntimeError(f"not every event arrived exactly once: {got}")

            # The same batches, rendered and signed beforehand.
            with state.engine.connect() as conn:
                rows = conn.execute(select(events_table).order_by(events_table.c.id)).all()
            destination = WebhookDestination("hook", {"url": url, "secret": SECRET})
            batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]

            def build(batch: Sequence[Any]) -> tuple[bytes, dict[str, str]]:
                outgoing = [
                    OutgoingEvent(
                        r.event_id, idempotency_key("hook", r.event_id), render_line(r._mapping)
                    )
                    for r in batch
                ]
                body = destination.body(outgoing)
                return body, {
                    "Content-Type": "application/json",
                    "X-Tracking-Destination": "hook",
                    SIGNATURE_HEADER: sign(SECRET.encode(), body),
                }

            prebuilt = [build(batch) for batch in batches]
            # This process holds every event several times over: keep the garbage
            # collector from walking all that in the timed loops (a worker is lean).
            gc.collect()
            gc.freeze()
            ceiling_s = min(_post_all(lambda: iter(prebuilt)) for _ in range(ROUNDS))
            direct_s = min(_post_all(lambda: (build(b) for b in batches)) for _ in range(ROUNDS))
        finally:
            gc.unfreeze()
            forwarder.close()
            state.engine.dispose()
            tests_module("redis_keys").clean_redis(redis_url, queue)
    forwarded = EVENTS / forwarded_s
    ceiling = EVENTS / ceiling_s
    return (
        f"forwarding {label}: {rate(EVENTS, forwarded_s)} events/s forwarded by 1 worker"
        f" ({len(batches)} signed batches of {BATCH} to a loopback webhook)"
        f" vs the same POSTs sent directly {rate(EVENTS, ceiling_s)} events/s"
        f" = {percent(forwarded, ceiling)} (target >= {TARGET:g}%);"
        f" built and sent directly (no outbox, no queue) {rate(EVENTS, direct_s)} events/s"
        f" = {percent(forwarded, EVENTS / direct_s)}"
    )


def _post_all(requests: Any) -> float:
    """POST every (body, headers) to a fresh receiver over one connection; seconds."""
    with receiver() as (url, _proc):
        host, _, path = url.removeprefix("http://").partition("/")
        conn = http.client.HTTPConnection(host, timeout=30)
        try:
            started = time.perf_counter()
            for body, headers in requests():
                conn.request("POST", "/" + path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"the receiver answered {response.status}")
            seconds = time.perf_counter() - started
        finally:
            conn.close()
        got = stats(url)
        if got["unique"] != EVENTS or got["bad_signatures"]:
            raise RuntimeError(f"direct POSTs: {got}")
        return seconds


def run() -> list[str]:
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-forwarding-") as tmp:
        folder = Path(tmp)
        out.append(measure(f"sqlite:///{folder / 'tracking.db'}", "sqlite", folder))
        services = tests_module("services")
        try:
            cluster = services.start_throwaway_postgres()
        except services.ServiceUnavailable as exc:
            note(f"forwarding: no PostgreSQL cluster ({exc}); SQLite only")
            return out
        try:
            out.append(measure(cluster.url, "postgresql", folder))
        finally:
            cluster.close()
    return out


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
