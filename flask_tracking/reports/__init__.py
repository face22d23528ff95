"""Reports over the stored events: plain rows (a list of dicts) for people who study the
data, the CLI (``flask tracking report NAME``) and a dashboard.

Every report is a function ``report(bind, course_id=None, since=None, until=None,
tz="UTC") -> list[dict]``: ``bind`` is an engine or a connection, the window is
``[since, until)`` (aware times, or naive UTC), ``tz`` an IANA zone for day boundaries.
SQLite and PostgreSQL give the same rows. See docs/analytics.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .activity import active_learners, activity
from .health import health_deliveries, health_delivery, health_failed, health_schema, health_skew
from .problems import problem_attempts, problems
from .sequence import sequence, sequence_transitions, sequence_units
from .textbook import textbook, textbook_pages
from .video import video, video_curve

Report = Callable[..., list[dict[str, Any]]]

#: Report name (as the CLI takes it) -> function.
REPORTS: dict[str, Report] = {
    "activity": activity,
    "learners": active_learners,
    "video": video,
    "video-curve": video_curve,
    "sequence": sequence,
    "sequence-units": sequence_units,
    "sequence-transitions": sequence_transitions,
    "textbook": textbook,
    "textbook-pages": textbook_pages,
    "problems": problems,
    "problem-attempts": problem_attempts,
    "health-failed": health_failed,
    "health-schema": health_schema,
    "health-delivery": health_delivery,
    "health-skew": health_skew,
    "health-deliveries": health_deliveries,
}

__all__ = ["REPORTS", "Report", *(f.__name__ for f in REPORTS.values())]
