"""``flask tracking ...``: the group's help, ``init-db`` naming its database, ``stats``,
times read one way by every command, and errors as one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from flask_tracking import Tracking
from flask_tracking.forwarding.models import deliveries_table
from flask_tracking.timespec import parse_when

from support import ROOT, partition_config, service_url


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["tracking", *args])


def ok(app: Flask, *args: str) -> str:
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return str(result.output)


def bare_app(tmp_path: Path, url: str) -> Flask:
    """An app whose database has no tracking tables yet."""
    app = Flask("cli_test", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="s", TRACKING_DATABASE_URL=url, TRACKING_RATE_LIMIT=None, **partition_config(url)
    )
    Tracking(app)
    return app


VIDEO = json.dumps({"id": "v1", "code": "html5", "currentTime": 12.5})
SHOW = {"problem_id": "block-v1:edX+DemoX+2026+type@problem+block@p1"}


def log_line(event_type: str, source: str, time: str, event: Any) -> str:
    """An edX tracking-log line (a browser event's payload is a JSON string)."""
    line = {
        "username": "ann",
        "event_type": event_type,
        "event_source": source,
        "time": time,
        "context": {"course_id": "course-v1:edX+DemoX+2026"},
        "event": event,
        "page": None,
    }
    return json.dumps(line)


def import_sample(app: Flask, tmp_path: Path) -> None:
    """Five good lines over two days and sources, one of a type no schema knows, and a
    broken line (a failed row); then pending and failed deliveries to two destinations."""
    lines = [
        log_line("play_video", "browser", "2026-11-29T10:00:00+00:00", VIDEO),
        log_line("play_video", "browser", "2026-11-30T09:00:00+00:00", VIDEO),
        log_line("pause_video", "browser", "2026-11-30T09:05:00+00:00", VIDEO),
        log_line("showanswer", "server", "2026-11-30T11:00:00+00:00", SHOW),
        log_line("acme.custom.thing", "server", "2026-11-30T12:00:00+00:00", {"n": 1}),
        '{"event_type": "play_video", "time": "not a time"}',
    ]
    log = tmp_path / "sample.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "stored=5" in ok(app, "import", str(log))
    now = datetime(2026, 12, 1)
    rows = [
        ("hook", "pending", 1),
        ("hook", "pending", 2),
        ("hook", "failed", 3),
        ("hook", "delivered", 4),
        ("archive", "failed", 1),
    ]
    with app.extensions["tracking"].engine.begin() as conn:
        conn.execute(
            insert(deliveries_table),
            [
                {
                    "event_pk": pk,
                    "destination": dest,
                    "state": state,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_attempt_at": now,
                }
                for dest, state, pk in rows
            ],
        )


# -- the group ------------------------------------------------------------------------------


def test_the_group_help_says_what_the_commands_do(app: Flask) -> None:
    output = ok(app, "--help")
    assert "Event tracking (flask-tracking)" in output
    for command in ("init-db", "import", "export", "stats", "forward", "worker", "drain-spool"):
        assert f"  {command} " in output
    assert "spans back from now (30m, 24h, 7d)" in output


# -- init-db --------------------------------------------------------------------------------


def test_init_db_names_the_database_and_what_it_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    app = bare_app(tmp_path, url)
    first = ok(app, "init-db").splitlines()
    assert first[0] == f"database: {url}"
    tables = "tracking_deliveries, tracking_event_types, tracking_events, tracking_failed_events"
    assert first[1] == f"created: {tables}"
    second = ok(app, "init-db").splitlines()
    assert second[1:] == [
        "created: nothing (all tables exist)",
        f"already there: {tables}",
    ]
    app.extensions["tracking"].engine.dispose()


def test_init_db_hides_the_password_of_the_database(tmp_path: Path) -> None:
    url = make_url(service_url("postgresql")).set(password="hunter2")
    app = bare_app(tmp_path, url.render_as_string(hide_password=False))
    output = ok(app, "init-db")
    assert "hunter2" not in output
    assert output.splitlines()[0] == f"database: {url.render_as_string(hide_password=True)}"
    assert ":***@" in output
    app.extensions["tracking"].engine.dispose()


# -- stats ----------------------------------------------------------------------------------


def test_stats_counts_events_failures_and_deliveries(app: Flask, tmp_path: Path) -> None:
    import_sample(app, tmp_path)
    output = ok(app, "stats")
    sections = _sections(output)
    assert sections["events"] == "5"
    assert sections["by source"] == {"browser": 3, "server": 2}
    assert sections["by type"] == {
        "play_video": 2,
        "acme.custom.thing": 1,
        "pause_video": 1,
        "showanswer": 1,
    }
    assert sections["by day (UTC)"] == {"2026-11-29": 1, "2026-11-30": 4}
    assert sections["unknown types (schema_status unvalidated)"] == {"acme.custom.thing": 1}
    assert sections["failed events"] == "1"
    [reason] = sections["failed by reason"]
    assert reason == "_line: time: Not a valid datetime: '…'."
    assert sections["deliveries now (pending, failed) per destination"] == [
        "archive  pending=0  failed=1",
        "hook     pending=2  failed=1",
    ]


def test_stats_since_and_until_count_only_their_window(app: Flask, tmp_path: Path) -> None:
    import_sample(app, tmp_path)
    output = ok(app, "stats", "--since", "2026-11-30", "--until", "2026-11-30T10:00")
    sections = _sections(output)
    assert sections["events"] == "2"
    assert sections["by day (UTC)"] == {"2026-11-30": 2}
    assert sections["window"] == "2026-11-30T00:00:00+00:00 to 2026-11-30T10:00:00+00:00"


def test_stats_as_json(app: Flask, tmp_path: Path) -> None:
    import_sample(app, tmp_path)
    data = json.loads(ok(app, "stats", "--json", "--since", "2026-11-30"))
    assert data["events"] == 4
    assert data["since"] == "2026-11-30T00:00:00+00:00"
    assert data["deliveries"] == {
        "archive": {"pending": 0, "failed": 1},
        "hook": {"pending": 2, "failed": 1},
    }


def test_stats_top_cuts_long_lists(app: Flask, tmp_path: Path) -> None:
    import_sample(app, tmp_path)
    output = ok(app, "stats", "--top", "1")
    assert "  ... 3 more (3); --top 0 shows all" in output


def test_stats_on_an_empty_store_says_none(app: Flask) -> None:
    sections = _sections(ok(app, "stats"))
    assert sections["events"] == "0"
    assert sections["by type"] == {}


def test_stats_before_init_db_says_to_run_it(tmp_path: Path) -> None:
    app = bare_app(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    result = invoke(app, "stats")
    assert result.exit_code == 1
    assert "no such table: tracking_events" in result.output
    assert "create the tables with `flask tracking init-db`" in result.output
    assert "Traceback" not in result.output
    app.extensions["tracking"].engine.dispose()


def _sections(output: str) -> dict[str, Any]:
    """The report as ``{title: value or {label: count} or [lines]}``."""
    found: dict[str, Any] = {}
    title = ""
    for line in output.splitlines():
        if not line.startswith("  "):
            title, _, value = line.partition(": ") if ": " in line else (line[:-1], "", "")
            found[title] = value if value else {}
        elif line.strip() == "(none)":
            continue
        elif "pending=" in line:
            found[title] = [*(found[title] or []), line.strip()]
        elif isinstance(found[title], dict):
            label, _, count = line.strip().rpartition("  ")
            found[title][label.strip()] = int(count)
    return found


# -- times ----------------------------------------------------------------------------------

GOOD_TIMES = ["2026-11-30", "2026-11-30T08:00", "2026-11-30 08:00:00+01:00", "2026-11-30T08:00Z"]
SPANS = ["30m", "24h", "7d", "2w"]


@pytest.mark.parametrize("command", ["export", "stats"])
@pytest.mark.parametrize("given", GOOD_TIMES + SPANS)
def test_every_time_form_is_accepted(app: Flask, command: str, given: str) -> None:
    ok(app, command, "--since", given)


def test_iso_times_are_utc_unless_they_say_otherwise() -> None:
    assert parse_when("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_when("2026-11-30T08:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert parse_when("2026-11-30T08:00+01:00") == datetime(2026, 11, 30, 7, tzinfo=UTC)
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert parse_when("24h", now) == datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_when("7d", now) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_when("30m", now) == datetime(2026, 12, 2, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize("command", ["export", "stats"])
@pytest.mark.parametrize("option", ["--since", "--until"])
@pytest.mark.parametrize("given", ["yesterday", "7x", "2026-13-01", "", "9999999999d"])
def test_a_bad_time_is_a_usage_error_naming_the_option(
    app: Flask, command: str, option: str, given: str
) -> None:
    result = invoke(app, command, option, given)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}': {given!r} is not an ISO date" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_until_before_since_is_a_usage_error(app: Flask) -> None:
    result = invoke(app, "stats", "--since", "2026-11-30", "--until", "2026-11-01")
    assert result.exit_code == 2
    assert "--until (2026-11-01T00:00:00+00:00) must be after --since" in result.output


# -- errors as one line ---------------------------------------------------------------------

APP_MODULE = """
from flask import Flask
from flask_tracking import Tracking


def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="s", TRACKING_DATABASE_URL={url!r}, TRACKING_ANONYMIZE={bad!r})
    Tracking(app)
    return app
"""


def run_flask(tmp_path: Path, bad: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``flask`` command on an app module whose ``create_app`` calls Tracking."""
    url = f"sqlite:///{tmp_path / 'tracking.db'}"
    (tmp_path / "badapp.py").write_text(textwrap.dedent(APP_MODULE.format(url=url, bad=bad)))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "badapp", "tracking", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("args", [["stats"], ["init-db"], ["--help"], ["export", "--since", "7d"]])
def test_a_config_error_while_flask_loads_the_app_is_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    result = run_flask(tmp_path, "maybe", *args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: TRACKING_ANONYMIZE must be True or False (or one of the strings 'true',"
        " 'false', 'yes', 'no', 'on', 'off', '1', '0'), not 'maybe' (a str)."
    ]


def test_the_same_app_with_a_good_value_runs_the_command(tmp_path: Path) -> None:
    result = run_flask(tmp_path, "off", "init-db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database: sqlite:///")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    app = bare_app(tmp_path, "postgresql+psycopg://ann:hunter2@127.0.0.1:1/nodb")
    result = invoke(app, "stats")
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: The tracking database postgresql+psycopg://ann:***@127.0.0.1:1/nodb answered:"
    )
    assert "check that the database is running" in result.output
    assert "hunter2" not in result.output


# -- files a command cannot write -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "-o", "{tmp}/no/such/folder/out.log"], "{tmp}/no/such/folder/out.log: No such"),
        (["export", "-o", "/dev/full"], "/dev/full: No space left on device."),
        (["catalog", "-o", "{tmp}/a-file/catalog"], "{tmp}/a-file/catalog: Not a directory."),
        (["export", "--with-catalog", "/dev/full/catalog"], "/dev/full/catalog: Not a directory."),
    ],
    ids=[
        "export-no-folder",
        "export-disk-full",
        "catalog-under-a-file",
        "with-catalog-under-a-file",
    ],
)
def test_a_file_that_cannot_be_written_is_one_line(
    app: Flask, tmp_path: Path, args: list[str], message: str
) -> None:
    """A missing folder, a full disk (``/dev/full``), a path under a file: the error names
    the file and says what the system said, with no traceback."""
    import_sample(app, tmp_path)  # something to export
    (tmp_path / "a-file").write_text("")
    result = invoke(app, *(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert result.exit_code == 1, result.output
    assert f"Error: {message.replace('{tmp}', str(tmp_path))}" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
