"""Tracking logs in and out: the real corpus imports and exports unchanged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from flask_tracking.models import FailedEvent, TrackingEvent

from support import corpus_path

REAL_FILES = (
    "edx-analytics-pipeline.jsonl",
    "json-to-relation.jsonl",
    "event-routing-backends.jsonl",
)


def _lines(path: Any) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tracking", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _count(app: Flask, model: Any) -> int:
    with app.extensions["tracking"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_every_corpus_line_imports_and_exports_unchanged(plain_app: Flask, tmp_path: Path) -> None:
    paths = [str(corpus_path(name)) for name in REAL_FILES]
    lines = [json.loads(line) for p in paths for line in _lines(p)]
    unique = {_canon(line) for line in lines}

    output = _run(plain_app, "import", *paths)

    expected = (
        f"read={len(lines)} stored={len(unique)} duplicates={len(lines) - len(unique)} failed=0"
    )
    assert output.strip().splitlines()[-1] == expected
    out = tmp_path / "export.log"
    _run(plain_app, "export", "-o", str(out))
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(_canon(e) for e in exported) == sorted(unique)


def test_exported_browser_payload_stays_a_json_string(plain_app: Flask, tmp_path: Path) -> None:
    path = corpus_path("edx-analytics-pipeline.jsonl")
    original = next(
        json.loads(line) for line in _lines(path) if '"event_type": "play_video"' in line
    )
    log = tmp_path / "one.log"
    log.write_text(json.dumps(original) + "\n", encoding="utf-8")
    _run(plain_app, "import", str(log))
    out = tmp_path / "out.log"
    _run(plain_app, "export", "-o", str(out), "--event-type", "play_video")
    (exported,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert isinstance(exported["event"], str)
    assert exported["event"] == original["event"]
    with plain_app.extensions["tracking"].engine.connect() as conn:
        stored = conn.execute(select(TrackingEvent.event, TrackingEvent.event_format)).one()
    assert stored.event == json.loads(original["event"])


def test_malformed_lines_are_kept_in_the_failed_table(plain_app: Flask, tmp_path: Path) -> None:
    raws = [json.loads(line)["raw"] for line in _lines(corpus_path("malformed.jsonl"))]
    log = tmp_path / "broken.log"
    log.write_text("\n".join(raws) + "\n", encoding="utf-8")

    output = _run(plain_app, "import", str(log))

    # Two lines are whole JSON after a logging prefix: those are tolerated and stored.
    assert output.strip().splitlines()[-1] == "read=7 stored=2 duplicates=0 failed=5"
    with plain_app.extensions["tracking"].engine.connect() as conn:
        failed = conn.execute(select(FailedEvent.__table__).order_by(FailedEvent.id)).all()
    assert [f.detail for f in failed] == [f"{log}:{n}" for n in (1, 2, 5, 6, 7)]
    assert {f.raw for f in failed} == {raws[i] for i in (0, 1, 4, 5, 6)}
    for row in failed:
        assert row.origin == "import"
        assert row.reasons["_line"][0].startswith("Not valid JSON")


def test_importing_the_same_file_twice_stores_nothing_new(plain_app: Flask, tmp_path: Path) -> None:
    path = str(corpus_path("json-to-relation.jsonl"))
    _run(plain_app, "import", path)
    stored = _count(plain_app, TrackingEvent)

    output = _run(plain_app, "import", path)

    assert output.strip().endswith("read=101 stored=0 duplicates=101 failed=0")
    assert _count(plain_app, TrackingEvent) == stored


def test_gzip_logs_import(plain_app: Flask, tmp_path: Path) -> None:
    source = corpus_path("event-routing-backends.jsonl")
    packed = tmp_path / "tracking.log.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))

    output = _run(plain_app, "import", str(packed))

    assert output.strip().endswith("read=10 stored=10 duplicates=0 failed=0")


def test_export_filters_by_time_type_and_course(plain_app: Flask, tmp_path: Path) -> None:
    _run(plain_app, "import", str(corpus_path("edx-analytics-pipeline.jsonl")))
    out = tmp_path / "out.log"
    _run(
        plain_app,
        "export",
        "-o",
        str(out),
        "--since",
        "2015-01-01T00:00:00",
        "--until",
        "2016-01-01T00:00:00+00:00",
        "--event-type",
        "play_video",
        "--course-id",
        "course-v1:edX+DemoX+Demo_Course_2015",
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines, "the corpus has 2015 play_video events of this course"
    for line in lines:
        assert line["event_type"] == "play_video"
        assert line["context"]["course_id"] == "course-v1:edX+DemoX+Demo_Course_2015"
        assert "2015-01-01" <= line["time"] < "2016-01-01"


def test_import_anonymizes_by_default(app: Flask) -> None:
    path = corpus_path("event-routing-backends.jsonl")
    _run(app, "import", str(path))
    names = {json.loads(line)["username"] for line in _lines(path)} - {""}
    ips = {json.loads(line)["ip"] for line in _lines(path)} - {""}
    with app.extensions["tracking"].engine.connect() as conn:
        rows = conn.execute(
            select(
                TrackingEvent.username,
                TrackingEvent.ip,
                TrackingEvent.context,
                TrackingEvent.original,
            )
        ).all()
    dumped = json.dumps([[r.username, r.ip, r.context, r.original] for r in rows])
    assert names and not any(name in dumped for name in names)
    for ip in ips:
        assert ip not in dumped
