"""Real Alembic migrations of an app that uses ``Tracking(app, db=db)``, on SQLite and
PostgreSQL: (a) a new app, (b) an app whose database already has its own tables and an
older tracking schema. Autogenerate writes the revision, ``upgrade head`` runs it, and the
schema then matches: every tracking table, constraint and index is there, autogenerate
finds nothing more to do, and events are stored and read back.

Alembic runs in-process through its command API with an ``env.py`` of the usual shape
(``target_metadata = db.metadata``) and no logging setup; the last test runs the
Flask-Migrate commands a user types (``flask db init / migrate / upgrade / check``) in a
subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import alembic
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Connection, Engine, MetaData, String, create_engine, inspect, select, text
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking import Tracking, TrackingEvent
from flask_tracking.models import metadata as tracking_metadata

ENV_PY = """\
from alembic import context

config = context.config
target_metadata = config.attributes["target_metadata"]  # the app's db.metadata
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
"""


def make_db() -> tuple[SQLAlchemy, type]:
    db = SQLAlchemy()

    class Course(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "courses"
        id: Mapped[int] = mapped_column(primary_key=True)
        key: Mapped[str] = mapped_column(String(200), unique=True)

    return db, Course


def empty_database(url: str) -> None:
    """Drop every table of the database at ``url`` (the app's, ours, alembic_version)."""
    engine = create_engine(url)
    try:
        if engine.dialect.name == "postgresql":  # a partitioned table goes with its partitions
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS tracking_events CASCADE")
        found = MetaData()
        found.reflect(engine)
        found.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    empty_database(database_url)
    yield database_url
    empty_database(database_url)


class Migrations:
    """An Alembic script folder for one app's ``db.metadata``, driven in-process."""

    def __init__(self, folder: Path, engine: Engine, target: MetaData) -> None:
        self.engine = engine
        self.target = target
        (folder / "versions").mkdir(parents=True)
        (folder / "env.py").write_text(ENV_PY)
        template = Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako"
        (folder / "script.py.mako").write_text(template.read_text())
        self.folder = folder
        self.config = Config()
        self.config.set_main_option("script_location", str(folder))
        self.config.attributes["target_metadata"] = target

    def _run(self, action: Callable[[Config], Any]) -> Any:
        with self.engine.begin() as conn:
            self.config.attributes["connection"] = conn
            return action(self.config)

    def autogenerate(self, message: str) -> str:
        """``alembic revision --autogenerate``: the text of the new revision file."""
        script = self._run(lambda c: command.revision(c, message=message, autogenerate=True))
        return Path(script.path).read_text()

    def upgrade(self) -> None:
        self._run(lambda c: command.upgrade(c, "head"))

    def differences(self) -> list[Any]:
        """What autogenerate would still change (``[]``: the schema matches)."""
        with self.engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), self.target)


AppMaker = Callable[[SQLAlchemy], tuple[Flask, Tracking]]


@pytest.fixture
def make_app(url: str, tmp_path: Path) -> Iterator[AppMaker]:
    """An app with Flask-SQLAlchemy ``db`` and ``Tracking(app, db=db)`` on ``url``."""
    made: list[tuple[Flask, SQLAlchemy]] = []

    def factory(db: SQLAlchemy) -> tuple[Flask, Tracking]:
        app = Flask("migrated_app", instance_path=str(tmp_path / "instance"))
        app.config.update(
            SECRET_KEY="test-secret",
            SQLALCHEMY_DATABASE_URI=url,
            TRACKING_RATE_LIMIT=None,
            TRACKING_ANONYMIZE=False,
        )
        db.init_app(app)
        made.append((app, db))
        return app, Tracking(app, db=db)

    yield factory
    for app, db in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def schema_of(conn: Connection, tables: list[str]) -> dict[str, Any]:
    """Columns, unique constraints and indexes of ``tables`` as the database has them."""
    found = inspect(conn)
    return {
        name: {
            "columns": sorted(c["name"] for c in found.get_columns(name)),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(name)
            ),
            "indexes": sorted(  # (PostgreSQL lists the index of each unique constraint)
                (i["name"], tuple(i["column_names"]))
                for i in found.get_indexes(name)
                if "duplicates_constraint" not in i
            ),
        }
        for name in tables
    }


def expected_schema() -> dict[str, Any]:
    """The tracking tables as ``models.metadata`` declares them."""
    return {
        table.name: {
            "columns": sorted(c.name for c in table.columns),
            "unique": sorted(
                (str(c.name), tuple(col.name for col in c.columns))
                for c in table.constraints
                if c.__class__.__name__ == "UniqueConstraint"
            ),
            "indexes": sorted(
                (str(i.name), tuple(col.name for col in i.columns)) for i in table.indexes
            ),
        }
        for table in tracking_metadata.sorted_tables
    }


