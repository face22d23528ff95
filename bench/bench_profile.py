"""In-process cost of one ingest request: µs of CPU (and wall) per request, and where it goes.

``python -m bench profile`` builds the ingest bench's app (``bench/ingest_app.py``: the
default config, a learner signed in through the Flask session) in this process, and
calls its WSGI app directly, one request after the other, with the very requests
``bench/wrk/ingest.lua`` sends (fresh UUIDs, ``play_video`` payloads, a course page, the
learner's session cookie): batches of 20 as ``text/plain`` to ``/activity/events`` and
edX's form-encoded single event to ``/activity/event``, on SQLite (a fresh file) and
PostgreSQL (a schema of its own, ``bench_profile``, in the tests' database).

No HTTP server, no other process: a shared, loaded machine disturbs CPU time much less
than a rate, so this is the figure to iterate on (``bench ingest`` is the one to report).
The same requests go to ``/bare`` (parse only) and ``/bare-store`` (parse and one
``executemany``) in alternating rounds, so each line has its same-run baselines:

``profile batch20 sqlite: ours A µs CPU/request (wall W µs) vs bare B µs = B/A;``
``vs bare+store S µs = S/A``

Each figure is the best of ``ROUNDS`` rounds (CPU and wall separately), as ``timeit``
reports: on a shared machine the other rounds measure the neighbours too.

CPU is the process's (``time.process_time``): SQLite's work is in it, PostgreSQL's
server side is not (it shows in the wall time). After the figures, each kind of request
is run again under ``cProfile`` and the top entries by own time are printed to stderr
(``BENCH_PROFILE_TOP``; 0 for none).

Environment: ``BENCH_PROFILE_REQUESTS`` (requests per figure, 2,000),
``BENCH_PROFILE_DATABASES`` (``sqlite,postgresql``), ``BENCH_PROFILE_LOADS``
(``batch20,single``), ``BENCH_PROFILE_TOP`` (25), ``BENCH_PROFILE_PARTITION``
(``month`` or ``day``: the PostgreSQL store partitioned, ``TRACKING_PARTITION``; the
lines then say ``postgresql/month``), ``BENCH_PROFILE_FORWARD`` (``1``: forwarding on,
one webhook destination whose jobs wait in a queue of the tests' Redis; the lines then
say ``sqlite+forward``: the delivery rows and the jobs' hand-over are in the figure).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import note

REQUESTS = int(os.environ.get("BENCH_PROFILE_REQUESTS", "2000"))
DATABASES = os.environ.get("BENCH_PROFILE_DATABASES", "sqlite,postgresql").split(",")
LOADS = os.environ.get("BENCH_PROFILE_LOADS", "batch20,single").split(",")
TOP = int(os.environ.get("BENCH_PROFILE_TOP", "25"))
#: ``TRACKING_PARTITION`` of the PostgreSQL store (none: a plain table).
PARTITION = os.environ.get("BENCH_PROFILE_PARTITION") or None
#: Forwarding on (one webhook destination, jobs queued in the tests' Redis): the lines
#: then say ``sqlite+forward``.
FORWARD = bool(os.environ.get("BENCH_PROFILE_FORWARD"))
#: Each figure's requests go in this many alternating rounds (ours, bare, bare+store); the
#: figure is the best round's (the one least disturbed by the rest of the machine).
ROUNDS = 10
LEARNERS = 16
PG_SCHEMA = "bench_profile"
HOST = "127.0.0.1:8123"
PAGE = (
    "https://courses.example.org/courses/course-v1:ExampleX+Bench101+2024"
    "/courseware/week{week}/video{video}/"
)
AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36"
)
SPEEDS = ("0.75", "1.0", "1.25", "1.50")
CODES = ("html5", "dQw4w9WgXcQ", "y6kQ7Nd1L0o")
PATHS = {"batch20": "/activity/events", "single": "/activity/event"}


def _payload(rnd: random.Random, video: int) -> str:
    return (
        f'{{"id":"i4x-ExampleX-Bench101-video-v{video}","code":"{rnd.choice(CODES)}",'
        f'"currentTime":{rnd.randint(0, 1800)}.{rnd.randint(0, 999):03d},'
        f'"speed":"{rnd.choice(SPEEDS)}"}}'
    )


def body(rnd: random.Random, load: str, seq: list[int]) -> tuple[bytes, str, str]:
    """``(body, content type, page)`` of one request, as ``bench/wrk/ingest.lua`` makes it."""
    now = int(time.time() * 1000)
    week, video = rnd.randint(1, 12), rnd.randint(1, 40)
    page = PAGE.format(week=week, video=video)
    if load == "single":
        form = f"event_type=play_video&event={quote(_payload(rnd, video), safe='-_.~')}"
        form += f"&page={quote(page, safe='-_.~')}"
        return form.encode(), "application/x-www-form-urlencoded", page
    events = []
    for _ in range(20):
        seq[0] += 1
        events.append(
            f'{{"id":"{uuid.uuid4()}","event_type":"play_video","event":{_payload(rnd, video)},'
            f'"page":"{page}","time":{now - rnd.randint(0, 4000)},"seq":{seq[0]}}}'
        )
    text = f'{{"sent_at":{now},"events":[{",".join(events)}]}}'
    return text.encode(), "text/plain;charset=UTF-8", page


def environ(path: str, data: bytes, content_type: str, page: str, cookie: str) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for the bench's request."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8123",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": HOST,
        "HTTP_ORIGIN": f"http://{HOST}",
        "HTTP_USER_AGENT": AGENT,
        "HTTP_ACCEPT": "*/*",
        "HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9",
        "HTTP_REFERER": page,
        "HTTP_COOKIE": cookie,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class Client:
    """Calls a WSGI app and counts the answers that are not 200 or 204 (a 503 when a
    commit outlasted ``TRACKING_DB_TIMEOUT`` on a loaded machine; any other is an error)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.status = ""
        self.unavailable = 0

    def _start(self, status: str, headers: Any, exc_info: Any = None) -> None:
        self.status = status

    def call(self, env: dict[str, Any]) -> bytes:
        chunks = self.app(env, self._start)
        try:
            out = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if self.status[:3] == "503":
            self.unavailable += 1
        elif self.status[:3] not in ("200", "204"):
            raise RuntimeError(f"{env['PATH_INFO']} answered {self.status}: {out[:300]!r}")
        return out


