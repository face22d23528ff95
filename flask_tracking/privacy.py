"""Anonymisation: the processor that runs last when ``TRACKING_ANONYMIZE`` is on.

The username becomes a stable anonymous id (a keyed hash), so is the user id; the IP is
truncated (IPv4 to /24, IPv6 to /48); an edX session key is hashed. Copies of these
inside the context are treated alike, and nothing personal is kept for export.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from .requestinfo import keyed_hash

_PERSONAL_KEYS = ("username", "user_id", "ip", "session")


def truncate_ip(value: Any) -> Any:
    """``203.0.113.77`` → ``203.0.113.0``; IPv6 keeps its first 48 bits."""
    if not isinstance(value, str) or not value:
        return value
    return _truncate(value)


@functools.lru_cache(maxsize=4096)
def _truncate(value: str) -> str:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)


class Anonymizer:
    """A processor: returns a new event with no raw personal identifiers."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def anonymous_id(self, username: Any, user_id: Any) -> str | None:
        """The anonymous id of a learner: keyed on the username, else the user id."""
        if isinstance(username, str) and username:
            return keyed_hash(self.key, username, purpose="user")
        if user_id not in (None, ""):
            return keyed_hash(self.key, f"id:{user_id}", purpose="user")
        return None

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        context = dict(event.get("context") or {})
        anon = self.anonymous_id(
            event.get("username") or context.get("username"), context.get("user_id")
        )
        out = dict(event)
        out["username"] = anon or ""
        out["ip"] = truncate_ip(event.get("ip"))
        out["session"] = self._session(event.get("session"))
        if "user_id" in context:
            context["user_id"] = anon
        if "username" in context:
            context["username"] = anon or ""
        if "ip" in context:
            context["ip"] = truncate_ip(context["ip"])
        if "session" in context:
            context["session"] = self._session(context["session"])
        out["context"] = context
        original = event.get("original")
        if original:
            values = {
                k: v
                for k, v in original.get("values", {}).items()
                if k not in _PERSONAL_KEYS and k != "context"
            }
            out["original"] = {"keys": original["keys"], "values": values}
        return out

    def _session(self, value: Any) -> Any:
        if isinstance(value, str) and value:
            return keyed_hash(self.key, value, purpose="session-anon")
        return value
