"""Set points: the DSO issues one (a leaf of bal-setpoints, checkpointed and anchored like
readings), it goes out once a signed checkpoint covers it, and the Light Node's signed
answer is logged after it (ARCHITECTURE §8).

Issuing appends the leaf and the set point's row in one transaction (the log's append is
`LogAppender`'s, as for readings); the node's checkpointer for bal-setpoints is poked
after each. A set point past its `end` without an answer is marked expired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from platone_bal import metrics
from platone_bal.domain.leaf import leaf_bytes, new_salt
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.readings import format_time
from platone_bal.domain.setpoints import (
    SETPOINT_LOG,
    InvalidSetPoint,
    SetPointRequest,
    SetPointStatus,
)
from platone_bal.domain.users import Role
from platone_bal.ports import Store, StoredSetPoint
from platone_bal.services.log_appender import LogAppender


class SetPointService:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        on_append: Callable[[], object] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.on_append = on_append
        """Told after each append to bal-setpoints (the checkpointer signs soon after)."""
        self._appender = LogAppender(SHA3_256)

    def issue(self, request: SetPointRequest, issuer: str) -> StoredSetPoint:
        """Log the set point; raises InvalidSetPoint for an unknown producer or device."""
        producer = self.store.get_user(request.producer)
        if producer is None or producer.role is not Role.PRODUCER:
            raise InvalidSetPoint(f"no producer {request.producer!r}")
        device = self.store.get_device(request.producer, request.device)
        if device is None or device.disabled:
            raise InvalidSetPoint(f"no device {request.device!r} of {request.producer!r}")
        leaf = request.leaf(
            owner=producer.wallet, issuer=issuer, time=self.clock(), salt=new_salt()
        )
        raw = leaf_bytes(leaf)
        with self.store.transaction() as tx:
            index = self._appender.append(tx, SETPOINT_LOG, [SHA3_256.hash_leaf(raw)])
            setpoint_id = tx.add_setpoint(index, leaf, raw)
        metrics.SETPOINTS.labels(SetPointStatus.ISSUED).inc()
        self.on_append()
        stored = self.store.setpoint(setpoint_id)
        assert stored is not None
        return stored

    def expire(self) -> int:
        """Mark set points past their end without an answer as expired; how many."""
        return self.store.expire_setpoints(format_time(self.clock()))
