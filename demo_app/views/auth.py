"""Sign-in with just a username, kept in the Flask session (no password: it is a demo)."""

from __future__ import annotations

import re

from flask import Blueprint, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ..course import COURSE_ID
from ..ext import USER_ID, USERNAME
from ..users import user_id_for

__all__ = ["blueprint", "user_id_for"]

blueprint = Blueprint("auth", __name__)

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,30}$")


def _next_page() -> str:
    """Where to go after signing in: the ``next`` page of this site, else the course."""
    target = request.values.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("course.courseware", course_id=COURSE_ID)


@blueprint.get("/")
def index() -> Response | str:
    if session.get(USERNAME):
        return redirect(_next_page())
    return render_template("signin.html", error=None, name="", next=request.args.get("next", ""))


@blueprint.post("/signin")
def signin() -> Response | tuple[str, int]:
    name = (request.form.get("username") or "").strip()
    if not NAME.match(name):
        error = "Use 1 to 30 letters, digits, dots, dashes or underscores."
        next_page = request.form.get("next", "")
        return render_template("signin.html", error=error, name=name, next=next_page), 400
    session.clear()
    session[USERNAME] = name
    session[USER_ID] = user_id_for(name)
    return redirect(_next_page())


@blueprint.post("/signout")
def signout() -> Response:
    session.clear()
    return redirect(url_for("auth.index"))
