"""IEC 61968-9 ReadingType codes: 18 dot-separated integers.

The code is kept verbatim as the measurand; when it is well formed its unit (with the
power-of-ten multiplier folded in, e.g. kWh), measurement kind and phases are decoded.
The field trials sent 19-field codes: those are kept but marked undecodable, because
guessing which field is extra would put a wrong unit on a certified reading.
"""

from __future__ import annotations

from dataclasses import dataclass

FIELD_COUNT = 18
_KIND, _PHASES, _MULTIPLIER, _UNIT = 6, 14, 15, 16

UNITS = {5: "A", 9: "deg", 29: "V", 33: "Hz", 38: "W", 61: "VA", 63: "VAr", 65: "cosphi",
         71: "VAh", 72: "Wh", 73: "VArh"}  # fmt: skip
MULTIPLIERS = {-12: "p", -9: "n", -6: "µ", -3: "m", -2: "c", -1: "d", 0: "", 1: "da", 2: "h",
               3: "k", 6: "M", 9: "G", 12: "T"}  # fmt: skip
KINDS = {4: "current", 12: "energy", 15: "frequency", 37: "power", 38: "powerFactor",
         54: "voltage"}  # fmt: skip
PHASES = {0: None, 16: "N", 32: "C", 40: "CA", 64: "B", 66: "BC", 128: "A", 132: "AB",
          224: "ABC", 225: "ABCN"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReadingTypeInfo:
    unit: str | None
    kind: str | None
    phase: str | None


MAX_FIELD_DIGITS = 9
"""Every field of the code is a small enumeration; a longer number is no code (and past
4,300 digits `int()` itself refuses it: a fuzzed payload found that)."""


def _field(part: str) -> bool:
    digits = part.removeprefix("-")
    return digits.isascii() and digits.isdigit() and len(digits) <= MAX_FIELD_DIGITS


def decode_reading_type(code: str) -> ReadingTypeInfo | None:
    """What an 18-field code says, or None when the code is not well formed."""
    parts = code.strip().split(".")
    if len(parts) != FIELD_COUNT or not all(_field(part) for part in parts):
        return None
    fields = [int(part) for part in parts]
    unit = UNITS.get(fields[_UNIT])
    prefix = MULTIPLIERS.get(fields[_MULTIPLIER])
    return ReadingTypeInfo(
        unit=None if unit is None or prefix is None else prefix + unit,
        kind=KINDS.get(fields[_KIND]),
        phase=PHASES.get(fields[_PHASES]),
    )
