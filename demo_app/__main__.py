"""``python -m demo_app``: serve the demo on http://127.0.0.1:5000 (SQLite, nothing else).

``DEMO_HOST`` / ``DEMO_PORT`` change where it listens; ``DEMO_SECRET_KEY`` sets the
session key (otherwise one is kept in ``instance/demo-secret-key``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import create_app
from .media import ensure_media


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("DEMO_PORT", "5000"))
    except ValueError:
        print("demo: DEMO_PORT must be a port number", file=sys.stderr)
        return 2
    for note in ensure_media():
        print(f"demo: {note}")
    app = create_app()
    if not Path(app.config["DEMO_PDFJS_DIR"]).is_dir():
        print("demo: PDF.js is missing, the textbook unit will not show: run `npm ci` first")
    print(f"demo: events stored in {app.config['TRACKING_DATABASE_URL']}")
    staff = ", ".join(app.config["DEMO_STAFF"])
    print(f"demo: sign in as any name; staff ({staff}) see every learner's events")
    print(f"demo: open http://{host}:{port}/  (Ctrl-C to stop)")
    app.run(host=host, port=port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
