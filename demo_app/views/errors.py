"""Error pages in the demo's look: 404, 405, 500 and any other HTTP error.

A browser gets an HTML page with a way back; the JSON feed and the tracking endpoints
(``/activity/...``) get JSON in the tracker's shape (``status``, ``code``, ``message``).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from flask_tracking import get_state

#: What each page says, by status (anything else: the error's own name and text).
MESSAGES = {
    404: ("Page not found", "There is no page at this address: it may have moved."),
    405: ("Not allowed", "This page cannot be used that way."),
    500: ("Something went wrong", "The demo hit an error. Try again, or go back to the course."),
}


def register(app: Flask) -> None:
    # An unhandled exception reaches this as an InternalServerError (Flask logs it first).
    app.register_error_handler(HTTPException, http_error)


def http_error(error: HTTPException) -> tuple[Response | str, int]:
    status = error.code or 500
    title, text = MESSAGES.get(status, (error.name, error.description or ""))
    if _wants_json():
        code = error.name.lower().replace(" ", "_")
        return jsonify(status=status, code=code, message=text), status
    return render_template("error.html", status=status, title=title, text=text), status


def _wants_json() -> bool:
    prefix = get_state().config.url_prefix.rstrip("/") + "/"
    if request.path.endswith(".json") or (prefix != "/" and request.path.startswith(prefix)):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"
