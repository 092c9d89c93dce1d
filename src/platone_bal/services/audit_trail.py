"""Records every data access and grant change in the bal-audit log, before the data
leaves: if the record cannot be written, the access fails (fail closed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from platone_bal.domain.audit import AuditEntry
from platone_bal.ports import Store
from platone_bal.services.recorder import Recorder


class AuditTrail:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        on_append: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.recorder = Recorder(store)
        self.clock = clock
        self._on_append = on_append
        """Pokes the bal-audit checkpointer, as ingest pokes the readings' one."""

    def record(
        self,
        who: str,
        channel: str,
        action: str,
        producers: Iterable[str],
        query: str,
        count: int,
    ) -> None:
        entry = AuditEntry(
            time=self.clock(),
            who=who,
            channel=channel,
            action=action,
            producers=tuple(sorted(set(producers))),
            query=query,
            count=count,
        )
        self.recorder.append_audit([entry])
        self._on_append()
