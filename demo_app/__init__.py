"""The flask-tracking demo: a mini course that records Open edX-style learning events.

``python -m demo_app`` (or ``make demo``) serves it on http://127.0.0.1:5000 with SQLite in
the ``instance/`` folder. ``create_app(config)`` builds it for tests. It uses only the
public API of flask-tracking: ``Tracking``, ``identity_loader``, ``emit``,
``events()``, ``engine``, ``init_db()`` and the ``tracking_script()`` template global.
See docs/demo.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from .ext import tracking
from .users import DEFAULT_STAFF

__all__ = ["create_app", "tracking"]

#: Where the pdfjs-dist npm package is installed (``npm ci`` at the repository root).
DEFAULT_PDFJS_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "pdfjs-dist"


def create_app(config: dict[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """The demo app; ``config`` overrides any key (``TRACKING_DATABASE_URL``, ...).

    ``instance_path`` is the folder of ``demo.db`` and the kept secret key (by default
    ``instance/`` of the checkout). The tracking tables are created if they do not exist yet.
    """
    app = Flask(__name__, instance_path=os.path.abspath(instance_path) if instance_path else None)
    app.config.update(
        # The demo shows learners' names on its events page: store them as typed.
        # The library's default (True) stores keyed-hash anonymous ids instead.
        TRACKING_ANONYMIZE=False,
        DEMO_PDFJS_DIR=str(DEFAULT_PDFJS_DIR),
        # The names that are staff: they see every learner's events (docs/demo.md).
        DEMO_STAFF=DEFAULT_STAFF,
        SESSION_COOKIE_SAMESITE="Lax",
        # The staff dashboard at /activity/dashboard (charts of the reports): staff only.
        TRACKING_DASHBOARD=True,
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("DEMO_SECRET_KEY") or _instance_secret(app)
    if not app.config.get("TRACKING_DATABASE_URL"):
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["TRACKING_DATABASE_URL"] = "sqlite:///" + os.path.join(
            app.instance_path, "demo.db"
        )

    tracking.init_app(app)

    from .users import is_staff
    from .views import register

    # Staff pages of the library (the event catalog at /activity/catalog, the dashboard
    # at /activity/dashboard): staff only.
    tracking.dashboard_access(is_staff)

    register(app)
    with app.app_context():
        tracking.init_db()
    return app


def _instance_secret(app: Flask) -> str:
    """A random key kept in the instance folder, so sign-ins survive a restart."""
    os.makedirs(app.instance_path, exist_ok=True)
    path = Path(app.instance_path) / "demo-secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()
