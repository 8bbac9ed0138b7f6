"""The pool's JSON decoder (msgspec, json as fallback) gives exactly what json.loads gives (decision 0031)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.store.db import json_loads

EDGES = [
    '{"a": 123456789012345678901234567890}',  # beyond 64 bits: orjson would give a float, json an int
    '{"a": -99999999999999999999999}',
    '{"a": 18446744073709551616}',
    '{"x": 1e400}',  # beyond a float: msgspec refuses, json gives inf
    '{"x": -1e400}',
    '{"s": "Nguyễn Thị Lan", "e": "\\u00e9\\ud83d\\ude00", "f": 0.1, "n": null, "l": [1, 2.5, true, false]}',
    '{"a": 1, "a": 2}',  # duplicate keys: the last wins (jsonb never stores two)
    "-0",
    "1.0",
    "1E2",
    "[]",
    "{}",
    '"text"',
    '{"amount": "450000000.00", "nested": {"deep": [{"k": [null]}]}}',
]


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 == 1.0 == True would hide a changed type)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases_read_as_json_reads_them(text: str) -> None:
    assert same(json_loads(text), json.loads(text))


def test_invalid_json_is_refused_as_json_refuses_it() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_loads('{"a": ')


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans())
def test_any_json_reads_as_json_reads_it(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert same(json_loads(text), json.loads(text))
