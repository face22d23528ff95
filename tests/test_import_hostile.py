"""Hostile lines among good ones in one import chunk (PostgreSQL: one ``COPY``): every
good line stored once (text ``COPY`` must escape stored exactly), every bad line kept as
a failed row with its precise reason, the printed counts true, nothing new on a second
import; on both databases, serial and with ``--jobs 2``. Then, on PostgreSQL, trouble in
the middle of a ``COPY`` (a row refused, the connection killed, a statement timeout):
nothing lost, nothing stored twice."""

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

from support import AppFactory

GOOD = 30
#: Text that COPY's text format must escape (tab, newline, CR, backslash, its NULL marker
#: ``\N`` and its end marker ``\.``), in good lines: stored as it is.
TRICKY = "a\tb\nc\rd\\e \\N \\.\n\\.\x7f\u2028é"
TRICKY_LINES = {
    3: {"agent": TRICKY},
    4: {"page": TRICKY, "agent": "\\N"},
    5: {"event": {"note": TRICKY, "empty": "", "nul_text": "\\u0000"}},
}


def good(n: int, payload: str | None = None, **fields: Any) -> str:
    """A good line, its own event (the id comes from the content); ``payload``: the JSON
    text of its ``event`` instead, spliced in as it is; ``fields``: other values."""
    line = json.dumps(
        {
            "agent": f"agent {n}",
            "username": f"learner{n}",
            "event_source": "server",
            "event_type": "edx.course.enrollment.activated",
            "context": {"course_id": "course-v1:edX+DemoX+Demo", "org_id": "edX"},
            "time": f"2024-02-01T09:{n // 60:02d}:{n % 60:02d}.000000+00:00",
            "event": "PAYLOAD" if payload else {"user_id": n, "mode": "honor", "note": "é\u2028"},
            "page": None,
            **fields,
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
        (good(1008, x(json.dumps("y" * 100_000))), "_schema", "(TRACKING_MAX_EVENT_BYTES)"),
        (good(1017, x(json.dumps("y" * 1_000_000))), "_line", "characters long; lines longer"),
        (good(1009, json.dumps(deep)), "event", "The payload is JSON nested too deeply"),
        (deep_context, "_line", TOO_DEEP),
        ('{"username": "broken", "event_type": ', "_line", "Not valid JSON: "),
        ("[1, 2, 3]", "_line", "No JSON object on this line."),
        ('"just a string"', "_line", "No JSON object on this line."),
        (good(1011, json.dumps('{"x": NaN}')), "event", "x: nan is not a JSON number."),
        ('{"a": [1]} trailing', "_line", "Not valid JSON: Extra data"),
        (good(1014, json.dumps("a\u0000b")), "event", "Must not contain a NUL character."),
        (good(1015, agent="a\u0000b"), "agent", "Must not contain a NUL character."),
        (good(1016, event_type="e" * 2000), "event_type", "Longer than 1024 bytes (2000)."),
        # Raw in the file, not escaped: a NUL and a lone surrogate inside a JSON string.
        (good(1012).replace("learner1012", "lear\x00ner"), "_line", "Invalid control character"),
        (good(1013).replace("learner1013", "lear\udcffner"), "username", "lone surrogate"),
    ]


def write_log(path: Path) -> tuple[list[str], list[tuple[str, str, str]], list[int]]:
    """The log: the good lines with the hostile ones among them (one chunk); the number
    of each hostile line."""
    goods = [good(n, **TRICKY_LINES.get(n, {})) for n in range(GOOD)]
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


def stored(app: Flask, n: int) -> Any:
    """The row of good line ``n``."""
    e = events_table.c
    with app.extensions["tracking"].engine.connect() as conn:
        query = select(e.agent, e.page, e.event).where(e.username == f"learner{n}")
        return conn.execute(query).one()


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
    for n, fields in TRICKY_LINES.items():  # COPY's escapes undone exactly
        row = stored(plain_app, n)
        assert row.agent == fields.get("agent", f"agent {n}")
        assert row.page == fields.get("page")
        assert row.event == fields.get("event", row.event)
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
    assert len(failed) == len(bad)  # a failed line read again is kept once


#: What the database does, mid-COPY, with the row of ``learner12``: refuse it (a value
#: no limit foresaw), end the connection, or take longer than the statement may.
TROUBLE = {
    "refused": "RAISE EXCEPTION 'no such learner' USING ERRCODE = '22023'",
    "killed": "PERFORM pg_terminate_backend(pg_backend_pid())",
    "timeout": "PERFORM pg_sleep(3)",
}


def chunks_of(count: int, size: int = 7) -> list[set[str]]:
    """The usernames of the good lines, chunk by chunk."""
    names = [f"learner{n}" for n in range(count)]
    return [set(names[start : start + size]) for start in range(0, count, size)]


def trouble(app: Flask, body: str | None) -> None:
    """A trigger doing ``body`` on the row of ``learner12`` (``None``: no trigger)."""
    with app.extensions["tracking"].engine.begin() as conn:
        if body is None:
            conn.exec_driver_sql("DROP TRIGGER hostile ON tracking_events")
            conn.exec_driver_sql("DROP FUNCTION hostile()")
            return
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION hostile() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.username = 'learner12' THEN {body}; END IF; RETURN NEW; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER hostile BEFORE INSERT ON tracking_events"
            " FOR EACH ROW EXECUTE FUNCTION hostile()"
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("what", list(TROUBLE))
def test_postgresql_trouble_mid_copy_loses_and_repeats_nothing(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, jobs: str
) -> None:
    """A row the database refuses is that line's failed row, the rest of its chunk
    stored; a connection lost or a statement cut short stops the import (the database
    is unavailable), the chunks committed stay, and importing again stores the rest:
    every line once in the end."""
    postgresql_app = make_app(TRACKING_ANONYMIZE=False, TRACKING_DB_TIMEOUT=1.0)
    monkeypatch.setattr(tracking_logs, "CHUNK", 7)
    copies = copy_calls(monkeypatch)
    log = tmp_path / "good.log"
    log.write_text("\n".join(good(n) for n in range(GOOD)) + "\n", encoding="utf-8")
    trouble(postgresql_app, TROUBLE[what])

    result = postgresql_app.test_cli_runner().invoke(
        args=["tracking", "import", "-j", jobs, str(log)]
    )

    events, failed = rows(postgresql_app)
    if what == "refused":
        assert result.exit_code == 0, result.output
        summary = result.output.strip().splitlines()[-1]
        assert summary == f"read={GOOD} stored={GOOD - 1} duplicates=0 failed=1"
        assert sorted(events) == sorted(f"learner{n}" for n in range(GOOD) if n != 12)
        (row,) = failed
        assert row.reasons == {"_store": ["The database refused the event: no such learner"]}
        assert row.detail == f"{log}:13" and json.loads(row.raw)["username"] == "learner12"
    else:
        assert result.exit_code == 1, result.output
        assert "became unavailable during the import" in result.output, result.output
        assert "import the same files again" in result.output
        assert "Traceback" not in result.output
        assert "learner12" not in events and len(events) == len(set(events)) and not failed
        # Whole chunks stored, nothing of the one cut short.
        whole = [chunk for chunk in chunks_of(GOOD) if chunk <= set(events)]
        assert set(events) == set().union(*whole)
    if jobs == "1":  # COPY took every chunk but the one in trouble (and those after)
        taken = len(chunks_of(GOOD)) - 1 if what == "refused" else 1
        assert copies.count("stored") == taken and len(copies) == taken + 1, copies
    trouble(postgresql_app, None)
    before = len(events)

    again = run(postgresql_app, "-j", jobs, str(log))

    assert again == f"read={GOOD} stored={GOOD - before} duplicates={before} failed=0"
    events, _ = rows(postgresql_app)
    assert sorted(events) == sorted(f"learner{n}" for n in range(GOOD))
