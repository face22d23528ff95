"""The ``Tracking`` extension: configuration, wiring, and the public API."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, overload

from flask import Flask, current_app, url_for
from markupsafe import Markup, escape
from sqlalchemy import Engine, Select

from .backends import JsonLinesBackend
from .catalog.api import EventTypes
from .catalog.cli import init_catalog
from .catalog.views import add_catalog_views
from .cli import cli
from .config import load_config
from .dashboard import add_dashboard_views
from .engine import make_engine
from .event import Event
from .failures import FailureRecorder
from .forwarding import setup_forwarding
from .guards import allowed_origins
from .ingest import Ingestor
from .models import TrackingEvent
from .pipeline import Pipeline
from .privacy import Anonymizer
from .processing import Processor, ProcessorChain
from .query import events_query
from .ratelimit import make_limiter
from .requestinfo import IdentityLoader, RequestInfo, SessionIdLoader
from .spool import Spool
from .sqla import app_engine, include_tables
from .state import EXTENSION_KEY, TrackingState, get_state
from .store import SqlStore
from .submission import Backend
from .tracker import Tracker
from .views import make_blueprint

#: Fields of a course content node that ``track()`` copies into the context.
NODE_FIELDS = ("course_slug", "course_run", "module_id", "section_id", "unit_id", "page_url")


class Tracking(EventTypes):
    """Learning-event tracking for a Flask app.

    ``Tracking(app)`` or ``tracking = Tracking(); tracking.init_app(app)``. Settings are
    read from ``TRACKING_*`` keys (see ``docs/config.md``); usage options are arguments.

    :param processors: callables run on every event, in order, before anonymisation;
        each returns a new event dict or ``None`` to drop it (see ``processing.py``).
    :param backends: extra backends (objects with ``send(events)``) after the SQL store.
    :param db: a Flask-SQLAlchemy ``SQLAlchemy``: the events are stored through its engine
        (no second engine or pool; ``TRACKING_DATABASE_URL`` must then be unset) and the
        tracking tables go into ``db.metadata``, for ``db.create_all()``, Alembic and
        Flask-Migrate (``sqla.py``, docs/flask-sqlalchemy.md). Call ``db.init_app(app)``
        first.

    Processors and backends added later (``tracking.processor``, ``tracking.backends``),
    even after ``init_app``, take effect for every app of this extension.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        processors: Iterable[Processor] = (),
        backends: Iterable[Backend] = (),
        db: Any = None,
    ) -> None:
        #: The Flask-SQLAlchemy ``SQLAlchemy`` given as ``db=``, used by ``init_app``.
        self.db = db
        if db is not None:
            include_tables(db.metadata)  # at once, for migration scripts that import us
        self.processors: list[Processor] = list(processors)
        #: Processors of ``processors`` that fail closed (see ``processing.py``).
        self.required_processors: set[Processor] = set()
        self.backends: list[Backend] = list(backends)
        self._identity_loader: IdentityLoader | None = None
        self._session_id_loader: SessionIdLoader | None = None
        EventTypes.__init__(self)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, db: Any = None) -> None:
        """Read the config, create the engine and tracker, register the blueprint.

        ``db``: a Flask-SQLAlchemy ``SQLAlchemy`` already set up on ``app`` whose engine
        and metadata to use (default: the ``db`` given to ``Tracking``, else none: an
        engine of our own on ``TRACKING_DATABASE_URL``).
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-tracking is already initialised on this app: call Tracking(app) or"
                " tracking.init_app(app) once per app."
            )
        db = db if db is not None else self.db
        config = load_config(app)
        if db is None:
            engine = make_engine(
                config.database_url, timeout=config.db_timeout, echo=config.echo_sql
            )
        else:
            include_tables(db.metadata)
            engine = app_engine(app, db, config.db_timeout)
            url = engine.url.render_as_string(hide_password=False)
            config = dataclasses.replace(config, database_url=url)
        store = SqlStore(engine, config.partition)
        info = RequestInfo(config)
        info.identity_loader = self._call_identity_loader
        info.session_id_loader = self._call_session_id_loader
        anonymizer = Anonymizer(config.hash_key) if config.anonymize else None
        pipeline = Pipeline(
            store,
            chain=ProcessorChain(
                self.processors, self.required_processors, [anonymizer] if anonymizer else []
            ),
            failures=FailureRecorder(anonymizer),
            backends=self.backends,
            log_backends=[JsonLinesBackend(config.log_file)] if config.log_file else [],
            unknown_events=config.unknown_events,
            spool=Spool(config.spool_file),
            max_event_bytes=config.max_event_bytes,
            max_failed_rows=config.max_failed_events,
            types=self.types,
        )
        tracker = Tracker(pipeline, request_info=info)
        allowed_origins(config.allowed_origins)  # a bad entry fails here, at startup
        limiter = make_limiter(config)
        app.extensions[EXTENSION_KEY] = TrackingState(
            config, engine, store, tracker, info, Ingestor(tracker, config), limiter
        )
        setup_forwarding(app, config, store)
        blueprint = make_blueprint(config.url_prefix)
        add_catalog_views(blueprint, self.types, self.dashboard_allowed)
        if config.dashboard:
            add_dashboard_views(blueprint, self.dashboard_allowed)
        app.register_blueprint(blueprint, url_prefix=config.url_prefix)
        app.cli.add_command(cli)
        app.jinja_env.globals["tracking_script"] = tracking_script

    # -- state --------------------------------------------------------------------------

    @property
    def state(self) -> TrackingState:
        """The current app's state (needs an app context)."""
        return get_state()

    @property
    def tracker(self) -> Tracker:
        return self.state.tracker

    @property
    def engine(self) -> Engine:
        return self.state.engine

    def init_db(self) -> None:
        """Create the tracking tables that do not exist yet and write the catalog's rows
        (idempotent; ``flask tracking init-db`` also sets their first and last seen)."""
        init_catalog(self.state, seen=False)

    # -- registration -------------------------------------------------------------------

    def identity_loader(self, func: IdentityLoader) -> IdentityLoader:
        """Register ``func() -> {"user_id", "username"} | None``, called once per request."""
        self._identity_loader = func
        return func

    def session_id_loader(self, func: SessionIdLoader) -> SessionIdLoader:
        """Register ``func() -> str | None``: the app's own session id, if it has one."""
        self._session_id_loader = func
        return func

    @overload
    def processor(self, func: Processor, *, required: bool = False) -> Processor: ...

    @overload
    def processor(
        self, func: None = None, *, required: bool = False
    ) -> Callable[[Processor], Processor]: ...

    def processor(
        self, func: Processor | None = None, *, required: bool = False
    ) -> Processor | Callable[[Processor], Processor]:
        """Register a processor: ``@tracking.processor`` or
        ``@tracking.processor(required=True)`` (a required one fails closed: when it
        raises, the event goes to the failed table without its identity)."""

        def register(target: Processor) -> Processor:
            self.processors.append(target)
            if required:
                self.required_processors.add(target)
            return target

        return register(func) if func is not None else register

    def _call_identity_loader(self) -> dict[str, Any] | None:
        return self._identity_loader() if self._identity_loader else None

    def _call_session_id_loader(self) -> str | None:
        return self._session_id_loader() if self._session_id_loader else None

    # -- emitting -----------------------------------------------------------------------

    def emit(self, event_type: str, data: Any = None, **fields: Any) -> Event | None:
        """Emit a server event from a request, a CLI command or a job (see ``Tracker.emit``)."""
        return self.tracker.emit(event_type, data, **fields)

    def track(
        self,
        event_type: str,
        user: Any = None,
        data: Any = None,
        course_content_node: Any = None,
    ) -> Event | None:
        """``track(event_type, user, data, course_content_node)``: emit with course context.

        ``user`` is a server-side user object or dict (``id``/``user_id``, ``username``);
        ``course_content_node`` an object or dict with any of ``course_id``,
        ``course_slug``, ``course_run``, ``module_id``, ``section_id``, ``unit_id``,
        ``page_url``.
        """
        context: dict[str, Any] = {}
        identity = None
        if user is not None:
            identity = {
                "user_id": _pick(user, "user_id", "id"),
                "username": _pick(user, "username"),
            }
        if course_content_node is not None:
            for name in NODE_FIELDS:
                value = _pick(course_content_node, name)
                if value is not None:
                    context[name] = value
            course_id = _pick(course_content_node, "course_id")
            if course_id is None and context.get("course_slug"):
                run = context.get("course_run")
                course_id = f"{context['course_slug']}/{run}" if run else context["course_slug"]
            if course_id is not None:
                context["course_id"] = course_id
        page = context.get("page_url")
        return self.tracker.emit(event_type, data, context=context, page=page, user=identity)

    def enter_context(self, name: str, values: dict[str, Any]) -> None:
        """Push a named context onto the current app's tracker."""
        self.tracker.enter_context(name, values)

    def exit_context(self, name: str) -> None:
        """Pop the innermost context called ``name``."""
        self.tracker.exit_context(name)

    @contextmanager
    def context(self, name: str, values: dict[str, Any]) -> Iterator[None]:
        """``with tracking.context("course", {...}):`` nests a named context."""
        with self.tracker.context(name, values):
            yield

    # -- querying -----------------------------------------------------------------------

    def events(
        self,
        event_type: str | Iterable[str] | None = None,
        *,
        source: str | Iterable[str] | None = None,
        course_id: str | None = None,
        username: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Select[TrackingEvent]:
        """A SQLAlchemy select of stored events; run it with ``tracking.engine``."""
        return events_query(
            event_type,
            source=source,
            course_id=course_id,
            username=username,
            user_id=user_id,
            since=since,
            until=until,
        )


def tracking_script(minified: bool | None = None) -> Markup:
    """The ``<script>`` tag that loads the browser Logger with its endpoint configured.

    It loads ``logger.min.js``, or the commented source ``logger.js`` when ``minified``
    is false; by default the source only while the app runs in debug mode.

    It also starts the page's tracking session, so the page's answer carries the cookie
    and the events the page sends all carry one ``session``.
    """
    get_state().request_info.start_session()
    if minified is None:
        minified = not current_app.debug
    name = "logger.min.js" if minified else "logger.js"
    src = url_for("tracking.static", filename=f"js/{name}")
    endpoint = url_for("tracking.events")
    return Markup(f'<script src="{escape(src)}" data-endpoint="{escape(endpoint)}" defer></script>')


def _pick(obj: Any, *names: str) -> Any:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None
