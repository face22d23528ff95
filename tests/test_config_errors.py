"""Every ``TRACKING_*`` mistake fails at ``init_app`` with a ``ConfigError`` that names the
key and says the fix; booleans given as strings are read, not taken as true; an unknown
``TRACKING_*`` key is a warning that names the nearest key."""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_tracking import ConfigError, Tracking
from flask_tracking.config import DEFAULTS
from flask_tracking.errors import ConfigWarning

from support import ROOT, rows


def build(tmp_path: Path, **config: Any) -> Flask:
    """An app on a SQLite file in ``tmp_path`` with ``config`` on top; init_app run."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = Flask("config_test", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY="test-secret",
        TRACKING_DATABASE_URL=f"sqlite:///{tmp_path / 'tracking.db'}",
        TRACKING_RATE_LIMIT=None,
    )
    app.config.update(config)
    Tracking(app)
    app.extensions["tracking"].engine.dispose()
    return app


def refused(tmp_path: Path, key: str, value: Any) -> str:
    """The message of the ``ConfigError`` that ``key = value`` gives; it names the key."""
    with pytest.raises(ConfigError) as excinfo:
        build(tmp_path, **{key: value})
    message = str(excinfo.value)
    assert message.startswith(key), message
    assert "Traceback" not in message
    return message


def absent(module: str) -> None:
    """These tests use a driver that is really not installed; fail loudly if it is."""
    if importlib.util.find_spec(module) is not None:
        pytest.fail(f"{module} is installed: this test needs a driver that is not.")


# -- TRACKING_DATABASE_URL ------------------------------------------------------------------


def test_a_database_url_that_does_not_parse_names_the_key_and_an_example(tmp_path: Path) -> None:
    message = refused(tmp_path, "TRACKING_DATABASE_URL", "nonsense")
    assert "is not a database URL" in message
    assert "'nonsense'" in message
    assert "sqlite:///tracking.db" in message


def test_a_database_sqlalchemy_does_not_know_is_named(tmp_path: Path) -> None:
    message = refused(tmp_path, "TRACKING_DATABASE_URL", "postgress://localhost/tracking")
    assert "SQLAlchemy does not know, 'postgress'" in message


def test_a_postgresql_driver_that_is_not_installed_names_the_extra(tmp_path: Path) -> None:
    absent("pg8000")
    message = refused(tmp_path, "TRACKING_DATABASE_URL", "postgresql+pg8000://ann@localhost/db")
    assert "the PostgreSQL driver 'pg8000' (module 'pg8000'), which is not installed" in message
    assert "pip install 'flask-tracking[postgresql]'" in message
    assert "postgresql+psycopg://" in message


def test_the_psycopg2_driver_when_not_installed_says_to_use_psycopg(tmp_path: Path) -> None:
    absent("psycopg2")
    message = refused(tmp_path, "TRACKING_DATABASE_URL", "postgresql+psycopg2://ann@h/db")
    assert "'psycopg2'" in message
    assert "write postgresql+psycopg:// and pip install 'flask-tracking[postgresql]'" in message


def test_the_password_of_a_database_url_is_hidden_in_the_error(tmp_path: Path) -> None:
    absent("pg8000")
    message = refused(tmp_path, "TRACKING_DATABASE_URL", "postgresql+pg8000://ann:hunter2@h/db")
    assert "hunter2" not in message
    assert "ann:***@h/db" in message


def test_a_sqlite_file_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    message = refused(tmp_path, "TRACKING_DATABASE_URL", f"sqlite:///{folder}/tracking.db")
    assert f"folder that does not exist, '{folder}'" in message
    assert f"mkdir -p {folder}" in message
    assert not folder.exists()


def test_a_database_url_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "TRACKING_DATABASE_URL", 5432)
    assert "must be a database URL string" in message


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_database_is_refused(tmp_path: Path, url: str) -> None:
    assert "is an in-memory SQLite database" in refused(tmp_path, "TRACKING_DATABASE_URL", url)


def test_a_sqlite_file_in_an_existing_folder_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    build(tmp_path / "b", TRACKING_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'x.db'}")


# -- TRACKING_COURSE_URL_PATTERN ------------------------------------------------------------


def test_a_course_url_pattern_that_does_not_compile_names_the_key(tmp_path: Path) -> None:
    message = refused(tmp_path, "TRACKING_COURSE_URL_PATTERN", "(")
    assert "is not a valid regular expression (missing ), unterminated subpattern" in message
    assert "r'/courses/(?P<course_id>[^/]+)'" in message


def test_a_course_url_pattern_without_the_group_names_it(tmp_path: Path) -> None:
    message = refused(tmp_path, "TRACKING_COURSE_URL_PATTERN", r"/courses/([^/]+)")
    assert "must have a named group 'course_id'" in message


def test_a_compiled_course_url_pattern_or_none_is_accepted(tmp_path: Path) -> None:
    app = build(tmp_path, TRACKING_COURSE_URL_PATTERN=re.compile(r"/c/(?P<course_id>\w+)"))
    assert app.extensions["tracking"].config.course_url_pattern.pattern == r"/c/(?P<course_id>\w+)"
    app = build(tmp_path / "b", TRACKING_COURSE_URL_PATTERN=None)
    assert app.extensions["tracking"].config.course_url_pattern is None


# -- booleans -------------------------------------------------------------------------------

BOOLEAN_KEYS = ["TRACKING_ANONYMIZE", "TRACKING_ECHO_SQL", "TRACKING_DASHBOARD"]
WORDS = [
    ("true", True),
    ("false", False),
    ("yes", True),
    ("no", False),
    ("on", True),
    ("off", False),
    ("1", True),
    ("0", False),
    ("FALSE", False),
    (" Off ", False),
    (1, True),
    (0, False),
]


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize(("given", "expected"), WORDS)
def test_boolean_keys_read_true_and_false_words(
    tmp_path: Path, key: str, given: Any, expected: bool
) -> None:
    config = build(tmp_path, **{key: given}).extensions["tracking"].config
    attr = {
        "TRACKING_ANONYMIZE": "anonymize",
        "TRACKING_ECHO_SQL": "echo_sql",
        "TRACKING_DASHBOARD": "dashboard",
    }[key]
    assert getattr(config, attr) is expected


@pytest.mark.parametrize("key", BOOLEAN_KEYS)
@pytest.mark.parametrize("given", ["nope", "", "disabled", 2, None, []])
def test_boolean_keys_refuse_anything_else(tmp_path: Path, key: str, given: Any) -> None:
    message = refused(tmp_path, key, given)
    assert "must be True or False (or one of the strings 'true', 'false'" in message
    assert repr(given) in message


def test_anonymize_false_as_a_string_really_stores_the_username(tmp_path: Path) -> None:
    app = build(tmp_path, TRACKING_ANONYMIZE="false")
    state = app.extensions["tracking"]
    state.store.create_all()
    with app.app_context():
        state.tracker.emit("showanswer", {"problem_id": "p1"}, user={"username": "ann"})
    assert [row.username for row in rows(app)] == ["ann"]
    state.engine.dispose()


# -- numbers --------------------------------------------------------------------------------

INTEGER_KEYS = [
    "TRACKING_TRUSTED_PROXIES",
    "TRACKING_MAX_EVENT_BYTES",
    "TRACKING_MAX_REQUEST_BYTES",
    "TRACKING_MAX_BATCH_EVENTS",
    "TRACKING_MAX_CLIENT_DELAY",
    "TRACKING_MAX_FAILED_EVENTS",
    "TRACKING_FORWARD_JOB_TIMEOUT",
]
SECONDS_KEYS = ["TRACKING_DB_TIMEOUT", "TRACKING_FORWARD_SWEEP_INTERVAL", "TRACKING_FORWARD_LINGER"]


@pytest.mark.parametrize("key", INTEGER_KEYS)
@pytest.mark.parametrize("given", ["500", 1.5, True, None, [1]])
def test_integer_keys_refuse_other_types(tmp_path: Path, key: str, given: Any) -> None:
    message = refused(tmp_path, key, given)
    assert "whole number" in message
    assert repr(given) in message


@pytest.mark.parametrize("key", INTEGER_KEYS)
def test_integer_keys_refuse_negative_numbers(tmp_path: Path, key: str) -> None:
    refused(tmp_path, key, -1)


@pytest.mark.parametrize(
    "key",
    [
        "TRACKING_MAX_EVENT_BYTES",
        "TRACKING_MAX_REQUEST_BYTES",
        "TRACKING_MAX_BATCH_EVENTS",
        "TRACKING_FORWARD_JOB_TIMEOUT",
    ],
)
def test_limits_that_would_refuse_everything_refuse_zero(tmp_path: Path, key: str) -> None:
    assert ">= 1, not 0." in refused(tmp_path, key, 0)


@pytest.mark.parametrize("key", SECONDS_KEYS)
@pytest.mark.parametrize("given", ["1", True, None, float("nan")])
def test_seconds_keys_refuse_other_types(tmp_path: Path, key: str, given: Any) -> None:
    message = refused(tmp_path, key, given)
    assert "number of seconds" in message


@pytest.mark.parametrize("key", SECONDS_KEYS)
def test_seconds_keys_refuse_negative_numbers(tmp_path: Path, key: str) -> None:
    refused(tmp_path, key, -0.5)


def test_the_database_timeout_must_be_more_than_zero(tmp_path: Path) -> None:
    assert "more than 0 seconds" in refused(tmp_path, "TRACKING_DB_TIMEOUT", 0)


def test_numbers_of_the_right_type_are_accepted(tmp_path: Path) -> None:
    config = (
        build(tmp_path, TRACKING_DB_TIMEOUT=2, TRACKING_MAX_BATCH_EVENTS=10)
        .extensions["tracking"]
        .config
    )
    assert (config.db_timeout, config.max_batch_events) == (2.0, 10)


# -- strings, paths, lists ------------------------------------------------------------------

OTHER_MISTAKES: list[tuple[str, Any, str]] = [
    ("TRACKING_URL_PREFIX", "activity", "must start with '/'"),
    ("TRACKING_URL_PREFIX", 5, "must be a non-empty string"),
    ("TRACKING_UNKNOWN_EVENTS", "maybe", "must be 'accept' or 'reject'"),
    ("TRACKING_HASH_KEY", 5, "must be a non-empty str or bytes"),
    ("TRACKING_RATE_LIMIT", "lots", "must look like '600/minute'"),
    ("TRACKING_RATE_LIMIT", 600, "must look like '600/minute'"),
    ("TRACKING_ALLOWED_ORIGINS", 5, "must be a list of strings or one comma-separated string"),
    ("TRACKING_ALLOWED_ORIGINS", ["app.example"], "is not an origin"),
    ("TRACKING_LOG_FILE", 5, "must be a file path"),
    ("TRACKING_SPOOL_FILE", ["a"], "must be a file path"),
    ("TRACKING_REDIS_URL", "localhost:6379", "must look like 'redis://host:6379/0'"),
    ("TRACKING_FORWARD_QUEUE", "a queue", "must be a queue name"),
    ("TRACKING_DESTINATIONS", [], "must be a dict of name -> settings"),
    ("TRACKING_DESTINATIONS", "log", "must be a dict of name -> settings"),
    ("TRACKING_PARTITION", "week", "must be None or one of 'month', 'day'"),
    ("TRACKING_PARTITION", "month", "partitions tables on PostgreSQL only"),  # on SQLite
    ("TRACKING_RETENTION_DAYS", 0, "must be a whole number of days >= 1"),
    ("TRACKING_RETENTION_DAYS", "30d", "must be a whole number of days, for example"),
]


@pytest.mark.parametrize(("key", "given", "expected"), OTHER_MISTAKES)
def test_other_mistakes_name_the_key_and_the_fix(
    tmp_path: Path, key: str, given: Any, expected: str
) -> None:
    assert expected in refused(tmp_path, key, given)


def test_a_missing_hash_key_names_both_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^TRACKING_HASH_KEY \(or SECRET_KEY\) must be set"):
        build(tmp_path, SECRET_KEY=None)


# -- unknown keys ---------------------------------------------------------------------------


def test_a_misspelled_key_warns_with_did_you_mean(tmp_path: Path) -> None:
    with pytest.warns(ConfigWarning) as caught:
        build(tmp_path, TRACKING_ANONIMIZE=False)
    [warning] = caught
    assert str(warning.message) == (
        "TRACKING_ANONIMIZE is not a flask-tracking setting and is ignored:"
        " did you mean TRACKING_ANONYMIZE?"
    )
    # It points at the app's line, not at flask-tracking's insides.
    assert warning.filename == __file__


def test_an_unknown_key_with_no_near_name_points_to_the_docs(tmp_path: Path) -> None:
    with pytest.warns(ConfigWarning, match=r"^TRACKING_XYZZY .* listed in docs/config\.md\.$"):
        build(tmp_path, TRACKING_XYZZY=1)


def test_known_keys_and_other_prefixes_give_no_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(tmp_path, TRACKINGS=1, MY_TRACKING_THING=2, **dict(DEFAULTS, TRACKING_HASH_KEY="k"))


# -- documentation --------------------------------------------------------------------------


def test_every_key_is_documented_in_config_md() -> None:
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(TRACKING_[A-Z_]+)` \|", text, flags=re.M))
    assert documented == set(DEFAULTS)
