"""PDF.js, served from the pdfjs-dist npm package (``npm ci`` at the repository root)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, send_from_directory
from werkzeug.wrappers import Response

blueprint = Blueprint("vendor", __name__, url_prefix="/vendor")

#: The parts of the package a browser needs (no source maps, no types, no node build).
SERVED = ("legacy/build/", "legacy/web/", "standard_fonts/", "cmaps/", "wasm/")


@blueprint.get("/pdfjs/<path:filename>")
def pdfjs(filename: str) -> Response:
    if not filename.startswith(SERVED) or filename.endswith(".map"):
        abort(404)
    # Module scripts and module workers must come as JavaScript; Python 3.11's
    # mimetypes does not know .mjs.
    mimetype = "text/javascript" if filename.endswith(".mjs") else None
    return send_from_directory(
        current_app.config["DEMO_PDFJS_DIR"], filename, mimetype=mimetype, max_age=3600
    )
