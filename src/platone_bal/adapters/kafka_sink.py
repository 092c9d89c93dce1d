"""StreamSink on Kafka (confluent-kafka, librdkafka): certified readings produced to the
`bal.certified.NAME` topics of a DSO's cluster.

The producer is idempotent with `acks=all`: a page counts as sent only when every
record of it is acknowledged by the in-sync replicas; a record the cluster did not take
within DELIVERY_TIMEOUT fails the page (ConnectionError), and the egress worker sends it
again after its back-off, from its stored position: at least once, deduplicable on
(log, index). Topics are made when first needed (a cluster that does not create them on
a produce), with the cluster's default partitions and replication. TLS and SASL are
librdkafka's own settings (`security.protocol`, `sasl.mechanism`, ...), from Settings.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT = 30.0
"""Seconds a page may take to be acknowledged before it counts as not sent."""


class KafkaSink:
    def __init__(
        self, config: dict[str, str | int | bool], delivery_timeout: float = DELIVERY_TIMEOUT
    ) -> None:
        """`config`: librdkafka settings (`bootstrap.servers`, security ones)."""
        self._config = config
        self._timeout = delivery_timeout
        self._producer = self._new_producer()
        self._topics: set[str] = set()

    def _new_producer(self) -> Producer:
        return Producer(
            {
                **self._config,
                "logger": log,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(self._timeout * 1000),
            }
        )

    def produce(self, records: Sequence[tuple[str, str, bytes]]) -> None:
        self._ensure_topics({topic for topic, _, _ in records})
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failures.append(error)

        for topic, key, value in records:
            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self._producer.poll(0.1)
                except KafkaException as error:
                    self._recover()
                    raise ConnectionError(f"Kafka refused a record: {error}") from None
        left = self._producer.flush(self._timeout + 5)
        if failures or left:
            self._topics.clear()  # a cluster that lost them (a restart) makes them again
            first = failures[0] if failures else None
            self._recover()
            raise ConnectionError(
                f"Kafka did not acknowledge {len(failures) + left} of {len(records)} records"
                + (f": {first.str()}" if first is not None else "")
            )

    def _recover(self) -> None:
        """Start over with a new producer, the old one's queue purged: after an outage
        (a broker that restarted empty does not know the old producer id) an idempotent
        producer may never deliver again, or may be fenced for good. The page is sent
        again anyway (at least once)."""
        self._producer.purge()
        self._producer.flush(0)
        self._producer = self._new_producer()

    def _ensure_topics(self, topics: set[str]) -> None:
        missing = topics - self._topics
        if not missing:
            return
        admin = AdminClient({key: value for key, value in self._config.items() if key != "logger"})
        for topic, future in admin.create_topics([NewTopic(t) for t in sorted(missing)]).items():
            try:
                future.result(self._timeout)
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ConnectionError(f"Kafka topic {topic}: {error}") from None
            self._topics.add(topic)

    def close(self) -> None:
        self._producer.flush(5)
