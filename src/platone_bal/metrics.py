"""Prometheus metrics of the node (served at GET /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES = Counter("bal_ingest_messages", "Payloads received, by outcome", ["outcome"])
READINGS = Counter("bal_ingest_readings", "Readings stored")
REJECTIONS = Counter("bal_ingest_rejections", "Rejection rows recorded")
DUPLICATES = Counter("bal_ingest_duplicates", "Redelivered payloads stored only once")
QUEUE_DEPTH = Gauge("bal_ingest_queue_depth", "Deliveries waiting to be written")
WRITE_RETRIES = Counter("bal_ingest_write_retries", "Batch writes retried after a store error")
CHECKPOINT_SIZE = Gauge("bal_checkpoint_size", "Size of the newest signed checkpoint", ["log"])
ANCHOR_SIZE = Gauge("bal_anchor_size", "Size of the newest checkpoint anchored on chain", ["log"])
ANCHOR_FAILURES = Counter("bal_anchor_failures", "Anchor attempts that failed and will be retried")
EGRESS = Counter("bal_egress_readings", "Certified readings republished on certified/... topics")
