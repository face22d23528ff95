"""Browser event of the PDF textbook viewer: ``book``."""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .spec import EventSpec, decl, object_event

TITLE: Final = "PDF textbook"
INTRO: Final = "Sent by the PDF textbook viewer when the learner changes page."

SPECS: Final[tuple[EventSpec, ...]] = (
    object_event(
        et.BOOK,
        "browser",
        "The learner went to another page of a PDF textbook.",
        [
            decl(
                "type",
                "string",
                "Kind of move: `gotopage`, `prevpage` or `nextpage`.",
                required=True,
            ),
            decl(
                "old",
                "integer",
                "Page number being left; the first inventory omits it for `nextpage`.",
            ),
            decl("new", "integer", "Page number being opened.", required=True),
            decl("chapter", "string", "Newer logs: URL of the PDF file."),
            decl("name", "string", "Newer logs: `textbook.pdf.page.loaded` and the like."),
        ],
    ),
)
