"""Sign-in with just a username, kept in the Flask session (no password: it is a demo)."""

from __future__ import annotations

import hashlib
import re

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ..course import COURSE_ID
from ..ext import USER_ID, USERNAME

blueprint = Blueprint("auth", __name__)

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,30}$")


def user_id_for(name: str) -> int:
    """A stable numeric id for a name (the demo has no user table)."""
    return 100_000 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 900_000


@blueprint.get("/")
def index() -> Response | str:
    if session.get(USERNAME):
        return redirect(url_for("course.courseware", course_id=COURSE_ID))
    return render_template("signin.html", error=None, name="")


@blueprint.post("/signin")
def signin() -> Response | tuple[str, int]:
    name = (request.form.get("username") or "").strip()
    if not NAME.match(name):
        error = "Use 1 to 30 letters, digits, dots, dashes or underscores."
        return render_template("signin.html", error=error, name=name), 400
    session.clear()
    session[USERNAME] = name
    session[USER_ID] = user_id_for(name)
    return redirect(url_for("course.courseware", course_id=COURSE_ID))


@blueprint.post("/signout")
def signout() -> Response:
    session.clear()
    return redirect(url_for("auth.index"))
