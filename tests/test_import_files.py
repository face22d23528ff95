"""Damaged files given to ``flask tracking import``: a gzip cut off mid-stream, a gzip
that is not one, a line far longer than any event, a file read again. The lines read
before the damage are stored, the damage is a failed row saying where and why, the other
files of the command are imported, the command ends with an error naming the file, and
memory stays bounded whatever the length of a line. On both databases, serial and with
``--jobs 2``."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from flask_tracking.logfiles import HEAD_CHARS, MAX_LINE_CHARS, LogReader
from flask_tracking.models import events_table, failed_table


def line(n: int) -> str:
    """A good line, an event of its own."""
    return json.dumps(
        {
            "username": f"learner{n}",
            "event_source": "server",
            "event_type": "edx.course.enrollment.activated",
            "context": {"course_id": "course-v1:edX+DemoX+Demo"},
            "time": f"2024-02-01T09:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}+00:00",
            "event": {"user_id": n, "mode": "honor"},
            "page": None,
        }
    )


def cut_gzip(path: Path, count: int) -> int:
    """A gzip log of ``count`` lines cut off mid-stream; how many lines can be read."""
    data = gzip.compress(("\n".join(line(n) for n in range(count)) + "\n").encode(), mtime=0)
    path.write_bytes(data[: len(data) * 2 // 3])
    with gzip.open(path, "rt") as handle:
        readable = 0
        try:
            for _ in handle:
                readable += 1
        except EOFError:
            pass
    return readable


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["tracking", "import", *args])


def counts(app: Flask) -> tuple[int, list[Any]]:
    with app.extensions["tracking"].engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
        failed = conn.execute(select(failed_table).order_by(failed_table.c.id)).all()
    return events, list(failed)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_cut_gzip_keeps_what_was_read_and_the_other_files(
    plain_app: Flask, tmp_path: Path, jobs: str
) -> None:
    cut = tmp_path / "cut.log.gz"
    readable = cut_gzip(cut, 3000)
    whole = tmp_path / "whole.log"
    whole.write_text("\n".join(line(n) for n in range(5000, 5010)) + "\n")
    assert 0 < readable < 3000

    result = invoke(plain_app, "--jobs", jobs, str(cut), str(whole))

    assert result.exit_code == 1, result.output
    summary = f"read={readable + 1 + 10} stored={readable + 10} duplicates=0 failed=1"
    assert summary in result.output
    assert f"{cut}: The file could not be read after line {readable}" in result.output
    assert "Compressed file ended before the end-of-stream marker" in result.output
    events, failed = counts(plain_app)
    assert events == readable + 10
    [row] = failed
    assert row.origin == "import" and row.detail == f"{cut}:{readable + 1}"
    assert "could not be read after line" in row.reasons["_line"][0]

    again = invoke(plain_app, "--jobs", jobs, str(cut), str(whole))

    assert again.exit_code == 1
    assert f"stored=0 duplicates={readable + 10} failed=1" in again.output
    assert counts(plain_app) == (events, failed)  # the same failed row, not a second one


def test_a_file_that_is_not_gzip_past_its_magic_is_one_failed_row(
    plain_app: Flask, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not deflate at all" * 10)

    result = invoke(plain_app, str(bad))

    assert result.exit_code == 1
    assert "read=1 stored=0 duplicates=0 failed=1" in result.output
    assert f"{bad}: The file could not be read at its start" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    _, [row] = counts(plain_app)
    assert row.detail == f"{bad}:1" and row.raw == ""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_line_too_long_is_refused_and_the_next_ones_imported(
    plain_app: Flask, tmp_path: Path, jobs: str
) -> None:
    log = tmp_path / "long.log"
    long_line = line(1)[:-1] + ', "junk": "' + "z" * (3 * MAX_LINE_CHARS) + '"}'
    log.write_text("\n".join([line(0), long_line, line(2), "", line(3)]) + "\n")

    result = invoke(plain_app, "--jobs", jobs, str(log))

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "read=4 stored=3 duplicates=0 failed=1"
    events, [row] = counts(plain_app)
    assert events == 3
    assert row.detail == f"{log}:2" and row.raw == long_line[:HEAD_CHARS]
    [reason] = row.reasons["_line"]
    assert f"The line is {len(long_line)} characters long" in reason
    assert f"longer than {MAX_LINE_CHARS} are not read" in reason

    again = invoke(plain_app, "--jobs", jobs, str(log))

    assert again.output.strip() == "read=4 stored=0 duplicates=3 failed=1"
    assert len(counts(plain_app)[1]) == 1


def test_the_limit_follows_tracking_max_event_bytes(make_app: Any, tmp_path: Path) -> None:
    app = make_app(TRACKING_ANONYMIZE=False, TRACKING_MAX_EVENT_BYTES=1000)
    log = tmp_path / "limit.log"
    padded = line(1)[:-1] + ', "pad": "' + "p" * 8100 + '"}'
    log.write_text(line(0) + "\n" + padded + "\n")

    result = invoke(app, str(log))

    assert result.output.strip() == "read=2 stored=1 duplicates=0 failed=1"
    [row] = counts(app)[1]
    assert "longer than 8000 are not read (8 times TRACKING_MAX_EVENT_BYTES)" in str(row.reasons)


def test_reading_a_huge_line_holds_a_bounded_amount_of_memory(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    with log.open("w") as out:
        out.write(line(0) + "\n{" + '"x": "' + "y" * 60_000_000 + '"}\n' + line(2) + "\n")
    reader = LogReader([str(log)])
    tracemalloc.start()
    try:
        got = [(item.number, item.refused is not None, len(item.text)) for item in reader]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = len(line(0)) + 1
    assert got == [(1, False, whole), (2, True, HEAD_CHARS), (3, False, whole)]
    assert peak < 12 * 1024 * 1024, f"{peak} bytes at the peak for a line of 60 MB"
    assert reader.unreadable == []