def store_and_read(app: Flask, tracking: Tracking, db: SQLAlchemy) -> list[str]:
    with app.test_request_context("/"):
        event = tracking.emit("showanswer", {"problem_id": "after-migration"})
    assert event is not None, "the migrated tables refused an event"
    with app.app_context():
        return list(db.session.scalars(select(TrackingEvent.event_id).order_by(TrackingEvent.id)))


def test_a_new_app_autogenerates_and_upgrades_to_the_whole_tracking_schema(
    make_app: AppMaker, tmp_path: Path
) -> None:
    db, _ = make_db()
    app, tracking = make_app(db)
    with app.app_context():
        engine = db.engine
        migrations = Migrations(tmp_path / "migrations", engine, db.metadata)
        revision = migrations.autogenerate("first")
        for table in (*tracking_metadata.tables, "courses"):
            assert f"op.create_table('{table}'" in revision, revision
        assert "ix_tracking_events_course_id_time" in revision
        assert "info=" not in revision  # nothing of ours but the tables themselves
        migrations.upgrade()

        tables = sorted(tracking_metadata.tables)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= {*tables, "courses"}
            assert schema_of(conn, tables) == expected_schema()
        assert migrations.differences() == []
        # A second autogenerate has nothing to write.
        again = migrations.autogenerate("nothing")
        assert "op." not in again.split("def upgrade()")[1].split("def downgrade()")[0]
    assert len(store_and_read(app, tracking, db)) == 1


def make_older_schema(conn: Connection, Course: type) -> None:
    """What a database made before this version looks like: the app's own table with
    rows, an event stored, and the tracking schema as an older flask-tracking left it
    (no ``seq`` column, no ``(username, time)`` index, no deliveries table)."""
    conn.execute(Course.__table__.insert(), [{"key": "course-v1:Org+Num+Run"}])
    conn.exec_driver_sql("DROP INDEX ix_tracking_events_username_time")
    conn.exec_driver_sql("ALTER TABLE tracking_events DROP COLUMN seq")
    conn.exec_driver_sql("DROP TABLE tracking_deliveries")


def test_an_existing_schema_is_upgraded_to_the_current_tracking_schema(
    make_app: AppMaker, tmp_path: Path
) -> None:
    db, Course = make_db()
    app, tracking = make_app(db)
    with app.app_context():
        db.create_all()  # the app's tables and (then current) tracking tables
    old_id = store_and_read(app, tracking, db)[0]
    with app.app_context():
        engine = db.engine
        with engine.begin() as conn:
            make_older_schema(conn, Course)
        migrations = Migrations(tmp_path / "migrations", engine, db.metadata)
        assert migrations.differences() != []

        revision = migrations.autogenerate("upgrade flask-tracking")
        upgrade = revision.split("def upgrade()")[1].split("def downgrade()")[0]
        assert re.search(r"add_column\((?:'tracking_events', )?sa\.Column\('seq'", upgrade), upgrade
        assert "ix_tracking_events_username_time" in upgrade, upgrade
        assert "create_table('tracking_deliveries'" in upgrade, upgrade
        assert "courses" not in upgrade, upgrade  # the app's own table is left as it is
        assert "drop_" not in upgrade, upgrade
        migrations.upgrade()

        tables = sorted(tracking_metadata.tables)
        with engine.connect() as conn:
            assert schema_of(conn, tables) == expected_schema()
            assert conn.execute(text("SELECT key FROM courses")).scalars().all() == [
                "course-v1:Org+Num+Run"
            ]
        assert migrations.differences() == []
    # The event stored before the upgrade is still there, and new ones are stored.
    ids = store_and_read(app, tracking, db)
    assert ids[0] == old_id and len(ids) == 2


FLASK_APP = """\
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_tracking import Tracking

db = SQLAlchemy()
migrate = Migrate()
tracking = Tracking(db=db)


class Course(db.Model):
    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))


def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI={url!r})
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    tracking.init_app(app)
    return app
"""


def test_flask_migrate_commands_migrate_the_tracking_tables(url: str, tmp_path: Path) -> None:
    (tmp_path / "learnapp.py").write_text(FLASK_APP.format(url=url))
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "PYTHONPATH")}

    def flask(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "learnapp", "db", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"flask db {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    flask("init")
    made = flask("migrate", "-m", "first")
    for table in tracking_metadata.tables:
        assert f"Detected added table '{table}'" in made, made
    flask("upgrade")
    checked = flask("check")
    assert "No new upgrade operations detected" in checked, checked
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(tracking_metadata.tables)
            assert schema_of(conn, tables) == expected_schema()
    finally:
        engine.dispose()
    print(textwrap.indent(made.strip(), "  flask db migrate: "))
