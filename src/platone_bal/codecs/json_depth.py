"""How deep a JSON text nests, measured without parsing it.

Python's JSON parser recurses once per nesting level in C, bounded only by the
interpreter's recursion limit, which py-evm and py_ecc raise (to 12,288 and 100,000)
when they are imported: `[` x 100,000 overflowed the C stack and killed the node with
SIGSEGV before any RecursionError. So every JSON text from outside (payloads, request
bodies, proof bundles, JSON-RPC calls) is measured first and refused beyond
`MAX_DEPTH`, far more than any document of ours needs (a PMU payload nests 3 levels, a
proof bundle 4).

The measure works on bytes with C-speed operations: escaped backslashes and quotes
are dropped, everything but brackets and quotes deleted, string contents split away,
and the running sum of +1/-1 per bracket maximised. It is linear in the text and
never fails: malformed JSON is the parser's to refuse.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

MAX_DEPTH = 64

_KEPT = b'"[]{}'
_DROPPED = bytes(byte for byte in range(256) if byte not in _KEPT)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonTooDeep(ValueError):
    """A JSON text nests deeper than the node parses."""


def nesting_depth(text: bytes | str) -> int:
    """The deepest nesting of arrays and objects outside strings (0 for a scalar)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    structure = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROPPED)
    outside_strings = b"".join(structure.split(b'"')[::2])
    return max(itertools.accumulate(map(_STEP.__getitem__, outside_strings)), default=0)


def check_depth(text: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise JsonTooDeep if `text` nests deeper than `limit`."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:  # cannot nest deeper: skip the measure
        return
    depth = nesting_depth(raw)
    if depth > limit:
        raise JsonTooDeep(f"JSON nests {depth} levels deep; at most {limit} are accepted")


def loads(text: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """`json.loads` of a text from outside, refused (JsonTooDeep, a ValueError) when it
    nests deeper than `limit`."""
    check_depth(text, limit)
    return json.loads(text)
