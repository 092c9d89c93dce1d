"""DeviceRegistry over web3.py: the DSO's device keys, changed by the node's chain-admin
account and read back from the registry's events on any JSON-RPC node."""

from __future__ import annotations

from typing import Any

from web3 import Web3

from platone_bal.adapters.web3_chain import Deployment, Transactor, contract, http_web3
from platone_bal.domain.devices import device_key
from platone_bal.domain.light_nodes import KeyChange
from platone_bal.domain.proof import SignerLookup
from platone_bal.ports import ChainError

EVENT_PAGE_BLOCKS = 5_000
"""Blocks per eth_getLogs call: nodes cap the range of one query (Besu: 5,000 by default)."""


class Web3DeviceRegistry:
    """DeviceLedger and DeviceKeyEvents on one deployment's `DeviceRegistry`."""

    def __init__(self, w3: Web3, deployment: Deployment, admin_key: bytes | None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.address = deployment.contracts["DeviceRegistry"]
        self.registry = contract(w3, "DeviceRegistry", self.address)
        self._sender = Transactor(w3, admin_key) if admin_key is not None else None

    def register(self, device_key: bytes, key: str, owner: str) -> str:
        call = self.registry.functions.register(
            device_key, Web3.to_checksum_address(key), Web3.to_checksum_address(owner)
        )
        return "0x" + bytes(self._sender_or_fail().send(call)["transactionHash"]).hex()

    def revoke(self, device_key: bytes) -> str:
        call = self.registry.functions.revoke(device_key)
        return "0x" + bytes(self._sender_or_fail().send(call)["transactionHash"]).hex()

    def _sender_or_fail(self) -> Transactor:
        if self._sender is None:
            raise ChainError("this connection to DeviceRegistry has no admin key")
        return self._sender

    def first_block(self) -> int:
        return self.deployment.block

    def key_changes(self, from_block: int) -> tuple[list[KeyChange], int]:
        try:
            latest = int(self.w3.eth.block_number)
            changes: list[tuple[int, int, KeyChange]] = []
            for start in range(from_block, latest + 1, EVENT_PAGE_BLOCKS):
                stop = min(latest, start + EVENT_PAGE_BLOCKS - 1)
                for event in self.registry.events.DeviceRegistered().get_logs(
                    from_block=start, to_block=stop
                ):
                    args = event["args"]
                    change = KeyChange(
                        bytes(args["deviceId"]),
                        str(args["key"]),
                        str(args["owner"]),
                        _tx(event),
                        int(event["blockNumber"]),
                    )
                    changes.append((change.block, int(event["logIndex"]), change))
                for event in self.registry.events.DeviceRevoked().get_logs(
                    from_block=start, to_block=stop
                ):
                    change = KeyChange(
                        bytes(event["args"]["deviceId"]),
                        None,
                        None,
                        _tx(event),
                        int(event["blockNumber"]),
                    )
                    changes.append((change.block, int(event["logIndex"]), change))
        except ChainError:
            raise
        except Exception as error:
            raise ChainError(f"reading DeviceRegistry events failed: {error}") from error
        changes.sort(key=lambda item: item[:2])
        return [change for _, _, change in changes], latest

    def key_at(self, device_key: bytes, block: int) -> tuple[str, bool] | None:
        """(key, revoked) of the device as the registry held it at `block`; None if it
        had no key then (for `bal verify --rpc`: the node must keep that block's state)."""
        try:
            key, _owner, registered, revoked = self.registry.functions.device(device_key).call(
                block_identifier=block
            )
        except Exception as error:
            raise ChainError(f"reading DeviceRegistry at block {block} failed: {error}") from error
        return None if int(registered) == 0 else (str(key), bool(revoked))


def _tx(event: Any) -> str:
    return "0x" + bytes(event["transactionHash"]).hex()


def rpc_signer_lookup(url: str, registry_address: str) -> SignerLookup:
    """Check a signed reading's signer against DeviceRegistry at `registry_address` on
    any JSON-RPC node, as the registry stood at the reading's anchor block (the node
    must keep that block's state: an archive node, or a recent block)."""

    def lookup(leaf: dict[str, Any], anchor: dict[str, Any]) -> str | None:
        try:
            w3 = http_web3(url)
            registry = contract(w3, "DeviceRegistry", registry_address)
            key, _owner, registered, revoked = registry.functions.device(
                device_key(str(leaf["producer"]), str(leaf["device"]))
            ).call(block_identifier=int(anchor["block"]))
        except Exception as error:
            return f"cannot read DeviceRegistry at {url}: {error}"
        signer, device = leaf["attrs"]["signer"], f"{leaf['producer']}/{leaf['device']}"
        if int(registered) == 0:
            return f"DeviceRegistry held no key for {device} at block {anchor['block']}"
        if revoked:
            return f"the key of {device} was revoked at block {anchor['block']}"
        if str(key).lower() != str(signer).lower():
            return (
                f"DeviceRegistry held {key} for {device} at block {anchor['block']}, not {signer}"
            )
        return None

    return lookup
