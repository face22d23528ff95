"""Property tests of both ingest endpoints on SQLite and PostgreSQL: hostile envelopes and
payloads never get a 5xx, and nothing is lost.

Every request is checked by :func:`check_nothing_lost`: the answer is JSON and below 500;
each event sent is stored, a duplicate, or in the failed table, and the counts add up
exactly; what was stored reads back as strict JSON (no NaN or Infinity token; SQLite's
``json_extract`` works on the whole table) and within ``TRACKING_MAX_EVENT_BYTES`` as
``flask_tracking/limits.py`` documents it; failed rows read back, bounded.

Deep values are JSON text made by :func:`deep` from a drawn depth, not ``st.recursive``
(Python cannot even encode a value thousands of levels deep, and shrinking one is slow).
Tokens Python never writes (``1e400``, 40-digit integers) go in as :class:`Raw` fragments.
Hostile values are mostly put into an otherwise good event (:func:`spoiled`), so that the
good neighbours of a bad event are seen stored. ``--hypothesis-show-statistics`` shows
the answers the fuzz got.
"""

from __future__ import annotations

import contextlib
import json
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from sqlalchemy import Table, func, select, text

from flask_tracking.event import FIELDS
from flask_tracking.failures import KEEP_RAW_BYTES
from flask_tracking.limits import INDEXED_TEXT_BYTES
from flask_tracking.models import events_table, failed_table

MAX_EVENT_BYTES = 32 * 1024  # TRACKING_MAX_EVENT_BYTES
MAX_REQUEST_BYTES = 512 * 1024  # TRACKING_MAX_REQUEST_BYTES
MAX_BATCH_EVENTS = 500  # TRACKING_MAX_BATCH_EVENTS
BATCH, SINGLE = "/activity/events", "/activity/event"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
#: What counts towards TRACKING_MAX_EVENT_BYTES (limits.py): text fields and JSON values.
TEXT_FIELDS = tuple(f.name for f in FIELDS if f.kind in ("id", "text", "code"))
JSON_FIELDS = tuple(f.name for f in FIELDS if f.kind == "json")
PAGE = "https://lms.example/courses/course-v1:Org+Num+Run/courseware"


@dataclass(frozen=True)
class Raw:
    """A JSON fragment written into a body as it is: a token or a deep value."""

    text: str


_MARK = re.compile(r'"@raw(\d+)@"')


def render(value: Any, *, ascii_only: bool = True) -> bytes:
    """``value`` as a JSON body with its :class:`Raw` fragments in place. Lone surrogates
    become ``\\ud800`` escapes (``ascii_only``), else the bytes ``surrogatepass`` writes."""
    fragments: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            fragments.append(item.text)
            return f"@raw{len(fragments) - 1}@"
        if isinstance(item, dict):
            return {key: mark(child) for key, child in item.items()}
        return [mark(child) for child in item] if isinstance(item, list) else item

    written = json.dumps(mark(value), ensure_ascii=ascii_only)
    return _MARK.sub(lambda m: fragments[int(m[1])], written).encode("utf-8", "surrogatepass")


def as_text(value: Any) -> str:
    """``value`` as the JSON string an edX ``event`` field carries."""
    return value if isinstance(value, str) else render(value).decode()


def form(fields: Mapping[str, Any]) -> bytes:
    """``fields`` form-encoded (values as text, a lone surrogate as its raw bytes)."""
    encoded = (as_text(value).encode("utf-8", "surrogatepass") for value in fields.values())
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in zip(fields, encoded, strict=True)).encode()


def deep(depth: int, kind: str = "list") -> Raw:
    """A JSON value nested ``depth`` levels: ``[[1]]``, ``{"a":{"a":1}}`` or ``[{"a":1}]``."""
    opener, closer = {"list": ("[", "]"), "dict": ('{"a":', "}"), "mixed": ('[{"a":', "}]")}[kind]
    return Raw(opener * depth + "1" + closer * depth)


def width(char: str) -> int:
    return len(char.encode("utf-8", "surrogatepass"))


