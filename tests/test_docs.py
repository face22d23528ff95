"""Docs that run: every ```python block of README.md and docs/*.md is executed.

The convention (docs/development.md, "Docs that run"): the python blocks of one file run
in order in one shared namespace (a fresh dict, ``__name__ == "docs_snippet"``), with a
fresh temporary directory as the working directory. An HTML comment
``<!-- setup: ... -->`` right before a block (blank lines between are allowed) is code run
just before that block, for setup the reader need not see. Every fenced block names its
language, and every relative link between the pages points at a file (and heading) that
exists.
"""

from __future__ import annotations

import contextvars
import os
import re
import sqlite3
import sys
import textwrap
import traceback
import unicodedata
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask, has_app_context

from flask_tracking import Tracking
from flask_tracking.forwarding import get_forwarder

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python", "py"}
SNIPPET_NAME = "docs_snippet"

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
SETUP_START = re.compile(r"^\s*<!--\s*setup:(?P<rest>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language (first word of the info string), where its code
    starts (1-based line of the first code line) and the code."""

    language: str
    fence_line: int
    code_line: int
    code: str
    setup: Setup | None = None


@dataclass(frozen=True)
class Setup:
    """A ``<!-- setup: ... -->`` comment: the line its code starts on, and the code."""

    line: int
    code: str


class DocFormatError(Exception):
    """A page breaks the convention (an unclosed fence, a setup comment on no block)."""


def _setup_comment(lines: list[str], start: int) -> tuple[Setup, int]:
    """Parse the setup comment starting at ``lines[start]``; return it and its last line."""
    first = SETUP_START.match(lines[start])
    assert first is not None
    body: list[str] = []
    rest = first["rest"]
    index = start
    while True:
        text = rest if index == start else lines[index]
        if "-->" in text:
            body.append(text[: text.index("-->")])
            break
        body.append(text)
        index += 1
        if index == len(lines):
            raise DocFormatError(f"line {start + 1}: the setup comment is never closed (-->)")
    code_start = start + 1
    if not body[0].strip():
        body.pop(0)
        code_start += 1
    else:
        body[0] = body[0].strip()
    return Setup(code_start, textwrap.dedent("\n".join(body)).strip("\n") + "\n"), index


def parse_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown page, with the setup comment before each."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: tuple[Setup, int] | None = None  # a setup comment waiting for its block
    index = 0
    while index < len(lines):
        line = lines[index]
        if pending is None and SETUP_START.match(line):
            comment, end = _setup_comment(lines, index)
            pending = (comment, index + 1)
            index = end + 1
            continue
        opening = FENCE.match(line)
        if opening is not None and opening["fence"][0] == "`" and "`" in opening["info"]:
            opening = None  # "```` ```sh ````" is a code span, not a fence (CommonMark)
        if opening is None:
            if pending is not None and line.strip():
                raise DocFormatError(
                    f"line {pending[1]}: a setup comment must come right before a"
                    " ```python block (only blank lines between)"
                )
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            # Inside a list item the fence is indented: strip that much from each line.
            content = lines[end]
            strip = min(indent, len(content) - len(content.lstrip(" ")))
            body.append(content[strip:])
            end += 1
        if end == len(lines):
            raise DocFormatError(f"line {index + 1}: the fenced block is never closed")
        language = opening["info"].strip().split(" ")[0].lower()
        setup = None
        if pending is not None:
            setup, comment_line = pending
            if language not in PYTHON:
                raise DocFormatError(
                    f"line {comment_line}: a setup comment is only for a ```python block,"
                    f" not ```{language or '(no language)'}"
                )
        code = "\n".join(body) + "\n"
        blocks.append(Block(language, index + 1, index + 2, code, setup))
        pending = None
        index = end + 1
    if pending is not None:
        raise DocFormatError(f"line {pending[1]}: a setup comment is followed by no block")
    return blocks


def page_blocks(page: Path) -> list[Block]:
    """The page's blocks; a page that breaks the convention fails with its name."""
    try:
        return parse_blocks(page.read_text(encoding="utf-8"))
    except DocFormatError as exc:
        failure = f"{page_id(page)}: {exc}"
    pytest.fail(failure, pytrace=False)


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


def _compile(code: str, page: Path, line: int) -> Any:
    """Compile with the page as the file name and the page's line numbers, so a traceback
    points at the Markdown line (and shows it)."""
    return compile("\n" * (line - 1) + code, str(page), "exec")


def _run(page: Path, what: str, code: str, line: int, namespace: dict[str, Any]) -> None:
    try:
        exec(_compile(code, page, line), namespace)  # running the docs is the point
    except Exception as exc:
        frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
        failure = (
            f"{page_id(page)}: the {what} at line {line} raised {type(exc).__name__}: {exc}\n\n"
            + "".join(frame for frame in frames if __file__ not in frame)
        )
    else:
        return
    pytest.fail(failure, pytrace=False)


@pytest.fixture
def snippet_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Flask]]:
    """A fresh working directory, the environment and sys.path put back afterwards, and
    every app a snippet gives to ``Tracking`` closed afterwards (engines, forwarding)."""
    assert not has_app_context()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "environ", os.environ.copy())
    monkeypatch.setattr(sys, "path", list(sys.path))
    apps: list[Flask] = []
    init_app = Tracking.init_app

    def recording_init_app(self: Tracking, app: Flask, *args: Any, **kwargs: Any) -> None:
        apps.append(app)
        init_app(self, app, *args, **kwargs)

    monkeypatch.setattr(Tracking, "init_app", recording_init_app)
    yield apps
    for app in apps:
        if "tracking.forwarding" in app.extensions:
            get_forwarder(app).close()
        if "tracking" in app.extensions:
            app.extensions["tracking"].engine.dispose()
    assert not has_app_context()


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_blocks_run(page: Path, snippet_sandbox: list[Flask], tmp_path: Path) -> None:
    """The page's python blocks run in order, in one namespace, in a fresh directory."""
    blocks = [b for b in page_blocks(page) if b.language in PYTHON]
    namespace: dict[str, Any] = {
        "__name__": SNIPPET_NAME,
        "__file__": str(tmp_path / f"{SNIPPET_NAME}.py"),
    }

    def run_blocks() -> None:
        for block in blocks:
            if block.setup is not None:
                _run(page, "setup comment", block.setup.code, block.setup.line, namespace)
            _run(page, "python block", block.code, block.code_line, namespace)

    # In a copy of the context: app contexts a snippet pushes (and tracking contexts it
    # enters) end with the page.
    contextvars.copy_context().run(run_blocks)
    for app in snippet_sandbox:
        # Snippets' apps keep their instance folder (and so instance/tracking.db) in the
        # temporary directory, never in the repository.
        assert Path(app.instance_path).is_relative_to(tmp_path), app.instance_path


