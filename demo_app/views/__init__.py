"""The demo's pages, one blueprint per concern, and its error pages."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..course import COURSE_ID, COURSE_TITLE
from ..users import current_username, is_staff
from . import auth, course, errors, events, vendor


def register(app: Flask) -> None:
    for module in (auth, course, events, vendor):
        app.register_blueprint(module.blueprint)
    errors.register(app)

    @app.context_processor
    def learner() -> dict[str, Any]:
        return {
            "username": current_username(),
            "staff": is_staff(),
            "course_id": COURSE_ID,
            "course_title": COURSE_TITLE,
        }
