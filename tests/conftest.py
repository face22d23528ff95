"""Fixtures: apps on real SQLite and PostgreSQL, clean around every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking import Tracking

from support import IN_CI, AppFactory, partition_config, reset_database, service_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean tracking database: a SQLite file, then a real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracking.db'}"
    else:
        url = service_url("postgresql")
    reset_database(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A clean SQLite tracking database (for tests about one database only)."""
    url = f"sqlite:///{tmp_path / 'tracking.db'}"
    reset_database(url)
    return url


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Build a Flask app with Tracking; keyword arguments become config keys."""
    made: list[Flask] = []

    def factory(tracking: Tracking | None = None, **config: Any) -> Flask:
        app = Flask("tracking_test", instance_path=str(tmp_path / "instance"))
        app.config.update(
            SECRET_KEY="test-secret",
            TESTING=True,
            TRACKING_DATABASE_URL=database_url,
            TRACKING_RATE_LIMIT=None,
            **partition_config(database_url),
        )
        app.config.update(config)
        (tracking or Tracking()).init_app(app)
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["tracking"].engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """An app with default settings (anonymisation on)."""
    return make_app()


@pytest.fixture
def plain_app(make_app: AppFactory) -> Flask:
    """An app that stores edX's fields as they are (TRACKING_ANONYMIZE off)."""
    return make_app(TRACKING_ANONYMIZE=False)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under CI=true a skipped test is a failed test: nothing may be skipped there."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"Skipped under CI=true, which counts as a failure: {report.longrepr}"
