"""Who is signed in, who is staff, and which stored identity is theirs.

The demo has no user table and no passwords: whoever types a name is that learner, and
the names in ``DEMO_STAFF`` (by default just ``staff``) are staff. A real app takes both
from its own accounts; the rule of the events page stays the same (``can_see_everyone``).
"""

from __future__ import annotations

import hashlib

from flask import current_app, session

from flask_tracking import get_state
from flask_tracking.privacy import Anonymizer

from .ext import USER_ID, USERNAME

#: Config key: the names that are staff.
STAFF_CONFIG = "DEMO_STAFF"
DEFAULT_STAFF = ("staff",)


def user_id_for(name: str) -> int:
    """A stable numeric id for a name (the demo has no user table)."""
    return 100_000 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 900_000


def current_username() -> str | None:
    """The signed-in user's name, from the session; ``None`` when nobody is signed in."""
    name = session.get(USERNAME)
    return name if isinstance(name, str) and name else None


def is_staff(name: str | None = None) -> bool:
    """Whether ``name`` (by default the signed-in user) is staff."""
    name = current_username() if name is None else name
    return bool(name) and name in current_app.config.get(STAFF_CONFIG, DEFAULT_STAFF)


def can_see_everyone() -> bool:
    """The events page's rule: staff see every learner's events, a learner only their own.

    (The library's staff pages, the catalog and the dashboard, ask ``is_staff``.)
    """
    return is_staff()


def stored_user_id() -> str | None:
    """The ``user_id`` column of the signed-in user's events, as the tracker stores it.

    That is the identity loader's ``user_id`` as text, or, when ``TRACKING_ANONYMIZE`` is
    on, the same keyed-hash anonymous id the anonymiser puts in place of the name.
    """
    name = current_username()
    if name is None:
        return None
    user_id = session.get(USER_ID)
    config = get_state().config
    if config.anonymize:
        return Anonymizer(config.hash_key).anonymous_id(name, user_id)
    return None if user_id is None else str(user_id)
