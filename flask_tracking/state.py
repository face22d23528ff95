"""The state ``Tracking.init_app`` builds for one app, and how code finds it.

Views, CLI commands and jobs read the state of the current app through
:func:`get_state`; they never import the extension that built it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine

from .config import TrackingConfig
from .ingest import Ingestor
from .ratelimit import Limiter
from .requestinfo import RequestInfo
from .store import SqlStore
from .tracker import Tracker

#: Where the state lives in ``app.extensions``.
EXTENSION_KEY = "tracking"


@dataclass(slots=True)
class TrackingState:
    """What ``init_app`` built for one app, kept in ``app.extensions["tracking"]``."""

    config: TrackingConfig
    engine: Engine
    store: SqlStore
    tracker: Tracker
    request_info: RequestInfo
    ingestor: Ingestor
    limiter: Limiter | None


def get_state(app: Flask | None = None) -> TrackingState:
    """The tracking state of ``app`` (default: the current app)."""
    target = app or current_app
    try:
        state: TrackingState = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-tracking is not initialised on this app: call Tracking(app) or"
            " tracking.init_app(app) first."
        ) from None
    return state
