"""CIM IEC 61968-9 MeterReadings XML, bare or inside a 61968-100 message envelope.

Elements are matched by local name so that any namespace year (2009, 2011, 2016) is read
alike. Parsing is hardened: no DTD (so no entities, no billion laughs, no XXE), no network.
A reading that lacks a field or carries a bad value becomes a problem of its own; the
other readings of the document are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import fromstring

from platone_bal.codecs.errors import DecodeError
from platone_bal.codecs.reading_type import decode_reading_type
from platone_bal.domain.readings import (
    FIELD_LIMITS,
    InvalidReading,
    Reading,
    decimal_text,
    parse_time,
    shown,
)

FORMAT = "cim-61968-9"


def decode_cim(payload: bytes) -> tuple[list[Reading], list[str]]:
    """Readings of every MeterReading in the document, and the problems of those left out."""
    root = _parse(payload)
    document = root if _local(root.tag) == "MeterReadings" else _find_meter_readings(root)
    readings: list[Reading] = []
    problems: list[str] = []
    for number, meter_reading in enumerate(_children(document, "MeterReading"), start=1):
        where = f"MeterReading {number}"
        device = _meter_name(meter_reading)
        if device is None:
            problems.append(f"{where}: no Meter Names/name or mRID")
            continue
        if len(device) > FIELD_LIMITS["device"]:
            problems.append(
                f"{where}: device {shown(device)} is longer than {FIELD_LIMITS['device']} "
                "characters"
            )
            continue
        context: dict[str, Any] = {"usagePoint": _text(meter_reading, "UsagePoint", "mRID")}
        for label, item, code in _items(meter_reading):
            try:
                readings.append(_reading(device, item, code, context))
            except InvalidReading as error:
                problems.append(f"{where} ({device}) {label}: {error}")
    if not readings and not problems:
        raise DecodeError("MeterReadings holds no readings")
    return readings, problems


def _parse(payload: bytes) -> Element:
    try:
        return fromstring(payload, forbid_dtd=True, forbid_entities=True, forbid_external=True)  # type: ignore[no-any-return]
    except defusedxml.DTDForbidden:
        raise DecodeError("XML with a DTD is refused (entities and external references)") from None
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise DecodeError("XML entities and external references are refused") from None
    except ParseError as error:
        raise DecodeError(f"malformed XML: {error}") from None
    except (ValueError, LookupError) as error:  # e.g. an unknown declared encoding
        raise DecodeError(f"unreadable XML: {error}") from None


def _find_meter_readings(root: Element) -> Element:
    """The MeterReadings inside a 61968-100 envelope (Header + Payload)."""
    for payload in _children(root, "Payload"):
        for document in _children(payload, "MeterReadings"):
            return document
    raise DecodeError(f"no MeterReadings in XML document <{_local(root.tag)}>")


def _items(meter_reading: Element) -> Iterator[tuple[str, Element, str | None]]:
    """(label, element with timeStamp/value/qualities, ReadingType code) of every reading."""
    for number, item in enumerate(_children(meter_reading, "Readings"), start=1):
        yield f"Readings {number}", item, _reading_type(item)
    for block_number, block in enumerate(_children(meter_reading, "IntervalBlocks"), start=1):
        code = _reading_type(block)
        for number, item in enumerate(_children(block, "IntervalReadings"), start=1):
            yield f"IntervalBlocks {block_number} IntervalReadings {number}", item, code


def _reading(device: str, item: Element, code: str | None, context: dict[str, Any]) -> Reading:
    if not code:
        raise InvalidReading("no ReadingType")
    stamp = _text(item, "timeStamp")
    if stamp is None:
        raise InvalidReading("no timeStamp")
    value = _text(item, "value")
    if value is None:
        raise InvalidReading("no value")
    attrs = dict(context)
    attrs["quality"] = _qualities(item)
    info = decode_reading_type(code)
    if info is None:
        attrs["readingType"] = "undecodable"
    else:
        attrs.update(kind=info.kind, phase=info.phase)
    return Reading(
        device=device,
        time=parse_time(stamp),
        measurand=code,
        value=decimal_text(value),
        unit=info.unit if info else None,
        attrs={key: value for key, value in attrs.items() if value not in (None, "", [])},
    )


def _meter_name(meter_reading: Element) -> str | None:
    for meter in _children(meter_reading, "Meter"):
        return _text(meter, "Names", "name") or _text(meter, "mRID")
    return None


def _reading_type(element: Element) -> str | None:
    for reading_type in _children(element, "ReadingType"):
        ref = reading_type.get("ref")
        return (ref or "").strip() or _text(reading_type, "mRID") or _clean(reading_type.text)
    return None


def _qualities(item: Element) -> list[str]:
    codes: list[str] = []
    for quality in _children(item, "ReadingQualities"):
        for quality_type in _children(quality, "ReadingQualityType"):
            code = quality_type.get("ref") or _text(quality_type, "mRID")
            if code:
                codes.append(code.strip())
        if (code := _text(quality, "quality")) is not None:
            codes.append(code)
    return codes


def _text(element: Element, *path: str) -> str | None:
    """Stripped text at a path of local names, or None when absent or empty."""
    current = element
    for name in path:
        found = next(_children(current, name), None)
        if found is None:
            return None
        current = found
    return _clean(current.text)


def _clean(text: str | None) -> str | None:
    stripped = (text or "").strip()
    return stripped or None


def _children(element: Element, name: str) -> Iterator[Element]:
    return (child for child in element if _local(child.tag) == name)


def _local(tag: str | Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
