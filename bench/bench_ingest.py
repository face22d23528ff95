"""Ingest over HTTP: events/s through the real endpoints beside a bare Flask endpoint.

The app (``bench/ingest_app.py``: ``Tracking`` with the default config, rate limit off,
a learner signed in through the Flask session) runs under gunicorn, 2 workers, in a
subprocess; the load comes from ``wrk`` (another process) with ``bench/wrk/ingest.lua``,
which makes realistic ``play_video`` events, each with a fresh random UUID (so every
event is new to the server), and sends:

- batches of 20 and of 1 as the browser Logger does: ``{"sent_at", "events": [...]}`` as
  ``text/plain`` to ``/activity/events``;
- single events as edX's ``Logger.log`` does: a form-encoded
  ``event_type=play_video&event=<JSON string>&page=<url>`` to ``/activity/event``.

Baseline, in the same run and the same server: ``POST /bare`` receiving the very same
requests (headers, session cookie, bodies), parsing the JSON and answering 204: the
ceiling of a Flask app on this machine. And the cost of storing, in the same rounds:
``POST /bare-store``, the same parsing plus one ``executemany`` of the parsed events into
a copy of the events table (no validation, no identity): each line says how far we are
from it too. The machine is shared, so ours and bare
alternate in short runs (``ROUND_SECONDS``) until each had ``BENCH_INGEST_SECONDS``,
after a warm-up of each; events/s is over all runs, p99 over all their requests (wrk's
``--latency`` histogram tail, pooled).

Batches of 20 are then sent again paced at the target, 20% of the bare endpoint's
events/s (``bench/wrk/paced.lua``), for the p99 "at that load"; at full load p99 only
says how long the queue of ``CONNECTIONS`` requests is.

SQLite: a fresh file. PostgreSQL: fresh tables in a schema of their own
(``bench_ingest``, dropped at the end) in the database the tests use (see
``tests/services.py``: ``TRACKING_TEST_POSTGRES_URL``, the service at
127.0.0.1:5432/test, or a throwaway cluster).

Rows are counted around each figure: they must be the requests answered 200 times the
events per request, plus those of requests in flight when wrk stopped that the server
still finished, and every answer must say all accepted, no duplicate, none failed:
nothing lost, nothing stored twice.

Environment: ``BENCH_INGEST_SECONDS`` (10), ``BENCH_INGEST_WARMUP`` (1),
``BENCH_INGEST_CONNECTIONS`` (4: one per server thread), ``BENCH_INGEST_WORKERS`` (2),
``BENCH_INGEST_WORKER_CLASS`` (``gthread``; or ``sync``), ``BENCH_INGEST_THREADS`` (2),
``BENCH_INGEST_DATABASES`` (``sqlite,postgresql``), ``BENCH_INGEST_LOADS``
(``batch20,batch1,single-event``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ROOT, note
from . import postgres_url as shared_postgres_url

SECONDS = float(os.environ.get("BENCH_INGEST_SECONDS", "10"))
WARMUP = float(os.environ.get("BENCH_INGEST_WARMUP", "1"))
#: Each figure's SECONDS (ours, and as much for bare) go in runs of this length.
ROUND_SECONDS = 2.0
CONNECTIONS = int(os.environ.get("BENCH_INGEST_CONNECTIONS", "4"))
WORKERS = int(os.environ.get("BENCH_INGEST_WORKERS", "2"))
#: gthread: a worker waiting on the database (SQLite's lock and file work, PostgreSQL's
#: round trips and commit) serves another request meanwhile; sync workers sit idle.
WORKER_CLASS = os.environ.get("BENCH_INGEST_WORKER_CLASS", "gthread")
#: Two threads per worker on two cores: four threads only queued more requests behind the
#: GIL (same throughput, p99 74 ms instead of 21 ms at 20% of the bare rate, 2026-11-22).
THREADS = int(os.environ.get("BENCH_INGEST_THREADS", "2"))
#: One wrk thread drives the few connections easily and leaves the cores to the server.
WRK_THREADS = 1
DATABASES = os.environ.get("BENCH_INGEST_DATABASES", "sqlite,postgresql").split(",")
LEARNERS = 16
PG_SCHEMA = "bench_ingest"
LUA = ROOT / "bench" / "wrk" / "ingest.lua"
PACED_LUA = ROOT / "bench" / "wrk" / "paced.lua"
#: Seconds of the paced batch-of-20 run.
PACED_SECONDS = 6.0
#: What gunicorn serves.
APP = "bench.ingest_app:create_app()"
READY_TIMEOUT = 30.0
#: The row counts are settled when they did not change for this long (a commit took up
#: to 250 ms on a loaded machine: 0.3 s once counted a late warm-up request).
SETTLE_SECONDS = 1.0

#: Targets of issue 12 (percent of the bare endpoint; p99 in ms at PACED_SHARE of it).
BATCH20_TARGET = 35.0
BATCH20_P99_MS = 50.0
SINGLE_TARGET = 45.0
#: The paced run's load, percent of the bare endpoint's events/s.
PACED_SHARE = 20.0


@dataclass(frozen=True, slots=True)
class Load:
    """One kind of request: a label, the wrk script's mode and events per request."""

    label: str
    mode: str  # "batch" or "single"
    events: int
    path: str


