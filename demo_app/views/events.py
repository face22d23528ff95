"""The events page: stored events, newest first, refreshed every second.

A learner sees only their own events; staff see everyone's (``users.can_see_everyone``).
Nobody signed in: the page sends to the sign-in page, the JSON feed answers 401.

Built on the public query API: ``tracking.events(...)`` gives a SQLAlchemy select over
``TrackingEvent``, run here with ``tracking.engine``. A learner's events are those whose
``user_id`` column holds the identity the tracker stored for them
(``users.stored_user_id``: their id, or its anonymous id under ``TRACKING_ANONYMIZE``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from sqlalchemy import Select, func
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from flask_tracking import TrackingEvent, get_state

from ..ext import tracking
from ..users import can_see_everyone, current_username, stored_user_id

blueprint = Blueprint("events", __name__)

#: Most events one answer holds.
LIMIT = 200


@blueprint.get("/events")
def page() -> Response | str:
    if current_username() is None:
        return redirect(url_for("auth.index", next=request.path))
    return render_template(
        "events.html",
        everyone=can_see_everyone(),
        me=stored_user_id() or "",
        anonymized=get_state().config.anonymize,
        dashboard=get_state().config.dashboard,
    )


@blueprint.get("/events.json")
def feed() -> Response | tuple[Response, int]:
    """``?after=<row id>`` (only newer rows); ``?mine=1`` (staff: only their own)."""
    if current_username() is None:
        return jsonify(error="Sign in to see events."), 401
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        after = 0
    visible = _visible(mine=request.args.get("mine") == "1")
    query = visible.where(TrackingEvent.id > after).order_by(TrackingEvent.id.desc()).limit(LIMIT)
    count = visible.with_only_columns(func.count(), maintain_column_froms=True)
    with Session(tracking.engine) as db:
        rows = [_row(event) for event in db.scalars(query)]
        total = db.scalar(count)
    return jsonify(events=rows, total=total, everyone=can_see_everyone())


def _visible(*, mine: bool) -> Select[Any]:
    """The events the signed-in user may see (staff: all, unless ``mine``)."""
    if can_see_everyone() and not mine:
        return tracking.events()
    # No stored id (a session without one) matches no row: never everyone's.
    return tracking.events(user_id=stored_user_id() or "").where(TrackingEvent.user_id.is_not(None))


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
