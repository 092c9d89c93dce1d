"""Grant decisions as `SubscriptionRegistry` records them: EIP-712 typed data that the
deciding user signs, so anyone can check who decided what and when (ARCHITECTURE §5).

The registry's grant id is the node's grant id; `topic` names the certified topic and
any limits of the grant, so the record says what was granted, not only to whom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from platone_bal.domain.grants import Grant, GrantStatus
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import EGRESS_ROOT

CONTRACT_STATUS = {
    GrantStatus.REQUESTED: 1,
    GrantStatus.ACCEPTED: 2,
    GrantStatus.REFUSED: 3,
    GrantStatus.REVOKED: 4,
    GrantStatus.EXPIRED: 5,
}
DOMAIN_NAME, DOMAIN_VERSION = "PlatoneBAL SubscriptionRegistry", "1"


@dataclass(frozen=True, slots=True)
class Decision:
    grant_id: int
    status: GrantStatus
    decided_by: str
    """Username of the party who decided (its wallet signs)."""
    provider: str
    """EIP-55 wallet of the producer."""
    consumer: str
    """EIP-55 wallet of the consumer."""
    topic: str
    timestamp: int
    """Unix seconds of the decision."""


def grant_topic(grant: Grant) -> str:
    """certified/NAME/# with the grant's limits as a query string, e.g.
    `certified/producer1/#?devices=pmu1&expires=2026-12-01T00:00:00.000000Z`."""
    scope = grant.scope
    limits: list[tuple[str, str]] = []
    if scope.devices is not None:
        limits.append(("devices", ",".join(sorted(scope.devices))))
    if scope.measurands is not None:
        limits.append(("measurands", ",".join(sorted(scope.measurands))))
    for name, moment in (("from", scope.since), ("to", scope.until), ("expires", grant.expires)):
        if moment is not None:
            limits.append((name, format_time(moment)))
    topic = f"{EGRESS_ROOT}/{scope.producer}/#"
    return f"{topic}?{urlencode(limits)}" if limits else topic


def typed_data(decision: Decision, chain_id: int, registry: str) -> dict[str, Any]:
    """The EIP-712 message (eth_signTypedData_v4 form) the deciding user signs."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Decision": [
                {"name": "grantId", "type": "uint256"},
                {"name": "provider", "type": "address"},
                {"name": "consumer", "type": "address"},
                {"name": "topic", "type": "string"},
                {"name": "status", "type": "uint8"},
                {"name": "timestamp", "type": "uint64"},
            ],
        },
        "primaryType": "Decision",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": registry,
        },
        "message": {
            "grantId": decision.grant_id,
            "provider": decision.provider,
            "consumer": decision.consumer,
            "topic": decision.topic,
            "status": CONTRACT_STATUS[decision.status],
            "timestamp": decision.timestamp,
        },
    }