def cookies(app: Any) -> list[str]:
    """Session cookies of the learners, signed in and with a tracking session id."""
    client = app.test_client()
    out = []
    for uid in range(1, LEARNERS + 1):
        client.get(f"/login/{uid}")
        rnd = random.Random(uid)
        first = json.loads(body(rnd, "batch20", [0])[0])
        first["events"] = first["events"][:1]  # the first event sets the session id
        client.post("/activity/events", data=json.dumps(first), content_type="text/plain")
        cookie = client.get_cookie("session")
        assert cookie is not None, "no session cookie"
        out.append(f"session={cookie.value}")
        client.delete_cookie("session")
    return out


@contextmanager
def database(name: str, folder: Path) -> Iterator[str]:
    """A fresh database with the tracking tables and the bare+store table."""
    from sqlalchemy import create_engine, text

    from flask_tracking.models import metadata
    from flask_tracking.partitions import create_tables

    from .bench_ingest import postgres_url
    from .ingest_app import bare_table

    if name == "sqlite":
        url = f"sqlite:///{folder / 'bench-profile.db'}"
    else:
        url = postgres_url().replace("bench_ingest", PG_SCHEMA)
    engine = create_engine(url)
    try:
        if name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        if name == "postgresql" and PARTITION:
            create_tables(engine, PARTITION)
        else:
            metadata.create_all(engine)
        bare_table(url)
        yield url
    finally:
        if name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        engine.dispose()


def measure(
    client: Client, envs: list[dict[str, Any]], profile: cProfile.Profile | None = None
) -> tuple[float, float]:
    """``(CPU s, wall s)`` of calling ``client`` with each environ."""
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    for env in envs:
        client.call(env)
    if profile is not None:
        profile.disable()
    return time.process_time() - cpu, time.perf_counter() - wall


