"""Browser event of the page itself: ``page_close``."""

from __future__ import annotations

from typing import Final

from .. import event_types as et
from .spec import EventSpec, custom_event

TITLE: Final = "Page"
INTRO: Final = "Sent by the tracking logger itself; the envelope's `page` says which page."

SPECS: Final[tuple[EventSpec, ...]] = (
    custom_event(
        et.PAGE_CLOSE,
        "browser",
        "The learner left or closed the page. The payload carries nothing: real logs hold "
        '`""` or `{}` (any payload is accepted).',
        "any",
    ),
)
