"""The dashboard's vendored Chart.js is the npm package's built file at the version
package.json pins, byte for byte, with the package's licence beside it; and the page's
own files are there. (The wheel carrying them: test_packaging.py.)"""

from __future__ import annotations

import json

from support import ROOT

VENDOR = ROOT / "flask_tracking" / "static" / "dashboard" / "vendor"
PACKAGE = ROOT / "node_modules" / "chart.js"
#: The file the pages load, as Chart.js builds it (UMD, minified: one <script src>).
BUILT = "dist/chart.umd.min.js"


def test_chartjs_is_pinned_exactly_as_a_dev_dependency() -> None:
    manifest = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    pinned = manifest["devDependencies"]["chart.js"]
    assert pinned.count(".") == 2 and pinned[0].isdigit(), f"pin an exact version, not {pinned}"
    installed = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert installed["version"] == pinned, "node_modules is stale: run npm ci"
    assert installed["license"] == "MIT"
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"]["node_modules/chart.js"]["version"] == pinned


def test_the_vendored_chartjs_is_the_built_file_of_the_pinned_version() -> None:
    vendored = (VENDOR / "chart.umd.min.js").read_bytes()
    assert vendored == (PACKAGE / BUILT).read_bytes(), (
        "flask_tracking/static/dashboard/vendor/chart.umd.min.js differs from"
        f" node_modules/chart.js/{BUILT}: copy it again after changing the version"
    )
    pinned = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["devDependencies"]
    assert f"Chart.js v{pinned['chart.js']}".encode() in vendored[:200]


def test_the_licence_is_vendored_beside_it() -> None:
    licence = (VENDOR / "chart.js.LICENSE.md").read_bytes()
    assert licence == (PACKAGE / "LICENSE.md").read_bytes()
    assert b"MIT License" in licence or b"Permission is hereby granted" in licence


def test_the_pages_own_files_are_small_and_load_nothing_remote() -> None:
    own = ROOT / "flask_tracking" / "static" / "dashboard"
    for name in ("dashboard.js", "dashboard.css"):
        text = (own / name).read_text(encoding="utf-8")
        assert len(text) < 12_000, name
        assert "http://" not in text and "https://" not in text, name
        assert "eval(" not in text and "innerHTML" not in text, name