# -- the convention's checks on the pages themselves ---------------------------------


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_fenced_block_names_its_language(page: Path) -> None:
    """An untagged block could hide Python from the runner: every fence says what it is."""
    untagged = [b.fence_line for b in page_blocks(page) if not b.language]
    assert not untagged, (
        f"{page_id(page)}: fenced blocks without a language at lines {untagged}"
        " (use ```python, ```sh, ```console, ```text, ```json, ```jinja, ...)"
    )


LINK = re.compile(
    r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target><[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\)"
)
SCHEMES = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The page's lines outside fenced blocks, with their 1-based numbers."""
    inside: set[int] = set()
    for block in parse_blocks(text):
        end = block.code_line + block.code.count("\n")
        inside.update(range(block.fence_line, end + 1))
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if n not in inside]


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for the page's headings (lower case, punctuation dropped, spaces
    to hyphens, repeated headings numbered)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(text):
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match[1])  # links: their text
        title = re.sub(r"<[^>]+>", "", title)
        slug = "".join(
            ch for ch in title.lower() if ch in " -_" or unicodedata.category(ch)[0] in "LN"
        ).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    """Links between README and docs point at files that exist, and at their headings."""
    text = page.read_text(encoding="utf-8")
    broken = []
    for number, line in _prose_lines(text):
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        for match in LINK.finditer(line):
            target = match["target"].strip("<>")
            if SCHEMES.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            path_part = unquote(path_part.split("?")[0])
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                broken.append(f"line {number}: {target} (no file {path_part})")
            elif (
                anchor
                and resolved.suffix == ".md"
                and anchor not in heading_anchors(resolved.read_text(encoding="utf-8"))
            ):
                broken.append(f"line {number}: {target} (no heading #{anchor})")
    assert not broken, f"{page_id(page)}: broken links:\n" + "\n".join(broken)