def item(**fields: Any) -> dict[str, Any]:
    """A good batch item, with ``fields`` changed."""
    return {"id": str(uuid.uuid4()), "event_type": "made.up", "event": {}, "time": 1, **fields}


# -- strategies ------------------------------------------------------------------------------

deep_values = st.builds(
    deep, st.integers(0, 40) | st.integers(0, 3000), st.sampled_from(["list", "dict", "mixed"])
)
NUMBERS = (
    st.sampled_from([*map(Raw, ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 40])])
    | st.sampled_from([2**70, -(2**80), 2**63, 2**63 - 1, -(2**63), -(2**63) - 1])
    | st.sampled_from([1e308, 5e-324, -0.0, Raw("-0"), Raw("1E+2"), Raw("0.1e-999")])
    | st.integers()
    | st.floats()
)
CHARS = st.sampled_from(
    [*"\ud800\udfff\x00\x01\x1f\x7f\n\x85\u2028\ufeff\U0001f600é€%&=", "\udc00\ud800"]
)
WIDE = st.sampled_from(["a", "é", "€", "\U0001f600"])


def around(size: int, spread: int, chars: st.SearchStrategy[str] = WIDE) -> Any:
    """Text of about ``size`` bytes of UTF-8, in characters of one width."""
    return st.builds(
        lambda char, off: char * max(1, size // width(char) + off),
        chars,
        st.integers(-spread, spread),
    )


nasty = st.lists(CHARS | st.characters(), max_size=12).map("".join)
#: Hostile text: lone surrogates, NUL, controls, astral, around the indexed-text limit.
texts = (
    st.text(max_size=20)
    | nasty
    | around(INDEXED_TEXT_BYTES, 3, WIDE | st.just("\ud800"))
    | st.just("x" * 3000)
)
TYPES = st.sampled_from(["play_video", "seq_goto", "page_close", "problem_check", "showanswer"])
#: Values both databases hold: what events are made of before they are spoiled.
good_text = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=20)
good_payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | good_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(good_text, inner, max_size=3),
    max_leaves=6,
)
#: Event ids: hypothesis's repeat (duplicates), fresh ones are stored.
IDS = st.uuids().map(str) | st.builds(lambda: str(uuid.uuid4()))
payloads = deep_values | st.recursive(
    st.none() | st.booleans() | NUMBERS | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty, inner, max_size=3),
    max_leaves=8,
)
#: ``event`` as a string: JSON text (of anything above), a query string, or any text.
event_strings = (
    payloads.map(as_text)
    | st.lists(st.tuples(nasty, nasty), max_size=3).map(lambda kv: "&".join(map("=".join, kv)))
    | texts
)
course_pages = st.builds("https://lms.example/courses/{}/courseware".format, texts)
pages = texts | course_pages | deep_values | NUMBERS
#: Identity is the server's: never read from a body, but scrubbed from failed rows.
IDENTITY = {
    "username": texts,
    "session": texts,
    "context": st.fixed_dictionaries({"user_id": texts}),
}


def spoiled(base: st.SearchStrategy[dict[str, Any]], hostile: dict[str, Any]) -> Any:
    """``base`` with up to two of its fields (or new ones) set to hostile values."""
    names = st.lists(st.sampled_from(sorted(hostile)), max_size=2, unique=True)
    overrides = names.flatmap(lambda keys: st.fixed_dictionaries({k: hostile[k] for k in keys}))
    return st.builds(lambda good, bad: {**good, **bad}, base, overrides)


