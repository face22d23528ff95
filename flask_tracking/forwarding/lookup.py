"""Where an app keeps its forwarder, and how jobs and commands find it.

Kept apart from :mod:`.forwarder` so that the RQ job (:mod:`.jobs`), which the forwarder
enqueues, can find the forwarder without importing the module that imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from .forwarder import Forwarder

#: Where the forwarder lives in ``app.extensions``.
EXTENSION_KEY = "tracking.forwarding"


def get_forwarder(app: Flask | None = None) -> Forwarder:
    """The forwarder of ``app`` (default: the current app)."""
    target = app or current_app
    try:
        forwarder: Forwarder = target.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "Forwarding is not set up on this app: call Tracking(app) first."
        ) from None
    return forwarder
