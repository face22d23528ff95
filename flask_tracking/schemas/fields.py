"""Small marshmallow fields for the messy types of real tracking logs.

marshmallow's own number fields coerce too much for us (``Float`` takes ``"1_0"`` and
``" 1 "``, ``Integer`` truncates ``1.5``), so these fields check the JSON type exactly and
accept a numeric *string* only where real logs hold one. They only validate: they give
the value back unchanged.

Every field here also has ``accepts(value) -> bool``, a fast check that is *sufficient*
for the field to deserialize without error. Payload checkers run those first and call
marshmallow only when one says no, to get marshmallow's messages (see ``spec.py``).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields

#: A plain decimal number as JavaScript writes it: sign, digits, fraction, exponent.
_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: The same, as a pattern (for the JSON Schema of the catalog).
NUMERIC_PATTERN = _NUMERIC.pattern

#: Fast check of a whole object: True means the schema would report no error.
FastCheck = Callable[[dict[str, Any]], bool]


def is_number(value: Any) -> bool:
    """A JSON number: an int or a finite float, not a boolean."""
    cls = type(value)
    if cls is int:
        return True
    if cls is float:
        return math.isfinite(value)
    return False


class Checked(fields.Field[Any]):
    """Base of the fields below: the value is valid as is when :meth:`accepts` says so."""

    default_error_messages = {"invalid": "Not a valid value."}

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if self.accepts(value):
            return value
        raise self.make_error("invalid")


class String(fields.String):
    """marshmallow's string, with a fast check."""

    def accepts(self, value: Any) -> bool:
        return type(value) is str


#: A UUID as ``str(uuid.UUID(...))`` writes it.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Client times are epoch milliseconds between 1970 and the year 9000.
MAX_CLIENT_MS = 220_000_000_000_000


class Uuid(Checked):
    """A UUID string (any form ``uuid.UUID`` reads; the canonical one is the fast path)."""

    default_error_messages = {"invalid": "Not a valid UUID."}

    def accepts(self, value: Any) -> bool:
        return type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if type(value) is str and len(value) <= 64:
            try:
                uuid.UUID(value)
            except ValueError:
                pass
            else:
                return value
        raise self.make_error("invalid")


class ClientTime(Checked):
    """A browser clock reading: milliseconds since the epoch, finite, not negative."""

    default_error_messages = {"invalid": "Not a valid time: give milliseconds since the epoch."}

    def accepts(self, value: Any) -> bool:
        return is_number(value) and 0 <= value < MAX_CLIENT_MS


class Raw(fields.Raw):
    """Anything at all."""

    def accepts(self, value: Any) -> bool:
        return True


class Number(Checked):
    """A JSON number (int or float, finite, not a boolean)."""

    default_error_messages = {"invalid": "Not a valid number."}

    def accepts(self, value: Any) -> bool:
        return is_number(value)


class NumberOrNumericString(Checked):
    """A JSON number, or a string holding one (``"1.50"``, as video speeds are logged)."""

    default_error_messages = {"invalid": "Not a valid number or numeric string."}

    def accepts(self, value: Any) -> bool:
        if type(value) is str:
            return _NUMERIC.fullmatch(value) is not None
        return is_number(value)


class Integer(Checked):
    """A JSON integer (not a boolean, not a float)."""

    default_error_messages = {"invalid": "Not a valid integer."}

    def accepts(self, value: Any) -> bool:
        return type(value) is int


class StringOrInteger(Checked):
    """An identifier: a string, or an integer (the first inventory typed some ids so)."""

    default_error_messages = {"invalid": "Not a valid string or integer."}

    def accepts(self, value: Any) -> bool:
        cls = type(value)
        return cls is str or cls is int


class Object(Checked):
    """A JSON object, contents unchecked."""

    default_error_messages = {"invalid": "Not a valid object."}

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)


class ObjectOrString(Checked):
    """A JSON object, or a string (the inventory types problem state as "string / JSON")."""

    default_error_messages = {"invalid": "Not a valid object or string."}

    def accepts(self, value: Any) -> bool:
        return type(value) is str or isinstance(value, dict)


class List(Checked):
    """A JSON array, contents unchecked."""

    default_error_messages = {"invalid": "Not a valid list."}

    def accepts(self, value: Any) -> bool:
        return type(value) is list


class Boolean(Checked):
    """A JSON boolean, exactly."""

    default_error_messages = {"invalid": "Not a valid boolean."}

    def accepts(self, value: Any) -> bool:
        return value is True or value is False


class NumberOrBoolean(Checked):
    """A JSON number or boolean (a ``correct_map`` ``npoints`` can be ``true``)."""

    default_error_messages = {"invalid": "Not a valid number or boolean."}

    def accepts(self, value: Any) -> bool:
        return value is True or value is False or is_number(value)


class NestedObject(fields.Field[Any]):
    """A JSON object checked against ``schema`` (errors are nested under the field)."""

    default_error_messages = {"invalid": "Not a valid object."}

    def __init__(self, schema: Schema, fast: FastCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: The schema of the object (read by the JSON Schema converter).
        self.schema = schema
        self._validate_object = schema.validate
        self._fast = fast

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) and self._fast(value)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        errors = self._validate_object(value)
        if errors:
            raise ValidationError(errors)
        return value


class ObjectMap(fields.Field[Any]):
    """An object whose every value is an object checked against ``schema``.

    Errors are nested by key: ``{"<key>": {"<entry field>": ["..."]}}``. With
    ``allow_json_string`` a string holding such an object (JSON) is accepted too.
    """

    default_error_messages = {
        "invalid": "Not a valid object.",
        "invalid_entry": "Not a valid object.",
    }

    def __init__(
        self, schema: Schema, fast: FastCheck, *, allow_json_string: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        #: The schema of each entry, and whether a JSON string of the map is accepted
        #: (read by the JSON Schema converter).
        self.schema = schema
        self.allow_json_string = allow_json_string
        self._validate_entry = schema.validate
        self._fast = fast
        self._allow_json_string = allow_json_string

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return False  # a JSON string takes the slow path
        fast = self._fast
        return all(isinstance(entry, dict) and fast(entry) for entry in value.values())

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        mapping = value
        if self._allow_json_string and type(value) is str:
            try:
                mapping = json.loads(value)
            except (ValueError, RecursionError):
                raise self.make_error("invalid") from None
        if not isinstance(mapping, dict):
            raise self.make_error("invalid")
        errors: dict[str, Any] = {}
        for key, entry in mapping.items():
            if not isinstance(entry, dict):
                errors[key] = [self.error_messages["invalid_entry"]]
                continue
            entry_errors = self._validate_entry(entry)
            if entry_errors:
                errors[key] = entry_errors
        if errors:
            raise ValidationError(errors)
        return value


def answer_errors(value: Any) -> list[str] | None:
    """Check one answer of a browser capa payload: a string, a number, or a list of them."""
    if type(value) is str or is_number(value):
        return None
    if type(value) is list and all(type(v) is str or is_number(v) for v in value):
        return None
    return ["Not a valid answer: expected a string, a number or a list of them."]


def answers_errors(answers: dict[Any, Any]) -> dict[str, Any]:
    """Check every answer of an ``{input id: answer}`` object; ``{}`` when all are fine."""
    errors: dict[str, Any] = {}
    for key, value in answers.items():
        problem = answer_errors(value)
        if problem is not None:
            errors[str(key)] = problem
    return errors
