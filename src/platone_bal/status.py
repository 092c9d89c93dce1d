"""The node's broker and chain in words, for the operators' page."""

from __future__ import annotations

from platone_bal.adapters.mosquitto_process import ManagedMosquitto
from platone_bal.chain_setup import OpenChain
from platone_bal.config import Settings
from platone_bal.services.broker_sync import BrokerSync


def node_status(
    settings: Settings,
    mosquitto: ManagedMosquitto | None,
    broker_sync: BrokerSync | None,
    chain_open: OpenChain | None,
) -> dict[str, str]:
    """Broker, chain and the contracts' addresses (the verifier's --device-registry)."""
    if mosquitto is not None:
        state = f"pid {mosquitto.pid}" if mosquitto.pid else "not running"
        port = settings.mqtt_tls_port if settings.tls else settings.mqtt_port
        broker = f"the node's own Mosquitto on {settings.bind}:{port} ({state}"
        broker += f", restarted {mosquitto.restarts} times)"
    else:
        broker = f"Mosquitto at {settings.mqtt_url}"
        if broker_sync is not None:
            errors = broker_sync.last_errors or (
                [broker_sync.last_error] if broker_sync.last_error else []
            )
            broker += "; dynamic security " + (
                f"has problems: {errors[0]}" if errors else "in step with the grants"
            )
    status = {"Broker": broker}
    if chain_open is not None:
        chain = chain_open.chain
        kind = "embedded py-evm" if chain_open.embedded is not None else settings.chain_url
        try:
            block = chain.w3.eth.block_number
            status["Chain"] = f"{kind}, chain id {chain.chain_id}, block {block}"
        except Exception as error:
            status["Chain"] = f"{kind}: unreachable ({error})"
        status["Registry"] = chain.deployment.contracts["CertificationRegistry"]
        status["Device registry"] = chain.deployment.contracts["DeviceRegistry"]
    return status
