"""The data types of the catalog (:class:`EventSpec`, :class:`FieldSpec`, :class:`Verdict`)
and the helpers the family modules use to declare event specs.

A field is declared once (:func:`decl`), which gives both its documentation
(:class:`FieldSpec`) and its marshmallow field; :func:`object_event` turns a list of
declarations into an :class:`EventSpec` with a marshmallow schema built at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from marshmallow import INCLUDE, Schema, fields, validate

from . import fields as tf

Status = Literal["valid", "invalid", "unknown"]
PayloadKind = Literal["object", "query", "list", "any"]
Source = Literal["browser", "server"]

#: A payload checker: marshmallow-style errors, ``{}`` when the payload is fine.
Checker = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of :func:`~flask_tracking.schemas.check_payload`.

    ``status`` is ``"unknown"`` when there is no spec for the (source, type). ``errors``
    holds marshmallow-style messages keyed by field name (``"_schema"`` for the payload
    as a whole); it is ``{}`` unless the status is ``"invalid"``. Verdicts may be shared
    between calls: treat them (and their ``errors``) as read-only.
    """

    status: Status
    errors: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless the payload was found invalid (unknown types are not invalid)."""
        return self.status != "invalid"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One documented field of an event payload."""

    name: str
    type: str
    required: bool
    nullable: bool
    description: str


