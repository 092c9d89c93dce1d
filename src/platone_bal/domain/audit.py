"""Entries of the access audit log `bal-audit`: who touched whose data, how and when.

Each entry is a leaf of its own Merkle log, checkpointed and anchored like readings, so
an operator cannot quietly drop or rewrite the record of an access (issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from platone_bal.domain.leaf import leaf_bytes
from platone_bal.domain.readings import format_time, parse_time

AUDIT_LOG = "bal-audit"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    time: datetime
    who: str
    """The user (or `user via client-id`) who acted."""
    channel: str
    """http, mqtt or web (the dashboard)."""
    action: str
    """e.g. readings.read, proof.read, data.validate, grant.accepted, certified.subscribe."""
    producers: tuple[str, ...]
    """Whose data it concerned (sorted, distinct); empty when none."""
    query: str
    """The route or topic and its parameters, never a credential."""
    count: int
    """Readings returned or concerned."""

    @classmethod
    def of_leaf(cls, leaf: dict[str, Any]) -> AuditEntry:
        """The entry a leaf of `leaf()` holds."""
        return cls(
            parse_time(leaf["time"]),
            leaf["who"],
            leaf["channel"],
            leaf["action"],
            tuple(leaf["producers"]),
            leaf["query"],
            leaf["count"],
        )

    def leaf(self) -> dict[str, Any]:
        return {
            "v": 1,
            "log": AUDIT_LOG,
            "time": format_time(self.time),
            "who": self.who,
            "channel": self.channel,
            "action": self.action,
            "producers": list(self.producers),
            "query": self.query,
            "count": self.count,
        }

    def leaf_bytes(self) -> bytes:
        return leaf_bytes(self.leaf())
