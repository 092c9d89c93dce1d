"""Readings as linked data: JSON-LD on SAREF (SARGON for PMUs) by content negotiation,
expanded by a JSON-LD processor (pyld) into the triples a semantic platform reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from pyld import jsonld

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.semantic import QUDT_UNIT, SAREF, SARGON
from platone_bal.domain.users import User
from platone_bal.services.checkpointer import Checkpointer
from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.contract.builders import pmu_payload
from tests.unit.test_api import add_user, login, publish
from tests.unit.test_checkpoints import KEY
from tests.unit.test_ingest import NOW

LD = {"Accept": "application/ld+json"}
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def triples(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(subject, predicate, object) of the document's RDF, literals as value^^type."""
    dataset = jsonld.to_rdf(document)
    found = set()
    for quad in dataset["@default"]:
        obj = quad["object"]
        text = obj["value"] if obj["type"] == "IRI" else f"{obj['value']}^^{obj.get('datatype')}"
        found.add((quad["subject"]["value"], quad["predicate"]["value"], text))
    return found


def test_readings_answer_saref_measurements_linking_their_proofs(
    client: TestClient, admin: dict[str, str], store: SqliteStore, producer: User
) -> None:
    publish(store, "producer1", SAMPLE_XML)
    publish(store, "producer1", SAMPLE_PMU)
    plain = client.get("/v1/readings", headers=admin)
    assert plain.headers["content-type"] == "application/json"
    answer = client.get("/v1/readings", headers={**admin, **LD})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/ld+json"
    document = answer.json()
    assert len(document["@graph"]) == len(plain.json()["items"]) == 4

    found = triples(document)
    first = plain.json()["items"][0]  # the CIM sample's first reading
    subject = f"urn:platone-bal:reading:bal-main/{first['index']}"
    device = "urn:platone-bal:device:producer1/11111111"
    assert (subject, RDF_TYPE, SAREF + "Measurement") in found
    assert (subject, SAREF + "hasValue", f"{first['value']}^^{XSD}decimal") in found
    assert (subject, SAREF + "hasTimestamp", f"{first['time']}^^{XSD}dateTime") in found
    assert not [o for s, p, o in found if s == subject and p == SAREF + "isMeasuredIn"]
    assert (subject, SAREF + "measurementMadeBy", device) in found
    assert (device, RDF_TYPE, SAREF + "Meter") in found
    prop = f"urn:platone-bal:property:{first['measurand']}"
    assert (subject, SAREF + "relatesToProperty", prop) in found
    proofs = [o for s, p, o in found if s == subject and p == "urn:platone-bal:vocab:proof"]
    assert len(proofs) == 1
    Checkpointer(store, log_id="bal-main", private_key=KEY, clock=lambda: NOW).checkpoint_now()
    assert client.get(proofs[0], headers=admin).json()["index"] == first["index"]
    # the PMU's readings: its device is a SARGON PMU
    pmu = "urn:platone-bal:device:producer1/pmu1"
    assert (pmu, RDF_TYPE, SARGON + "PMU") in found
    # a PMU's readings keep the attributes that tell its phases apart (a JSON literal)
    pmu_nodes = [n for n in jsonld.expand(document)
                 if n[SAREF + "measurementMadeBy"][0]["@id"] == pmu]  # fmt: skip
    attrs = [n["urn:platone-bal:vocab:attrs"][0] for n in pmu_nodes]
    assert all(a["@type"] == "@json" and "phase" in a["@value"] for a in attrs), attrs
    # a unit QUDT names is its QUDT unit
    at = datetime(2026, 3, 1, tzinfo=UTC)
    publish(store, "producer1", pmu_payload("pmu-e", at, [("activeEnergy", "12.5")], unit="kWh"))
    energy = client.get("/v1/readings?device=pmu-e", headers={**admin, **LD}).json()
    (node,) = energy["@graph"]
    assert (node["@id"], SAREF + "isMeasuredIn", QUDT_UNIT + "KiloW-HR") in triples(energy)

    one = client.get(f"/v1/readings/{first['id']}", headers={**admin, **LD})
    assert one.headers["content-type"] == "application/ld+json"
    assert (subject, RDF_TYPE, SAREF + "Measurement") in triples(one.json())
    assert client.get(f"/v1/readings/{first['id']}", headers=admin).json() == first


def test_a_reading_is_only_shown_to_who_may_see_it(
    client: TestClient, admin: dict[str, str], store: SqliteStore, producer: User
) -> None:
    publish(store, "producer1", SAMPLE_XML)
    reading_id = client.get("/v1/readings", headers=admin).json()["items"][0]["id"]
    consumer = add_user(client, admin, "consumer9", "consumer")
    assert client.get(f"/v1/readings/{reading_id}", headers=consumer).status_code == 404
    assert client.get(f"/v1/readings/{reading_id}", headers={**consumer, **LD}).status_code == 404
    owner = login(client, "producer1", "secret-pass-1")
    assert client.get(f"/v1/readings/{reading_id}", headers=owner).status_code == 200
    assert client.get("/v1/readings/999999", headers=admin).status_code == 404
