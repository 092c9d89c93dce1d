"""Prometheus metrics of the node (served at GET /metrics).

deploy/prometheus/prometheus.yml scrapes them and the dashboards in deploy/grafana/
query them; tests/integration/test_grafana_metrics.py holds every name a panel queries
to what a running node exports. Labelled series whose label values are known here
(message outcomes, set point states) are created at import, at zero: a series that
appears only with its first event makes `rate()` and `increase()` miss that event
and leaves a panel empty ("no data") where the truth is 0.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from platone_bal.domain.messages import Outcome
from platone_bal.domain.setpoints import SetPointStatus

MESSAGES = Counter("bal_ingest_messages", "Payloads received, by outcome", ["outcome"])
READINGS = Counter("bal_ingest_readings", "Readings stored")
REJECTIONS = Counter("bal_ingest_rejections", "Rejection rows recorded")
DUPLICATES = Counter("bal_ingest_duplicates", "Redelivered payloads stored only once")
QUEUE_DEPTH = Gauge("bal_ingest_queue_depth", "Deliveries waiting to be written")
WRITE_RETRIES = Counter("bal_ingest_write_retries", "Batch writes retried after a store error")
POISON = Counter(
    "bal_ingest_poison", "Deliveries rejected because building their record failed unexpectedly"
)
BROKER_RESTARTS = Counter("bal_broker_restarts", "Times the node's own Mosquitto was restarted")
JOURNAL_REPLAYED = Counter(
    "bal_journal_replayed",
    "Payloads ingested from the broker's journal because the node had not stored them",
)
CHECKPOINT_SIZE = Gauge("bal_checkpoint_size", "Size of the newest signed checkpoint", ["log"])
ANCHOR_SIZE = Gauge("bal_anchor_size", "Size of the newest checkpoint anchored on chain", ["log"])
ANCHOR_FAILURES = Counter("bal_anchor_failures", "Anchor attempts that failed and will be retried")
EGRESS = Counter("bal_egress_readings", "Certified readings republished on certified/... topics")
KAFKA_EGRESS = Counter(
    "bal_kafka_egress_readings", "Certified readings produced to the Kafka topics bal.certified.*"
)
EGRESS_POSITION = Gauge(
    "bal_egress_position",
    "Stored egress position: index of the first reading not yet republished (read at scrape)",
    ["log"],
)
HTTP_REQUESTS = Counter(
    "bal_http_requests", "HTTP requests by method, route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bal_http_request_seconds", "HTTP request latency by method and route", ["method", "route"]
)
RATE_LIMITED = Counter("bal_http_rate_limited", "Requests refused with 429")
LOG_SIZE = Gauge("bal_log_size", "Readings in the log", ["log"])
ANCHOR_LAG = Gauge(
    "bal_anchor_lag_readings", "Readings signed or stored but not yet anchored", ["log"]
)
ANCHOR_AGE = Gauge("bal_anchor_age_seconds", "Seconds since the newest anchor's block", ["log"])
SEQUENCED = Counter(
    "bal_sequenced_leaves", "Queued leaves the leader's sequencer put into their log", ["log"]
)
LEADER = Gauge("bal_leader", "1 while this node leads the BAL (holds the leader lease), else 0")
SETPOINTS = Counter(
    "bal_setpoints",
    "Set points entering a state on this node: issued (API), delivered (published to the"
    " device), applied or refused (the device's answer logged), expired (no answer by its end)",
    ["status"],
)

for _outcome in Outcome:
    MESSAGES.labels(_outcome.value)
for _status in SetPointStatus:
    SETPOINTS.labels(_status.value)
