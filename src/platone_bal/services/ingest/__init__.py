"""Ingest: a delivered payload -> checks -> codec -> leaves -> one batched write.

Brokers and the HTTP endpoint only hand over deliveries (`delivery`); this service
decides what becomes a reading and what becomes a rejection with its reason
(`records`). Bad input never stops the pipeline: every failure is a rejection row, and
the next delivery goes on. Deliveries are acknowledged to the broker only after their
batch is committed, so a crash loses nothing that the broker will not deliver again
(`writer`).

No payload can stall the writer ("poison message"). Anything that goes wrong while a
payload's leaves are built is that payload's rejection. A batch the store refuses is
split in halves until the payload it refuses is alone; that one is then stored as a
rejection with the reason, raw bytes kept. Only when even that bare record cannot be
written is the fault the store's: then the writer backs off and tries again, and a stop
gives up waiting after its grace (what was not written is not acknowledged, so the
broker delivers it again).
"""

from platone_bal.services.ingest.delivery import Delivery, now
from platone_bal.services.ingest.writer import IngestService

__all__ = ["Delivery", "IngestService", "now"]
