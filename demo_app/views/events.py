"""The events page: what the tracking tables hold, newest first, refreshed every second.

Built on the public query API: ``tracking.events(...)`` gives a SQLAlchemy select over
``TrackingEvent``, run here with ``tracking.engine``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request, session
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from flask_tracking import TrackingEvent

from ..ext import USERNAME, tracking

blueprint = Blueprint("events", __name__)

#: Most events one answer holds.
LIMIT = 200


@blueprint.get("/events")
def page() -> str:
    return render_template("events.html")


@blueprint.get("/events.json")
def feed() -> Response:
    """``?after=<row id>`` (only newer rows) and ``?mine=1`` (only the learner's)."""
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        after = 0
    mine = request.args.get("mine") == "1"
    query = tracking.events(username=session.get(USERNAME, "") if mine else None)
    query = query.where(TrackingEvent.id > after).order_by(TrackingEvent.id.desc()).limit(LIMIT)
    with Session(tracking.engine) as db:
        rows = [_row(event) for event in db.scalars(query)]
        total = db.scalar(select(func.count()).select_from(TrackingEvent))
    return jsonify(events=rows, total=total)


def _row(event: TrackingEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event_id": event.event_id,
        "time": event.time.isoformat(timespec="milliseconds") + "Z",
        "event_type": event.event_type,
        "event_source": event.event_source,
        "username": event.username,
        "user_id": event.user_id,
        "course_id": event.course_id,
        "page": event.page,
        "seq": event.seq,
        "event": event.event,
    }
