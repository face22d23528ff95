"""The Python package people install: the sdist and the wheel built from this checkout,
what they carry, and the wheel installed (not editable) into a fresh venv running the
README's Quickstart app end to end (tests/install_check.py), outside the checkout.

The builds use this venv's setuptools (``--no-isolation``: ``.[dev]`` has setuptools>=77
and ``build``); the fresh venv gets the wheel's dependencies from the package index as a
user's would. What was checked is printed, also when the test passes.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import ROOT

HERE = Path(__file__).resolve().parent
NAME = "flask_tracking"


def say(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    """Print past pytest's capture: the test reports what it checked."""
    with capsys.disabled():
        for line in lines:
            print(f"\n  packaging: {line}", end="")
        print()


def run(args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
        )
    return done.stdout


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: nothing pointing back at this checkout's venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Built:
    sdist: Path
    wheel: Path  # built from the sdist, as pip builds an sdist it downloaded
    direct_wheel: Path  # built from the checkout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    try:
        from setuptools import __version__ as setuptools_version
    except ImportError:
        setuptools_version = "0"
    if int(setuptools_version.split(".")[0]) < 77:
        pytest.fail(
            f"setuptools {setuptools_version} in this venv; the build needs >= 77"
            " (pip install -e '.[dev]', or bash scripts/setup.sh)"
        )
    out = tmp_path_factory.mktemp("dist")
    direct = tmp_path_factory.mktemp("direct")
    build = [sys.executable, "-m", "build", "--no-isolation"]
    # No --sdist/--wheel: the sdist first, then the wheel built from the unpacked sdist.
    run([*build, "--outdir", str(out), str(ROOT)], cwd=ROOT, timeout=180)
    # setuptools' build/ folder keeps files of earlier builds (a module since removed
    # would end up in the wheel): the checkout's wheel is built from an empty one.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    run([*build, "--wheel", "--outdir", str(direct), str(ROOT)], cwd=ROOT, timeout=180)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    (direct_wheel,) = direct.glob("*.whl")
    return Built(sdist, wheel, direct_wheel)


