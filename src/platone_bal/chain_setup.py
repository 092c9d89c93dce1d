"""Opening the node's chain: the embedded EVM (deploying on first start) or a JSON-RPC node.

The deployment record (`chain/deployment` in the store, shared by the nodes) pins which
contracts the logs are anchored in. The embedded chain deploys them on its first start;
for an outside node `bal chain deploy` does it once. A node never silently deploys a
second set: proofs already handed out name the first. A node that kept the record in
its data directory (`chain/deployment.json`, before it moved) brings it to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from platone_bal.adapters.embedded_chain import EmbeddedChain
from platone_bal.adapters.node_keys import NodeKeys
from platone_bal.adapters.web3_chain import (
    Deployment,
    Web3Chain,
    deploy_contracts,
    http_web3,
    web3_anchor_lookup,
)
from platone_bal.config import Settings
from platone_bal.domain.checkpoint import SignedCheckpoint
from platone_bal.domain.proof import AnchorLookup
from platone_bal.ports import ChainError, NodeStateStore


@dataclass
class OpenChain:
    chain: Web3Chain
    embedded: EmbeddedChain | None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.close()

    def anchor_lookup(self) -> AnchorLookup:
        """Anchor checks against this node's chain, accepting only its own registry."""
        registry = self.chain.registry_address.lower()
        on_chain = web3_anchor_lookup(lambda: self.chain.w3, "the node's chain")

        def lookup(anchor: dict[str, Any], signed: SignedCheckpoint) -> str | None:
            if str(anchor.get("contract", "")).lower() != registry:
                return f"anchored in {anchor.get('contract')}, not this node's registry {registry}"
            return on_chain(anchor, signed)

        return lookup


DEPLOYMENT = "chain/deployment"
"""The deployment record's name in the store's node state."""


def deployment_path(settings: Settings) -> Path:
    """Where a node kept its contracts' addresses before they moved to the store."""
    return settings.chain_dir / "deployment.json"


def recorded_deployment(store: NodeStateStore, legacy: Path | None) -> Deployment | None:
    """The contracts the logs are anchored in, if deployed (`legacy`: where a node kept
    the record before, see `deployment_path`)."""
    text = store.node_value(DEPLOYMENT)
    if text is None:
        kept = Deployment.load(legacy) if legacy is not None else None
        if kept is None:
            return None
        text = store.put_node_value(DEPLOYMENT, kept.to_json())
    return Deployment.from_json(text)


def record_deployment(store: NodeStateStore, deployment: Deployment) -> Deployment:
    """Record `deployment` unless another node recorded one first; the one recorded."""
    return Deployment.from_json(store.put_node_value(DEPLOYMENT, deployment.to_json()))


def embedded_chain_path(settings: Settings) -> Path:
    return settings.chain_dir / "chain.sqlite3"


def open_chain(settings: Settings, keys: NodeKeys, store: NodeStateStore) -> OpenChain:
    admin, anchorer = keys["chain-admin"], keys["anchorer"]
    embedded: EmbeddedChain | None = None
    if settings.chain == "embedded":
        embedded = EmbeddedChain(
            embedded_chain_path(settings),
            chain_id=settings.chain_id,
            funded=[admin.address, anchorer.address],
        )
        w3 = Web3(embedded.provider)
        deployment = recorded_deployment(store, deployment_path(settings))
        if deployment is None:
            deployment = record_deployment(
                store, deploy_contracts(w3, admin.private_key, [anchorer.address])
            )
    else:
        assert settings.chain_url is not None
        w3 = http_web3(settings.chain_url)
        deployment = recorded_deployment(store, deployment_path(settings))
        if deployment is None:
            raise ChainError("no contracts recorded: run `bal chain deploy` once for this BAL")
    chain = Web3Chain(w3, deployment, anchorer.private_key)
    if embedded is not None:
        chain.check_connection()
        if not w3.eth.get_code(Web3.to_checksum_address(chain.registry_address)):
            embedded.close()
            raise ChainError(
                "the recorded deployment names contracts the embedded chain does not hold;"
                " the chain database was replaced or lost"
            )
    return OpenChain(chain, embedded)
