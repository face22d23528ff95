"""Browser events of capa problems: ``problem_check``, ``problem_reset``, ``problem_save``,
``problem_show`` and ``problem_graded``.

``problem_check`` / ``problem_reset`` / ``problem_save`` carry the learner's answers
"styled as GET parameters": after decoding, either the query string parsed into
``{input id: value or [values]}``, or a string (real logs mostly JSON-encode the query
string, so it decodes to a ``str``; answers with spaces are not parsed as a query either).
``problem_graded`` carries ``[answers, html]``.
"""

from __future__ import annotations

from typing import Any, Final

from .. import event_types as et
from .fields import answers_errors
from .spec import EventSpec, FieldSpec, custom_event, decl, doc_field, object_event

TITLE: Final = "Problems (browser)"
INTRO: Final = (
    "Sent by capa problems in the browser. The answer-carrying events have no fixed "
    "fields: one key per problem input (`input_<problem id>_<n>_<m>`, with `%5B%5D` / "
    "`[]` appended for multiple-choice inputs)."
)

_ANSWERS_PAYLOAD_ERROR: Final = "Invalid payload: expected a query string or an object of answers."


def check_answers(data: Any) -> dict[str, Any]:
    """Check a query-style payload: a string, or an object of answers."""
    if type(data) is str:
        return {}
    if isinstance(data, dict):
        return answers_errors(data)
    return {"_schema": [_ANSWERS_PAYLOAD_ERROR]}


_GRADED_SHAPE_ERROR: Final = "Invalid payload: expected a list of two items, [answers, html]."
_GRADED_ANSWERS_ERROR: Final = "Not a valid query string or object of answers."
_GRADED_HTML_ERROR: Final = "Not a valid string."


def check_graded(data: Any) -> dict[str, Any]:
    """Check a ``problem_graded`` payload: ``[answers, html]`` (or an undecodable string)."""
    if type(data) is str:
        return {}
    if type(data) is not list or len(data) != 2:
        return {"_schema": [_GRADED_SHAPE_ERROR]}
    answers, html = data
    errors: dict[str, Any] = {}
    if isinstance(answers, dict):
        nested = answers_errors(answers)
        if nested:
            errors["answers"] = nested
    elif type(answers) is not str:
        errors["answers"] = [_GRADED_ANSWERS_ERROR]
    if html is not None and type(html) is not str:
        errors["html"] = [_GRADED_HTML_ERROR]
    return errors


def _input_field() -> FieldSpec:
    return doc_field(
        "input_*",
        "string or list of strings",
        "One key per problem input; the value is the learner's answer (numbers are "
        "accepted too). Or the whole payload is a string (the raw or JSON-encoded "
        "query string).",
    )


def _answers_event(event_type: str, description: str) -> EventSpec:
    return custom_event(
        event_type, "browser", description, "query", check_answers, [_input_field()]
    )


SPECS: Final[tuple[EventSpec, ...]] = (
    _answers_event(
        et.PROBLEM_CHECK,
        "The learner submitted answers to be checked. Its server twin (same type, "
        "source `server`) carries the graded result.",
    ),
    _answers_event(et.PROBLEM_RESET, "The learner reset a problem (its current answers)."),
    _answers_event(et.PROBLEM_SAVE, "The learner saved answers without checking them."),
    object_event(
        et.PROBLEM_SHOW,
        "browser",
        "The learner asked to see the answer of a problem.",
        [
            decl(
                "problem",
                "string",
                "Usage id of the problem (`i4x://MITx/6.00x/problem/L15:L15_Problem_2`).",
                required=True,
            )
        ],
    ),
    custom_event(
        et.PROBLEM_GRADED,
        "browser",
        "The browser received the graded problem. The payload is a list; real logs "
        "also hold it as an undecodable string, which is accepted.",
        "list",
        check_graded,
        [
            doc_field(
                "answers",
                "string or object",
                "Item 0: the answers, as a query string (or an object of answers).",
                required=True,
            ),
            doc_field(
                "html",
                "string",
                "Item 1: the problem's re-rendered HTML; null in some real logs.",
                required=True,
                nullable=True,
            ),
        ],
    ),
)