def test_sdist_carries_the_licence_and_docs_and_no_tests(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    with tarfile.open(built.sdist) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    inside = {n.removeprefix(f"{top}/") for n in names if n != top}
    for needed in ("LICENSE", "README.md", "CHANGES.md", "pyproject.toml", "PKG-INFO"):
        assert needed in inside, f"{needed} is not in the sdist"
    assert f"{NAME}/py.typed" in inside
    assert any(n.startswith("docs/") and n.endswith(".md") for n in inside)
    # The sdist ships no tests (they need PostgreSQL, Redis, Chromium and Node): none of
    # tests/, demo_app/, bench/ or node_modules/ goes in.
    stray = sorted(
        n for n in inside if n.split("/")[0] in {"tests", "demo_app", "bench", "node_modules"}
    )
    assert not stray, f"files that should not be in the sdist: {stray[:10]}"
    say(
        capsys,
        f"sdist {built.sdist.name}: {len(inside)} entries, LICENSE, README.md, CHANGES.md,"
        " docs/; no tests/, demo_app/, bench/",
    )


def test_wheel_carries_licence_types_logger_and_metadata(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    with zipfile.ZipFile(built.wheel) as whl:
        names = set(whl.namelist())
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        meta = email.message_from_bytes(whl.read(f"{info}/METADATA"))
        licence = whl.read(f"{info}/licenses/LICENSE").decode()
    assert licence == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert f"{NAME}/py.typed" in names
    logger_files = sorted(n for n in names if re.fullmatch(rf"{NAME}/.*logger\.[a-z.]+", n))
    assert f"{NAME}/static/js/logger.js" in logger_files, logger_files
    assert not [n for n in names if n.split("/")[0] in {"tests", "demo_app", "bench"}]

    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    classifiers = meta.get_all("Classifier") or []
    for wanted in ("Framework :: Flask", "Topic :: Education", "Typing :: Typed"):
        assert wanted in classifiers, classifiers
    assert not [c for c in classifiers if c.startswith("License ::")], (
        "the SPDX License-Expression replaces License :: classifiers"
    )
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) >= {"Homepage", "Documentation", "Changelog", "Issues"}, urls
    assert all(
        u.startswith("https://github.com/flask-tracking/flask-tracking") for u in urls.values()
    )
    assert meta["Keywords"], "no keywords"
    extras = meta.get_all("Provides-Extra") or []
    assert {"postgresql", "flask-sqlalchemy"} <= set(extras), extras

    # The sdist is complete: the wheel built from it holds what the checkout's wheel holds.
    with zipfile.ZipFile(built.direct_wheel) as whl:
        direct = set(whl.namelist())
    assert names == direct, (sorted(names ^ direct))[:20]
    say(
        capsys,
        f"wheel {built.wheel.name}: {len(names)} files, {info}/licenses/LICENSE,"
        f" {NAME}/py.typed, {', '.join(logger_files)}",
        f"metadata: License-Expression BSD-3-Clause, {len(classifiers)} classifiers,"
        f" URLs {sorted(urls)}, extras {extras}",
        "the wheel built from the sdist has the same files as the one built from the checkout",
    )


def quickstart_block(readme: str) -> str:
    """The first ```python block under the "## Quickstart" heading of README.md."""
    heading = re.search(r"^## Quickstart[ \t]*$", readme, re.M)
    assert heading, 'README.md has no "## Quickstart" heading'
    section = readme[heading.end() :]
    following = re.search(r"^## ", section, re.M)
    section = section[: following.start()] if following else section
    block = re.search(r"^```python[ \t]*\n(.*?)^```[ \t]*$", section, re.M | re.S)
    assert block, 'no ```python block under "## Quickstart" in README.md'
    return block.group(1)


@pytest.fixture(scope="module")
def venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed, not editable, with its dependencies and
    those of its ``flask-sqlalchemy`` extra."""
    place = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", str(place)], cwd=place.parent, timeout=120)
    python = place / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    wanted = f"{built.wheel}[flask-sqlalchemy]"
    run([*pip, wanted], cwd=place.parent, timeout=420, env=clean_env())
    yield python


def test_wheel_carries_the_dashboard_with_its_vendored_chartjs(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dashboard's templates and files, and Chart.js byte-identical to the npm
    package's built file (tests/test_dashboard_assets.py pins that to package.json)."""
    vendored = f"{NAME}/static/dashboard/vendor/chart.umd.min.js"
    wanted = [
        vendored,
        f"{NAME}/static/dashboard/vendor/chart.js.LICENSE.md",
        f"{NAME}/static/dashboard/dashboard.js",
        f"{NAME}/static/dashboard/dashboard.css",
        *(
            f"{NAME}/dashboard/templates/tracking_dashboard/{t}.html"
            for t in ("base", "index", "page")
        ),
    ]
    with zipfile.ZipFile(built.wheel) as whl:
        names = set(whl.namelist())
        missing = [n for n in wanted if n not in names]
        assert not missing, f"not in the wheel: {missing}"
        assert (
            whl.read(vendored)
            == (ROOT / "node_modules/chart.js/dist/chart.umd.min.js").read_bytes()
        )
    say(
        capsys,
        f"wheel {built.wheel.name}: the dashboard's {len(wanted)} files, Chart.js as npm built it",
    )


def test_installed_wheel_runs_the_readme_quickstart(
    venv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ROOT not in tmp_path.parents and tmp_path != ROOT
    app_dir = tmp_path / "newcomer"
    app_dir.mkdir()
    (app_dir / "quickstart.py").write_text(quickstart_block((ROOT / "README.md").read_text()))
    (app_dir / "install_check.py").write_text((HERE / "install_check.py").read_text())
    env = clean_env()

    shown = run(
        [str(venv), "-m", "pip", "show", "flask-tracking"], cwd=app_dir, timeout=60, env=env
    )
    assert "Editable project location" not in shown, shown
    flask = str(venv.parent / "flask")
    init = run(
        [flask, "--app", "quickstart", "tracking", "init-db"], cwd=app_dir, timeout=60, env=env
    )
    report = run([str(venv), "install_check.py", "quickstart"], cwd=app_dir, timeout=120, env=env)
    assert report.rstrip().endswith("install check: all passed"), report
    say(
        capsys,
        f"fresh venv {venv.parent.parent}, flask-tracking installed from the wheel (not editable)",
        f"README Quickstart written to {app_dir}/quickstart.py;"
        f" flask --app quickstart tracking init-db: {init.strip().splitlines()[-1]}",
        *report.strip().splitlines(),
    )