def _no_errors(data: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What one event type looks like, for one source (``browser`` or ``server``).

    ``schema`` is the marshmallow schema of object payloads (``None`` for other payload
    kinds); ``check`` is the prebuilt checker used by ``check_payload`` for every kind.
    """

    event_type: str
    source: Source
    aliases: tuple[str, ...]
    description: str
    fields: tuple[FieldSpec, ...]
    schema: Schema | None
    payload: PayloadKind
    check: Checker = field(default=_no_errors, repr=False, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical type followed by its aliases."""
        return (self.event_type, *self.aliases)


class PayloadSchema(Schema):
    """Base of every payload schema: unknown keys are always allowed (real logs add many)."""

    class Meta:
        unknown = INCLUDE


@dataclass(frozen=True, slots=True)
class Decl:
    """A field declaration: its documentation, its marshmallow field and its fast check.

    ``accepts(value)`` (``None`` when the field has none) is a *sufficient* condition
    for the marshmallow field to accept a present, non-null value.
    """

    spec: FieldSpec
    field: fields.Field[Any]
    accepts: Callable[[Any], bool] | None


#: Type label -> marshmallow field class, for :func:`decl`.
KINDS: Final[dict[str, Callable[..., fields.Field[Any]]]] = {
    "string": tf.String,
    "integer": tf.Integer,
    "number": tf.Number,
    "number or numeric string": tf.NumberOrNumericString,
    "string or integer": tf.StringOrInteger,
    "object": tf.Object,
    "object or string": tf.ObjectOrString,
    "boolean": tf.Boolean,
    "number or boolean": tf.NumberOrBoolean,
    "any": tf.Raw,
}


def _one_of(accepts: Callable[[Any], bool], choices: frozenset[str]) -> Callable[[Any], bool]:
    def accepts_choice(value: Any) -> bool:
        return accepts(value) and value in choices

    return accepts_choice


def decl(
    name: str,
    type: str,
    description: str,
    *,
    required: bool = False,
    nullable: bool = False,
    choices: Iterable[str] | None = None,
    field: fields.Field[Any] | None = None,
) -> Decl:
    """Declare a payload field.

    ``type`` is the label shown in the docs; unless ``field`` is given it also picks the
    marshmallow field from :data:`KINDS`. ``choices`` restricts the value to those strings.
    """
    if field is None:
        field = KINDS[type]()
    field.required = required
    field.allow_none = nullable
    accepts: Callable[[Any], bool] | None = getattr(field, "accepts", None)
    if choices is not None:
        choices = tuple(choices)
        field.validators.append(validate.OneOf(choices))
        if accepts is not None:
            accepts = _one_of(accepts, frozenset(choices))
    return Decl(FieldSpec(name, type, required, nullable, description), field, accepts)


_MISSING: Final = object()


def fast_check(decls: Iterable[Decl]) -> tf.FastCheck | None:
    """A fast check of an object against ``decls``: True only if marshmallow would report
    no error (it may say False for a valid object). ``None`` if some field has no check."""
    rules = []
    for d in decls:
        if d.accepts is None:
            return None
        rules.append((d.spec.name, d.spec.required, d.spec.nullable, d.accepts))
    frozen_rules = tuple(rules)

    def check(data: dict[str, Any]) -> bool:
        for name, required, nullable, accepts in frozen_rules:
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    return False
            elif value is None:
                if not nullable:
                    return False
            elif not accepts(value):
                return False
        return True

    return check


def doc_field(
    name: str,
    type: str,
    description: str,
    *,
    required: bool = False,
    nullable: bool = False,
) -> FieldSpec:
    """Document a field that no marshmallow schema checks (list or query payloads)."""
    return FieldSpec(name, type, required, nullable, description)


def build_schema(name: str, decls: Iterable[Decl]) -> Schema:
    """A :class:`PayloadSchema` instance with the declared fields."""
    schema_class = PayloadSchema.from_dict({d.spec.name: d.field for d in decls}, name=name)
    return schema_class()


def _schema_name(event_type: str, source: str) -> str:
    words = f"{source}_{event_type}".split("_")
    return "".join(word.capitalize() for word in words) + "Payload"


_NO_ERRORS: Final[dict[str, Any]] = {}  # shared: callers treat "no errors" as read-only
_NOT_AN_OBJECT: Final = "Invalid payload: expected an object."


def object_checker(schema: Schema, fast: tf.FastCheck | None = None) -> Checker:
    """A checker for object payloads: anything but a dict is refused as a whole.

    ``fast`` (see :func:`fast_check`) answers most valid payloads without marshmallow;
    marshmallow gives the verdict and the messages otherwise.
    """
    validate_object = schema.validate

    if fast is None:

        def check_slow(data: Any) -> dict[str, Any]:
            if isinstance(data, dict):
                return validate_object(data)
            return {"_schema": [_NOT_AN_OBJECT]}

        return check_slow

    def check(data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            if fast(data):
                return _NO_ERRORS
            return validate_object(data)
        return {"_schema": [_NOT_AN_OBJECT]}

    return check


def nested_object(name: str, decls: Iterable[Decl]) -> tf.NestedObject:
    """A field holding one object checked against ``decls``."""
    decls = tuple(decls)
    fast = fast_check(decls)
    if fast is None:
        raise ValueError(f"{name}: every nested field needs a fast check")
    return tf.NestedObject(build_schema(name, decls), fast)


def object_map(name: str, decls: Iterable[Decl], *, allow_json_string: bool) -> tf.ObjectMap:
    """A field holding ``{key: object}``, every object checked against ``decls``."""
    decls = tuple(decls)
    fast = fast_check(decls)
    if fast is None:
        raise ValueError(f"{name}: every nested field needs a fast check")
    return tf.ObjectMap(build_schema(name, decls), fast, allow_json_string=allow_json_string)


def object_event(
    event_type: str,
    source: Source,
    description: str,
    decls: Iterable[Decl],
    *,
    aliases: tuple[str, ...] = (),
) -> EventSpec:
    """An event whose payload is a JSON object, checked by a marshmallow schema."""
    decls = tuple(decls)
    schema = build_schema(_schema_name(event_type, source), decls)
    return EventSpec(
        event_type=event_type,
        source=source,
        aliases=aliases,
        description=description,
        fields=tuple(d.spec for d in decls),
        schema=schema,
        payload="object",
        check=object_checker(schema, fast_check(decls)),
    )


def custom_event(
    event_type: str,
    source: Source,
    description: str,
    payload: PayloadKind,
    check: Checker = _no_errors,
    documented: Iterable[FieldSpec] = (),
    *,
    aliases: tuple[str, ...] = (),
) -> EventSpec:
    """An event whose payload is not (only) an object: a query string, a list, or anything."""
    return EventSpec(
        event_type=event_type,
        source=source,
        aliases=aliases,
        description=description,
        fields=tuple(documented),
        schema=None,
        payload=payload,
        check=check,
    )