BATCH20 = Load("batch20", "batch", 20, "/activity/events")
BATCH1 = Load("batch1", "batch", 1, "/activity/events")
SINGLE = Load("single-event", "single", 1, "/activity/event")
_ALL_LOADS = {load.label: load for load in (BATCH20, BATCH1, SINGLE)}
LOADS = tuple(
    _ALL_LOADS[name]
    for name in os.environ.get("BENCH_INGEST_LOADS", "batch20,batch1,single-event").split(",")
)


@dataclass(slots=True)
class Measure:
    """What wrk saw in one or more measured runs (added up)."""

    seconds: float = 0.0
    answered: int = 0  # 200 (ours) or 204 (bare) answers
    written: int = 0  # requests wrk wrote (some still in flight at each stop)
    other: int = 0  # answers with another status
    not_all_accepted: int = 0  # 200 answers not saying "all accepted, no duplicate"
    errors: int = 0  # socket errors and timeouts
    server_cpu: float = 0.0  # CPU seconds the gunicorn workers used meanwhile
    #: (requests, latencies in µs at p95.0, p95.1, ... p99.9 and the max) of each run.
    tails: list[tuple[int, list[int]]] = field(default_factory=list)

    def per_second(self, events: int = 1) -> float:
        return self.answered * events / self.seconds if self.seconds > 0 else 0.0

    def cpu_ms(self) -> float:
        """Server CPU per answered request, in ms: what a shared machine disturbs least."""
        return 1000 * self.server_cpu / self.answered if self.answered else 0.0

    def add(self, other: Measure) -> None:
        self.seconds += other.seconds
        self.answered += other.answered
        self.written += other.written
        self.other += other.other
        self.not_all_accepted += other.not_all_accepted
        self.errors += other.errors
        self.server_cpu += other.server_cpu
        self.tails += other.tails

    @property
    def p99_ms(self) -> float:
        """p99 of all the runs pooled: the lowest latency that at most 1% exceed."""
        total = sum(n for n, _ in self.tails)
        if not total:
            return 0.0
        for limit in sorted({v for _, tail in self.tails for v in tail}):
            above = 0.0
            for n, tail in self.tails:
                under = [k for k, v in enumerate(tail) if v <= limit]
                # Share above `limit`: 5% - k/1000 at p95+k/10 (at least 5% below p95).
                above += n * (0.05 - under[-1] / 1000 if under else 0.05)
            if above <= 0.01 * total + 1e-9:
                return limit / 1000
        return max(v for _, tail in self.tails for v in tail) / 1000


