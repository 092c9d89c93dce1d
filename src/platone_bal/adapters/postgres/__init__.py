"""The Shared Customer Database on PostgreSQL (`BAL_STORE=postgres`), for several nodes.

One module per aggregate (users and clients, devices, grants and decisions, readings,
activity and series, logs with checkpoints and anchors, the access log, raw rows for
`bal audit`), the write transaction, day partitions and the migrations; `store.py`
composes them into `PostgresStore`.
"""

from platone_bal.adapters.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
