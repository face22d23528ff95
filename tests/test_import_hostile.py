"""Hostile lines among good ones in one import chunk (PostgreSQL: one ``COPY``): every
good line stored once, every bad line kept as a failed row with its precise reason, the
printed counts true, nothing new on a second import; on both databases, serial and with
``--jobs 2``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from flask_tracking import pgcopy, tracking_logs
from flask_tracking.failures import KEEP_RAW_BYTES, storable
from flask_tracking.models import events_table, failed_table
from flask_tracking.tracking_logs import TOO_DEEP

GOOD = 30


def good(n: int, payload: str | None = None) -> str:
    """A good line, its own event (the id comes from the content); ``payload``: the JSON
    text of its ``event`` instead, spliced in as it is."""
    line = json.dumps(
        {
            "username": f"learner{n}",
            "event_source": "server",
            "event_type": "edx.course.enrollment.activated",
            "context": {"course_id": "course-v1:edX+DemoX+Demo", "org_id": "edX"},
            "time": f"2024-02-01T09:{n // 60:02d}:{n % 60:02d}.000000+00:00",
            "event": "PAYLOAD" if payload else {"user_id": n, "mode": "honor", "note": "é\u2028"},
            "page": None,
        }
    )
    return line.replace('"PAYLOAD"', payload) if payload else line


def x(value: str) -> str:
    """The JSON text of an object whose ``x`` is the JSON text ``value``."""
    return '{"x": ' + value + "}"


def hostile() -> list[tuple[str, str, str]]:
    """``(line, field of its reason, the reason or a part of it)``: lines to refuse, each
    for a reason of its own, all in one chunk with the good ones."""
    deep = "[" * 10_000 + "]" * 10_000
    deep_context = good(1010).replace(
        '"context": {"course_id": "course-v1:edX+DemoX+Demo", "org_id": "edX"}',
        '"context": ' + json.dumps(deep),
    )
    return [
        (good(1001, '{"x": NaN}'), "event", "x: nan is not a JSON number."),
        (good(1002, '{"x": [Infinity]}'), "event", "x[0]: inf is not a JSON number."),
        (good(1003, '{"x": -Infinity}'), "event", "x: -inf is not a JSON number."),
        (good(1004, x(str(2**70))), "event", "x: An integer outside 64 bits."),
        (good(1005, '{"x": "\\ud800"}'), "event", "x: Must not contain a lone surrogate"),
        (good(1006, x(deep)), "_line", TOO_DEEP),
        (good(1007, '{"x": "a\\u0000b"}'), "event", "x: Must not contain a NUL character."),
        (good(1008, x(json.dumps("y" * 1_000_000))), "_schema", "(TRACKING_MAX_EVENT_BYTES)"),
        (good(1009, json.dumps(deep)), "event", "The payload is JSON nested too deeply"),
        (deep_context, "_line", TOO_DEEP),
        ('{"username": "broken", "event_type": ', "_line", "Not valid JSON: "),
        ("[1, 2, 3]", "_line", "No JSON object on this line."),
        ('"just a string"', "_line", "No JSON object on this line."),
        (good(1011, json.dumps('{"x": NaN}')), "event", "x: nan is not a JSON number."),
        ('{"a": [1]} trailing', "_line", "Not valid JSON: Extra data"),
        # Raw in the file, not escaped: a NUL and a lone surrogate inside a JSON string.
        (good(1012).replace("learner1012", "lear\x00ner"), "_line", "Invalid control character"),
        (good(1013).replace("learner1013", "lear\udcffner"), "username", "lone surrogate"),
    ]


def write_log(path: Path) -> tuple[list[str], list[tuple[str, str, str]], list[int]]:
    """The log: the good lines with the hostile ones among them (one chunk); the number
    of each hostile line."""
    goods = [good(n) for n in range(GOOD)]
    bad = hostile()
    lines = list(goods)
    for i, (line, _, _) in enumerate(bad):  # every other line
        lines.insert(2 * i + 1, line)
    numbers = [2 * i + 2 for i in range(len(bad))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    return goods, bad, numbers


def copy_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each ``pgcopy.copy_insert`` of this process ended ("stored" or the error)."""
    seen: list[str] = []
    real = pgcopy.copy_insert

    def spy(*args: Any, **kwargs: Any) -> int:
        try:
            stored = real(*args, **kwargs)
        except Exception as exc:
            seen.append(repr(exc))
            raise
        seen.append("stored")
        return stored

    monkeypatch.setattr(pgcopy, "copy_insert", spy)
    return seen


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["tracking", "import", *args])
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.output
    return result.output.strip().splitlines()[-1]


def rows(app: Flask) -> tuple[list[Any], list[Any]]:
    with app.extensions["tracking"].engine.connect() as conn:
        events = conn.execute(select(events_table.c.username)).scalars().all()
        failed = conn.execute(select(failed_table).order_by(failed_table.c.id)).all()
    return list(events), list(failed)


@pytest.mark.parametrize(
    ("jobs", "chunk"),
    [("1", tracking_logs.CHUNK), ("1", 7), ("2", tracking_logs.CHUNK), ("2", 7)],
    ids=["serial-one-chunk", "serial-chunks-of-7", "jobs2-one-chunk", "jobs2-chunks-of-7"],
)
def test_hostile_lines_among_good_ones(
    plain_app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str, chunk: int
) -> None:
    monkeypatch.setattr(tracking_logs, "CHUNK", chunk)
    copies = copy_calls(monkeypatch)
    log = tmp_path / "hostile.log"
    goods, bad, numbers = write_log(log)
    total = len(goods) + len(bad)

    summary = run(plain_app, "--jobs", jobs, str(log))

    assert summary == f"read={total} stored={len(goods)} duplicates=0 failed={len(bad)}"
    if jobs == "1" and plain_app.extensions["tracking"].engine.dialect.name == "postgresql":
        # Each chunk went by COPY, and COPY took it (the bad lines never reached it).
        assert copies and set(copies) == {"stored"}, copies
    events, failed = rows(plain_app)
    assert sorted(events) == sorted(f"learner{n}" for n in range(GOOD))
    assert len(failed) == len(bad)
    by_line = {row.detail: row for row in failed}
    for number, (line, field, part) in zip(numbers, bad, strict=True):
        row = by_line.get(f"{log}:{number}")
        assert row is not None, f"no failed row for line {number}: {line[:80]!r}"
        assert row.origin == "import"
        if len(line) < KEEP_RAW_BYTES:  # the line itself (NULs, surrogates escaped)
            assert row.raw == storable(line)
        else:  # a sample of its head
            assert row.raw and storable(line).startswith(row.raw[:1000])
        reasons = row.reasons.get(field, [])
        assert any(part in reason for reason in reasons), (number, line[:80], row.reasons)

    again = run(plain_app, "--jobs", jobs, str(log))

    assert again == f"read={total} stored=0 duplicates={len(goods)} failed={len(bad)}"
    events, failed = rows(plain_app)
    assert sorted(events) == sorted(f"learner{n}" for n in range(GOOD))
    assert len(failed) == 2 * len(bad)  # a failed line is kept again each time it is read
