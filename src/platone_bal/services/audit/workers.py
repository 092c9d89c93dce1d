"""The log's pages checked apart (`pages.check_page`), in this process or in worker
processes, and handed to the tree in index order.

One process checks about 60,000 readings a second (reading the page, matching each
leaf, hashing it); the tree above the leaves costs a fraction of that. So workers check
pages ahead, each through a store of its own, while this process rebuilds the tree
from their results strictly in order: a later page's finding is never reported before
an earlier page's, and at most AHEAD pages per worker are held, so the audit never
holds a whole log. Pages are independent, so nothing but the page's bounds goes out.

Workers are forked from a fork server (`forkserver`), never from this process: it may
hold threads (PostgreSQL's pool) that a fork would copy mid-lock. Starting them can
take a second or two (the fork server imports the code once per process), so they
start in the background while this process checks the first pages itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from platone_bal.ports import Store
from platone_bal.services.audit.match import LeafMatcher
from platone_bal.services.audit.pages import check_page
from platone_bal.services.audit.rows import PAGE
from platone_bal.services.audit.tree import CheckedPage

StoreOpener = Callable[[], Store]
"""Opens another store on the audited database, in a worker: it must pickle (a
`functools.partial` of the store class and its path or URL, say)."""
MIN_PAGES = 4
"""Logs of fewer pages are checked in this process: workers would cost more to start."""
AHEAD = 2
"""Pages given to each worker beyond the one the tree waits for."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pages:
    """How the log's records are read: `size` records a page, checked by `workers`
    processes that open their stores with `opener` (none, or no opener: this process
    checks every page). Until the workers are up, this process checks pages itself,
    unless `wait_for_workers` (a test's short log would be done before they start)."""

    size: int = PAGE
    workers: int = 0
    opener: StoreOpener | None = None
    wait_for_workers: bool = False


@contextmanager
def checked_pages(
    store: Store, log: str, size: int, pages: Pages
) -> Iterator[Iterator[CheckedPage]]:
    """The pages of `log`'s first `size` records, checked, in order: by workers when
    there are any, with an opener, and the log has at least MIN_PAGES pages; the workers
    stop when the block ends."""
    if pages.opener is None or pages.workers < 1 or size < MIN_PAGES * pages.size:
        yield in_process(store, log, size, pages.size)
        return
    pool = WorkerPool(pages.opener, pages.workers)
    try:
        if pages.wait_for_workers:
            pool.wait_started()
        yield pool.pages(store, log, size, pages.size)
    finally:
        pool.close()


def in_process(store: Store, log: str, size: int, page: int) -> Iterator[CheckedPage]:
    matcher = LeafMatcher()
    for start in range(0, size, page):
        stop = min(start + page, size)
        yield start, stop, check_page(store, log, start, stop, matcher)


class WorkerPool:
    """Worker processes, each with its own store, started in the background."""

    def __init__(self, opener: StoreOpener, workers: int) -> None:
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._broken = False
        self._starter = threading.Thread(
            target=self._start, args=(opener,), name="bal-audit-workers", daemon=True
        )
        self._starter.start()

    def _start(self, opener: StoreOpener) -> None:
        context = multiprocessing.get_context("forkserver")
        # the parent's main module too: else each worker would import it on its own
        preload = [
            "__main__",
            __name__,
            getattr(getattr(opener, "func", opener), "__module__", None),
        ]
        context.set_forkserver_preload([name for name in preload if isinstance(name, str)])
        try:
            self._executor = ProcessPoolExecutor(
                self._workers, mp_context=context, initializer=_open, initargs=(opener,)
            )
            started = [self._executor.submit(_started) for _ in range(self._workers)]
            wait(started)
            for future in started:
                future.result()
        except Exception:  # the audit goes on in this process
            _log.warning("audit workers could not start", exc_info=True)
            self._broken = True
        else:
            self._ready.set()

    def wait_started(self) -> None:
        self._starter.join()

    def pages(self, store: Store, log: str, size: int, page: int) -> Iterator[CheckedPage]:
        matcher = LeafMatcher()
        bounds = [(start, min(start + page, size)) for start in range(0, size, page)]
        futures: dict[int, Future[tuple[bytes, ...] | None]] = {}
        given = 0  # pages [0, given) are checked or being checked
        for number, (start, stop) in enumerate(bounds):
            if self._ready.is_set() and not self._broken and self._executor is not None:
                ahead = min(len(bounds), number + 1 + AHEAD * self._workers)
                for later in range(max(given, number), ahead):
                    futures[later] = self._executor.submit(_check, log, *bounds[later])
                given = max(given, ahead)
            future = futures.pop(number, None)
            levels = None if future is None else self._result(future)
            if future is None or (levels is None and self._broken):
                given = max(given, number + 1)
                levels = check_page(store, log, start, stop, matcher)
            yield start, stop, levels

    def _result(self, future: Future[tuple[bytes, ...] | None]) -> tuple[bytes, ...] | None:
        """A worker's page; None if the worker failed (the page is then audited record
        by record here, which meets the same fault, if any, and reports it)."""
        try:
            return future.result()
        except BrokenProcessPool:
            _log.warning("audit workers stopped; going on in this process", exc_info=True)
            self._broken = True
        except Exception:
            _log.warning("an audit worker failed", exc_info=True)
        return None

    def close(self) -> None:
        self._starter.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


# in the worker processes

_store: Store | None = None
_matcher = LeafMatcher()


def _open(opener: StoreOpener) -> None:
    global _store
    _store = opener()
    multiprocessing.util.Finalize(None, _store.close, exitpriority=10)


def _started() -> bool:
    return _store is not None


def _check(log: str, start: int, stop: int) -> tuple[bytes, ...] | None:
    assert _store is not None, "the worker's store is opened by its initializer"
    return check_page(_store, log, start, stop, _matcher)
