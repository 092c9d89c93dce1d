"""Egress: every certified reading republished on certified/NAME/DEVICE/MEASURAND (QoS 1).

Subscribers get harmonised data the moment a signed checkpoint covers it, without
polling (the field trials' "data directly on the broker"). Each message carries the
certified leaf as hashed, its index, and the checkpoint size covering it, so a
subscriber can fetch the proof and check it. Delivery is at least once: the position
is stored only after the broker took a page, so a crash repeats at most one page and
subscribers deduplicate on (log, index).
"""

from __future__ import annotations

import json

from platone_bal import metrics
from platone_bal.domain.users import certified_topic
from platone_bal.ports import CertifiedSink, Store
from platone_bal.services.periodic import PeriodicWorker

PAGE = 1000
_BACKOFF_MAX = 30.0


def certified_message(log_id: str, index: int, checkpoint_size: int, leaf: bytes) -> bytes:
    """The JSON published for one reading: the leaf exactly as certified, and where."""
    return (
        b'{"log":'
        + json.dumps(log_id).encode()
        + b',"index":'
        + str(index).encode()
        + b',"checkpoint_size":'
        + str(checkpoint_size).encode()
        + b',"leaf":'
        + leaf
        + b"}"
    )


class Egress(PeriodicWorker):
    name = "bal-egress"

    def __init__(
        self, store: Store, sink: CertifiedSink, *, log_id: str, interval: float = 0.2
    ) -> None:
        super().__init__(interval, _BACKOFF_MAX)
        self.store = store
        self.sink = sink
        self.log_id = log_id

    def publish_pending(self) -> int:
        """Publish what the newest checkpoint covers and was not published; returns how many."""
        signed = self.store.latest_checkpoint(self.log_id)
        if signed is None:
            return 0
        size = signed.checkpoint.size
        position = self.store.egress_position(self.log_id)
        published = 0
        while position < size and not self.stopping:
            count = min(PAGE, size - position)
            readings = self.store.readings_in_log(self.log_id, position, count)
            leaves = dict(self.store.leaves(self.log_id, position, count))
            messages = [
                (
                    certified_topic(reading.producer, reading.device, reading.measurand),
                    certified_message(self.log_id, reading.index, size, leaves[reading.index]),
                )
                for reading in readings
            ]
            self.sink.publish(messages)
            position += len(readings)
            self.store.set_egress_position(self.log_id, position)
            published += len(readings)
            metrics.EGRESS.inc(len(readings))
        return published

    def step(self) -> int:
        return self.publish_pending()
