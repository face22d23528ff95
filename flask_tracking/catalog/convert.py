"""marshmallow schemas as JSON Schema (draft 2020-12): the payloads of the catalog.

A JSON Schema here describes the *decoded* payload, as the pipeline checks it: a JSON
string already parsed, a raw query string parsed into ``{key: value or [values]}``
(``payloads.py``). The mapping covers marshmallow's own fields and the exact-type fields
of ``schemas/fields.py``; a field it does not know becomes ``{}`` (anything), with its
description.

Where JSON Schema cannot say what marshmallow checks, the schema is a little wider:
JSON Schema counts ``1.0`` as an integer, and a ``correct_map`` given as a JSON *string*
is described as text that looks like a JSON object, with ``contentMediaType`` /
``contentSchema`` for what it holds, which validators treat as notes.
``tests/test_catalog_jsonschema.py`` checks that both accept exactly the same events of
the real corpus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from marshmallow import RAISE, Schema, fields, validate

from ..schemas import fields as tf
from ..schemas.spec import EventSpec

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"

JsonSchema = dict[str, Any]

#: A whole string matching a pattern, the same in Python and ECMA regular expressions
#: (``$`` alone would let Python accept a trailing newline).
_WHOLE: Final = "^(?:{})(?![\\s\\S])"
#: Text that looks like a JSON object (what is inside is checked only by marshmallow).
_JSON_OBJECT_TEXT: Final = "^[ \\t\\n\\r]*\\{[\\s\\S]*\\}[ \\t\\n\\r]*(?![\\s\\S])"
_NUMERIC_STRING: Final[JsonSchema] = {
    "type": "string",
    "pattern": _WHOLE.format(tf.NUMERIC_PATTERN),
}

#: Our exact-type fields, by class (checked before marshmallow's own, which they extend).
_EXACT: Final[tuple[tuple[type[fields.Field[Any]], JsonSchema], ...]] = (
    (tf.Integer, {"type": "integer"}),
    (tf.Number, {"type": "number"}),
    (tf.NumberOrNumericString, {"anyOf": [{"type": "number"}, _NUMERIC_STRING]}),
    (tf.StringOrInteger, {"type": ["string", "integer"]}),
    (tf.Object, {"type": "object"}),
    (tf.ObjectOrString, {"type": ["object", "string"]}),
    (tf.List, {"type": "array"}),
    (tf.Boolean, {"type": "boolean"}),
    (tf.NumberOrBoolean, {"type": ["number", "boolean"]}),
    (tf.Uuid, {"type": "string", "format": "uuid"}),
    (tf.ClientTime, {"type": "number", "minimum": 0, "exclusiveMaximum": tf.MAX_CLIENT_MS}),
    (tf.Raw, {}),
)

#: marshmallow's fields, most specific first.
_PLAIN: Final[tuple[tuple[type[fields.Field[Any]], JsonSchema], ...]] = (
    (fields.UUID, {"type": "string", "format": "uuid"}),
    (fields.Email, {"type": "string", "format": "email"}),
    (fields.URL, {"type": "string", "format": "uri"}),
    (fields.String, {"type": "string"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Number, {"type": "number"}),
    (fields.Boolean, {"type": "boolean"}),
    (fields.AwareDateTime, {"type": "string", "format": "date-time"}),
    (fields.NaiveDateTime, {"type": "string", "format": "date-time"}),
    (fields.DateTime, {"type": "string", "format": "date-time"}),
    (fields.Date, {"type": "string", "format": "date"}),
    (fields.Time, {"type": "string", "format": "time"}),
)


def object_schema(schema: Schema, descriptions: Mapping[str, str] | None = None) -> JsonSchema:
    """The JSON Schema of objects ``schema`` accepts (``descriptions`` by field name win
    over the fields' ``metadata["description"]``)."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        key = field.data_key or name
        properties[key] = field_schema(field, (descriptions or {}).get(key))
        if field.required:
            required.append(key)
    out: JsonSchema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if schema.unknown == RAISE:
        out["additionalProperties"] = False
    return out


def field_schema(field: fields.Field[Any], description: str | None = None) -> JsonSchema:
    """The JSON Schema of the values ``field`` accepts (``null`` when it allows none)."""
    out = _base(field)
    for validator in field.validators:
        out.update(_validator(validator, out))
    text = description or field.metadata.get("description")
    if text:
        out = {"description": text, **out}
    if field.allow_none:
        out = _nullable(out)
    return out


def _base(field: fields.Field[Any]) -> JsonSchema:
    if isinstance(field, tf.NestedObject):
        return object_schema(field.schema)
    if isinstance(field, tf.ObjectMap):
        entries: JsonSchema = {
            "type": "object",
            "additionalProperties": object_schema(field.schema),
        }
        if not field.allow_json_string:
            return entries
        text = {
            "type": "string",
            "pattern": _JSON_OBJECT_TEXT,
            "contentMediaType": "application/json",
            "contentSchema": entries,
        }
        return {"anyOf": [entries, text]}
    for table in (_EXACT, _PLAIN):
        for cls, schema in table:
            if isinstance(field, cls):
                return dict(schema)
    if isinstance(field, fields.Nested):
        nested = field.schema
        inner = object_schema(nested) if isinstance(nested, Schema) else {}
        return {"type": "array", "items": inner} if field.many else inner
    if isinstance(field, fields.List):
        return {"type": "array", "items": field_schema(field.inner)}
    if isinstance(field, fields.Tuple):
        items = [field_schema(f) for f in field.tuple_fields]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items)}
    if isinstance(field, fields.Dict):
        out: JsonSchema = {"type": "object"}
        if field.value_field is not None:
            out["additionalProperties"] = field_schema(field.value_field)
        return out
    if isinstance(field, fields.Enum):
        return {"enum": [member.name for member in field.enum]}
    if isinstance(field, fields.Constant):
        return {"const": field.constant}
    return {}