items = spoiled(
    st.fixed_dictionaries(
        {"id": IDS, "event_type": st.just("made.up") | TYPES | good_text},
        optional={"event": good_payloads, "page": st.just(PAGE), "time": st.integers(0, 2**41)},
    ),
    {
        "id": st.none() | st.text(max_size=10) | st.integers() | st.uuids().map(lambda u: u.hex),
        "event_type": texts | payloads,
        "event": payloads | event_strings,
        "page": pages,
        "time": NUMBERS,
        "seq": NUMBERS,
        "name": texts,
        "extra": deep_values,
        **IDENTITY,
    },
)
batches = spoiled(
    st.fixed_dictionaries(
        {
            "sent_at": st.integers(0, 2**41),
            # Events, and now and then something else in the list.
            "events": st.builds(
                list.__add__, st.lists(items, max_size=6), st.lists(payloads, max_size=1)
            ),
        }
    ),
    {"sent_at": NUMBERS | deep_values, "username": texts},
)
edx_fields = spoiled(
    st.fixed_dictionaries(
        {
            "event_type": st.just("made.up") | TYPES,
            "event": good_payloads.map(as_text),
            "page": st.just(PAGE),
        }
    ),
    {
        "event_type": texts | payloads,
        "event": payloads | event_strings,
        "page": pages,
        "courserun_key": texts | NUMBERS,
        "tracking_event_type": st.just("made.up") | texts,
        "event_data": payloads | event_strings,
        "node_id": payloads,
        **IDENTITY,
    },
)
#: Content types: JSON (as edX's Logger.log posts it), text/plain (the Logger), forms.
ENCODINGS = st.sampled_from(
    [JSON, "text/plain;charset=UTF-8", FORM, "multipart/form-data; boundary=x", ""]
)
#: Each test shrinks one failure only: several at once cost minutes of shrinking.
FUZZ = settings(
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- checks ----------------------------------------------------------------------------------


def high_water(app: Flask) -> tuple[int, int]:
    """The highest ids of the event and failed tables (rows after them are new)."""
    with app.extensions["tracking"].engine.connect() as conn:
        events, failed = (
            int(conn.execute(select(func.coalesce(func.max(t.c.id), 0))).scalar_one())
            for t in (events_table, failed_table)
        )
    return events, failed


def new_rows(app: Flask, table: Table, after: int) -> list[Any]:
    with app.extensions["tracking"].engine.connect() as conn:
        return list(conn.execute(select(table).where(table.c.id > after)).mappings())


def post(app: Flask, path: str, body: bytes, content_type: str) -> Any:
    """POST ``body``; an exception (a 500 outside tests) fails, naming where it rose."""
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        return app.test_client().post(path, data=body, headers=headers)
    except Exception as exc:  # TESTING propagates what would be a 500
        ours = [
            f for f in traceback.extract_tb(exc.__traceback__) if "flask_tracking" in f.filename
        ]
        where = f"{ours[-1].filename}:{ours[-1].lineno} {ours[-1].name}" if ours else "?"
        raise AssertionError(f"a 500: {type(exc).__name__} at {where}") from exc


def stored_size(row: Mapping[str, Any]) -> int:
    """An event's stored size as limits.py documents it (payload, context and text fields
    as UTF-8), at least: JSON is measured compact."""
    size = sum(len(row[k].encode()) for k in TEXT_FIELDS if row[k] is not None)
    for key in JSON_FIELDS:
        if row[key] is not None:
            compact = json.dumps(
                row[key], ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
            size += len(compact.encode())
    return size


def strict(value: str | None) -> None:
    if value is not None:
        json.loads(value, parse_constant=lambda token: pytest.fail(f"{token} stored: {value}"))


def check_readable(app: Flask, after: tuple[int, int]) -> None:
    """New rows read back: strict JSON, within the event limit; failed rows bounded."""
    engine = app.extensions["tracking"].engine
    queries = [(f"SELECT CAST({c} AS TEXT) FROM tracking_events", after[0]) for c in JSON_FIELDS]
    queries.append(("SELECT CAST(reasons AS TEXT) FROM tracking_failed_events", after[1]))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            for sql in (
                "SELECT json_extract(event, '$'), json_extract(context, '$') FROM tracking_events",
                "SELECT json_extract(reasons, '$') FROM tracking_failed_events",
            ):
                conn.execute(text(sql)).all()
        for query, last in queries:
            for (value,) in conn.execute(text(f"{query} WHERE id > :last"), {"last": last}):
                strict(value)
    for row in new_rows(app, events_table, after[0]):
        assert stored_size(row) <= MAX_EVENT_BYTES, (
            f"stored {stored_size(row)} bytes of UTF-8 (page {len(row['page'] or '')} characters,"
            f" name {len(row['name'] or '')}, event_raw {len(row['event_raw'] or '')})"
        )
    for row in new_rows(app, failed_table, after[1]):
        assert len(row["raw"].encode()) <= KEEP_RAW_BYTES + 4096


def check_nothing_lost(app: Flask, answer: Any, sent: int, before: tuple[int, int]) -> None:
    """Every event sent is stored, a duplicate, or kept in the failed table."""
    assert answer.status_code < 500, answer.get_data(as_text=True)
    assert answer.is_json, answer.get_data(as_text=True)
    stored = len(new_rows(app, events_table, before[0]))
    failed = len(new_rows(app, failed_table, before[1]))
    with contextlib.suppress(InvalidArgument):  # outside @given: no statistics
        event(f"{answer.status_code}: {bool(stored)=} {bool(failed)=}")
    if answer.status_code == 200:
        body = answer.json
        assert body["accepted"] == stored
        assert len(body["failed"]) == failed
        assert body["accepted"] + body["duplicates"] + len(body["failed"]) == sent
    else:
        assert stored == 0, answer.json
        assert failed == 1, answer.json  # the refused request is kept, raw
    check_readable(app, before)


def events_in(body: bytes) -> int:
    """How many events a batch body holds (0 when it is not a batch)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return 0
    events = parsed.get("events") if isinstance(parsed, dict) else None
    return len(events) if isinstance(events, list) else 0


# -- the endpoints, fuzzed -------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(
    body=st.binary(max_size=300),
    content_type=ENCODINGS | st.just("text/plain; charset=latin-1"),
    path=st.sampled_from([BATCH, SINGLE]),
)
def test_random_bytes_never_get_a_500(
    app: Flask, body: bytes, content_type: str, path: str
) -> None:
    before = high_water(app)
    answer = post(app, path, body, content_type)
    check_nothing_lost(app, answer, 1 if path == SINGLE else events_in(body), before)


@settings(FUZZ, max_examples=250)
@given(body=batches, ascii_only=st.sampled_from([True, True, True, False]), content_type=ENCODINGS)
def test_hostile_batches_lose_nothing(
    app: Flask, body: dict[str, Any], ascii_only: bool, content_type: str
) -> None:
    before = high_water(app)
    answer = post(app, BATCH, render(body, ascii_only=ascii_only), content_type)
    check_nothing_lost(app, answer, len(body["events"]), before)


@settings(FUZZ, max_examples=250)
@given(fields=edx_fields, content_type=ENCODINGS)
def test_hostile_edx_posts_lose_nothing(
    app: Flask, fields: dict[str, Any], content_type: str
) -> None:
    is_json = content_type.startswith((JSON, "text/"))
    before = high_water(app)
    answer = post(app, SINGLE, render(fields) if is_json else form(fields), content_type)
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)
    check_nothing_lost(app, answer, 1, before)


# -- one hostile value in each field ---------------------------------------------------------

COURSE_PAGE = "https://lms.example/courses/{}/courseware"
#: A good event with one field set to a value: ``slot(value) -> (path, fields)``.
SLOTS: dict[str, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    "batch.sent_at": lambda v: (BATCH, {"sent_at": v, "events": [item()]}),
    "batch.event_type": lambda v: (BATCH, {"events": [item(event_type=v)]}),
    "batch.event": lambda v: (BATCH, {"events": [item(event=v)]}),
    "batch.event-query": lambda v: (BATCH, {"events": [item(event=f"a={as_text(v)}")]}),
    "batch.event-key": lambda v: (BATCH, {"events": [item(event={as_text(v): 1})]}),
    "batch.page": lambda v: (BATCH, {"events": [item(page=v)]}),
    "batch.course": lambda v: (BATCH, {"events": [item(page=COURSE_PAGE.format(as_text(v)))]}),
    "batch.name": lambda v: (BATCH, {"events": [item(name=v)]}),
    "batch.seq": lambda v: (BATCH, {"events": [item(seq=v)]}),
    "batch.time": lambda v: (BATCH, {"events": [item(time=v)]}),
    "batch.username": lambda v: (BATCH, {"events": [item(username=v)]}),
    "batch.context": lambda v: (BATCH, {"events": [item(context={"user_id": v, "ip": v})]}),
    "edx.event_type": lambda v: (SINGLE, {"event_type": v, "event": "{}", "page": PAGE}),
    "edx.event": lambda v: (SINGLE, {"event_type": "made.up", "event": v}),
    "edx.event-query": lambda v: (SINGLE, {"event_type": "made.up", "event": f"a={as_text(v)}"}),
    "edx.page": lambda v: (SINGLE, {"event_type": "made.up", "page": v}),
    "edx.course": lambda v: (SINGLE, {"event_type": "x", "page": COURSE_PAGE.format(as_text(v))}),
    "edx.courserun_key": lambda v: (SINGLE, {"event_type": "made.up", "courserun_key": v}),
    "edx.username": lambda v: (SINGLE, {"event_type": "made.up", "username": v, "session": v}),
    "edx.tracking_event_type": lambda v: (SINGLE, {"tracking_event_type": v}),
    "edx.event_data": lambda v: (SINGLE, {"tracking_event_type": "x", "event_data": v}),
    "edx.node_id": lambda v: (SINGLE, {"tracking_event_type": "x", "node_id": v}),
}


def encode(path: str, fields: dict[str, Any], as_form: bool = False) -> tuple[str, bytes, str]:
    """The request of ``fields``: JSON, or a form for ``/activity/event`` if ``as_form``."""
    return (
        (path, form(fields), FORM) if as_form and path == SINGLE else (path, render(fields), JSON)
    )


@settings(FUZZ, max_examples=200)
@given(
    slot=st.sampled_from(sorted(SLOTS)),
    value=texts | event_strings | NUMBERS,
    as_form=st.booleans(),
)
def test_a_hostile_value_in_any_field_loses_nothing(
    app: Flask, slot: str, value: Any, as_form: bool
) -> None:
    before = high_water(app)
    answer = post(app, *encode(*SLOTS[slot](value), as_form=as_form))
    check_nothing_lost(app, answer, 1, before)


# -- depth at the parser's limit -------------------------------------------------------------

#: Where a deep value goes: ``place(value) -> (path, body, content type)``.
PLACES: dict[str, Callable[[Raw], tuple[str, bytes, str]]] = {
    "body": lambda v: (BATCH, v.text.encode(), JSON),
    "sent_at": lambda v: (BATCH, render({"sent_at": v, "events": [item()]}), JSON),
    "events": lambda v: (
        BATCH,
        render({"events": Raw(v.text.replace("1", render(item()).decode(), 1))}),
        JSON,
    ),
    "item.event": lambda v: (BATCH, render({"events": [item(event=v)]}), JSON),
    "item.event-string": lambda v: (BATCH, render({"events": [item(event=v.text)]}), JSON),
    "item.page": lambda v: (BATCH, render({"events": [item(page=v)]}), JSON),
    "item.extra": lambda v: (BATCH, render({"events": [item(extra=v)]}), JSON),
    "edx.event": lambda v: (SINGLE, render({"event_type": "made.up", "event": v}), JSON),
    "edx.event-string": lambda v: (SINGLE, render({"event_type": "x", "event": v.text}), JSON),
    "edx.form-event-string": lambda v: (SINGLE, form({"event_type": "x", "event": v.text}), FORM),
}


def parser_limit(app: Flask, place: str, kind: str) -> int:
    """The deepest value at ``place`` the endpoint still parses, by bisection (a 500
    counts as parsed: it rose after the parser)."""
    low, high = 0, 4096  # parsed at low, not at high
    while high - low > 1:
        middle = (low + high) // 2
        try:
            answer = post(app, *PLACES[place](deep(middle, kind)))
            parsed = not (answer.status_code == 400 and "too deeply" in answer.text)
        except AssertionError:
            parsed = True
        low, high = (middle, high) if parsed else (low, middle)
    return low


@pytest.mark.parametrize("place", list(PLACES))
def test_depth_at_the_parsers_limit_never_gets_a_500(app: Flask, place: str) -> None:
    """Python's parser gives up about 1,000 levels deep, less the stack in use; a value
    just shallow enough to parse must not break what runs after it (encoders, failed
    rows). The limit is found here, by bisection, and every depth around it is sent: the
    depths that break are a window of one to five, too narrow for random draws."""
    for kind in ("list", "dict"):
        limit = parser_limit(app, place, kind)
        for depth in range(limit - 12, limit + 4):
            before = high_water(app)
            try:
                check_nothing_lost(app, post(app, *PLACES[place](deep(depth, kind))), 1, before)
            except AssertionError as exc:
                raise AssertionError(
                    f"{depth} levels of {kind} (parsed to {limit}): {exc}"
                ) from exc


# -- sizes around the limits -----------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(
    place=st.sampled_from(["batch.event", "batch.page", "batch.name", "edx.event", "edx.page"]),
    char=WIDE,
    offset=st.integers(-600, 200),
)
def test_events_around_the_event_limit_are_stored_within_it(
    app: Flask, place: str, char: str, offset: int
) -> None:
    """An event is stored only within TRACKING_MAX_EVENT_BYTES, counted in bytes whatever
    the width of its characters."""
    pad = char * ((MAX_EVENT_BYTES + offset) // width(char))
    endpoint, field = place.split(".")
    if endpoint == "batch":
        value: Any = {"pad": pad} if field == "event" else pad
        path, raw, content_type = BATCH, render({"events": [item(**{field: value})]}), JSON
    else:
        fields = {"event_type": "made.up", "event": "{}", "page": "https://lms.example/"}
        fields[field] = json.dumps({"pad": pad}, ensure_ascii=False) if field == "event" else pad
        path, raw, content_type = SINGLE, form(fields), FORM
    before = high_water(app)
    check_nothing_lost(app, post(app, path, raw, content_type), 1, before)


@settings(FUZZ, max_examples=20)
@given(
    path=st.sampled_from([BATCH, SINGLE]),
    offset=st.integers(-64, 64),
    n=st.integers(1, 20) | st.sampled_from([MAX_BATCH_EVENTS, MAX_BATCH_EVENTS + 1]),
)
def test_bodies_around_the_request_limit(app: Flask, path: str, offset: int, n: int) -> None:
    """A body one byte over TRACKING_MAX_REQUEST_BYTES gets a 413; one at the limit is read
    (its events stored or refused one by one), unless it holds too many events."""
    n = 1 if path == SINGLE else n

    def body(pads: list[int]) -> bytes:
        if path == SINGLE:
            return render({"event_type": "made.up", "event": json.dumps({"pad": "x" * pads[0]})})
        return render({"sent_at": 1, "events": [item(event={"pad": "x" * k}) for k in pads]})

    spare = MAX_REQUEST_BYTES + offset - len(body([0] * n))
    raw = body([spare // n + (spare % n if i == 0 else 0) for i in range(n)])
    assert len(raw) == MAX_REQUEST_BYTES + offset
    before = high_water(app)
    answer = post(app, path, raw, JSON)
    if offset > 0:
        assert answer.status_code == 413 and answer.json["code"] == "request_too_large"
    elif n > MAX_BATCH_EVENTS:
        assert answer.status_code == 413 and answer.json["code"] == "too_many_events"
    else:
        assert answer.status_code in (200, 400) and answer.json.get("code") != "request_too_large"
    check_nothing_lost(app, answer, n, before)


@pytest.mark.parametrize("path", [BATCH, SINGLE])
def test_lone_surrogates_and_nuls_are_refused_not_500(app: Flask, path: str) -> None:
    nasty_body = (
        '{"sent_at": 1, "events": [{"id": "%s", "event_type": "x\\u0000", "event": '
        '{"a": "\\ud800"}, "page": "\\udfff", "time": 1}], "event_type": "\\ud800"}'
    )
    before = high_water(app)
    answer = post(app, path, (nasty_body % uuid.uuid4()).encode(), JSON)
    assert answer.status_code in (200, 400)
    check_nothing_lost(app, answer, 1, before)
