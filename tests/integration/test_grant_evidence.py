"""Grant decisions reach SubscriptionRegistry signed by the deciding users; a third
party checks the signatures and finds each record on chain through JSON-RPC alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from platone_bal.adapters.web3_chain import contract
from tests.integration.nodes import NodeThread, wait_for


def test_each_decision_is_on_chain_with_the_deciders_signature(tmp_path: Path) -> None:
    with NodeThread(tmp_path / "bal") as node:
        producer_user = node.add_user("producer1", "secret-pass-1")
        consumer_user = node.add_user("consumer1", "secret-pass-2", role="consumer")
        producer = node.token("producer1", "secret-pass-1")
        consumer = node.token("consumer1", "secret-pass-2")
        grant = node.http.post(
            "/v1/grants", json={"producer": "producer1"}, headers=consumer
        ).json()
        node.http.post(
            f"/v1/grants/{grant['id']}/accept", json={"devices": ["pmu1"]}, headers=producer
        ).raise_for_status()
        node.http.post(f"/v1/grants/{grant['id']}/revoke", headers=consumer).raise_for_status()

        def evidence() -> list[dict[str, Any]]:
            answer = node.http.get(f"/v1/grants/{grant['id']}/evidence", headers=consumer)
            return list(answer.json()["decisions"])

        wait_for(lambda: all(d["transactionHash"] for d in evidence()), timeout=20, what="records")
        decisions = evidence()
        assert [d["status"] for d in decisions] == ["requested", "accepted", "revoked"]
        assert [d["error"] for d in decisions] == [None, None, None]
        wallets = {"producer1": producer_user["wallet"], "consumer1": consumer_user["wallet"]}
        assert [d["signer"] for d in decisions] == [
            wallets["consumer1"],
            wallets["producer1"],
            wallets["consumer1"],
        ]
        assert decisions[1]["topic"] == "certified/producer1/#?devices=pmu1"

        # a third party: the chain's JSON-RPC, the typed data and the signature
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{node.settings.chain_rpc_port}"))
        for decision in decisions:
            message = encode_typed_data(full_message=decision["typed_data"])
            recovered = Account.recover_message(message, signature=decision["signature"])
            assert recovered == wallets[decision["decided_by"]]
            registry = contract(w3, "SubscriptionRegistry", decision["contract"])
            receipt = w3.eth.get_transaction_receipt(decision["transactionHash"])
            (event,) = registry.events.DecisionRecorded().process_receipt(receipt)
            assert event["args"]["grantId"] == grant["id"]
            assert event["args"]["decidedBy"] == recovered
            assert event["args"]["topic"] == decision["topic"]
        final = registry.functions.grant(grant["id"]).call()
        assert final[3] == 4 and final[5] == wallets["consumer1"]  # Revoked, by the consumer

        outsider = node.add_user("consumer2", "secret-pass-3", role="consumer")
        assert outsider
        hidden = node.http.get(
            f"/v1/grants/{grant['id']}/evidence", headers=node.token("consumer2", "secret-pass-3")
        )
        assert hidden.status_code == 404
