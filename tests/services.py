"""Find -- or start -- the PostgreSQL and Redis servers the tests talk to.

``postgres_url()`` and ``redis_url()`` return, in order of preference:

1. the URL in an environment variable (``TRACKING_TEST_POSTGRES_URL``;
   ``TRACKING_TEST_REDIS_URL`` or ``REDIS_URL``), used as given;
2. the machine's running service (PostgreSQL at 127.0.0.1:5432, database ``test``,
   user ``postgres`` or the current user, trust auth; Redis at 127.0.0.1:6379);
3. a throwaway server started from the installed binaries on a free port
   (``initdb`` + ``pg_ctl``; ``redis-server``), stopped and deleted at interpreter exit.

The result is cached per process: every call returns the same URL. When nothing works,
``ServiceUnavailable`` is raised, naming what was tried. Fixtures should go through
``get_or_skip(postgres_url)``: it skips the test, or fails it under ``CI=true``.

``start_redis_server()`` always starts a fresh private ``redis-server`` that a test
may stop and start again (same port) to simulate an outage;
``start_throwaway_postgres()`` a cluster of the test's own that it may ``freeze()``
(SIGSTOP of every server process) and ``thaw()``.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "PostgresCluster",
    "RedisProcess",
    "ServiceUnavailable",
    "free_port",
    "get_or_skip",
    "postgres_url",
    "redis_url",
    "start_redis_server",
    "start_throwaway_postgres",
]

HOST = "127.0.0.1"
# Where the machine's own services are looked for (module attributes so that a test can
# point them at a dead port to exercise the fallback).
SERVICE_POSTGRES_PORT = 5432
SERVICE_POSTGRES_DB = "test"
SERVICE_REDIS_PORT = 6379

START_TIMEOUT = 30.0  # seconds to wait for a throwaway server to accept connections


class ServiceUnavailable(RuntimeError):
    """Neither the configured/running service nor a throwaway server could be used."""


# --- helpers ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def gunicorn_command(
    app: str, port: int, *, workers: int, threads: int, preload: bool = False
) -> list[str]:
    """The command line of a real gunicorn serving ``app`` ("module:factory()") on
    ``port``: gthread workers, warnings only, a 5 s graceful timeout."""
    return [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
        "--bind", f"{HOST}:{port}", "--log-level", "warning",
        "--graceful-timeout", "5",
        *(["--preload"] if preload else []),
        app,
    ]  # fmt: skip


def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _redis_ping(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when a Redis server at host:port answers PING (raw RESP, no client needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"+PONG")
    except OSError:
        return False


def _wait_until(check: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> bool:
    """Poll ``check`` until it is true, ``alive`` turns false, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if check():
            return True
        if not alive():
            return check()
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    return check()


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return "(no log)"


_lock = threading.RLock()
_cache: dict[str, str | ServiceUnavailable] = {}
# Throwaway servers started on behalf of postgres_url()/redis_url() (closed at exit).
_started: list[PostgresCluster | RedisProcess] = []


def _cached(key: str, make: Callable[[], str]) -> str:
    """Compute ``make()`` once per process; a failure is cached too (fail fast after)."""
    with _lock:
        if key not in _cache:
            try:
                _cache[key] = make()
            except ServiceUnavailable as exc:
                _cache[key] = exc
        value = _cache[key]
    if isinstance(value, ServiceUnavailable):
        raise ServiceUnavailable(str(value))
    return value


# --- Redis ------------------------------------------------------------------------------


def _find_redis_server() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        for candidate in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
            if os.access(candidate, os.X_OK):
                return candidate
        raise ServiceUnavailable(
            "redis-server is not installed (run `bash scripts/setup.sh` or "
            "`apt-get install redis-server`)"
        )
    return exe


