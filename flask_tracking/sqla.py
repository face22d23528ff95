"""Flask-SQLAlchemy: ``Tracking(app, db=db)`` stores the events through the app's engine
and puts the tracking tables into ``db.metadata``, where ``db.create_all()``, Alembic and
Flask-Migrate (``flask db migrate``) see them (docs/flask-sqlalchemy.md).

The engine is the app's own: the same pool and connections, with the options the app gave
it (``SQLALCHEMY_ENGINE_OPTIONS``). flask-tracking adds nothing to the app's connections,
so the bounds ``make_engine`` sets on its own engines (PostgreSQL's ``statement_timeout``
and ``lock_timeout``, SQLite's WAL and busy timeout, fork safety) are the app's to choose
there; ``TRACKING_DB_TIMEOUT`` still bounds the wait for SQLite's write lock file.

Flask-SQLAlchemy is not imported here: ``db`` is used through ``db.engine`` and
``db.metadata`` only.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import Engine, MetaData, Table

from .engine import TIMEOUT_OPTION
from .errors import ConfigError
from .forwarding import models as _forwarding_models  # noqa: F401  (its table, registered)
from .models import metadata


def include_tables(target: MetaData) -> list[Table]:
    """Copy the tracking tables (every table of ``models.metadata``) into ``target``
    (an app's ``db.metadata``), once.

    The copies keep the names of their constraints and indexes, whatever naming
    convention ``target`` has, so a migration generated from them builds the tables
    ``flask tracking init-db`` builds.
    """
    tables = metadata.sorted_tables
    copies = []
    for table in tables:
        existing = target.tables.get(table.key)
        if existing is None:
            existing = table.to_metadata(target)
        elif existing.columns.keys() != table.columns.keys():
            raise ConfigError(
                f"Tracking(db=db): db.metadata already has a table {table.name!r} that is"
                " not flask-tracking's; rename the app's table (flask-tracking's tables are"
                f" {', '.join(t.name for t in tables)})."
            )
        copies.append(existing)
    return copies


def app_engine(app: Flask, db: Any, timeout: float) -> Engine:
    """The engine of ``db`` (Flask-SQLAlchemy) on ``app``: the same pool, with the option
    that carries ``TRACKING_DB_TIMEOUT`` for the store (``engine.engine_timeout``)."""
    if app.config.get("TRACKING_DATABASE_URL"):
        raise ConfigError(
            "TRACKING_DATABASE_URL is set and Tracking was given db=: the events would go"
            " to two databases. Remove TRACKING_DATABASE_URL to store them through db's"
            " engine, or drop db= to keep a separate tracking database."
        )
    try:
        with app.app_context():
            engine: Engine = db.engine
    except (RuntimeError, KeyError) as exc:
        raise ConfigError(
            "Tracking(app, db=db): db is not set up on this app (no default engine): call"
            " db.init_app(app) with SQLALCHEMY_DATABASE_URI set before"
            f" tracking.init_app(app). ({exc})"
        ) from exc
    return engine.execution_options(**{TIMEOUT_OPTION: timeout})
