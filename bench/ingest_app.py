"""The WSGI app the ingest bench runs under gunicorn: ``bench.ingest_app:create_app()``.

A course platform as small as it gets: ``Tracking`` with the default config (anonymisation
on) except ``TRACKING_RATE_LIMIT=None`` (the load comes from a few connections, not from
thousands of learners), a fixed ``SECRET_KEY``, and an identity loader that reads the
learner from the Flask session, as a real app does. Beside it:

- ``GET /login/<n>``: signs learner ``n`` in (sets the session cookie the load sends);
- ``POST /bare``: the ceiling. It reads and parses the body exactly as the real endpoint
  must (JSON, or for a form-encoded single event the query string and its ``event`` JSON
  string) and answers 204, storing nothing.

Environment:

- ``BENCH_INGEST_DATABASE_URL``: the tracking database (default: a SQLite file in the
  current directory, ``bench-ingest.db``).

To see where a worker's time goes, sample it with py-spy while the bench runs
(``pip install py-spy``; ``py-spy record --pid <worker pid>``).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, request, session

from flask_tracking import Tracking

SECRET_KEY = "bench-ingest-secret-key-not-for-production"
FORM = "application/x-www-form-urlencoded"


def create_app() -> Flask:
    app = Flask("bench_ingest")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TRACKING_DATABASE_URL=os.environ.get(
            "BENCH_INGEST_DATABASE_URL", "sqlite:///" + os.path.abspath("bench-ingest.db")
        ),
        TRACKING_RATE_LIMIT=None,
    )
    tracking = Tracking()

    @tracking.identity_loader
    def learner() -> dict[str, Any] | None:
        uid = session.get("uid")
        return {"user_id": uid, "username": f"learner{uid}"} if uid is not None else None

    tracking.init_app(app)

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

    return app