class RedisProcess:
    """A private ``redis-server`` on 127.0.0.1 that keeps nothing on disk.

    ``stop()`` kills it (clients then get connection errors), ``start()`` brings it back
    on the same port, ``close()`` stops it for good and removes its directory.
    Usable as a context manager.
    """

    def __init__(self, port: int | None = None) -> None:
        self.executable = _find_redis_server()
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.dir = tempfile.mkdtemp(prefix="flask-tracking-redis-")
        self.logfile = os.path.join(self.dir, "redis.log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisProcess:
        """Start the server (again) on ``self.port`` and wait until it answers PING."""
        if self._closed:
            raise RuntimeError("RedisProcess is closed")
        if self.running:
            return self
        # A port picked by free_port() may be taken before redis binds it: pick another.
        for attempt in range(3):
            try:
                self._spawn()
                return self
            except ServiceUnavailable:
                if self._fixed_port or attempt == 2 or self._proc is None:
                    raise
                self.port = free_port()
        return self  # pragma: no cover

    def _spawn(self) -> None:
        cmd = [
            self.executable,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--logfile", self.logfile,
            "--daemonize", "no",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._proc = proc
        if _wait_until(lambda: _redis_ping(self.port), START_TIMEOUT, lambda: proc.poll() is None):
            return
        self._kill()
        raise ServiceUnavailable(
            f"throwaway redis-server ({self.executable}) did not answer PING on "
            f"{HOST}:{self.port} within {START_TIMEOUT:.0f}s; its log:\n{_tail(self.logfile)}"
        )

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Stop the server; the port stays reserved for ``start()``."""
        self._kill()
        # Wait until the port no longer answers, so callers see the outage at once.
        _wait_until(lambda: not _port_open(self.port), 5.0, lambda: True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        atexit.unregister(self.close)

    def __enter__(self) -> RedisProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisProcess {self.url} {state}>"


def start_redis_server(port: int | None = None) -> RedisProcess:
    """Start a fresh throwaway ``redis-server`` (on ``port`` or a free one) and return it."""
    server = RedisProcess(port)
    try:
        return server.start()
    except BaseException:
        server.close()
        raise


def redis_url(prefer_service: bool = True) -> str:
    """URL of a Redis server for the tests (see module docstring).

    ``prefer_service=False`` skips the env vars and the running service and returns a
    throwaway server's URL (cached separately).
    """
    if prefer_service:
        for var in ("TRACKING_TEST_REDIS_URL", "REDIS_URL"):
            if os.environ.get(var):
                return os.environ[var]
        return _cached("redis", _find_or_start_redis)
    return _cached("redis-throwaway", _start_shared_redis)


def _start_shared_redis() -> str:
    server = start_redis_server()
    _started.append(server)
    return server.url


def _find_or_start_redis() -> str:
    if _redis_ping(SERVICE_REDIS_PORT):
        return f"redis://{HOST}:{SERVICE_REDIS_PORT}/0"
    try:
        return _start_shared_redis()
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            f"no Redis: TRACKING_TEST_REDIS_URL/REDIS_URL unset, nothing answered PING at "
            f"{HOST}:{SERVICE_REDIS_PORT}, and a throwaway server failed: {exc}"
        ) from exc


# --- PostgreSQL -------------------------------------------------------------------------


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is in the dev extras
        raise ServiceUnavailable(
            "psycopg is not installed (pip install -e '.[dev]' or '.[postgresql]')"
        ) from exc
    return psycopg


def _sqlalchemy_url(user: str, port: int, dbname: str) -> str:
    return f"postgresql+psycopg://{user}@{HOST}:{port}/{dbname}"


def _probe_service_postgres(errors: list[str]) -> str | None:
    """URL of the running service at 127.0.0.1:5432/test, creating ``test`` if needed."""
    port, dbname = SERVICE_POSTGRES_PORT, SERVICE_POSTGRES_DB
    if not _port_open(port):
        errors.append(f"nothing listens on {HOST}:{port}")
        return None
    psycopg = _psycopg()
    users = list(dict.fromkeys(["postgres", getpass.getuser()]))
    for user in users:
        kwargs = {"host": HOST, "port": port, "user": user, "connect_timeout": 3}
        try:
            with psycopg.connect(dbname=dbname, **kwargs) as conn:
                conn.execute("SELECT 1")
            return _sqlalchemy_url(user, port, dbname)
        except psycopg.OperationalError as exc:
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            errors.append(f"{user}@{HOST}:{port}/{dbname}: {message}")
            if "does not exist" in message and "database" in message:
                with contextlib.suppress(psycopg.Error):
                    with psycopg.connect(dbname="postgres", autocommit=True, **kwargs) as conn:
                        conn.execute(f'CREATE DATABASE "{dbname}"')
                    return _sqlalchemy_url(user, port, dbname)
    return None


def _find_pg_bindir() -> str:
    """Directory holding initdb and pg_ctl: newest /usr/lib/postgresql/*/bin, else PATH."""

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin/", path)
        return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        found.append(os.path.realpath(on_path))
    for initdb in found:
        bindir = os.path.dirname(initdb)
        if os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            return bindir
    raise ServiceUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under "
        "/usr/lib/postgresql/*/bin or on PATH (run `bash scripts/setup.sh` or "
        "`apt-get install postgresql`)"
    )


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp dir, on a free port, database ``test``.

    PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
    user (``runuser -u postgres --``). ``close()`` stops it and deletes its directory;
    it is also registered with atexit.
    """

    def __init__(self) -> None:
        self.bindir = _find_pg_bindir()
        self.port = free_port()
        self._closed = False
        self._frozen: list[int] = []
        self._as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ServiceUnavailable("running as root, but runuser is missing")
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    owner = pwd.getpwnam(name)
                    break
            if owner is None:
                raise ServiceUnavailable("running as root and there is no 'postgres' user")
            self._as = [runuser, "-u", owner.pw_name, "--"]
        # As root, make the dir in /tmp: $TMPDIR may not be reachable by the postgres user.
        self.dir = tempfile.mkdtemp(prefix="flask-tracking-pg-", dir="/tmp" if owner else None)
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgres.log")
        atexit.register(self.close)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        return _sqlalchemy_url("postgres", self.port, "test")

    def _run(self, *cmd: str, what: str) -> None:
        try:
            result = subprocess.run(
                [*self._as, *cmd],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"throwaway PostgreSQL: {what} failed: {exc}") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()[-1500:]
            log = _tail(self.logfile) if os.path.exists(self.logfile) else ""
            raise ServiceUnavailable(
                f"throwaway PostgreSQL: {what} failed (exit {result.returncode}): {output}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _start(self) -> None:
        initdb = os.path.join(self.bindir, "initdb")
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        self._run(
            initdb, "-D", self.datadir, "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
            what="initdb",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses={HOST} -k {self.dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            pg_ctl, "-D", self.datadir, "-l", self.logfile, "-o", options,
            "-w", "-t", str(int(START_TIMEOUT)), "start",
            what="pg_ctl start",
        )  # fmt: skip
        psycopg = _psycopg()
        try:
            with psycopg.connect(
                host=HOST, port=self.port, user="postgres", dbname="postgres",
                autocommit=True, connect_timeout=10,
            ) as conn:  # fmt: skip
                conn.execute("CREATE DATABASE test")
        except psycopg.Error as exc:
            raise ServiceUnavailable(
                f"throwaway PostgreSQL: CREATE DATABASE failed: {exc}"
            ) from exc

    # -- faults ------------------------------------------------------------------------

    def processes(self) -> list[int]:
        """The pids of the server: the postmaster first, then its children."""
        with open(os.path.join(self.datadir, "postmaster.pid")) as fh:
            postmaster = int(fh.readline())
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.split("/")[2]))
        return [postmaster, *children]

    def freeze(self) -> None:
        """SIGSTOP every process of the server: the kernel still accepts and
        acknowledges TCP, nothing answers (a hung host, as clients see it)."""
        pids = self.processes()  # the postmaster first: it can fork no new child then
        self._frozen = pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what ``freeze`` stopped (safe to call when nothing is frozen)."""
        pids, self._frozen = self._frozen, []
        for pid in reversed(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.thaw()
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            with contextlib.suppress(ServiceUnavailable):
                self._run(
                    os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir,
                    "-m", "immediate", "-w", "stop",
                    what="pg_ctl stop",
                )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresCluster {self.url} in {self.dir}>"


def start_throwaway_postgres() -> PostgresCluster:
    """Create and start a new throwaway cluster (the caller owns it: call ``close()``)."""
    return PostgresCluster()


def postgres_url(prefer_service: bool = True) -> str:
    """SQLAlchemy URL of a PostgreSQL database for the tests (see module docstring).

    ``prefer_service=False`` skips the env var and the running service and returns a
    throwaway cluster's URL (cached separately).
    """
    if prefer_service:
        if os.environ.get("TRACKING_TEST_POSTGRES_URL"):
            return os.environ["TRACKING_TEST_POSTGRES_URL"]
        return _cached("postgres", _find_or_start_postgres)
    return _cached("postgres-throwaway", _start_shared_postgres)


def _start_shared_postgres() -> str:
    cluster = start_throwaway_postgres()
    _started.append(cluster)
    return cluster.url


def _find_or_start_postgres() -> str:
    errors: list[str] = []
    url = _probe_service_postgres(errors)
    if url:
        return url
    try:
        return _start_shared_postgres()
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            "no PostgreSQL: TRACKING_TEST_POSTGRES_URL unset; running service: "
            + "; ".join(errors)
            + f"; throwaway cluster: {exc}"
        ) from exc


# --- pytest glue ------------------------------------------------------------------------


def get_or_skip(fn: Callable[[], str]) -> str:
    """``fn()`` (e.g. ``postgres_url``), or skip the test when the service is unavailable.

    Under ``CI=true`` an unavailable service fails the test instead: CI must not go
    green by skipping everything that needs a database.
    """
    import pytest

    try:
        return fn()
    except ServiceUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"service unavailable under CI=true: {exc}", pytrace=False)
        pytest.skip(f"service unavailable: {exc}")