def _validator(validator: Any, out: JsonSchema) -> JsonSchema:
    if isinstance(validator, validate.OneOf):
        return {"enum": list(validator.choices)}
    if isinstance(validator, validate.Equal):
        return {"const": validator.comparable}
    if isinstance(validator, validate.Range):
        low = "minimum" if validator.min_inclusive else "exclusiveMinimum"
        high = "maximum" if validator.max_inclusive else "exclusiveMaximum"
        bounds = {low: validator.min, high: validator.max}
        return {k: v for k, v in bounds.items() if v is not None}
    if isinstance(validator, validate.Length):
        kind = "Items" if out.get("type") == "array" else "Length"
        if validator.equal is not None:
            return {f"min{kind}": validator.equal, f"max{kind}": validator.equal}
        bounds = {f"min{kind}": validator.min, f"max{kind}": validator.max}
        return {k: v for k, v in bounds.items() if v is not None}
    if isinstance(validator, validate.Regexp):
        return {"pattern": validator.regex.pattern}
    return {}


def _nullable(out: JsonSchema) -> JsonSchema:
    kind = out.get("type")
    if isinstance(kind, str) and "enum" not in out and "const" not in out:
        return {**out, "type": [kind, "null"]}
    if isinstance(kind, list) and "enum" not in out:
        return {**out, "type": [*kind, "null"]}
    description = out.pop("description", None)
    wrapped: JsonSchema = {"anyOf": [out, {"type": "null"}]}
    return {"description": description, **wrapped} if description else wrapped


# --- payloads that are not (only) objects ---------------------------------------------

_SCALAR_ANSWER: Final[JsonSchema] = {"type": ["string", "number"]}
_ANSWER: Final[JsonSchema] = {
    "anyOf": [_SCALAR_ANSWER, {"type": "array", "items": _SCALAR_ANSWER}],
    "description": "An answer: a string, a number, or a list of them.",
}
_ANSWERS: Final[JsonSchema] = {"type": "object", "additionalProperties": _ANSWER}
#: A query-style payload: the query string as text, or the answers parsed by input id.
QUERY_PAYLOAD: Final[JsonSchema] = {"anyOf": [{"type": "string"}, _ANSWERS]}
#: ``problem_graded``: ``[answers, html]``, or text that did not decode.
GRADED_PAYLOAD: Final[JsonSchema] = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "prefixItems": [
                {"anyOf": [{"type": "string"}, _ANSWERS], "description": "The answers."},
                {"type": ["string", "null"], "description": "The problem's HTML."},
            ],
            "minItems": 2,
            "maxItems": 2,
        },
    ]
}
_OTHER_PAYLOADS: Final[dict[str, JsonSchema]] = {
    "query": QUERY_PAYLOAD,
    "list": GRADED_PAYLOAD,
    "any": {},
}


def payload_schema(spec: EventSpec) -> JsonSchema:
    """The JSON Schema of a built-in spec's decoded payload (without the ``$schema``)."""
    if spec.schema is not None:
        return object_schema(spec.schema, {f.name: f.description for f in spec.fields})
    return dict(_OTHER_PAYLOADS[spec.payload])


def document(
    title: str, description: str, payload: JsonSchema, examples: tuple[Any, ...] = ()
) -> JsonSchema:
    """A standalone JSON Schema document of one (source, type, version)."""
    out: JsonSchema = {"$schema": DRAFT, "title": title}
    if description:
        out["description"] = description
    out.update(payload)
    if examples:
        out["examples"] = list(examples)
    return out
