"""Benchmarks of flask-tracking: ``make bench`` (``python -m bench [NAME ...]``).

Every bench module has ``run() -> list[str]``: one printed line per figure, each figure
beside a baseline measured in the same run (see ``docs/performance.md``). This package
also holds what the modules share: the corpus lines and number formatting. It imports
nothing from the project, so bench helpers can run in another venv (``.venv-bench``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]
#: Real edX tracking-log lines kept in the repository for the tests (see its README.md).
#: A computed path, not an import: the bench imports nothing from ``tests``.
CORPUS = ROOT / "tests" / "data"
#: Corpus files that are not tracking-log lines (``{"source", "raw"}`` of broken lines).
NOT_EVENTS = frozenset({"malformed.jsonl"})

#: Used when the corpus is absent (``bench`` copied without ``tests``): representative
#: lines written for the bench (made-up people and courses), one per common shape: server
#: object payloads, browser payloads as JSON strings, a query string, a list, an empty
#: page_close, a cut request payload, a time without timezone, a line without context and
#: one with extra keys.
BUILTIN_LINES: tuple[str, ...] = (
    '{"username": "alice", "host": "courses.example.org", "event_source": "server", '
    '"event_type": "edx.course.enrollment.activated", "context": {"course_id": '
    '"course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", "user_id": 17, "path": '
    '"/change_enrollment"}, "time": "2024-02-01T09:00:01.123456+00:00", "ip": '
    '"198.51.100.7", "event": {"course_id": "course-v1:ExampleX+Bench101+2024", '
    '"user_id": 17, "mode": "audit"}, "agent": "Mozilla/5.0 (X11; Linux x86_64)", '
    '"page": null}',
    '{"username": "alice", "session": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "play_video", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": 17, "path": "/event"}, "time": "2024-02-01T09:03:12.000120+00:00", "ip": '
    '"198.51.100.7", "event": "{\\"id\\": \\"i4x-ExampleX-Bench101-video-intro\\", '
    '\\"currentTime\\": 12.5, \\"code\\": \\"html5\\"}", "agent": "Mozilla/5.0 (X11; '
    'Linux x86_64)", "page": "https://courses.example.org/courses/course-v1:ExampleX+'
    'Bench101+2024/courseware/week1/intro/"}',
    '{"username": "bob", "session": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "pause_video", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": "23", "path": "/event"}, "time": "2024-02-01T09:05:40.5+00:00", "ip": '
    '"203.0.113.41", "event": "{\\"id\\":\\"3c0a77e1d5f94b6c9a0b4e2f7d8c1a25\\",'
    '\\"currentTime\\":95,\\"code\\":\\"dQw4w9WgXcQ\\",\\"speed\\":\\"1.50\\"}", '
    '"agent": "Mozilla/5.0 (Macintosh)", "page": "https://courses.example.org/courses/'
    'course-v1:ExampleX+Bench101+2024/courseware/week1/intro/", "referer": '
    '"https://courses.example.org/dashboard", "accept_language": "en-US,en;q=0.9"}',
    '{"username": "bob", "session": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "seq_goto", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": "23", "path": "/event"}, "time": "2024-02-01T09:06:02.250000+00:00", '
    '"ip": "203.0.113.41", "event": "{\\"old\\": 1, \\"new\\": 3, \\"id\\": '
    '\\"block-v1:ExampleX+Bench101+2024+type@sequential+block@week1\\"}", "agent": '
    '"Mozilla/5.0 (Macintosh)", "page": "https://courses.example.org/courses/course-v1:'
    'ExampleX+Bench101+2024/courseware/week1/"}',
    '{"username": "carol", "session": "99887766554433221100ffeeddccbbaa", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "problem_check", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": 31, "path": "/event"}, "time": "2024-02-01T10:11:09.771000+00:00", "ip": '
    '"192.0.2.15", "event": "input_i4x-ExampleX-Bench101-problem-q1_2_1=choice_2&input_'
    'i4x-ExampleX-Bench101-problem-q1_3_1%5B%5D=choice_0", "agent": "Mozilla/5.0", '
    '"page": "https://courses.example.org/courses/course-v1:ExampleX+Bench101+2024/'
    'courseware/week1/quiz/"}',
    '{"username": "carol", "host": "courses.example.org", "event_source": "server", '
    '"event_type": "problem_check", "context": {"course_id": "course-v1:ExampleX+Bench101'
    '+2024", "org_id": "ExampleX", "user_id": 31, "path": "/courses/course-v1:ExampleX+'
    'Bench101+2024/xblock/q1/handler/xmodule_handler/problem_check", "module": '
    '{"display_name": "Quiz 1"}}, "time": "2024-02-01T10:11:09.912345+00:00", "ip": '
    '"192.0.2.15", "event": {"state": {"student_answers": {}, "seed": 1, "done": null, '
    '"correct_map": {}, "input_state": {"q1_2_1": {}}}, "problem_id": "block-v1:ExampleX+'
    'Bench101+2024+type@problem+block@q1", "answers": {"q1_2_1": "choice_2"}, "success": '
    '"correct", "attempts": 1, "grade": 1, "max_grade": 1, "correct_map": {"q1_2_1": '
    '{"correctness": "correct", "npoints": null, "msg": "", "hint": "", "hintmode": null, '
    '"queuestate": null}}}, "agent": "Mozilla/5.0", "page": "x_module"}',
    '{"username": "carol", "session": "99887766554433221100ffeeddccbbaa", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "problem_graded", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": 31, "path": "/event"}, "time": "2024-02-01T10:11:10.101000+00:00", "ip": '
    '"192.0.2.15", "event": ["input_q1_2_1=choice_2", "<div class=\\"problem\\">'
    '<p>Correct</p></div>"], "agent": "Mozilla/5.0", "page": "https://courses.example.org'
    '/courses/course-v1:ExampleX+Bench101+2024/courseware/week1/quiz/"}',
    '{"username": "dave", "session": "00112233445566778899aabbccddeeff", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "page_close", '
    '"context": {"course_id": "", "org_id": "", "user_id": 44, "path": "/event"}, "time": '
    '"2024-02-01T11:00:00+00:00", "ip": "2001:db8:85a3::8a2e:370:7334", "event": "", '
    '"agent": "Mozilla/5.0 (Android)", "page": "https://courses.example.org/dashboard"}',
    '{"username": "dave", "host": "courses.example.org", "event_source": "server", '
    '"event_type": "/courses/course-v1:ExampleX+Bench101+2024/courseware/week2/", '
    '"context": {"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", '
    '"user_id": 44}, "time": "2024-02-01T11:02:13.004200", "ip": "203.0.113.9", "event": '
    '"{\\"POST\\": {}, \\"GET\\": {\\"activate_block_id\\": [\\"block-v1:ExampleX+Bench1'
    '01+2024+type@sequential+block@week2\\"]}}", "agent": "curl/8.0", "page": null}',
    '{"username": "erin", "session": "ffeeddccbbaa99887766554433221100", "host": '
    '"courses.example.org", "event_source": "browser", "event_type": "book", "context": '
    '{"course_id": "course-v1:ExampleX+Bench101+2024", "org_id": "ExampleX", "user_id": '
    '52, "path": "/event"}, "time": "2024-02-01T12:30:45.678901+00:00", "ip": '
    '"198.51.100.200", "event": "{\\"type\\": \\"gotopage\\", \\"old\\": 4, \\"new\\": 5, '
    '\\"chapter\\": \\"/asset-v1:ExampleX+Bench101+2024+type@asset+block/notes.pdf\\"}", '
    '"agent": "Mozilla/5.0", "page": "https://courses.example.org/courses/course-v1:'
    'ExampleX+Bench101+2024/pdfbook/0/"}',
    '{"username": "erin", "host": "courses.example.org", "event_source": "server", '
    '"event_type": "showanswer", "time": "2024-02-01T12:31:00.000001+00:00", "ip": '
    '"198.51.100.200", "event": {"problem_id": "block-v1:ExampleX+Bench101+2024+type@'
    'problem+block@q2"}, "agent": "Mozilla/5.0", "page": "x_module"}',
    '{"name": "edx.ui.lms.sequence.next_selected", "username": "frank", "session": '
    '"abcdefabcdefabcdefabcdefabcdef12", "host": "courses.example.org", "event_source": '
    '"browser", "event_type": "seq_next", "context": {"course_id": "course-v1:ExampleX+'
    'Bench101+2024", "org_id": "ExampleX", "user_id": 61, "path": "/event", '
    '"course_user_tags": {}}, "time": "2024-02-01T13:45:00.314159+00:00", "ip": '
    '"192.0.2.77", "event": "{\\"old\\": 2, \\"new\\": 3, \\"current_tab\\": 2, '
    '\\"tab_count\\": 5, \\"widget_placement\\": \\"top\\", \\"id\\": \\"block-v1:'
    'ExampleX+Bench101+2024+type@sequential+block@week1\\"}", "agent": "Mozilla/5.0", '
    '"page": "https://courses.example.org/courses/course-v1:ExampleX+Bench101+2024/'
    'courseware/week1/", "referer": "https://courses.example.org/courses/", '
    '"accept_language": "fr-FR", "label": "next", "nonInteraction": 1}',
)


def corpus_lines() -> tuple[list[str], str]:
    """The real tracking-log lines of the corpus (or the built-in ones), and a label."""
    paths = (
        sorted(p for p in CORPUS.glob("*.jsonl") if p.name not in NOT_EVENTS)
        if CORPUS.is_dir()
        else []
    )
    lines = [
        line
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if lines:
        return lines, f"{len(lines):,} real corpus lines"
    note(f"the corpus ({CORPUS}) is absent: using the built-in sample lines")
    return list(BUILTIN_LINES), f"{len(BUILTIN_LINES)} built-in sample lines"


def note(message: str) -> None:
    """Progress and notes go to stderr, so stdout holds only the figure lines."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def rate(count: int, seconds: float) -> str:
    """``41,230``: a per-second rate, rounded, with thousands separators."""
    return f"{count / seconds:,.0f}" if seconds > 0 else "inf"


def percent(ours: float, baseline: float) -> str:
    """``19.4%``: ours as a share of the baseline."""
    return f"{100 * ours / baseline:.1f}%" if baseline > 0 else "n/a"


def tests_module(name: str) -> Any:
    """``tests/{name}.py`` (a helper module that imports nothing from the project),
    loaded by its path under the name the tests import it by: the bench imports nothing
    from ``tests`` as a package."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _services() -> Any:
    """``tests/services.py``: the tests' PostgreSQL and Redis."""
    return tests_module("services")


def postgres_url(schema: str) -> str:
    """The tests' PostgreSQL (``tests/services.py``: ``TRACKING_TEST_POSTGRES_URL``, the
    service, or a throwaway cluster), with ``schema`` first on the search path."""
    url: str = _services().postgres_url()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def redis_url() -> str:
    """The tests' Redis (``TRACKING_TEST_REDIS_URL``, the service, or a throwaway one)."""
    url: str = _services().redis_url()
    return url
