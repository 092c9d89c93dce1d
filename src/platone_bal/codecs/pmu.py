"""PMU JSON: one device, one timestamp, readings of component/measurand/phase/data.

Numbers are read as their source text, so `11` stays "11" and `11.040` stays "11.040".
"""

from __future__ import annotations

from typing import Any, TypeGuard

from platone_bal.codecs.errors import DecodeError
from platone_bal.domain.readings import (
    FIELD_LIMITS,
    InvalidReading,
    Reading,
    decimal_text,
    parse_time,
)

FORMAT = "pmu-json"


def decode_pmu(document: dict[str, Any]) -> tuple[list[Reading], list[str]]:
    """Readings of a parsed PMU document, and the problems of the readings left out."""
    device = document.get("device")
    if not _is_text(device) or not device.strip():
        raise DecodeError("PMU payload has no 'device' string")
    device = device.strip()
    if len(device) > FIELD_LIMITS["device"]:
        raise DecodeError(
            f"PMU payload: device id of {len(device)} characters (at most {FIELD_LIMITS['device']})"
        )
    stamp = document.get("timestamp")
    if not _is_text(stamp):
        raise DecodeError("PMU payload has no 'timestamp' string")
    try:
        time = parse_time(stamp)
    except InvalidReading as error:
        raise DecodeError(f"PMU payload: {error}") from None
    items = document.get("readings")
    if not isinstance(items, list) or not items:
        raise DecodeError("PMU payload has no 'readings' list")
    readings: list[Reading] = []
    problems: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            readings.append(_reading(device, time, item))
        except InvalidReading as error:
            problems.append(f"readings[{number - 1}] ({device}): {error}")
    return readings, problems


def _is_text(value: Any) -> TypeGuard[str]:
    """A JSON string (numbers arrive as str subclasses carrying their source text)."""
    return type(value) is str


def _reading(device: str, time: Any, item: Any) -> Reading:
    if not isinstance(item, dict):
        raise InvalidReading("is not an object")
    measurand = item.get("measurand")
    if not _is_text(measurand) or not measurand.strip():
        raise InvalidReading("no 'measurand'")
    if "data" not in item:
        raise InvalidReading("no 'data'")
    attrs = {"component": item.get("component"), "phase": item.get("phase")}
    for key, value in attrs.items():
        if value is not None and not _is_text(value):
            raise InvalidReading(f"'{key}' is not a string")
    return Reading(
        device=device,
        time=time,
        measurand=measurand.strip(),
        value=decimal_text(item["data"]),
        unit=item["unit"] if _is_text(item.get("unit")) else None,
        attrs={key: value for key, value in attrs.items() if value},
    )
