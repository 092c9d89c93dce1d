"""Egress: every certified reading republished on certified/NAME/DEVICE at QoS 1.

Subscribers get harmonised data the moment a signed checkpoint covers it, without
polling (the field trials' "data directly on the broker"). Each message carries the
certified leaf as hashed, its index, and the checkpoint size covering it, so a
subscriber can fetch the proof and check it. Delivery is at least once: the position
is stored only after the broker took a page, so a crash repeats at most one page and
subscribers deduplicate on (log, index).
"""

from __future__ import annotations

import json
import logging
import threading

from platone_bal import metrics
from platone_bal.domain.users import certified_topic
from platone_bal.ports import CertifiedSink, Store

log = logging.getLogger(__name__)

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


class Egress:
    def __init__(
        self, store: Store, sink: CertifiedSink, *, log_id: str, interval: float = 0.2
    ) -> None:
        self.store = store
        self.sink = sink
        self.log_id = log_id
        self.interval = interval
        self.failures = 0
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    def publish_pending(self) -> int:
        """Publish what the newest checkpoint covers and was not published; returns how many."""
        signed = self.store.latest_checkpoint(self.log_id)
        if signed is None:
            return 0
        size = signed.checkpoint.size
        position = self.store.egress_position(self.log_id)
        published = 0
        while position < size and not self._stopping.is_set():
            count = min(PAGE, size - position)
            readings = self.store.readings_in_log(self.log_id, position, count)
            leaves = dict(self.store.leaves(self.log_id, position, count))
            messages = [
                (
                    certified_topic(reading.producer, reading.device),
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

    def start(self) -> None:
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="bal-egress", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.publish_pending()
                self.failures = 0
                delay = self.interval
            except Exception as error:  # the broker may be down; readings are safe in the store
                self.failures += 1
                delay = min(self.interval * 2**self.failures, _BACKOFF_MAX)
                log.warning("egress failed (%s); retrying in %.1fs", error, delay)
            self._stopping.wait(delay)
