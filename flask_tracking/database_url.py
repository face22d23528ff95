"""``TRACKING_DATABASE_URL`` checked before an engine is made: it parses, SQLAlchemy knows
its database, its driver is installed, and a SQLite file's folder exists.

Each mistake is a ``ConfigError`` naming the key, the URL (password hidden) and the fix,
instead of the ``ArgumentError``, ``ModuleNotFoundError`` or "unable to open database
file" that the first connection would raise.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .checks import a_type
from .errors import ConfigError
from .redact import redact_url

KEY = "TRACKING_DATABASE_URL"
EXAMPLES = "'sqlite:///tracking.db' or 'postgresql+psycopg://user:password@localhost/tracking'"
#: What to install for PostgreSQL (psycopg 3, the driver of ``postgresql+psycopg://``).
POSTGRESQL_EXTRA = "pip install 'flask-tracking[postgresql]'"


def check_database_url(value: Any) -> str:
    """``value`` (a ``str`` or a SQLAlchemy ``URL``) as a URL string, once checked."""
    if isinstance(value, URL):
        value = value.render_as_string(hide_password=False)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{KEY} must be a database URL string, for example {EXAMPLES}; not {a_type(value)}."
        )
    try:
        url = make_url(value)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            f"{KEY} is not a database URL ({_reason(exc)}): {redact_url(value)!r}. Write"
            f" dialect+driver://user:password@host/database, for example {EXAMPLES}."
        ) from None
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"{KEY} names a database SQLAlchemy does not know, {url.drivername!r}:"
            f" {shown!r}. Use a URL such as {EXAMPLES}."
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(_missing_driver(url, shown, exc)) from None
    if url.get_backend_name() == "sqlite":
        _check_sqlite_folder(url, shown)
    return value


def _reason(exc: Exception) -> str:
    text = str(exc).split("\n", 1)[0].strip()
    return text[:80] or type(exc).__name__


def _missing_driver(url: URL, shown: str, exc: ImportError) -> str:
    module = exc.name or str(exc)
    driver = url.get_driver_name()
    if url.get_backend_name() == "postgresql":
        if driver == "psycopg":
            fix = f"install it with {POSTGRESQL_EXTRA}"
        else:
            fix = (
                f"use the psycopg 3 driver: write postgresql+psycopg:// and {POSTGRESQL_EXTRA}"
                f" (or install the {module!r} package)"
            )
        return (
            f"{KEY} needs the PostgreSQL driver {driver!r} (module {module!r}), which is not"
            f" installed: {shown!r}. To fix it, {fix}."
        )
    return (
        f"{KEY} needs the database driver {driver!r} (module {module!r}), which is not"
        f" installed: {shown!r}. Install it with pip, or use {EXAMPLES}."
    )


def _check_sqlite_folder(url: URL, shown: str) -> None:
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        raise ConfigError(
            f"{KEY} is an in-memory SQLite database, {shown!r}, which every connection and"
            " thread of the store would see empty: use a file, for example"
            " 'sqlite:///tracking.db' (a temporary folder in tests)."
        )
    if url.query.get("uri") in ("true", "1"):
        return
    folder = os.path.dirname(os.path.abspath(database))
    if not os.path.isdir(folder):
        raise ConfigError(
            f"{KEY} puts the SQLite file in a folder that does not exist, {folder!r}: {shown!r}."
            f" Create the folder (mkdir -p {folder}) or fix the path; 'sqlite:///tracking.db'"
            " is relative to the working directory, 'sqlite:////var/lib/app/tracking.db'"
            " absolute."
        )
