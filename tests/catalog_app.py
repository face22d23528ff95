"""The app of the catalog tests: a server type in two versions, a browser type, and one
for both (``tests/test_catalog*.py``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Flask
from marshmallow import Schema, fields, validate

from flask_tracking import Tracking

from support import failed, rows

ENROLL = "myapp.enrollment.activated"
QUIZ = "myapp.quiz.started"
BOOKMARK = "myapp.bookmark.added"


class EnrollmentV1(Schema):
    """A learner's enrollment became active."""

    course_id = fields.String(required=True, metadata={"description": "The course run."})
    mode = fields.String(required=True, validate=validate.OneOf(["audit", "verified"]))


class EnrollmentV2(Schema):
    """A learner's enrollment became active (with the price paid)."""

    course_id = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(["audit", "verified"]))
    price = fields.Float(required=True, allow_none=True)


def make_tracking(*, v2: bool = True) -> Tracking:
    """A Tracking with the app's three types registered (the two forms of registration)."""
    tracking = Tracking()
    tracking.event_type(ENROLL, EnrollmentV1, source="server", version=1)
    if v2:
        tracking.event_type(ENROLL, EnrollmentV2, source="server", version=2)

    @tracking.event_type(QUIZ, source="browser", examples=[{"quiz_id": "q1", "attempt": 1}])
    class QuizStarted(Schema):
        """The learner opened a quiz."""

        quiz_id = fields.String(required=True)
        attempt = fields.Integer(required=True, strict=True)

    @tracking.event_type(BOOKMARK, source="both", description="A page was bookmarked.")
    class Bookmark(Schema):
        url = fields.String(required=True)

    return tracking


def prefix(app: Flask) -> str:
    return app.extensions["tracking"].config.url_prefix.rstrip("/")


def item(event_type: str, data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "event_type": event_type,
        "event": data,
        "time": time.time() * 1000,
    }


def stored(app: Flask) -> list[tuple[str, str, int | None]]:
    return [(r.event_type, r.event_source, r.schema_version) for r in rows(app)]


def reasons(app: Flask) -> list[dict[str, Any]]:
    return [f.reasons for f in failed(app)]
