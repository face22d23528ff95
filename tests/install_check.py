"""Run by tests/test_packaging.py with the Python of a fresh venv that holds the installed
wheel (not editable), in a temporary folder outside the checkout:

    python install_check.py quickstart

``quickstart`` is the module written from README.md's Quickstart block. The check posts an
event to the ingest endpoint the page's ``tracking_script()`` points at, emits one on the
server, queries both back with ``tracking.events()``, fetches the Logger the page loads, and
looks at what the installed distribution carries (LICENSE, py.typed, metadata). Each check
prints one ``ok:`` line; the first one that fails ends it with a traceback.

Only the standard library and the installed packages are imported: nothing of the checkout.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def ok(what: str) -> None:
    print(f"ok: {what}", flush=True)


def check_distribution() -> Path:
    """The package is the installed one, with its licence, types marker and metadata."""
    import flask_tracking

    location = Path(flask_tracking.__file__).resolve().parent
    assert "site-packages" in location.parts, f"not the installed package: {location}"
    ok(f"flask_tracking imported from the installed wheel at {location}")

    dist = importlib.metadata.distribution("flask-tracking")
    meta = dist.metadata
    assert meta["License-Expression"] == "BSD-3-Clause", meta["License-Expression"]
    licences = [f for f in dist.files or () if f.name == "LICENSE"]
    assert licences, "no LICENSE among the installed files"
    text = licences[0].read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License"), text[:80]
    assert "the flask-tracking authors" in text
    ok(f"LICENSE installed ({licences[0]}), License-Expression: BSD-3-Clause")

    classifiers = meta.get_all("Classifier") or []
    assert "Framework :: Flask" in classifiers, classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls), urls
    ok(f"metadata: {len(classifiers)} classifiers, project URLs {sorted(urls)}")

    typed = importlib.resources.files("flask_tracking").joinpath("py.typed")
    assert typed.is_file(), "py.typed is missing"
    ok("py.typed installed (type checkers read the package's annotations)")
    return location


def find_tracking(module: Any) -> Any:
    from flask_tracking import Tracking

    found = [v for v in vars(module).values() if isinstance(v, Tracking)]
    assert len(found) == 1, f"the Quickstart should make one Tracking, found {len(found)}"
    return found[0]


def check_quickstart(module_name: str, package_dir: Path) -> None:
    from flask import render_template_string

    module = importlib.import_module(module_name)
    app = module.app
    tracking = find_tracking(module)
    ok(f"the Quickstart module {module_name!r} imports: app {app.name!r} with Tracking")
    client = app.test_client()

    # What a page gets from {{ tracking_script() }}: the Logger and its endpoint.
    with app.test_request_context("/"):
        tag = str(render_template_string("{{ tracking_script() }}"))
    src = re.search(r'src="([^"]+)"', tag)
    endpoint = re.search(r'data-endpoint="([^"]+)"', tag)
    assert src and endpoint, tag
    ok(f"tracking_script() renders {tag}")

    logger = client.get(src.group(1))
    assert logger.status_code == 200, logger.status_code
    assert "javascript" in logger.mimetype, logger.mimetype
    name = src.group(1).rsplit("/", 1)[-1]
    shipped = [p for p in package_dir.rglob(name) if p.read_bytes() == logger.data]
    assert shipped, f"the served {name} is not a file of the installed package"
    ok(f"GET {src.group(1)}: 200, {len(logger.data)} bytes, the installed {shipped[0].name}")

    # An event from the browser, as the Logger posts it.
    browser_id = str(uuid.uuid4())
    now_ms = time.time() * 1000
    batch = {
        "sent_at": now_ms,
        "events": [
            {
                "id": browser_id,
                "event_type": "play_video",
                "event": {"id": "intro-video", "code": "html5", "currentTime": 1.5},
                "page": "https://lms.example/courses/course-v1:Org+Num+Run/courseware/u1",
                "time": now_ms,
                "seq": 1,
            }
        ],
    }
    answer = client.post(endpoint.group(1), data=json.dumps(batch), content_type="text/plain")
    assert answer.status_code == 200, (answer.status_code, answer.get_data(as_text=True))
    ok(f"POST {endpoint.group(1)} (one play_video): 200 {answer.get_json()}")

    # An event emitted by server code.
    with app.test_request_context("/courses/course-v1:Org+Num+Run/problem/p1/answer"):
        emitted = tracking.emit("showanswer", {"problem_id": "p1"})
    assert emitted is not None, "the server event was not stored"
    server_id = emitted["event_id"]
    ok(f"tracking.emit('showanswer', ...) stored event {server_id}")

    # Both queried back, as the README's first query does.
    with app.app_context(), tracking.engine.connect() as conn:
        stored = conn.execute(tracking.events()).all()
        plays = conn.execute(tracking.events("play_video")).all()
        url = tracking.engine.url.render_as_string(hide_password=True)
    by_id = {row.event_id: row for row in stored}
    assert browser_id in by_id and server_id in by_id, sorted(by_id)
    assert by_id[browser_id].event_source == "browser", by_id[browser_id].event_source
    assert by_id[server_id].event_source == "server", by_id[server_id].event_source
    assert [row.event_id for row in plays] == [browser_id]
    ok(f"tracking.events() finds both in {url}: browser play_video and server showanswer")


def check_flask_sqlalchemy() -> None:
    """The ``flask-sqlalchemy`` extra: ``Tracking(app, db=db)`` on the app's engine."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import func, select

    from flask_tracking import Tracking, TrackingEvent

    db = SQLAlchemy()
    app = Flask("with_db", instance_path=str(Path("with-db-instance").resolve()))
    app.config.update(SECRET_KEY="check", SQLALCHEMY_DATABASE_URI="sqlite:///app.db")
    db.init_app(app)
    tracking = Tracking(app, db=db)
    with app.app_context():
        db.create_all()
        tracking.emit("showanswer", {"problem_id": "p1"})
        count = db.session.scalar(select(func.count()).select_from(TrackingEvent))
        assert count == 1, count
        assert tracking.engine.pool is db.engine.pool
        url = db.engine.url
        db.engine.dispose()
    ok(f"[flask-sqlalchemy] extra: Tracking(app, db=db) stored an event through {url}")


def main() -> None:
    package_dir = check_distribution()
    check_quickstart(sys.argv[1], package_dir)
    check_flask_sqlalchemy()
    print("install check: all passed", flush=True)


if __name__ == "__main__":
    main()
