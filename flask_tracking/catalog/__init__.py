"""The event-type catalog: an app's own types, their versions, their JSON Schemas.

- ``types.py``: :class:`TypeRegistry`, the registered marshmallow schemas by (source,
  type, version), consulted by the pipeline for every event;
- ``jsonschema.py``: marshmallow schemas (built-in and registered) as JSON Schema;
- ``document.py``: the whole catalog as data, Markdown, and files beside an export;
- ``table.py``: the ``tracking_event_types`` table kept with the events;
- ``views.py`` / ``page.py``: ``catalog.json``, one schema per type, the staff page;
- ``cli.py``: ``flask tracking catalog``.

See ``docs/catalog.md``.
"""

from __future__ import annotations

from .types import VERSION_KEY, EventType, EventTypeError, TypeRegistry

__all__ = ["VERSION_KEY", "EventType", "EventTypeError", "TypeRegistry"]
