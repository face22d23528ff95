"""The demo's one ``Tracking`` object and where its identity comes from."""

from __future__ import annotations

from typing import Any

from flask import session

from flask_tracking import Tracking

tracking = Tracking()

#: Session key of the signed-in learner's name.
USERNAME = "username"
#: Session key of the learner's numeric id.
USER_ID = "user_id"


@tracking.identity_loader
def current_learner() -> dict[str, Any] | None:
    """The signed-in learner, from the server session only (never from a payload)."""
    name = session.get(USERNAME)
    if not name:
        return None
    return {"user_id": session.get(USER_ID), "username": name}
