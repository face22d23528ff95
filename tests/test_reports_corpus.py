"""The reports over the real corpus (tests/data), checked against counts made in the test
straight from the JSON lines; the same rows from SQLite and PostgreSQL; the CLI formats."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import create_engine

from flask_tracking import Tracking
from flask_tracking.logfiles import read_lines
from flask_tracking.reports import REPORTS, problems, sequence, textbook, video
from flask_tracking.reports.activity import activity
from flask_tracking.tracking_logs import import_lines

from support import CORPUS, partition_config, reset_database, service_url

FILES = sorted(str(p) for p in Path(CORPUS).glob("*.jsonl") if p.name != "malformed.jsonl")


def corpus_events() -> list[dict[str, Any]]:
    """Every distinct line of the corpus, decoded (the import keeps one of equal lines)."""
    seen: dict[str, dict[str, Any]] = {}
    for name in FILES:
        for text in Path(name).read_text(encoding="utf-8").splitlines():
            if text.strip():
                data = json.loads(text)
                seen.setdefault(json.dumps(data, sort_keys=True), data)
    return list(seen.values())


def payload(line: dict[str, Any]) -> Any:
    value = line.get("event")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def who(line: dict[str, Any]) -> str | None:
    context = line.get("context") or {}
    user_id = context.get("user_id") if isinstance(context, dict) else None
    if user_id not in (None, ""):
        return f"id:{user_id}"
    return f"name:{line['username']}" if line.get("username") else None


def of_type(*types: str, source: str | None = None) -> Iterator[tuple[dict[str, Any], Any]]:
    for line in EVENTS:
        if line.get("event_type") in types and (
            source is None or line.get("event_source") == source
        ):
            yield line, payload(line)


EVENTS = corpus_events()


def load(url: str, tmp_path: Path) -> Any:
    reset_database(url)
    app = Flask("reports_corpus", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="k",
        TESTING=True,
        TRACKING_DATABASE_URL=url,
        **partition_config(url),
        TRACKING_RATE_LIMIT=None,
        TRACKING_ANONYMIZE=False,  # learners as edX wrote them, to count them from the lines
        # the import's chunks of 1,000 rows, on a machine shared with other test runs
        TRACKING_DB_TIMEOUT=30.0,
    )
    Tracking(app)
    state = app.extensions["tracking"]
    summary = import_lines(state.tracker, read_lines(FILES))
    assert summary.stored == len(EVENTS)
    return app


@pytest.fixture
def corpus_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = load(database_url, tmp_path)
    yield app
    app.extensions["tracking"].engine.dispose()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])  # New York: with its DST changes
def test_activity_matches_the_lines(corpus_app: Flask, tz: str) -> None:
    expected: Counter[tuple[str, str, str]] = Counter()
    for line in EVENTS:
        text = line.get("time") or line["timestamp"]  # as the import reads it
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        day = moment.astimezone(ZoneInfo(tz)).date().isoformat()
        expected[(day, line["event_type"], line.get("event_source") or "server")] += 1
    rows = activity(corpus_app.extensions["tracking"].engine, tz=tz)
    assert {(r["day"], r["event_type"], r["event_source"]): r["events"] for r in rows} == expected


def test_video_counts_match_the_lines(corpus_app: Flask) -> None:
    kinds = {"play_video": "plays", "pause_video": "pauses", "seek_video": "seeks"}
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    viewers: defaultdict[str, set[str]] = defaultdict(set)
    for line, data in of_type(*kinds):
        if isinstance(data, dict) and data.get("id") is not None and who(line):
            counts[str(data["id"])][kinds[line["event_type"]]] += 1
            if line["event_type"] == "play_video":
                viewers[str(data["id"])].add(who(line))  # type: ignore[arg-type]
    rows = video(corpus_app.extensions["tracking"].engine)
    got = {r["video_id"]: (r["plays"], r["pauses"], r["seeks"], r["viewers"]) for r in rows}
    want = {v: (c["plays"], c["pauses"], c["seeks"], len(viewers[v])) for v, c in counts.items()}
    assert {v: n for v, n in got.items() if v in want} == want
    assert len(want) > 5


def test_sequence_and_textbook_match_the_lines(corpus_app: Flask) -> None:
    engine = corpus_app.extensions["tracking"].engine
    moves = {"seq_next": "next", "seq_prev": "previous", "seq_goto": "goto"}
    mix: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line, data in of_type(*moves):
        if isinstance(data, dict) and data.get("id") is not None:
            mix[str(data["id"])][moves[line["event_type"]]] += 1
    got = {r["sequence_id"]: (r["next"], r["previous"], r["goto"]) for r in sequence(engine)}
    assert got == {s: (c["next"], c["previous"], c["goto"]) for s, c in mix.items()}
    books: defaultdict[str, set[int]] = defaultdict(set)
    events: Counter[str] = Counter()
    for _, data in of_type("book"):
        events[data["chapter"]] += 1
        books[data["chapter"]].add(int(data["new"]))
    got_books = {r["book"]: (r["events"], r["pages_viewed"]) for r in textbook(engine)}
    assert got_books == {b: (events[b], len(pages)) for b, pages in books.items()}


def test_problems_match_the_server_checks(corpus_app: Flask) -> None:
    tries: defaultdict[str, defaultdict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    ordered = sorted(of_type("problem_check", source="server"), key=lambda item: item[0]["time"])
    for line, data in ordered:
        if isinstance(data, dict) and data.get("problem_id") and who(line):
            cmap = data.get("correct_map") or {}
            right = (
                all(entry.get("correctness") == "correct" for entry in cmap.values())
                if cmap
                else data.get("success") == "correct"
            )
            tries[data["problem_id"]][who(line)].append(right)  # type: ignore[index]
    want = {
        p: (
            len(people),
            sum(map(len, people.values())),
            sum(t[0] for t in people.values()),
            sum(any(t) for t in people.values()),
        )
        for p, people in tries.items()
    }
    rows = problems(corpus_app.extensions["tracking"].engine)
    got = {
        r["problem_id"]: (
            r["learners"],
            r["attempts"],
            r["first_try_correct"],
            r["eventually_correct"],
        )
        for r in rows
        if r["learners"]
    }
    assert got == want
    assert len(want) > 10


def test_sqlite_and_postgresql_give_the_same_rows(sqlite_url: str, tmp_path: Path) -> None:
    apps = [load(sqlite_url, tmp_path), load(service_url("postgresql"), tmp_path)]
    try:
        for name, report in REPORTS.items():
            for tz in ("UTC", "America/New_York", "Asia/Kathmandu"):
                sqlite_rows, pg_rows = (
                    report(app.extensions["tracking"].engine, tz=tz) for app in apps
                )
                assert sqlite_rows == pg_rows, (name, tz)
        since, until = datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC)
        course = "edX/DemoX/Demo_Course"
        for name, report in REPORTS.items():
            a, b = (
                report(
                    app.extensions["tracking"].engine, course_id=course, since=since, until=until
                )
                for app in apps
            )
            assert a == b, name
    finally:
        for app in apps:
            app.extensions["tracking"].engine.dispose()


def test_cli_formats(corpus_app: Flask) -> None:
    runner = corpus_app.test_cli_runner()
    engine = corpus_app.extensions["tracking"].engine
    rows = REPORTS["problems"](engine)
    table = runner.invoke(args=["tracking", "report", "problems"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == list(rows[0])
    assert len(lines) == len(rows) + 2
    assert len({line.index(" learners") if " learners" in line else -1 for line in lines[:1]}) == 1
    widths = {len(line) for line in lines[2:]}
    assert max(widths) <= len(lines[1])
    as_csv = runner.invoke(args=["tracking", "report", "problems", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [{k: int(v) if v.isdigit() else v for k, v in r.items()} for r in parsed] == rows
    as_json = runner.invoke(
        args=["tracking", "report", "video-curve", "--format", "json", "--tz", "Europe/Paris"]
    )
    assert json.loads(as_json.output) == REPORTS["video-curve"](engine, tz="Europe/Paris")
    window = ["--since", "2014-01-01", "--until", "2015-01-01", "--course", "edX/DemoX/Demo_Course"]
    windowed = runner.invoke(args=["tracking", "report", "activity", "--format", "json", *window])
    since, until = datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC)
    assert json.loads(windowed.output) == activity(
        engine, course_id="edX/DemoX/Demo_Course", since=since, until=until
    )
    for name in ("Mars/Olympus", "America", "x" * 5000):  # no zone, a folder, no file name
        bad_tz = runner.invoke(args=["tracking", "report", "activity", "--tz", name])
        assert bad_tz.exit_code == 2 and f"Unknown time zone '{name[:64]}" in bad_tz.output
    out_of_range = runner.invoke(
        args=["tracking", "report", "activity", "--since", "0001-01-01T00:00+01:00"]
    )
    assert out_of_range.exit_code == 2 and "out of the calendar's range" in out_of_range.output
    bad_name = runner.invoke(args=["tracking", "report", "nope"])
    assert bad_name.exit_code == 2
    backwards = runner.invoke(
        args=["tracking", "report", "activity", "--since", "2d", "--until", "3d"]
    )
    assert backwards.exit_code == 2


def test_cli_without_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(url).dispose()
    app = Flask("reports_empty", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="k", TRACKING_DATABASE_URL=url, **partition_config(url))
    Tracking(app)
    answer = app.test_cli_runner().invoke(args=["tracking", "report", "video"])
    assert answer.exit_code == 1
    assert "flask tracking init-db" in answer.output and "Traceback" not in answer.output
