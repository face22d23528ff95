"""The Caliper 1.2 envelope: ``sensor``, ``sendTime``, ``dataVersion``, ``data``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .entities import CONTEXT


def send_time(now: datetime | None = None) -> str:
    """``now`` (default: the current time) as UTC with milliseconds and ``Z``."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def envelope(
    sensor: str, data: Sequence[dict[str, Any]], now: datetime | None = None
) -> dict[str, Any]:
    """The envelope of ``data`` (Caliper events) sent by ``sensor`` (an IRI)."""
    return {
        "sensor": sensor,
        "sendTime": send_time(now),
        "dataVersion": CONTEXT,
        "data": list(data),
    }
