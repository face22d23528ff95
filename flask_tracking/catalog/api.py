"""The registration part of ``Tracking``: the app's event types and the staff access rule.

``Tracking`` inherits these methods; they only record what the app declares, the
pipeline and the catalog views read it (``types.py``, ``views.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from marshmallow import Schema

from .types import TypeRegistry

SchemaT = TypeVar("SchemaT", bound="type[Schema]")
#: ``func() -> bool``: may the current request see the staff pages?
AccessRule = Callable[[], bool]


class EventTypes:
    """Event-type registration and the staff access rule, mixed into ``Tracking``."""

    def __init__(self) -> None:
        #: The app's own event types (see :meth:`event_type`).
        self.types = TypeRegistry()
        self._dashboard_access: AccessRule | None = None

    @overload
    def event_type(
        self,
        name: str,
        schema: type[Schema] | Schema,
        *,
        source: str = "server",
        description: str | None = None,
        version: int = 1,
        examples: Iterable[Any] = (),
    ) -> None: ...

    @overload
    def event_type(
        self,
        name: str,
        schema: None = None,
        *,
        source: str = "server",
        description: str | None = None,
        version: int = 1,
        examples: Iterable[Any] = (),
    ) -> Callable[[SchemaT], SchemaT]: ...

    def event_type(
        self,
        name: str,
        schema: type[Schema] | Schema | None = None,
        *,
        source: str = "server",
        description: str | None = None,
        version: int = 1,
        examples: Iterable[Any] = (),
    ) -> Callable[[SchemaT], SchemaT] | None:
        """Register an event type of the app with its marshmallow schema.

        ``tracking.event_type("myapp.enrollment.activated", EnrollmentSchema,
        source="server", description="...", version=1)``, or as a class decorator
        (``@tracking.event_type("myapp.enrollment.activated")`` above the schema class;
        the description defaults to its docstring). ``source`` is ``"server"``,
        ``"browser"`` or ``"both"``; a changed schema is registered as the next
        ``version``. Events of the type are then checked on every path like a built-in
        one. Raises :class:`~flask_tracking.catalog.EventTypeError` (a ``ConfigError``)
        for a built-in name or a (source, type, version) taken by another schema.
        See ``docs/catalog.md``.
        """
        options: dict[str, Any] = dict(
            source=source, description=description, version=version, examples=examples
        )
        if schema is not None:
            self.types.register(name, schema, **options)
            return None

        def register(cls: SchemaT) -> SchemaT:
            self.types.register(name, cls, **options)
            return cls

        return register

    def dashboard_access(self, func: AccessRule) -> AccessRule:
        """Register ``func() -> bool``, the access rule of every staff page (the event
        catalog page, the dashboard): called in the request; ``False`` answers 403. With
        no rule registered, nobody may see them."""
        self._dashboard_access = func
        return func

    def dashboard_allowed(self) -> bool:
        """Whether the current request passes the :meth:`dashboard_access` rule."""
        return bool(self._dashboard_access()) if self._dashboard_access else False
