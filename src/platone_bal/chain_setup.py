"""Opening the node's chain: the embedded EVM (deploying on first start) or a JSON-RPC node.

The deployment record (`chain/deployment.json`) pins which contracts this node's logs
are anchored in. The embedded chain deploys them on its first start; for an outside
node `bal chain deploy` does it once. A node never silently deploys a second set:
proofs already handed out name the first.
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
from platone_bal.ports import ChainError


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


def deployment_path(settings: Settings) -> Path:
    """Where the node records its contracts' addresses."""
    return settings.chain_dir / "deployment.json"


def embedded_chain_path(settings: Settings) -> Path:
    return settings.chain_dir / "chain.sqlite3"


def open_chain(settings: Settings, keys: NodeKeys) -> OpenChain:
    path = deployment_path(settings)
    admin, anchorer = keys["chain-admin"], keys["anchorer"]
    embedded: EmbeddedChain | None = None
    if settings.chain == "embedded":
        embedded = EmbeddedChain(
            embedded_chain_path(settings),
            chain_id=settings.chain_id,
            funded=[admin.address, anchorer.address],
        )
        w3 = Web3(embedded.provider)
        deployment = Deployment.load(path)
        if deployment is None:
            deployment = deploy_contracts(w3, admin.private_key, [anchorer.address])
            deployment.save(path)
    else:
        assert settings.chain_url is not None
        w3 = http_web3(settings.chain_url)
        deployment = Deployment.load(path)
        if deployment is None:
            raise ChainError(
                f"no contracts recorded in {path}: run `bal chain deploy` once for this node"
            )
    chain = Web3Chain(w3, deployment, anchorer.private_key)
    if embedded is not None:
        chain.check_connection()
        if not w3.eth.get_code(Web3.to_checksum_address(chain.registry_address)):
            embedded.close()
            raise ChainError(
                f"{path} names contracts the embedded chain does not hold; "
                "the chain database was replaced or lost"
            )
    return OpenChain(chain, embedded)
