"""The audit's work that can be done apart, in the order it is consumed: the log's
pages (`pages.check_page`), then, for a readings' log, the message pages
(`messages.message_page`). One stream, so workers hash the first payloads while this
process is still finishing the tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import cast

from platone_bal.domain.audit import AUDIT_LOG
from platone_bal.domain.setpoints import SETPOINT_LOG
from platone_bal.ports import Store
from platone_bal.services.audit.messages import MessageCounts, MessagePage, message_page
from platone_bal.services.audit.pages import check_page
from platone_bal.services.audit.tree import CheckedPage
from platone_bal.services.audit.workers import Pages, Task, WorkerPool, in_process

MIN_PAGES = 4
"""Logs of fewer pages are checked in this process: workers would cost more to start."""


@dataclass
class CheckedApart:
    """The results, in order: first the log's pages, then the message pages."""

    log_pages: Iterator[CheckedPage]
    message_pages: Iterator[MessagePage]


def tasks(store: Store, log: str, size: int, page: int) -> Iterator[Task]:
    for start in range(0, size, page):
        yield check_page, (log, start, min(start + page, size))
    if log in (AUDIT_LOG, SETPOINT_LOG):  # no messages behind these logs' records
        return
    after = 0
    while ids := store.raw_message_ids(after, page):
        yield message_page, (after, len(ids))
        after = ids[-1]


@contextmanager
def checked_apart(store: Store, log: str, size: int, pages: Pages) -> Iterator[CheckedApart]:
    """The work done apart, by workers when there are any, with an opener, and the log
    has at least MIN_PAGES pages; they stop when the block ends."""
    work = tasks(store, log, size, pages.size)
    if pages.opener is None or pages.workers < 1 or size < MIN_PAGES * pages.size:
        yield split(in_process(store, work), size, pages.size)
        return
    pool = WorkerPool(pages.opener, pages.workers, store, work)
    try:
        if pages.wait_for_workers:
            pool.wait_started()
        yield split(pool.results(), size, pages.size)
    finally:
        pool.close()


def split(results: Iterator[tuple[Task, object]], size: int, page: int) -> CheckedApart:
    """The log's pages (as many as it has), then the message pages (any log page not
    taken, if the tree stopped taking them, is passed over)."""

    def log_pages() -> Iterator[CheckedPage]:
        for (_, (_, start, stop)), levels in islice(results, -(-size // page)):
            yield cast(int, start), cast(int, stop), cast(tuple[bytes, ...] | None, levels)

    def message_pages() -> Iterator[MessagePage]:
        for (function, (after, limit)), counts in results:
            if function is message_page:
                yield cast(int, after), cast(int, limit), cast(MessageCounts | None, counts)

    return CheckedApart(log_pages(), message_pages())
