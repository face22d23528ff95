"""Payload forms: one stored form each, and back exactly as they came."""

from __future__ import annotations

import json

import pytest

from flask_tracking.payloads import decode_payload, encode_payload

CASES = [
    # (value as in the log line, stored data, format)
    ({"a": 1}, {"a": 1}, "object"),
    ([1, "x"], [1, "x"], "list"),
    ('{"id":"v1","currentTime":3.5}', {"id": "v1", "currentTime": 3.5}, "json"),
    ('{"id": "v1", "currentTime": 3.5}', {"id": "v1", "currentTime": 3.5}, "json"),
    ('{"name":"caf\\u00e9"}', {"name": "café"}, "json"),
    (
        "input_p_2_1=42&input_p_3_1%5B%5D=a&input_p_3_1%5B%5D=b",
        {"input_p_2_1": "42", "input_p_3_1[]": ["a", "b"]},
        "query",
    ),
    ('"input_p_2_1=3.14&input_p_3_1=x"', {"input_p_2_1": "3.14", "input_p_3_1": "x"}, "json"),
    ("", "", "text"),
    ('{"truncated": "at 512 cha', '{"truncated": "at 512 cha', "text"),
    ("/courses/x/jump_to", "/courses/x/jump_to", "text"),
    (None, None, "value"),
    (3, 3, "value"),
]


@pytest.mark.parametrize(("value", "data", "form"), CASES)
def test_payload_decodes_to_one_form_and_encodes_back(
    value: object, data: object, form: str
) -> None:
    payload = decode_payload(value)
    assert payload.data == data
    assert payload.format == form
    assert encode_payload(payload.data, payload.format, payload.raw) == value


def test_raw_is_kept_only_when_needed() -> None:
    compact = json.dumps({"a": [1, 2]}, separators=(",", ":"))
    assert decode_payload(compact).raw is None
    assert decode_payload('{"a": [1, 2]}').raw == '{"a": [1, 2]}'


def test_a_repeated_query_key_comes_back_in_its_order() -> None:
    text = "a=1&b=2&a=3"
    payload = decode_payload(text)
    assert payload.data == {"a": ["1", "3"], "b": "2"}
    assert encode_payload(payload.data, payload.format, payload.raw) == text
