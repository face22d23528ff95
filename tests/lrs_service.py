"""ralph, a real learning record store, on loopback for the tests.

ralph (``ralph-malph[cli,lrs]`` 5.1.0) lives in a virtualenv of its own,
``.venv-ralph`` at the repository root (``TRACKING_TEST_RALPH_VENV`` overrides the
place): its LRS extra pins click below 8.2.1 and exact versions of FastAPI, uvicorn and
sentry-sdk, which the project's dev environment should not inherit. The venv is made on
first use (about a minute; later runs reuse it) and re-made when :data:`RALPH_SPEC`
changes.

:class:`RalphLRS` is one server: ``ralph auth`` writes its credentials file, then
``tests/ralph_launcher.py`` runs ralph's API (``ralph.api:app``, what ``ralph runserver``
runs) with the filesystem backend on a free port of 127.0.0.1. ``stop()`` kills it,
``start()`` brings it back on the same port with the same statements file (an outage).
:func:`ralph_or_skip` gives a started server, skips the test when ralph cannot be
installed or started, and fails it under ``CI=true``.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from services import (
    HOST,
    ServiceUnavailable,
    _port_open,
    _tail,
    _wait_until,
    free_port,
    get_or_skip,
)

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: What the ralph venv holds (ralph imports requests without declaring it).
RALPH_SPEC = ("ralph-malph[cli,lrs]==5.1.0", "requests>=2.31")
START_TIMEOUT = 40.0
USERNAME = "tracking"
PASSWORD = "lrs-test-password"


def venv_dir() -> Path:
    return Path(os.environ.get("TRACKING_TEST_RALPH_VENV") or ROOT / ".venv-ralph")


def ensure_venv() -> Path:
    """The ralph venv, created (or re-created for a new :data:`RALPH_SPEC`) if needed."""
    venv = venv_dir()
    stamp = venv / ".ralph-spec"
    want = " ".join(RALPH_SPEC)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes: one installs, one waits
        if stamp.exists() and stamp.read_text() == want and (venv / "bin" / "ralph").exists():
            return venv
        log = Path(f"{venv}.install.log")
        with log.open("w") as out:
            steps = [
                [sys.executable, "-m", "venv", "--clear", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", *RALPH_SPEC],
            ]  # fmt: skip
            for step in steps:
                if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT).returncode:
                    raise ServiceUnavailable(
                        f"could not install ralph into {venv} ({' '.join(step[:4])} failed);"
                        f" log:\n{_tail(str(log))}"
                    )
        stamp.write_text(want)
        return venv


def _auth_file(venv: Path) -> Path:
    """ralph's credentials file for :data:`USERNAME`, made once by ``ralph auth``."""
    path = venv / f"auth-{USERNAME}.json"
    if path.exists():
        return path
    env = {**os.environ, "RALPH_RUNSERVER_BACKEND": "fs", "RALPH_AUTH_FILE": str(path)}
    env["RALPH_APP_DIR"] = str(venv / "ralph-app")
    cmd = [str(venv / "bin" / "ralph"), "auth", "-u", USERNAME, "-p", PASSWORD, "-s", "all",
           "-M", "mailto:tracking-tests@example.org", "-w"]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode or not path.exists():
        raise ServiceUnavailable(f"`ralph auth` failed: {done.stderr[-2000:]}")
    return path


class RalphLRS:
    """ralph's LRS with the filesystem backend, on 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.venv = ensure_venv()
        self.auth_file = _auth_file(self.venv)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="flask-tracking-ralph-"))
        self.data = self.dir / "data"
        self.data.mkdir()
        self.logfile = self.dir / "ralph.log"
        self.hold_file = self.dir / "hold-answers"
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        atexit.register(self.close)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def statements_file(self) -> Path:
        return self.data / "fs_lrs.jsonl"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
        env.update(
            RALPH_RUNSERVER_BACKEND="fs",
            RALPH_AUTH_FILE=str(self.auth_file),
            RALPH_APP_DIR=str(self.dir / "app"),
            RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(self.data),
            RALPH_LAUNCHER_HOLD_FILE=str(self.hold_file),
        )
        return env

    def start(self) -> RalphLRS:
        if self._closed:
            raise RuntimeError("RalphLRS is closed")
        if self.running:
            return self
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                [str(self.venv / "bin" / "python"), str(TESTS / "ralph_launcher.py"), HOST,
                 str(self.port)],
                env=self._env(), cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._proc = proc
        if _wait_until(self._answers, START_TIMEOUT, lambda: proc.poll() is None):
            return self
        self._kill()
        raise ServiceUnavailable(
            f"ralph did not answer on {self.endpoint} within {START_TIMEOUT:.0f}s; its log:\n"
            f"{_tail(str(self.logfile), 30)}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/__heartbeat__", timeout=1) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Stop the server (an outage); ``start()`` brings it back on the same port."""
        self._kill()
        _wait_until(lambda: not _port_open(self.port), 5.0, lambda: True)

    def freeze(self) -> None:
        """SIGSTOP the server: connections are still accepted by the kernel, and requests
        wait, unread, in their sockets (see :meth:`queued_bytes`) until :meth:`thaw`."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def hold_answers(self) -> None:
        """From now on ralph stores what it is sent but answers only after :meth:`release`."""
        self.hold_file.touch()

    def release(self) -> None:
        self.hold_file.unlink(missing_ok=True)

    def queued_bytes(self) -> int:
        """Bytes received by the kernel for the server's port and not read by it yet."""
        total = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if int(local.rsplit(":", 1)[1], 16) == self.port and state == "01":
                    total += int(queues.split(":")[1], 16)
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        atexit.unregister(self.close)

    # --- what the tests ask the LRS -------------------------------------------------------

    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}

    def get_statement(self, statement_id: str) -> dict[str, Any] | None:
        """``GET /xAPI/statements?statementId=...``: the stored statement, or ``None``."""
        url = f"{self.endpoint}/xAPI/statements?statementId={quote(statement_id)}"
        request = urllib.request.Request(url, headers=self.headers())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        found = body.get("statements", [body]) if isinstance(body, dict) else []
        return found[0] if found and found[0].get("id") == statement_id else None

    def stored_ids(self) -> list[str]:
        """The id of every statement in the backend's file, duplicates included."""
        if not self.statements_file.exists():
            return []
        with self.statements_file.open() as fh:
            return [json.loads(line)["id"] for line in fh if line.strip()]

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def __repr__(self) -> str:
        return f"<RalphLRS {self.endpoint} {'running' if self.running else 'stopped'}>"


def start_ralph() -> RalphLRS:
    server = RalphLRS()
    try:
        return server.start()
    except BaseException:
        server.close()
        raise


def ralph_or_skip() -> RalphLRS:
    """A started ralph; skips the test when ralph is unavailable (fails it under CI=true)."""
    made: list[RalphLRS] = []

    def make() -> str:
        made.append(start_ralph())
        return made[0].endpoint

    get_or_skip(make)
    return made[0]
