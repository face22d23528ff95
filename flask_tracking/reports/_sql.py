"""SQL pieces of the reports that aggregate in the database: payload fields by JSON kind,
the learner, and the rule that keeps SQL's answer equal to Python's.

**Clean rows.** A report that aggregates in SQL reads each payload field it needs only
when it holds a JSON number (``number``), a JSON string (``string``), or nothing (absent or
``null``). Any other value (a number written as a string, ``true``, an object, a number
too large for an integer) is *odd*: Python's reading of it (``_common.number``, ``str``)
has no exact equivalent in both SQL dialects. Every SQL report counts its odd rows in the
same query; if there are any, it answers with its Python replay instead (the same rows
as before, just slower). Real logs write these fields as numbers and strings, so the SQL
path is the one taken.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    Float,
    Text,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from ..engine import statement_timeout
from ._common import EVENTS

#: Integers beyond this are odd (a float holds them exactly; PostgreSQL's bigint too).
LARGEST = 2**53


def dialect_of(bind: Engine | Connection) -> str:
    return bind.dialect.name


def fields(
    dialect: str,
    query: Any,
    numbers: tuple[str, ...] = (),
    strings: tuple[str, ...] = (),
    name: str = "fields",
) -> Any:
    """The rows of ``query`` (a select of the events' own columns, with its filter) with,
    per payload field, ``k_NAME`` (``number``, ``string``, ``null`` for absent or
    ``null``, ``other``) and ``v_NAME`` (a float for the fields of ``numbers``, the text
    for ``strings``), as a CTE.

    Each field is read once per row (the JSON text of its value: ``event -> '$."NAME"'``
    on SQLite, ``event -> 'NAME'`` on PostgreSQL) in a first stage computed once
    (``AS MATERIALIZED``: else both databases copy the read into every expression that
    uses it); its kind and value are then read from that small text. A string field is
    read by ``json_extract`` / ``->>`` instead (one read too); on SQLite an object comes
    out of it as text, so a string starting with ``{`` or ``[`` is taken as ``other``
    (odd: the report then replays in Python, exactly).
    """
    raws: list[Any] = []
    for n in numbers:
        if dialect == "sqlite":
            raws.append(EVENTS.event.op("->", return_type=Text())(f'$."{n}"').label(f"r_{n}"))
        else:
            raws.append(EVENTS.event.op("->", return_type=Text())(literal(n)).label(f"r_{n}"))
    for n in strings:
        if dialect == "sqlite":
            raws.append(func.json_extract(EVENTS.event, f'$."{n}"', type_=Text()).label(f"r_{n}"))
        else:
            raws.append(EVENTS.event.op("->", return_type=JSON())(literal(n)).label(f"r_{n}"))
    one = query.add_columns(*raws).cte(f"{name}_read").prefix_with("MATERIALIZED")
    columns: list[Any] = [c for c in one.c if not c.name.startswith("r_")]
    for n in numbers:
        raw: Any = one.c[f"r_{n}"]
        if dialect == "sqlite":
            head: Any = func.substr(raw, 1, 1)
            k: Any = case(
                (raw.is_(None) | (raw == "null"), literal("null")),
                (head.in_(('"', "t", "f", "{", "[")), literal("other")),
                else_=literal("number"),
            )
        else:
            typed: Any = func.json_typeof(cast(raw, JSON))
            k = case(
                (raw.is_(None) | (typed == "null"), literal("null")),
                (typed == "number", literal("number")),
                else_=literal("other"),
            )
        value = case((k == "number", cast(cast(raw, Text()), Float)), else_=None)
        odd = (k == "other") | (func.coalesce(func.abs(value), 0.0) > float(LARGEST))
        columns += [k.label(f"k_{n}"), value.label(f"v_{n}"), odd.label(f"o_{n}")]
    for n in strings:
        raw = one.c[f"r_{n}"]
        if dialect == "sqlite":
            kind_of: Any = func.typeof(raw)
            k = case(
                (raw.is_(None), literal("null")),
                (kind_of.in_(("integer", "real")), literal("other")),
                (func.substr(raw, 1, 1).in_(("{", "[")), literal("other")),
                else_=literal("string"),
            )
            text: Any = raw
        else:
            typed = func.json_typeof(raw)
            k = case(
                (raw.is_(None) | (typed == "null"), literal("null")),
                (typed == "string", literal("string")),
                else_=literal("other"),
            )
            text = raw.op("#>>", return_type=Text())(literal([], ARRAY(Text())))
        columns += [k.label(f"k_{n}"), text.label(f"v_{n}"), (k == "other").label(f"o_{n}")]
    return select(*columns).cte(name).prefix_with("MATERIALIZED")


def integer_of(value: ColumnElement[float]) -> ColumnElement[int]:
    """``_common.integer`` of a float expression: its integer if whole, else NULL (values
    beyond :data:`LARGEST` must have been made odd by the caller)."""
    return case(
        (
            (func.abs(value) <= float(LARGEST)) & (value == func.floor(value)),
            cast(value, BigInteger),
        ),
        else_=None,
    )


def learner_sql() -> ColumnElement[str]:
    """``_common.learner``: the stored ``user_id``, else ``username``, else NULL."""
    return func.coalesce(func.nullif(EVENTS.user_id, ""), func.nullif(EVENTS.username, ""))


def run(bind: Engine | Connection, query: Any) -> list[Any]:
    """All the rows of an aggregate ``query`` (few), not bound by ``TRACKING_DB_TIMEOUT``."""
    if isinstance(bind, Engine):
        with bind.connect() as conn, statement_timeout(conn, None):
            return list(conn.execute(query))
    return list(bind.execute(query))
