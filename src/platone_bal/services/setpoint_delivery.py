"""Set points out to the Light Nodes: each published at QoS 1 on setpoints/NAME/DEVICE
once a signed checkpoint of bal-setpoints covers it (ARCHITECTURE §8), and marked
delivered only after the broker took it; set points past their end without an answer
are marked expired on the same round.

At least once: a crash between the broker's acknowledgment and the mark publishes the
set point again after the restart, and a broker that is down leaves it issued until the
broker is back (the worker backs off meanwhile). The Light Node recognises a repeat by
its index.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from platone_bal import metrics
from platone_bal.domain.readings import format_time
from platone_bal.domain.setpoints import (
    SETPOINT_LOG,
    SetPointStatus,
    delivery_message,
    setpoint_topic,
)
from platone_bal.ports import CertifiedSink, Store
from platone_bal.services.periodic import PeriodicWorker

PAGE = 100
_BACKOFF_MAX = 30.0


class SetPointDelivery(PeriodicWorker):
    name = "bal-setpoint-delivery"

    def __init__(
        self,
        store: Store,
        sink: CertifiedSink,
        *,
        interval: float = 0.2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(interval, _BACKOFF_MAX)
        self.store = store
        self.sink = sink
        self.clock = clock

    def step(self) -> int:
        expired = self.store.expire_setpoints(format_time(self.clock()))
        metrics.SETPOINTS.labels(SetPointStatus.EXPIRED).inc(expired)
        return self.deliver_pending()

    def deliver_pending(self) -> int:
        """Publish the issued set points a signed checkpoint covers; how many went out."""
        signed = self.store.latest_checkpoint(SETPOINT_LOG)
        if signed is None:
            return 0
        delivered = 0
        while not self.stopping:
            due = self.store.setpoints_to_deliver(signed.checkpoint.size, PAGE)
            if not due:
                break
            messages = []
            for setpoint in due:
                leaf = self.store.leaf_bytes(SETPOINT_LOG, setpoint.index)
                assert leaf is not None
                body = delivery_message(setpoint.index, json.loads(leaf))
                messages.append((setpoint_topic(setpoint.producer, setpoint.device), body))
            self.sink.publish(messages)
            when = format_time(self.clock())
            for setpoint in due:
                self.store.mark_delivered(setpoint.id, when, self.fence)
                metrics.SETPOINTS.labels(SetPointStatus.DELIVERED).inc()
            delivered += len(due)
        return delivered
