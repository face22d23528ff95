"""Fixtures: apps on real SQLite and PostgreSQL, clean around every test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select

from flask_tracking import FailedEvent, Tracking, TrackingEvent
from flask_tracking.models import metadata

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI") == "true"


def corpus_path(name: str) -> Path:
    """A corpus file; skipped when absent locally, a failure under CI=true."""
    path = CORPUS / name
    if not path.exists():
        if IN_CI:
            pytest.fail(f"The corpus file {path} is missing (CI needs ../shared/corpus).")
        pytest.skip(f"{path} is absent")
    return path


def service_url(name: str) -> str:
    """The URL of a real service (PostgreSQL or Redis); skip locally, fail under CI."""
    import services

    getter = {"postgresql": services.postgres_url, "redis": services.redis_url}[name]
    try:
        return getter()
    except services.ServiceUnavailable as exc:
        if IN_CI:
            pytest.fail(f"{name} is needed and could not be found or started: {exc}")
        pytest.skip(f"{name} unavailable: {exc}")


def reset_database(url: str) -> None:
    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    finally:
        engine.dispose()


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


AppFactory = Callable[..., Flask]


def rows(app: Flask) -> list[Any]:
    """The stored events of an app, in storing order."""
    with app.extensions["tracking"].engine.connect() as conn:
        return conn.execute(select(TrackingEvent.__table__).order_by(TrackingEvent.id)).all()


def failed(app: Flask) -> list[Any]:
    """The failed events of an app, in order."""
    with app.extensions["tracking"].engine.connect() as conn:
        return conn.execute(select(FailedEvent.__table__).order_by(FailedEvent.id)).all()


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
