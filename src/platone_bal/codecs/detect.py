"""Which format a payload is in (ARCHITECTURE §7), and the one entry point `decode`.

XML is CIM MeterReadings; JSON with `readings` is PMU; JSON with `payload` and
`signature` is a signed Light Node envelope.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from platone_bal.codecs import cim, pmu
from platone_bal.codecs.envelope import FORMAT as SIGNED_ENVELOPE
from platone_bal.codecs.envelope import Envelope, read_envelope
from platone_bal.codecs.errors import DecodeError
from platone_bal.codecs.json_depth import JsonTooDeep, check_depth
from platone_bal.domain.readings import Reading


class JsonNumber(str):
    """The source text of a JSON number: exact digits, yet told apart from a JSON string."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Decoded:
    """A payload read: its format, its readings and the problems of readings left out."""

    format: str
    readings: list[Reading]
    problems: list[str]
    envelope: Envelope | None = None
    """The signed envelope the readings came in, if they did: its signature is not
    checked here (that needs the DSO's registry)."""


def decode(payload: bytes) -> Decoded:
    """Detect the payload's kind and decode it, or raise DecodeError with the reason. A
    signed envelope's readings are those of the payload inside it (CIM or PMU, never
    another envelope)."""
    decoded = _decode(payload)
    if decoded.format != SIGNED_ENVELOPE:
        return decoded
    assert decoded.envelope is not None
    try:
        inner = _decode(decoded.envelope.payload, envelopes=False)
    except DecodeError as error:
        raise DecodeError(f"signed envelope's payload: {error}") from None
    return Decoded(SIGNED_ENVELOPE, inner.readings, inner.problems, decoded.envelope)


def decode_envelope(payload: bytes) -> Envelope:
    """A signed envelope whose payload is not readings (a set point answer), unchecked."""
    body = payload.lstrip()
    if not (body.startswith(b"{") or body.startswith(b"\xef\xbb\xbf{")):
        raise DecodeError("a signed envelope must be a JSON object")
    document = _parse_json(payload)
    if "payload" not in document or "signature" not in document:
        raise DecodeError("not a signed envelope (no 'payload' and 'signature')")
    return read_envelope(document)


def _decode(payload: bytes, *, envelopes: bool = True) -> Decoded:
    body = payload.lstrip()
    if body.startswith(b"<") or body.startswith(b"\xef\xbb\xbf<"):
        return Decoded(cim.FORMAT, *cim.decode_cim(payload))
    if body.startswith(b"{") or body.startswith(b"\xef\xbb\xbf{"):
        document = _parse_json(payload)
        if "readings" in document:
            return Decoded(pmu.FORMAT, *pmu.decode_pmu(document))
        if "payload" in document and "signature" in document:
            if not envelopes:
                raise DecodeError("an envelope inside an envelope")
            return Decoded(SIGNED_ENVELOPE, [], [], read_envelope(document))
        raise DecodeError("JSON payload is neither PMU ('readings') nor a signed envelope")
    if not body:
        raise DecodeError("empty payload")
    raise DecodeError("payload is neither XML nor a JSON object")


def _parse_json(payload: bytes) -> dict[str, Any]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DecodeError(f"JSON payload is not valid UTF-8 (byte {error.start})") from None
    try:
        check_depth(payload)
    except JsonTooDeep as error:
        raise DecodeError(str(error)) from None
    try:
        document = json.loads(
            text,
            parse_float=JsonNumber,
            parse_int=JsonNumber,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as error:
        raise DecodeError(f"malformed JSON: {error}") from None
    if not isinstance(document, dict):
        raise DecodeError("JSON payload is not an object")
    if _SURROGATE_ESCAPE.search(text) and not _is_unicode(document):
        raise DecodeError("JSON text holds a lone UTF-16 surrogate escape (not Unicode text)")
    return document


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""Only a \\uD800-\\uDFFF escape can put a lone surrogate into parsed JSON."""


def _is_unicode(value: Any) -> bool:
    """True if every string in a parsed document is valid Unicode (encodes as UTF-8)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _refuse_constant(name: str) -> NoReturn:
    raise DecodeError(f"JSON constant {name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DecodeError("JSON object repeats a key")
    return document
