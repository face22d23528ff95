"""The catalog kept with the events and handed out: the table, the served JSON, the CLI,
``export --with-catalog`` and the staff page, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, request
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from flask_tracking.catalog.table import catalog_rows, event_types_table
from flask_tracking.schemas import CATALOG
from flask_tracking.schemas.examples import EXAMPLES

from catalog_app import BOOKMARK, ENROLL, QUIZ, make_tracking, prefix
from support import AppFactory


def cli(app: Flask, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=["tracking", *args])
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def table(app: Flask) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {
        (r["event_type"], r["source"], r["version"]): r
        for r in catalog_rows(app.extensions["tracking"].engine)
    }


def emit(app: Flask, event_type: str, data: Any) -> None:
    with app.app_context():
        assert app.extensions["tracking"].tracker.emit(event_type, data) is not None


def test_init_db_writes_the_catalog_table_and_first_and_last_seen(make_app: AppFactory) -> None:
    app = make_app(make_tracking(), TRACKING_ANONYMIZE=False)
    cli(app, "init-db")
    rows = table(app)
    assert len(rows) == len(CATALOG) + 5
    enroll = rows[ENROLL, "server", 2]
    assert enroll["builtin"] is False and enroll["first_seen"] is None
    assert enroll["json_schema"]["required"] == ["course_id", "mode", "price"]
    assert rows["play_video", "browser", 1]["description"].startswith("The learner started")

    emit(app, ENROLL, {"course_id": "c", "mode": "audit", "price": None})
    emit(app, ENROLL, {"course_id": "c", "mode": "audit", "price": 2.0})
    cli(app, "catalog", "--sync")
    enroll = table(app)[ENROLL, "server", 2]
    assert enroll["first_seen"] is not None and enroll["first_seen"] < enroll["last_seen"]
    assert table(app)[BOOKMARK, "server", 1]["last_seen"] is None
    cli(app, "init-db")  # again: nothing doubles
    assert len(table(app)) == len(CATALOG) + 5


def test_the_first_write_of_a_process_brings_the_table_up_to_date(make_app: AppFactory) -> None:
    first = make_app(make_tracking(v2=False))
    emit(first, BOOKMARK, {"url": "/a"})
    assert (ENROLL, "server", 1) in table(first) and (ENROLL, "server", 2) not in table(first)
    # A new release registers version 2; its first write adds the row.
    second = make_app(make_tracking())
    emit(second, BOOKMARK, {"url": "/b"})
    assert (ENROLL, "server", 2) in table(second)
    with second.extensions["tracking"].engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(event_types_table)).scalar_one()
    assert count == len(CATALOG) + 5


def test_catalog_json_lists_every_type_and_what_a_browser_may_send(make_app: AppFactory) -> None:
    app = make_app(make_tracking())
    client = app.test_client()
    whole = client.get(f"{prefix(app)}/catalog.json").json
    assert whole["version_key"] == "schema_version"
    keys = {(t["event_type"], t["source"], t["version"]) for t in whole["types"]}
    assert {(ENROLL, "server", 1), (ENROLL, "server", 2), (QUIZ, "browser", 1)} <= keys
    browser = client.get(f"{prefix(app)}/catalog.json?source=browser").json["types"]
    assert {t["source"] for t in browser} == {"browser"}
    assert {QUIZ, BOOKMARK, "play_video"} <= {t["event_type"] for t in browser}
    assert ENROLL not in {t["event_type"] for t in browser}
    assert client.get(f"{prefix(app)}/catalog.json?source=elsewhere").status_code == 400


def test_one_schema_per_type_validates_its_events(make_app: AppFactory) -> None:
    app = make_app(make_tracking())
    client = app.test_client()
    answer = client.get(f"{prefix(app)}/catalog/server/{ENROLL}.schema.json")
    assert answer.status_code == 200 and answer.mimetype == "application/schema+json"
    newest = Draft202012Validator(answer.json)
    assert newest.is_valid({"course_id": "c", "mode": "audit", "price": None})
    assert not newest.is_valid({"course_id": "c", "mode": "gold", "price": None})
    old = client.get(f"{prefix(app)}/catalog/server/{ENROLL}.schema.json?version=1").json
    assert Draft202012Validator(old).is_valid({"course_id": "c", "mode": "audit"})
    assert old["description"] == "A learner's enrollment became active."
    quiz = client.get(f"{prefix(app)}/catalog/browser/{QUIZ}.schema.json").json
    assert quiz["examples"] == [{"quiz_id": "q1", "attempt": 1}]
    alias = client.get(f"{prefix(app)}/catalog/server/show_answer.schema.json").json
    assert alias["title"] == "showanswer"
    assert client.get(f"{prefix(app)}/catalog/browser/{ENROLL}.schema.json").status_code == 404
    assert (
        client.get(f"{prefix(app)}/catalog/server/{ENROLL}.schema.json?version=x").status_code
        == 400
    )


def test_export_with_catalog_writes_the_documentation_beside_the_lines(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(make_tracking(), TRACKING_ANONYMIZE=False)
    emit(app, ENROLL, {"course_id": "c", "mode": "verified", "price": 10.0})
    out, docs = tmp_path / "events.log", tmp_path / "catalog"
    cli(app, "export", "-o", str(out), "--with-catalog", str(docs))
    line = json.loads(out.read_text())
    catalog = json.loads((docs / "catalog.json").read_text())
    entry = next(t for t in catalog["types"] if (t["event_type"], t["version"]) == (ENROLL, 2))
    assert Draft202012Validator(entry["json_schema"]).is_valid(line["event"])
    assert Draft202012Validator(entry["json_schema"]).is_valid(
        {**line["event"], "schema_version": 2}
    )
    assert not Draft202012Validator(entry["json_schema"]).is_valid(
        {**line["event"], "schema_version": 1}
    )
    schema = json.loads((docs / f"schemas/server/{ENROLL}.v2.schema.json").read_text())
    assert schema == entry["json_schema"]
    assert (docs / "schemas/browser/play_video.v1.schema.json").is_file()
    assert f"`{ENROLL}` (server, version 2)" in (docs / "events.md").read_text()


def test_the_catalog_command_formats(make_app: AppFactory) -> None:
    app = make_app(make_tracking())
    data = json.loads(cli(app, "catalog").stdout)
    assert len(data["types"]) == len(CATALOG) + 5
    browser = json.loads(cli(app, "catalog", "--source", "browser").stdout)
    assert {t["source"] for t in browser["types"]} == {"browser"}
    text = cli(app, "catalog", "--format", "markdown").stdout
    assert "## The app's own event types" in text and "| `price` | number |" in text
    schemas = json.loads(cli(app, "catalog", "--format", "jsonschema").stdout)
    assert f"schemas/server/{ENROLL}.v1.schema.json" in schemas
    one = json.loads(cli(app, "catalog", "--format", "jsonschema", "--type", QUIZ).stdout)
    assert one["title"] == QUIZ and one["required"] == ["quiz_id", "attempt"]


def test_the_catalog_page_follows_the_staff_access_rule(make_app: AppFactory) -> None:
    tracking = make_tracking()
    closed = make_app(make_tracking())
    assert closed.test_client().get(f"{prefix(closed)}/catalog").status_code == 403

    @tracking.dashboard_access
    def staff_only() -> bool:
        return request.headers.get("X-Staff") == "yes"

    app = make_app(tracking)
    client = app.test_client()
    refused = client.get(f"{prefix(app)}/catalog")
    assert refused.status_code == 403 and refused.json["code"] == "forbidden"
    page = client.get(f"{prefix(app)}/catalog", headers={"X-Staff": "yes"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert ENROLL in html and "play_video" in html and "catalog.json" in html
    assert f"/catalog/browser/{QUIZ}.schema.json?version=1" in html


def test_aliases_and_source_aliases_count_for_their_row(make_app: AppFactory) -> None:
    app = make_app(make_tracking())
    cli(app, "init-db")
    check = EXAMPLES["server", "problem_check"]
    play = EXAMPLES["browser", "play_video"]
    with app.app_context():
        tracker = app.extensions["tracking"].tracker
        assert tracker.emit("save_problem_check", check, source="task") is not None
        assert tracker.emit("play_video", play, source="mobile") is not None
    cli(app, "catalog", "--sync")
    rows = table(app)
    assert rows["problem_check", "server", 1]["last_seen"] is not None
    assert rows["play_video", "browser", 1]["last_seen"] is not None
    assert rows["problem_check", "browser", 1]["last_seen"] is None


def _log_line(when: str, event_type: str, data: Any, source: str = "server") -> str:
    return json.dumps(
        {
            "username": "learner",
            "event_source": source,
            "event_type": event_type,
            "event": data if source == "server" else json.dumps(data),
            "time": when,
            "context": {"course_id": "course-v1:Org+Num+Run", "org_id": "Org"},
            "host": "courses.example.org",
            "page": None,
        }
    )


def test_import_widens_first_and_last_seen_by_what_it_imported(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(make_tracking())
    cli(app, "init-db")
    check, play = EXAMPLES["server", "problem_check"], EXAMPLES["browser", "play_video"]
    log = tmp_path / "a.log"
    log.write_text(
        "\n".join(
            [
                _log_line("2023-05-02T10:00:00+00:00", "problem_check", check),
                _log_line("2023-05-09T10:00:00+00:00", "problem_check", check),
                _log_line("2023-05-04T10:00:00+00:00", "play_video", play, "browser"),
            ]
        )
        + "\n"
    )
    assert cli(app, "import", str(log)).output.strip() == "read=3 stored=3 duplicates=0 failed=0"
    rows = table(app)
    seen = (datetime(2023, 5, 2, 10), datetime(2023, 5, 9, 10))
    assert (
        rows["problem_check", "server", 1]["first_seen"],
        rows["problem_check", "server", 1]["last_seen"],
    ) == seen
    may4 = datetime(2023, 5, 4, 10)
    assert (
        rows["play_video", "browser", 1]["first_seen"],
        rows["play_video", "browser", 1]["last_seen"],
    ) == (may4, may4)
    assert rows["problem_check", "browser", 1]["first_seen"] is None

    # An older line widens the start only; a repeated import changes nothing.
    older = tmp_path / "b.log"
    older.write_text(_log_line("2022-01-01T00:00:00+00:00", "problem_check", check) + "\n")
    cli(app, "import", str(older))
    cli(app, "import", str(log))
    row = table(app)["problem_check", "server", 1]
    assert (row["first_seen"], row["last_seen"]) == (datetime(2022, 1, 1), seen[1])
