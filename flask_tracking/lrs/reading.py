"""Reading an edX tracking-log object for the xAPI mapping, and statement building blocks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from .vocabulary import ACTIVITIES

#: Namespace of the statement ids (``uuid5(STATEMENT_NAMESPACE, event_id)``). Fixed for
#: good: changing it would make every re-sent event a new statement.
STATEMENT_NAMESPACE = uuid.UUID("8f0b7c52-3d1e-5a8e-9c4f-6b2d1e7a9f30")
Statement = dict[str, Any]
#: An actor function: the line in, an xAPI Agent (a dict) or ``None`` out.
ActorFunction = Callable[[MappingABC[str, Any]], dict[str, Any] | None]
#: Characters kept as they are when a value becomes part of an IRI path.
IRI_SAFE = ":/@+~!$&'()*,;=-._"


@dataclass(frozen=True, slots=True)
class Mapping:
    """How events become statements (built from the destination's options)."""

    #: The platform's base URL: the actor account's ``homePage`` and the base of the ids.
    platform_url: str
    #: ``"user_id"`` (default: the stored, possibly anonymised, user id), ``"username"``
    #: or a function of the line returning the Agent.
    actor: str | ActorFunction = "user_id"
    #: Verb IRI for events with no mapping (``None``: they are skipped).
    generic_verb: str | None = None
    #: ``context.platform`` of every statement.
    platform_name: str = "Open edX"

    def iri(self, *parts: str) -> str:
        return self.platform_url.rstrip("/") + "/" + "/".join(quote(p, IRI_SAFE) for p in parts)


def statement_id(event_id: str) -> str:
    """The statement id of the event ``event_id``."""
    return str(uuid.uuid5(STATEMENT_NAMESPACE, event_id))


# --- reading the line -------------------------------------------------------------------


def payload(line: MappingABC[str, Any]) -> dict[str, Any]:
    """The event payload as a dict: browser payloads are JSON strings (or query strings)."""
    value = line.get("event")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pairs = parse_qs(value, keep_blank_values=True)
            return {k: v[0] if len(v) == 1 else v for k, v in pairs.items()}
        if isinstance(value, str):  # a JSON string holding a query string
            return payload({"event": value})
    return dict(value) if isinstance(value, MappingABC) else {}


def context_of(line: MappingABC[str, Any]) -> MappingABC[str, Any]:
    context = line.get("context")
    return context if isinstance(context, MappingABC) else {}


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(float(value), 3)
    if isinstance(value, str):
        try:
            return round(float(value), 3)
        except ValueError:
            return None
    return None


def text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# --- building blocks ----------------------------------------------------------------------


def activity(
    object_id: str,
    kind: str,
    *,
    name: str | None = None,
    extensions: dict[str, Any] | None = None,
    **definition: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": ACTIVITIES[kind], **definition}
    if name:
        body["name"] = {"en-US": name}
    if extensions:
        body["extensions"] = extensions
    return {"objectType": "Activity", "id": object_id, "definition": body}


def block_iri(mapping: Mapping, block: str) -> str:
    return mapping.iri("xblock", block)


def page_iri(line: MappingABC[str, Any], mapping: Mapping) -> str | None:
    page = line.get("page")
    if isinstance(page, str) and page.startswith(("http://", "https://")):
        return quote(page, IRI_SAFE + "?#%")
    return None


def extensions(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def video_object(line: MappingABC[str, Any], mapping: Mapping, data: dict[str, Any]) -> Any:
    module = context_of(line).get("module")
    usage = module.get("usage_key") if isinstance(module, MappingABC) else None
    video = text(data.get("id")) or text(usage)
    return None if video is None else activity(block_iri(mapping, video), "video")


def seconds(value: Any) -> str | None:
    amount = number(value)
    return None if amount is None or amount < 0 else f"PT{amount:g}S"