# -- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving ``bench.ingest_app:create_app()`` on a free port."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--worker-class",
            WORKER_CLASS,
            *(["--threads", str(THREADS)] if WORKER_CLASS == "gthread" else []),
            "--bind",
            self.host,
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
            APP,
        ]
        env = {**os.environ, "BENCH_INGEST_DATABASE_URL": self.database_url}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with status {self.process.returncode}; log:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            try:
                with urllib.request.urlopen(self.url("/activity/health"), timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {READY_TIMEOUT:g}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by the workers (the children of gunicorn's master)."""
        assert self.process is not None
        master, total = str(self.process.pid), 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == master:  # ppid; then utime and stime at fields 11 and 12
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def session_cookies(self, count: int) -> list[str]:
        """Session cookies (``session=...``) of ``count`` learners, as their browsers hold
        them: signed in, and with the tracking session id the first event gave them."""
        cookies = []
        for uid in range(1, count + 1):
            with urllib.request.urlopen(self.url(f"/login/{uid}"), timeout=5) as answer:
                cookie = answer.headers.get("Set-Cookie", "").split(";", 1)[0]
            first = {
                "sent_at": int(time.time() * 1000),
                "events": [
                    {
                        "id": str(uuid.uuid4()),
                        "event_type": "load_video",
                        "event": {"id": "i4x-ExampleX-Bench101-video-v1", "code": "html5"},
                        "page": "https://courses.example.org/courses/course-v1:ExampleX+"
                        "Bench101+2024/courseware/week1/video1/",
                    }
                ],
            }
            request = urllib.request.Request(
                self.url("/activity/events"),
                data=json.dumps(first).encode(),
                headers={"Content-Type": "text/plain;charset=UTF-8", "Cookie": cookie},
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                cookie = answer.headers.get("Set-Cookie", "").split(";", 1)[0] or cookie
            cookies.append(cookie)
        if not all(c.startswith("session=") for c in cookies):
            raise RuntimeError(f"/login gave no session cookie: {cookies[:1]}")
        return cookies


@contextmanager
def serving(database_url: str, log: Path) -> Iterator[Server]:
    server = Server(database_url, log)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- the load -------------------------------------------------------------------------


def wrk(
    server: Server,
    load: Load,
    path: str,
    seconds: float,
    cookies: list[str],
    rate: float | None = None,
) -> Measure:
    """Run wrk against ``path`` for ``seconds`` with ``load``'s requests.

    ``rate``: requests/s on a fixed schedule instead of as fast as the server answers.
    """
    command = [
        "wrk",
        "--threads",
        str(WRK_THREADS),
        "--connections",
        str(CONNECTIONS),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "--script",
        str(PACED_LUA if rate else LUA),
        server.url(path),
        "--",
        load.mode,
        str(load.events),
        server.host,
        " ".join(cookies),
        *([f"{rate / WRK_THREADS:.3f}"] if rate else []),
    ]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    cpu = server.cpu_seconds() - cpu_before
    marker = "BENCH_RESULT "
    found = [line for line in done.stdout.splitlines() if line.startswith(marker)]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data: dict[str, Any] = json.loads(found[-1][len(marker) :])
    errors = data["errors"]
    return Measure(
        seconds=data["duration_us"] / 1e6,
        answered=data["ok"],
        written=data["written"],
        other=data["other"],
        not_all_accepted=data["not_all_accepted"],
        errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        tails=[(data["requests"], data["tail_us"])],
        server_cpu=cpu,
    )


# -- the databases --------------------------------------------------------------------


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'bench-ingest.db'}"


def postgres_url() -> str:
    """The tests' PostgreSQL (``tests/services.py``), in the schema ``bench_ingest``."""
    return shared_postgres_url(PG_SCHEMA)


def fresh_tables(url: str) -> None:
    """Empty tracking tables (PostgreSQL: in a new schema of their own)."""
    from sqlalchemy import create_engine, text

    from flask_tracking.models import metadata

    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        metadata.drop_all(engine)
        metadata.create_all(engine)
    finally:
        engine.dispose()


def drop_schema(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    finally:
        engine.dispose()


class Counter:
    """Counts stored and failed events (a connection of its own, opened per count)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url)

    def counts(self) -> tuple[int, int]:
        from sqlalchemy import func, select

        from flask_tracking.models import events_table, failed_table

        with self.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
            failed = conn.execute(select(func.count()).select_from(failed_table)).scalar_one()
        return int(stored), int(failed)

    def settled(self) -> tuple[int, int]:
        """The counts once the server has finished what was in flight."""
        last = self.counts()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(SETTLE_SECONDS)
            now = self.counts()
            if now == last:
                return now
            last = now
        return last

    def close(self) -> None:
        self.engine.dispose()


# -- one database ---------------------------------------------------------------------


@dataclass(slots=True)
class Figure:
    load: Load
    database: str
    ours: Measure
    bare: Measure
    #: The bare endpoint that also stores (``/bare-store``).
    storing: Measure = field(default_factory=Measure)
    paced: Measure | None = None  # batch20 only: ours paced at the target
    paced_rate: float = 0.0  # requests/s asked of the paced run
    stored: int = 0  # rows stored during the measured runs
    failed: int = 0  # failed-events rows written during the measured runs


def measure_database(name: str, url: str, folder: Path) -> list[Figure]:
    """The figures of one database, each against the bare endpoint in the same server."""
    from .ingest_app import bare_table  # the project's imports: only when it runs

    fresh_tables(url)
    bare_table(url)
    counter = Counter(url)
    figures = []
    rounds = max(1, round(SECONDS / ROUND_SECONDS))
    try:
        with serving(url, folder / f"gunicorn-{name}.log") as server:
            cookies = server.session_cookies(LEARNERS)
            for load in LOADS:
                note(
                    f"ingest: {load.label} {name} vs bare: {WARMUP:g}s warm-up each, then"
                    f" {rounds} x {ROUND_SECONDS:g}s each, alternating"
                )
                wrk(server, load, "/bare", WARMUP, cookies)
                wrk(server, load, "/bare-store", WARMUP, cookies)
                wrk(server, load, load.path, WARMUP, cookies)
                figure = Figure(load, name, Measure(), Measure())
                before, failed_before = counter.settled()
                for _ in range(rounds):
                    figure.bare.add(wrk(server, load, "/bare", ROUND_SECONDS, cookies))
                    figure.storing.add(wrk(server, load, "/bare-store", ROUND_SECONDS, cookies))
                    figure.ours.add(wrk(server, load, load.path, ROUND_SECONDS, cookies))
                if load is BATCH20:
                    figure.paced_rate = figure.bare.per_second() * PACED_SHARE / 100
                    note(
                        f"ingest: {load.label} {name} paced at"
                        f" {figure.paced_rate * load.events:,.0f} events/s, {PACED_SECONDS:g}s"
                    )
                    figure.paced = wrk(
                        server, load, load.path, PACED_SECONDS, cookies, figure.paced_rate
                    )
                after, failed_after = counter.settled()
                figure.stored, figure.failed = after - before, failed_after - failed_before
                figures.append(figure)
                note(
                    f"ingest: {load.label} {name}: gunicorn workers' CPU per request: ours"
                    f" {figure.ours.cpu_ms():.2f} ms, bare {figure.bare.cpu_ms():.2f} ms"
                    f" (bare/ours {_pct(figure.bare.cpu_ms(), figure.ours.cpu_ms()):.1f}%)"
                )
    finally:
        counter.close()
    return figures


# -- the lines ------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _pct(ours: float, base: float) -> float:
    return 100 * ours / base if base > 0 else 0.0


def _storing(fig: Figure, events: int, unit: str) -> str:
    """How ours compares with the bare endpoint that also stores."""
    storing = fig.storing.per_second(events)
    return (
        f"; vs bare+store {_n(storing)} {unit} (p99 {fig.storing.p99_ms:.1f} ms)"
        f" = {_pct(fig.ours.per_second(events), storing):.1f}%"
    )


def figure_line(fig: Figure) -> str:
    ours, bare, load = fig.ours, fig.bare, fig.load
    head = f"ingest {load.label} {fig.database}: "
    if load is SINGLE:
        share = _pct(ours.per_second(), bare.per_second())
        met = share >= SINGLE_TARGET
        return (
            f"{head}{_n(ours.per_second())} req/s (p99 {ours.p99_ms:.1f} ms)"
            f" vs bare {_n(bare.per_second())} req/s (p99 {bare.p99_ms:.1f} ms)"
            f" = {share:.1f}% (target >= {SINGLE_TARGET:g}%: {'met' if met else 'MISSED'})"
            + _storing(fig, 1, "req/s")
        )
    share = _pct(ours.per_second(load.events), bare.per_second(load.events))
    line = (
        f"{head}{_n(ours.per_second(load.events))} events/s (p99 {ours.p99_ms:.1f} ms)"
        f" vs bare {_n(bare.per_second(load.events))} events/s"
        f" (p99 {bare.p99_ms:.1f} ms) = {share:.1f}%"
    )
    if fig.paced is None:
        return line + " (no target)" + _storing(fig, load.events, "events/s")
    asked = fig.paced_rate * load.events
    served = fig.paced.per_second(load.events)
    met = share >= BATCH20_TARGET and fig.paced.p99_ms < BATCH20_P99_MS
    return (
        f"{line}; paced at {PACED_SHARE:g}% of bare ({_n(asked)} events/s asked,"
        f" {_n(served)} served): p99 {fig.paced.p99_ms:.1f} ms"
        f" (target >= {BATCH20_TARGET:g}%, p99 < {BATCH20_P99_MS:g} ms:"
        f" {'met' if met else 'MISSED'})" + _storing(fig, load.events, "events/s")
    )


def sanity_line(database: str, figures: list[Figure]) -> str:
    """Rows stored vs answers: nothing lost, nothing twice, nothing refused."""
    parts = []
    problems = []
    for fig in figures:
        ours, n = Measure(), fig.load.events
        for measure in (fig.ours, fig.paced):
            if measure is not None:
                ours.add(measure)
        expected = ours.answered * n
        extra, leftover = divmod(fig.stored - expected, n)
        in_flight = ours.written - ours.answered
        parts.append(f"{fig.load.label} {_n(fig.stored)} = {_n(ours.answered)} x {n}")
        if extra:
            parts[-1] += f" + {extra} x {n} in flight at a stop"
        if leftover or extra < 0 or extra > in_flight:
            problems.append(
                f"{fig.load.label}: {_n(fig.stored)} rows for {_n(ours.answered)} answers"
                f" x {n} ({in_flight} requests in flight)"
            )
        if ours.not_all_accepted or ours.other or ours.errors or fig.failed:
            problems.append(
                f"{fig.load.label}: {ours.not_all_accepted} answers not all-accepted,"
                f" {ours.other} other statuses, {ours.errors} socket errors,"
                f" {fig.failed} failed-event rows"
            )
    verdict = "nothing lost, nothing twice" if not problems else "MISMATCH: " + "; ".join(problems)
    return (
        f"ingest sanity {database}: rows stored = answered requests x events"
        f" ({'; '.join(parts)}): {verdict}"
    )


def run() -> list[str]:
    if shutil.which("wrk") is None:
        return ["ingest: skipped (wrk is not installed: apt-get install wrk, or make setup)"]
    if importlib.util.find_spec("gunicorn") is None:
        return ["ingest: skipped (gunicorn is not installed: pip install -e '.[dev]')"]
    note(
        f"ingest: gunicorn {WORKERS} {WORKER_CLASS} workers"
        + (f" x {THREADS} threads" if WORKER_CLASS == "gthread" else "")
        + f", wrk {WRK_THREADS} thread, {CONNECTIONS} connections;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        for name in DATABASES:
            if name == "sqlite":
                url = sqlite_url(folder)
            elif name == "postgresql":
                try:
                    url = postgres_url()
                except Exception as exc:  # ServiceUnavailable, psycopg missing
                    lines.append(f"ingest postgresql: skipped (no PostgreSQL: {exc})")
                    continue
            else:
                raise ValueError(f"BENCH_INGEST_DATABASES: unknown database {name!r}")
            try:
                figures = measure_database(name, url, folder)
            finally:
                if name == "postgresql":
                    drop_schema(url)
            lines += [figure_line(fig) for fig in figures]
            lines.append(sanity_line(name, figures))
    note(f"ingest: load average {os.getloadavg()[0]:.1f} at the end")
    return lines


if __name__ == "__main__":
    for printed in run():
        print(printed, flush=True)