@contextmanager
def forwarding() -> Iterator[str]:
    """With ``BENCH_PROFILE_FORWARD``: the ingest app forwards (``BENCH_INGEST_FORWARD_QUEUE``)
    into a queue of its own in the tests' Redis, whose keys are deleted afterwards. Gives
    the label's suffix (``+forward``, or ``""``)."""
    if not FORWARD:
        yield ""
        return
    from . import redis_url, tests_module

    url, queue = redis_url(), f"bench-profile-{uuid.uuid4().hex[:10]}"
    os.environ.update(BENCH_INGEST_FORWARD_QUEUE=queue, BENCH_INGEST_REDIS_URL=url)
    try:
        yield "+forward"
    finally:
        del os.environ["BENCH_INGEST_FORWARD_QUEUE"]
        tests_module("redis_keys").clean_redis(url, queue)


def run_database(name: str, folder: Path) -> list[str]:
    with database(name, folder) as url, forwarding() as suffix:
        os.environ["BENCH_INGEST_DATABASE_URL"] = url
        partitioned = name == "postgresql" and PARTITION
        os.environ["BENCH_INGEST_PARTITION"] = PARTITION if partitioned else ""
        label = (f"{name}/{PARTITION}" if partitioned else name) + suffix
        from .ingest_app import create_app

        app = create_app()
        client = Client(app.wsgi_app)
        jar = cookies(app)
        rnd = random.Random(12)
        seq = [0]
        lines = []

        def envs(path: str | None, load: str, count: int) -> list[dict[str, Any]]:
            out = []
            for i in range(count):
                data, kind, page = body(rnd, load, seq)
                out.append(environ(path or PATHS[load], data, kind, page, jar[i % len(jar)]))
            return out

        for load in LOADS:
            per_round = max(1, REQUESTS // ROUNDS)
            for target in (None, "/bare", "/bare-store"):  # warm-up: caches, prepared plans
                measure(client, envs(target, load, 50))
            best = {key: [float("inf"), float("inf")] for key in ("ours", "bare", "store")}
            for _ in range(ROUNDS):
                for key, target in (("ours", None), ("bare", "/bare"), ("store", "/bare-store")):
                    cpu, wall = measure(client, envs(target, load, per_round))
                    best[key][0] = min(best[key][0], cpu)
                    best[key][1] = min(best[key][1], wall)
            us = {k: (1e6 * v[0] / per_round, 1e6 * v[1] / per_round) for k, v in best.items()}
            ours, bare, store = us["ours"], us["bare"], us["store"]
            lines.append(
                f"profile {load} {label}: ours {ours[0]:,.0f} µs CPU/request"
                f" (wall {ours[1]:,.0f} µs) vs bare {bare[0]:,.0f} µs"
                f" = {100 * bare[0] / ours[0]:.1f}%; vs bare+store {store[0]:,.0f} µs"
                f" (wall {store[1]:,.0f} µs) = {100 * store[0] / ours[0]:.1f}%"
                f" (best of {ROUNDS} rounds of {per_round:,} requests)"
                + (f" [WARNING: {client.unavailable} answers 503]" if client.unavailable else "")
            )
            client.unavailable = 0
            if TOP:
                profile = cProfile.Profile()
                measure(client, envs(None, load, per_round), profile)
                report = io.StringIO()
                stats = pstats.Stats(profile, stream=report)
                stats.sort_stats("tottime").print_stats(TOP)
                note(f"cProfile of {per_round:,} {load} requests on {label}, by own time:")
                print(report.getvalue(), file=sys.stderr)
        if suffix:
            from flask_tracking.forwarding import get_forwarder

            get_forwarder(app).close()  # its hand-over thread, before the tables go
        state = app.extensions["tracking"]
        state.engine.dispose()
        return lines


def run() -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        for name in DATABASES:
            lines.extend(run_database(name, Path(tmp)))
    return lines