def test_readme_lists_every_docs_page() -> None:
    """The README's index names every page of docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [page_id(p) for p in PAGES[1:] if f"]({page_id(p)})" not in readme]
    assert not missing, f"README.md does not link {missing}"


# -- the runner's own behaviour --------------------------------------------------------


def test_setup_comment_runs_before_its_block_and_is_reported_by_line() -> None:
    page = textwrap.dedent(
        """\
        # Title

        <!--
        setup:
        x = 1
        -->

        ```python
        y = x + 1
        ```

        ```sh
        echo not run
        ```

          ```python
          z = y * 2
          ```
        """
    )
    # A comment that starts "<!--" on its own line is not a setup comment; only "<!-- setup:".
    blocks = parse_blocks(page)
    assert [(b.language, b.fence_line, b.setup) for b in blocks] == [
        ("python", 8, None),
        ("sh", 12, None),
        ("python", 16, None),
    ]
    assert blocks[2].code == "z = y * 2\n"
    assert parse_blocks("Tag it ```` ```python ````.\n```` ```sh ```` too.\n") == []
    with_setup = parse_blocks("<!-- setup:\n    x = 1\n    y = 2\n-->\n\n```python\nx + y\n```\n")
    assert with_setup[0].setup == Setup(2, "x = 1\ny = 2\n")
    one_line = parse_blocks("<!-- setup: x = 1 -->\n```python\nx\n```\n")
    assert one_line[0].setup == Setup(1, "x = 1\n")


def test_a_setup_comment_must_sit_right_before_a_python_block() -> None:
    with pytest.raises(DocFormatError, match="line 1: a setup comment must come right before"):
        parse_blocks("<!-- setup: x = 1 -->\nsome prose\n```python\nx\n```\n")
    with pytest.raises(DocFormatError, match="only for a ```python block, not ```sh"):
        parse_blocks("<!-- setup: x = 1 -->\n```sh\nls\n```\n")
    with pytest.raises(DocFormatError, match="followed by no block"):
        parse_blocks("text\n<!-- setup: x = 1 -->\n")
    with pytest.raises(DocFormatError, match="never closed"):
        parse_blocks("```python\nx = 1\n")


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n\n```python\nok = 1\n\nmissing_name\n```\n", encoding="utf-8")
    [block] = parse_blocks(page.read_text(encoding="utf-8"))
    with pytest.raises(pytest.fail.Exception) as failure:
        _run(page, "python block", block.code, block.code_line, {"__name__": SNIPPET_NAME})
    message = str(failure.value)
    assert "the python block at line 4 raised NameError" in message
    assert f'File "{page}", line 6' in message  # the traceback points at the page's line
    assert "missing_name" in message


def test_anchors_follow_github() -> None:
    text = "# Two commands\n## The failure model\n## `TRACKING_*` keys!\n## Two commands\n"
    assert heading_anchors(text) == {
        "two-commands",
        "the-failure-model",
        "tracking_-keys",
        "two-commands-1",
    }


def quickstart_block(readme: str) -> Block:
    """The first python block under ``## Quickstart``: the app the wheel-install test runs."""
    section = readme[readme.index("\n## Quickstart\n") :]
    offset = readme[: readme.index("\n## Quickstart\n")].count("\n") + 1
    block = next(b for b in parse_blocks(section) if b.language in PYTHON)
    return Block(
        block.language, block.fence_line + offset - 1, block.code_line + offset - 1, block.code
    )


def test_readme_quickstart_is_a_complete_app(snippet_sandbox: list[Flask], tmp_path: Path) -> None:
    """The Quickstart block alone, as ``app.py``, defines ``app`` and ``tracking`` and
    stores nothing by itself."""
    readme = ROOT / "README.md"
    block = quickstart_block(readme.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "app", "__file__": str(tmp_path / "app.py")}
    contextvars.copy_context().run(
        _run, readme, "Quickstart block", block.code, block.code_line, namespace
    )
    app, tracking = namespace["app"], namespace["tracking"]
    assert isinstance(app, Flask) and isinstance(tracking, Tracking)
    assert snippet_sandbox == [app]
    assert Path(app.instance_path) == tmp_path / "instance"
    database = tmp_path / "instance" / "tracking.db"
    if database.exists():  # opening the app may create the file, never rows
        with closing(sqlite3.connect(database)) as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
            if "tracking_events" in tables:
                assert conn.execute("SELECT count(*) FROM tracking_events").fetchone() == (0,)
