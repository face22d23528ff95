"""flask-tracking: learning-event tracking for Flask, compatible with Open edX tracking logs."""

from __future__ import annotations

from .errors import ConfigError, EventRejected, StoreUnavailable, TrackingError
from .extension import Tracking
from .models import FailedEvent, TrackingEvent
from .state import TrackingState, get_state
from .tracker import Tracker

__all__ = [
    "ConfigError",
    "EventRejected",
    "FailedEvent",
    "StoreUnavailable",
    "Tracker",
    "Tracking",
    "TrackingError",
    "TrackingEvent",
    "TrackingState",
    "get_state",
]
