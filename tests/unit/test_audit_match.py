"""The audit's fast path (`LeafMatcher`) is only ever a shortcut: a leaf it matches is
one `check_reading` accepts, with the same bytes; and the pieces a clean page is cut
into (`blocks`) make up the page.

The rows are built as the PostgreSQL adapter builds them (orjson of the columns); the
contract tests hold both adapters' `members` to RFC 8785 itself.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.merkle import perfect_blocks as blocks
from platone_bal.services.audit.match import LeafMatcher, attrs_agree
from platone_bal.services.audit.pages import first_inside
from platone_bal.services.audit.records import check_reading
from platone_bal.services.audit.report import BadRow

FIELDS = ("log", "producer", "owner", "device", "time", "measurand", "value")
SALT = "0123456789abcdef" * 2

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
attr_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


def leaf_of(columns: dict[str, Any], attrs: dict[str, Any], salt: str = SALT) -> dict[str, Any]:
    return {
        "attrs": attrs,
        **{key: columns[key] for key in (*FIELDS, "unit")},
        "salt": salt,
        "source": {key: columns[key] for key in ("format", "message", "received")},
        "v": 1,
    }


def row_of(
    leaf: bytes, columns: dict[str, Any], attrs: str, whole: object = True
) -> tuple[object, ...]:
    members = {
        "device": columns["device"],
        "log": columns["log"],
        "measurand": columns["measurand"],
        "owner": columns["owner"],
        "producer": columns["producer"],
        "source": {key: columns[key] for key in ("format", "message", "received")},
        "time": columns["time"],
        "unit": columns["unit"],
        "v": 1,
        "value": columns["value"],
    }
    return (0, leaf, attrs, orjson.dumps(members), whole)


def values_of(columns: dict[str, Any], attrs: str) -> tuple[object, ...]:
    """RawRecord.values, in the order of READING_COLUMNS; message 1, stored whole."""
    stored = tuple(columns[key] for key in (*FIELDS, "unit"))
    source = tuple(columns[key] for key in ("format", "received", "message"))
    return (*stored, attrs, *source, 1, 10, 10)


def full_check(leaf: bytes, values: tuple[object, ...]) -> bytes | None:
    try:
        return check_reading(leaf, values)
    except BadRow:
        return None


COLUMNS = st.fixed_dictionaries(
    {key: text for key in (*FIELDS, "format", "message", "received")} | {"unit": st.none() | text}
)


@settings(max_examples=300, deadline=None)
@given(COLUMNS, st.dictionaries(text, attr_values, max_size=4))
def test_a_canonical_leaf_of_its_columns_is_matched(
    columns: dict[str, Any], attrs: dict[str, Any]
) -> None:
    try:
        leaf = leaf_bytes(leaf_of(columns, attrs))
    except (ValueError, TypeError):
        assume(False)  # not a leaf at all (an integer beyond 2**53, say)
    stored = json.dumps(attrs)  # as the store writes them: ASCII escapes, the given order
    # a float that JSON writes as a large integer decodes to one no leaf may hold
    assume(full_check(leaf, values_of(columns, stored)) == leaf)
    assert LeafMatcher().leaf(row_of(leaf, columns, stored)) == leaf


@settings(max_examples=500, deadline=None)
@given(
    COLUMNS,
    st.dictionaries(text, attr_values, max_size=3),
    st.integers(min_value=0),
    st.binary(max_size=3),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([*FIELDS, "unit", "format", "message", "received", None]),
    text,
)
def test_whatever_is_matched_the_full_check_accepts(
    columns: dict[str, Any],
    attrs: dict[str, Any],
    at: int,
    insert: bytes,
    cut: int,
    changed: str | None,
    value: str,
) -> None:
    """A leaf with bytes replaced, against columns one of which may differ: matched only
    if `check_reading` accepts it and returns those very bytes."""
    try:
        leaf = leaf_bytes(leaf_of(columns, attrs))
    except (ValueError, TypeError):
        assume(False)
    at %= len(leaf) + 1
    edited = leaf[:at] + insert + leaf[at + cut :]
    if changed is not None:
        columns = {**columns, changed: value}
    stored = json.dumps(attrs)
    matched = LeafMatcher().leaf(row_of(edited, columns, stored))
    if matched is not None:
        assert matched == edited
        assert full_check(edited, values_of(columns, stored)) == edited


COLUMN_VALUES = {key: "x" for key in (*FIELDS, "format", "message", "received")} | {"unit": "W"}


@pytest.mark.parametrize(
    ("leaf", "why"),
    [
        (leaf_of(COLUMN_VALUES, {}, salt="0123456789ABCDEF" * 2), "a salt not in lowercase hex"),
        (leaf_of(COLUMN_VALUES, {}, salt="abc"), "a salt of another length"),
        ({**leaf_of(COLUMN_VALUES, {}), "v": 2}, "another version"),
        ({**leaf_of(COLUMN_VALUES, {}), "w": 1}, "a member more"),
    ],
)
def test_a_leaf_of_another_shape_is_left_to_the_full_check(leaf: dict[str, Any], why: str) -> None:
    raw = leaf_bytes(leaf)
    assert LeafMatcher().leaf(row_of(raw, COLUMN_VALUES, "{}")) is None, why


@pytest.mark.parametrize(
    ("edit", "whole"),
    [
        (
            lambda raw: raw.replace(b'{"attrs":{"a":"1","b":"2"}', b'{"attrs":{"b":"2","a":"1"}'),
            True,
        ),
        (lambda raw: raw.replace(b'"a":"1"', b'"a":"\\u0031"'), True),
        (lambda raw: raw.replace(b',"device"', b', "device"'), True),
        (lambda raw: raw, False),
    ],
    ids=["attrs-not-in-order", "an-escape-not-needed", "a-space", "message-not-whole"],
)
def test_a_leaf_not_canonical_or_a_message_cut_is_not_matched(edit: Any, whole: bool) -> None:
    raw = edit(leaf_bytes(leaf_of(COLUMN_VALUES, {"a": "1", "b": "2"})))
    assert LeafMatcher().leaf(row_of(raw, COLUMN_VALUES, '{"a": "1", "b": "2"}', whole)) is None


def test_attrs_agree_when_the_stored_ones_say_the_same_in_any_form() -> None:
    certified = b'{"a":"\xc3\xbc","b":[1,"x"]}'
    assert attrs_agree(certified, '{"b": [1, "x"], "a": "\\u00fc"}')
    assert not attrs_agree(certified, '{"b": [1, "x"], "a": "u"}')
    assert not attrs_agree(b'{"b":[1,"x"],"a":"\xc3\xbc"}', '{"a": "\\u00fc", "b": [1, "x"]}')
    assert not attrs_agree(certified, "{not json")
    assert not attrs_agree(b"[]", "[]")


@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=600))
def test_a_page_is_made_of_the_largest_whole_subtrees_in_it(start: int, length: int) -> None:
    at = start
    for level, index in blocks(start, start + length):
        assert index << level == at  # one after the other, each a whole subtree
        at += 1 << level
        assert index >= first_inside(start, level)
        assert index < (start + length) >> level  # ends inside the page
    assert at == start + length
