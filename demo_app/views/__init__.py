"""The demo's pages, one blueprint per concern."""

from __future__ import annotations

from typing import Any

from flask import Flask, session

from ..course import COURSE_ID, COURSE_TITLE
from ..ext import USERNAME
from . import auth, course, events, vendor


def register(app: Flask) -> None:
    for module in (auth, course, events, vendor):
        app.register_blueprint(module.blueprint)

    @app.context_processor
    def learner() -> dict[str, Any]:
        return {
            "username": session.get(USERNAME),
            "course_id": COURSE_ID,
            "course_title": COURSE_TITLE,
        }
