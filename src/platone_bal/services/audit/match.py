"""The record check's fast path: a reading's leaf held, as one byte string, against the
canonical leaf its stored columns describe, with no JSON decoded per reading.

`check_reading` decodes every leaf, encodes it again and compares field by field: about
ten microseconds a reading. Here the database encodes the stored columns
(`RawStore.raw_leaf_rows`: the members besides attrs and salt, exactly as RFC 8785
writes them), and a leaf is accepted only when it is byte for byte

    {"attrs":<A>,<those members up to producer>,"salt":"<S>",<source ... value>}

with S lowercase hex and A the canonical encoding of an object equal to the stored
attrs (decoded, so in any key order; checked once per distinct pair: a log has few).
Such a leaf is canonical JSON (every piece is, and the keys are in order) and says
what the columns say, so `check_reading` would accept it and return the same bytes.
Anything else (another shape, another version, a salt not in hex, a difference) is
only "not matched": the caller runs `check_reading`, which stays the authority and
names what differs. The fast path can make an audit faster, never more lenient.
"""

from __future__ import annotations

import orjson

from platone_bal.domain.leaf import leaf_bytes
from platone_bal.ports.records import LeafRow

_START = b'{"attrs":'
_SALT = b',"salt":"'
_SOURCE = b',"source":'
_HEX = b"0123456789abcdef"
_SALT_HEX = 32
"""A salt is 32 hex digits (`domain.leaf.new_salt`); any other is checked fully."""
_ATTRS_AT = len(_START)
_SALT_AT = len(_SALT)
_SALTED = len(_SALT) + _SALT_HEX + 1
"""Bytes a matched leaf has after its attrs besides the members' own: the salt's key,
digits and closing quote (the comma after the attrs takes the members' opening brace)."""
_CACHED = 4096
"""Distinct (attrs bytes, stored attrs) pairs remembered; then the memory starts over."""


class LeafMatcher:
    """Matches leaves against their rows; remembers which attrs agree."""

    def __init__(self) -> None:
        self._attrs: dict[tuple[bytes, str], bool] = {}

    def leaf(self, row: LeafRow) -> bytes | None:
        """The leaf bytes when they are exactly the canonical leaf the row's columns
        describe (so `check_reading` accepts them); None when they are not matched."""
        _, leaf, attrs, members, whole = row
        if not whole or type(leaf) is not bytes or type(members) is not bytes:
            return None
        if type(attrs) is not str or (source := members.find(_SOURCE)) < 0:
            return None
        # `members` holds JSON strings (a " in one is escaped), so its first ,"source":
        # is that member's; the leaf's attrs end where the rest must begin
        attrs_end = len(leaf) - len(members) - _SALTED
        salt_at = attrs_end + source + _SALT_AT
        salt = leaf[salt_at : salt_at + _SALT_HEX]
        certified = leaf[_ATTRS_AT:attrs_end]
        expected = b"".join(
            (_START, certified, b",", members[1:source], _SALT, salt, b'"', members[source:])
        )
        if expected != leaf or salt.strip(_HEX) or not (members.isascii() or _utf8(members)):
            return None
        agree = self._attrs.get((certified, attrs))
        if agree is None:
            agree = self._remember(certified, attrs)
        return leaf if agree else None

    def _remember(self, certified: bytes, stored: str) -> bool:
        if len(self._attrs) >= _CACHED:
            self._attrs.clear()
        agree = self._attrs[certified, stored] = attrs_agree(certified, stored)
        return agree


def attrs_agree(certified: bytes, stored: str) -> bool:
    """The leaf's attrs bytes are the canonical encoding of an object, and that object is
    the stored attrs (compared as `check_reading` compares them: decoded, in any order)."""
    try:
        attrs = orjson.loads(certified)
        stored_attrs = orjson.loads(stored)
    except (ValueError, RecursionError):
        return False
    if type(attrs) is not dict:
        return False
    try:
        canonical = leaf_bytes(attrs)
    except (ValueError, TypeError):
        return False
    return canonical == certified and bool(attrs == stored_attrs)


def _utf8(members: bytes) -> bool:
    """The columns' bytes are UTF-8 (SQLite may hold other bytes as TEXT; a leaf that
    copies them is not JSON)."""
    try:
        members.decode()
    except UnicodeDecodeError:
        return False
    return True
