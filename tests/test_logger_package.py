"""The browser Logger ships from one place, ``static/js/``, in two packages.

``flask_tracking/static/js`` is a committed symlink to ``../../static/js``: the blueprint
serves the files from there in a checkout and an editable install, and setuptools copies
their contents (not the link) into the sdist and the wheel. The npm package
``flask-tracking-logger`` is ``static/js/`` itself. These tests build both from a copy of
the checkout (its tracked and new files, the symlink kept as a symlink, as a clone has
it), check that they carry byte-identical Logger files, and install the npm tarball into
an empty folder to ``require()`` and ``import`` it there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGGER_DIR = ROOT / "static" / "js"
#: The Logger files, as both packages ship them.
LOGGER_FILES = ["logger.d.ts", "logger.js", "logger.min.js", "logger.min.js.map", "logger.mjs"]
#: Every command below is bounded; a build or an install that hangs is a failure.
TIMEOUT = 240


def say(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    """Prints past pytest's capture: CI's log shows what was checked."""
    with capsys.disabled():
        for line in lines:
            print(f"\n  logger package: {line}", end="")
        print()


def run(*args: str | Path, cwd: Path, timeout: int = TIMEOUT) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def checkout_copy(dest: Path) -> Path:
    """The checkout's tracked and untracked (not ignored) files, symlinks kept as symlinks."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The wheel, the sdist and the npm tarball, built once for this module."""
    tmp = tmp_path_factory.mktemp("logger-package")
    src = checkout_copy(tmp / "src")
    assert (src / "flask_tracking/static/js").is_symlink()
    out = tmp / "out"
    pip_wheel = ["-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", out, "-q"]
    run(sys.executable, *pip_wheel, cwd=src)
    sdist_code = f"from setuptools import build_meta as b; print(b.build_sdist({str(out)!r}))"
    run(sys.executable, "-c", sdist_code, cwd=src)
    npm_pack = ["npm", "pack", "--json", "--pack-destination", out]
    packed = json.loads(run(*npm_pack, cwd=src / "static/js"))
    yield {
        "wheel": next(out.glob("*.whl")),
        "sdist": next(out.glob("*.tar.gz")),
        "npm": out / packed[0]["filename"],
        "npm_info": packed[0],
        "tmp": tmp,
    }


def wheel_logger_files(wheel: Path) -> dict[str, bytes]:
    prefix = "flask_tracking/static/js/"
    with zipfile.ZipFile(wheel) as zf:
        return {
            n.removeprefix(prefix): zf.read(n)
            for n in zf.namelist()
            if n.startswith(prefix) and not n.endswith("/")
        }


def tar_files(tgz: Path, prefix: str) -> dict[str, tarfile.TarInfo | bytes]:
    found: dict[str, Any] = {}
    with tarfile.open(tgz) as tf:
        for member in tf.getmembers():
            if member.name.startswith(prefix) and not member.isdir():
                rest = member.name.removeprefix(prefix)
                if "/" not in rest:
                    extracted = tf.extractfile(member) if member.isfile() else None
                    found[rest] = extracted.read() if extracted else member
    return found


