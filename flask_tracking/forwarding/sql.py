"""SQL helpers shared by the outbox's delivery side and its sweep/report side."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    any_,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

from ..models import events_table
from .models import PENDING, deliveries_table

D = deliveries_table
E = events_table
#: Ids per ``IN (...)`` list.
CHUNK = 1000
#: Longest ``last_error`` kept.
ERROR_LIMIT = 2000


def utcnow() -> datetime:
    """Naive UTC now, like every time column of the tracking tables."""
    return datetime.now(UTC).replace(tzinfo=None)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def in_list(
    pg: bool, column: Any, values: Sequence[Any], kind: TypeEngine[Any] | None = None
) -> ColumnElement[bool]:
    """``column IN values`` with one parameter: long ``IN (?, ?, ...)`` lists are slow."""
    if pg:
        array = postgresql.ARRAY(kind if kind is not None else BigInteger())
        return column == any_(literal(list(values), array))
    # SQLite: one JSON parameter instead of one per value.
    each: Any = select(literal_column("value")).select_from(
        func.json_each(literal(json.dumps(list(values))))
    )
    result: ColumnElement[bool] = column.in_(each.scalar_subquery())
    return result


def still_pending() -> ColumnElement[bool]:
    """``state = 'pending'`` for rows found by id: kept away from the (state, destination)
    index, which the planner may otherwise pick and then scan every pending row (a big
    backlog, or a table without statistics yet)."""
    return func.coalesce(D.c.state, "") == PENDING


def unclaimed(now: datetime) -> ColumnElement[bool]:
    """No claim, or a claim whose lease ran out (its job died)."""
    return or_(D.c.claimed_until.is_(None), D.c.claimed_until < now)


def clip(text: str, limit: int = ERROR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
