"""The seed's BAP endpoints and /v1/verify on a running node with its embedded chain:
data is OK only once anchored, KO after one value changes, and the anchor transaction
leads back to exactly the data it certified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE_PMU, SAMPLE_XML
from tests.integration.nodes import NodeThread, wait_for


def test_validate_transactions_and_verify_against_the_chain(tmp_path: Path) -> None:
    with NodeThread(tmp_path / "bal", anchor_interval=0.5) as node:
        node.add_user("producer1", "secret-pass-1")
        node.add_user("consumer1", "secret-pass-2", role="consumer")
        producer = node.token("producer1", "secret-pass-1")
        for payload in (SAMPLE_XML, SAMPLE_PMU):
            assert node.http.post("/v1/ingest", content=payload, headers=producer).is_success
        readings = node.http.get("/v1/readings", headers=producer).json()["items"]
        assert len(readings) == 4

        def proof() -> dict[str, Any]:
            answer = node.http.get("/v1/readings/4/proof", headers=producer)
            return dict(answer.json()) if answer.status_code == 200 else {"anchor": None}

        wait_for(lambda: proof()["anchor"] is not None, timeout=20, what="anchor")
        bundle = proof()

        valid = node.http.request("GET", "/bap/validateData", json=readings, headers=producer)
        assert valid.text == "OK", valid.headers.get("bal-reason")
        changed = {**readings[0], "value": "11.05"}
        invalid = node.http.post("/bap/validateData", json=changed, headers=producer)
        assert invalid.text == "KO"
        assert invalid.headers["bal-reason"] == "value: given '11.05', certified '11.04'"

        verdicts = node.http.post(
            "/v1/verify",
            json={"proofs": [bundle, {**bundle, "leaf": {**bundle["leaf"], "value": "23"}}]},
            headers=producer,
        ).json()
        assert [item["status"] for item in verdicts["items"]] == ["valid", "invalid"]
        assert verdicts["items"][0]["checks"][-1] == {
            "name": "anchor",
            "ok": True,
            "detail": f"contract {bundle['anchor']['contract']} holds the root for "
            f"{bundle['checkpoint']['size']}",
        }
        assert verdicts["items"][1]["reason"].startswith("leaf:")
        foreign = {**bundle, "anchor": {**bundle["anchor"], "contract": "0x" + "12" * 20}}
        refused = node.http.post("/v1/verify", json={"proofs": [foreign]}, headers=producer)
        assert "not this node's registry" in refused.json()["items"][0]["reason"]

        found = node.http.request(
            "GET", "/bap/getTransactions", json={"device": "pmu1"}, headers=producer
        ).json()
        assert found["pending_readings"] == 0
        (transaction,) = found["transactions"]
        assert transaction["transactionHash"] == bundle["anchor"]["tx"]
        assert transaction["dataset"] == {"device": "pmu1", "readings": 2}
        assert transaction["hashedData"].startswith("0x") and transaction["owner"].startswith("0x")

        certified = node.http.get(
            "/api/certification/getByTransaction",
            params={"transaction": transaction["transactionHash"]},
            headers=producer,
        ).json()
        # the transaction brought on chain the readings since the previous anchor
        first, size = certified["first_index"], certified["size"]
        assert first in (0, 2) and size == 4  # one anchor for both posts, or one each
        values = ["11.04", "3.45", "11", "22"][first:size]
        assert [r["value"] for r in certified["items"]] == values
        consumer = node.token("consumer1", "secret-pass-2")
        hidden = node.http.get(
            "/api/certification/getByTransaction",
            params={"transaction": transaction["transactionHash"]},
            headers=consumer,
        ).json()
        assert hidden["items"] == []  # the transaction is public, the data is not


def test_the_access_audit_log_is_checkpointed_and_anchored(tmp_path: Path) -> None:
    with NodeThread(tmp_path / "bal", anchor_interval=0.5) as node:
        node.add_user("producer1", "secret-pass-1")
        producer = node.token("producer1", "secret-pass-1")
        node.http.post("/v1/ingest", content=SAMPLE_PMU, headers=producer).raise_for_status()
        node.http.get("/v1/readings", headers=producer).raise_for_status()
        entries = node.http.get("/v1/audit", headers=producer).json()["items"]
        assert [e["action"] for e in entries] == ["readings.read"]

        def anchored() -> bool:
            found = node.get("/v1/anchors", log="bal-audit")["items"]
            return bool(found)

        wait_for(anchored, timeout=20, what="an anchor of bal-audit")
        (checkpoint, *_) = node.get("/v1/logs/bal-audit/checkpoints")["items"]  # type: ignore[misc]
        assert checkpoint["log"] == "bal-audit" and checkpoint["size"] >= 1