def test_wheel_and_npm_carry_the_same_logger_files(
    built: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    source = {name: (LOGGER_DIR / name).read_bytes() for name in LOGGER_FILES}
    in_wheel = wheel_logger_files(built["wheel"])
    in_npm = tar_files(built["npm"], "package/")
    assert sorted(in_wheel) == LOGGER_FILES, sorted(in_wheel)
    assert sorted(in_npm) == sorted([*LOGGER_FILES, "LICENSE", "README.md", "package.json"])
    for name in LOGGER_FILES:
        assert in_wheel[name] == source[name], f"{name} in the wheel differs from static/js/"
        assert in_npm[name] == source[name], f"{name} in the npm tarball differs from static/js/"
    say(
        capsys,
        f"{built['wheel'].name} and {built['npm'].name} carry {len(LOGGER_FILES)} identical"
        f" Logger files ({', '.join(LOGGER_FILES)}; {sum(map(len, source.values()))} bytes)",
    )


def test_sdist_carries_the_logger_as_files_not_a_symlink(built: dict[str, Any]) -> None:
    sdist: Path = built["sdist"]
    prefix = sdist.name.removesuffix(".tar.gz") + "/flask_tracking/static/js/"
    found = tar_files(sdist, prefix)
    for name in LOGGER_FILES:
        assert found.get(name) == (LOGGER_DIR / name).read_bytes(), f"{name} in {sdist.name}"


def test_npm_package_has_no_dependencies_and_its_licence(
    built: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = json.loads((LOGGER_DIR / "package.json").read_text())
    assert "private" not in manifest
    assert not manifest.get("dependencies")
    assert manifest["license"] == "BSD-3-Clause"
    licence = (LOGGER_DIR / "LICENSE").read_text()
    assert licence.startswith("BSD 3-Clause License")
    if (ROOT / "LICENSE").exists():
        assert licence == (ROOT / "LICENSE").read_text(), "static/js/LICENSE differs from LICENSE"
    info = built["npm_info"]
    files = ", ".join(sorted(f["path"] for f in info["files"]))
    say(
        capsys,
        f"{info['filename']}: {info['size']} bytes packed, {info['unpackedSize']} unpacked,"
        f" no dependencies; {files}",
    )


INSTALLED_CHECK = """
const assert = require("node:assert/strict");
const pkg = require("flask-tracking-logger");
assert.equal(typeof pkg.createLogger, "function");
const fetch = async (url, init) => new Response(JSON.stringify(
  { accepted: JSON.parse(init.body).events.length, duplicates: 0, failed: [] }));
const logger = pkg.createLogger(undefined, { fetch });
logger.log("from_require", { ok: true }, null, { flush: true }).then((event) => {
  logger.stop();
  console.log("require: " + event.event_type + " sent, " + JSON.stringify(logger.stats()));
});
"""

INSTALLED_IMPORT = """
import assert from "node:assert/strict";
import Logger, { createLogger } from "flask-tracking-logger";
import { createLogger as fromMjs } from "flask-tracking-logger/logger.mjs";
assert.equal(Logger, undefined, "no document, no page Logger");
assert.equal(createLogger, fromMjs);
const fetch = async (url, init) => new Response(JSON.stringify(
  { accepted: JSON.parse(init.body).events.length, duplicates: 0, failed: [] }));
const logger = createLogger(undefined, { fetch });
const event = await logger.log("from_import", {}, null, { flush: true });
logger.stop();
console.log(`import: ${event.event_type} sent, ${JSON.stringify(logger.stats())}`);
"""


def test_npm_tarball_installs_alone_and_require_and_import_work(
    built: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed into an empty folder, offline: nothing but the package lands in node_modules;
    a Logger made through require() and through import sends, stops, and node exits."""
    app = built["tmp"] / "empty-app"
    app.mkdir()
    run("npm", "install", built["npm"], "--no-audit", "--no-fund", "--offline", cwd=app)
    assert sorted(p.name for p in (app / "node_modules").iterdir() if p.name[0] != ".") == [
        "flask-tracking-logger"
    ]
    # Exiting within the timeout is the check that stop() left nothing running.
    out = run("node", "-e", INSTALLED_CHECK, cwd=app, timeout=30)
    assert "require: from_require sent" in out
    out += run("node", "--input-type=module", "-e", INSTALLED_IMPORT, cwd=app, timeout=30)
    assert "import: from_import sent" in out
    say(
        capsys,
        f"{built['npm'].name} installed alone into an empty folder (offline):",
        *out.splitlines(),
    )


@pytest.mark.parametrize("name", ["logger.js", "logger.min.js", "logger.min.js.map", "logger.mjs"])
def test_blueprint_serves_the_logger_files(client: Any, name: str) -> None:
    response = client.get(f"/activity/static/js/{name}")
    assert response.status_code == 200
    assert response.data == (LOGGER_DIR / name).read_bytes()
    response.close()


@pytest.mark.parametrize(
    ("prefix", "debug", "src"),
    [
        ("/activity", False, "/activity/static/js/logger.min.js"),
        ("/", False, "/activity/static/js/logger.min.js"),
        ("/activity", True, "/activity/static/js/logger.js"),
    ],
)
def test_tracking_script_points_at_a_served_logger(
    make_app: Any, prefix: str, debug: bool, src: str
) -> None:
    """The tag loads the minified Logger, the source in debug mode. With
    TRACKING_URL_PREFIX = "/", <prefix>/static would be the app's own /static route,
    which shadows the blueprint's: the Logger stays at /activity/static there."""
    from flask import render_template_string

    app = make_app(TRACKING_URL_PREFIX=prefix)
    app.debug = debug
    with app.test_request_context("/"):
        tag = render_template_string("{{ tracking_script() }}")
    assert f'src="{src}"' in tag, tag
    response = app.test_client().get(src)
    assert response.status_code == 200
    assert response.data == (LOGGER_DIR / src.rsplit("/", 1)[-1]).read_bytes()
    response.close()


def test_tracking_script_can_choose_the_file(make_app: Any) -> None:
    """``minified=`` overrides what debug mode picks."""
    from flask import render_template_string

    app = make_app()
    with app.test_request_context("/"):
        source = render_template_string("{{ tracking_script(minified=False) }}")
        app.debug = True
        minified = render_template_string("{{ tracking_script(minified=True) }}")
    assert 'src="/activity/static/js/logger.js"' in source, source
    assert 'src="/activity/static/js/logger.min.js"' in minified, minified
