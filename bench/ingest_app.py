"""The WSGI app the ingest bench runs under gunicorn: ``bench.ingest_app:create_app()``.

A course platform as small as it gets: ``Tracking`` with the default config (anonymisation
on) except ``TRACKING_RATE_LIMIT=None`` (the load comes from a few connections, not from
thousands of learners), a fixed ``SECRET_KEY``, and an identity loader that reads the
learner from the Flask session, as a real app does. Beside it:

- ``GET /login/<n>``: signs learner ``n`` in (sets the session cookie the load sends);
- ``POST /bare``: the ceiling. It reads and parses the body exactly as the real endpoint
  must (JSON, or for a form-encoded single event the query string and its ``event`` JSON
  string) and answers 204, storing nothing;
- ``POST /bare-store``: the cost of storing. As ``/bare``, then inserts the parsed events
  (id, type, source, times, page, payload and context as JSON) with one ``executemany``
  into ``bench_bare_events``, a copy of ``tracking_events`` with the same indexes, in one
  transaction: no validation, no identity, no duplicate check.

Environment:

- ``BENCH_INGEST_DATABASE_URL``: the tracking database (default: a SQLite file in the
  current directory, ``bench-ingest.db``).
- ``BENCH_INGEST_PARTITION``: ``TRACKING_PARTITION`` (``month`` or ``day``; PostgreSQL).
- ``BENCH_INGEST_FORWARD_QUEUE`` (and ``BENCH_INGEST_REDIS_URL``): forwarding on, as a
  platform that forwards runs it: one webhook destination, its RQ jobs put in this queue
  of that Redis (no worker takes them: the bench measures the ingest side, the delivery
  rows and the hand-over of their jobs).

To see where a worker's time goes, sample it with py-spy while the bench runs
(``pip install py-spy``; ``py-spy record --pid <worker pid>``).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, request, session
from sqlalchemy import MetaData, create_engine

from flask_tracking import Tracking
from flask_tracking.models import events_table, metadata

SECRET_KEY = "bench-ingest-secret-key-not-for-production"
#: The destination of ``BENCH_INGEST_FORWARD_QUEUE``: nothing listens there, and nothing
#: is sent (no worker takes the jobs); ingest only writes the delivery rows and jobs.
DEAD_WEBHOOK = {"url": "http://127.0.0.1:9/bench", "secret": "bench-ingest-webhook-secret"}
FORM = "application/x-www-form-urlencoded"
#: The table ``/bare-store`` writes to, and the columns it fills.
BARE_TABLE = "bench_bare_events"
BARE_COLUMNS = (
    "event_id",
    "event_type",
    "event_source",
    "time",
    "event_format",
    "schema_status",
    "received_at",
    "page",
    "event",
    "context",
)


def bare_table(url: str) -> None:
    """Create ``bench_bare_events`` (dropped first), like ``tracking_events``."""
    copy = events_table.to_metadata(
        MetaData(naming_convention=metadata.naming_convention), name=BARE_TABLE
    )
    for named in (*copy.indexes, *copy.constraints):
        if isinstance(named.name, str):  # index names are global on both databases
            named.name = named.name.replace(events_table.name, BARE_TABLE)
    engine = create_engine(url)
    try:
        copy.drop(engine, checkfirst=True)
        copy.create(engine)
    finally:
        engine.dispose()


def create_app() -> Flask:
    app = Flask("bench_ingest")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TRACKING_DATABASE_URL=os.environ.get(
            "BENCH_INGEST_DATABASE_URL", "sqlite:///" + os.path.abspath("bench-ingest.db")
        ),
        TRACKING_RATE_LIMIT=None,
        TRACKING_PARTITION=os.environ.get("BENCH_INGEST_PARTITION") or None,
    )
    forward_queue = os.environ.get("BENCH_INGEST_FORWARD_QUEUE")
    if forward_queue:  # one webhook destination, jobs queued in Redis (no worker runs)
        app.config.update(
            TRACKING_DESTINATIONS={"hook": {"kind": "webhook", "options": DEAD_WEBHOOK}},
            TRACKING_REDIS_URL=os.environ["BENCH_INGEST_REDIS_URL"],
            TRACKING_FORWARD_QUEUE=forward_queue,
        )
    store_engine = create_engine(app.config["TRACKING_DATABASE_URL"])
    sqlite = store_engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    insert = (
        f"INSERT INTO {BARE_TABLE} ({', '.join(BARE_COLUMNS)})"
        f" VALUES ({', '.join(mark for _ in BARE_COLUMNS)})"
    )
    tracking = Tracking()

    @tracking.identity_loader
    def learner() -> dict[str, Any] | None:
        uid = session.get("uid")
        return {"user_id": uid, "username": f"learner{uid}"} if uid is not None else None

    tracking.init_app(app)
    if forward_queue:
        app.extensions["tracking"].store.create_all()  # tracking_deliveries too

    @app.get("/login/<int:uid>")
    def login(uid: int) -> Response:
        session["uid"] = uid
        return Response(status=204)

    @app.post("/bare")
    def bare() -> Response:
        raw = request.get_data()
        if request.mimetype == FORM:
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            json.loads(fields["event"])
        else:
            json.loads(raw)
        return Response(status=204)

    @app.post("/bare-store")
    def bare_store() -> Response:
        raw = request.get_data()
        now = datetime.now(UTC).replace(tzinfo=None)
        when: Any = now.isoformat(" ") if sqlite else now
        if request.mimetype == FORM:
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            events = [{**fields, "event": json.loads(fields["event"])}]
        else:
            events = json.loads(raw)["events"]
        rows = [
            (
                str(e.get("id") or uuid.uuid4()),
                e["event_type"],
                "browser",
                when,
                "object",
                "unvalidated",
                when,
                e.get("page"),
                json.dumps(e.get("event")),
                "{}",
            )
            for e in events
        ]
        with store_engine.begin() as conn:
            conn.exec_driver_sql(insert, rows)
        return Response(status=204)

    return app
