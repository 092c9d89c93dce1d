"""Readings as linked data (§8, D2.10): JSON-LD on SAREF, and SARGON for PMUs.

Each reading is a `saref:Measurement` with `saref:hasValue` (the certified decimal, as
`xsd:decimal`: the value exactly as certified, never a float), `saref:hasTimestamp`
(`xsd:dateTime`), `saref:isMeasuredIn` (a QUDT unit where one is known, else a unit of
the BAL's own namespace), `saref:relatesToProperty` (the measurand: a CIM ReadingType
code or a PMU quantity) and `saref:measurementMadeBy` (the device: a `saref:Meter`, or a
`sargon:PMU` for phasor data). Each links its proof bundle (`bal:proof`) and names its
place in the log, so a consumer of the graph can still verify what it holds.

The names the BAL itself mints (devices, properties, readings) are URNs
(`urn:platone-bal:...`): stable, and independent of any host name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SAREF = "https://saref.etsi.org/core/"
SARGON = "https://sargon-n5geh.netlify.app/ontology/1.0/classes/"
QUDT_UNIT = "http://qudt.org/vocab/unit/"
BAL = "urn:platone-bal:"

CONTEXT: dict[str, Any] = {
    "saref": SAREF,
    "sargon": SARGON,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "unit": QUDT_UNIT,
    "bal": BAL + "vocab:",
    "Measurement": "saref:Measurement",
    "Meter": "saref:Meter",
    "PMU": "sargon:PMU",
    "value": {"@id": "saref:hasValue", "@type": "xsd:decimal"},
    "time": {"@id": "saref:hasTimestamp", "@type": "xsd:dateTime"},
    "unit_of_measure": {"@id": "saref:isMeasuredIn", "@type": "@id"},
    "property": {"@id": "saref:relatesToProperty", "@type": "@id"},
    "device": {"@id": "saref:measurementMadeBy", "@type": "@id"},
    "proof": {"@id": "bal:proof", "@type": "@id"},
    "producer": "bal:producer",
    "log": "bal:log",
    "index": {"@id": "bal:index", "@type": "xsd:integer"},
    "received": {"@id": "bal:received", "@type": "xsd:dateTime"},
    "attrs": {"@id": "bal:attrs", "@type": "@json"},
}
"""The one @context of every document: short keys, as the JSON API's."""

UNITS = {
    "Wh": "W-HR", "kWh": "KiloW-HR", "MWh": "MegaW-HR", "W": "W", "kW": "KiloW",
    "MW": "MegaW", "var": "VAR", "kvar": "KiloVAR", "varh": "VAR-HR", "kvarh": "KiloVAR-HR",
    "VA": "V-A", "kVA": "KiloV-A", "V": "V", "kV": "KiloV", "A": "A", "Hz": "HZ",
    "deg": "DEG", "rad": "RAD", "%": "PERCENT", "s": "SEC",
}  # fmt: skip
"""QUDT's names of the units readings carry."""

PMU_FORMATS = frozenset({"pmu-json"})


def unit_iri(unit: str) -> str:
    known = UNITS.get(unit)
    return QUDT_UNIT + known if known else BAL + "unit:" + quote(unit, safe="")


def device_iri(producer: str, device: str) -> str:
    return f"{BAL}device:{quote(producer, safe='')}/{quote(device, safe='')}"


def property_iri(measurand: str) -> str:
    return BAL + "property:" + quote(measurand, safe="")


def reading_iri(log: str, index: int) -> str:
    return f"{BAL}reading:{quote(log, safe='')}/{index}"


def measurement(
    *,
    log: str,
    index: int,
    producer: str,
    device: str,
    time: str,
    measurand: str,
    value: str,
    unit: str | None,
    format: str,
    received: str,
    proof_url: str,
    attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One reading as a node of the graph (compacted against CONTEXT)."""
    node: dict[str, Any] = {
        "@id": reading_iri(log, index),
        "@type": "Measurement",
        "value": value,
        "time": time,
        "property": property_iri(measurand),
        "device": {
            "@id": device_iri(producer, device),
            "@type": "PMU" if format in PMU_FORMATS else "Meter",
        },
        "producer": producer,
        "log": log,
        "index": index,
        "received": received,
        "proof": proof_url,
    }
    if unit:
        node["unit_of_measure"] = unit_iri(unit)
    if attrs:  # what tells a PMU's phases apart, a meter's usage point: a JSON literal
        node["attrs"] = attrs
    return node


def document(graph: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON-LD document of measurements, all in its default graph (a page's cursor
    beside `@graph` would make the page a node and its measurements a named graph)."""
    return {"@context": CONTEXT, "@graph": graph}
