"""Pages of the audit's work (`schedule`) done in this process or in worker processes,
and handed back strictly in order.

Checking a page (reading it, matching each leaf, hashing the leaves and the nodes
inside the page, hashing payloads) is nearly all of the audit's work; finishing the
tree from the results costs a few percent of it. So workers take pages ahead, each
through a store of its own, while this process consumes their results in order: a
later page's finding is never reported before an earlier page's, and at most AHEAD
pages per worker are held, so the audit never holds a whole log. A page is independent
of the others: only its bounds go out, and a worker's answer is only ever "clean, and
here is what it gives" or None ("check it yourself"), so a worker can make the audit
faster, never change what it finds.

Workers are forked from a fork server (`forkserver`), never from this process: it may
hold threads (PostgreSQL's pool) that a fork would copy mid-lock. Starting them can
take a second or two (the fork server imports the code, once per process), so they
start in the background while this process does the first pages itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.util
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import spawn

from platone_bal.ports import Store
from platone_bal.services import forkserver_main
from platone_bal.services.audit.rows import PAGE

StoreOpener = Callable[[], Store]
"""Opens another store on the audited database, in a worker: it must pickle (a
`functools.partial` of the store class and its path or URL, say)."""
Task = tuple[Callable[..., object], tuple[object, ...]]
"""A page of work: a module-level function (it pickles) of a store and the page's
bounds, and those bounds."""
AHEAD = 2
"""Pages given to each worker beyond the one this process waits for."""

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


def in_process(store: Store, tasks: Iterator[Task]) -> Iterator[tuple[Task, object]]:
    """Each task done here, in order."""
    for task in tasks:
        yield task, done_here(store, task)


def done_here(store: Store, task: Task) -> object:
    """A task done in this process, with its store."""
    function, bounds = task
    return function(store, *bounds)


class WorkerPool:
    """Worker processes, each with its own store, started in the background, doing
    `tasks` ahead of the results this process takes (`results`), in order."""

    def __init__(
        self, opener: StoreOpener, workers: int, store: Store, tasks: Iterator[Task]
    ) -> None:
        self._workers = workers
        self._store = store
        self._tasks = tasks
        self._ahead: deque[tuple[Task, Future[object]]] = deque()
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        """Set once the workers are up: then they are given tasks."""
        self._processes: ProcessPoolExecutor | None = None
        """The executor as soon as it exists, to be shut down whatever happens."""
        self._broken = False
        self._starter = threading.Thread(
            target=self._start, args=(opener,), name="bal-audit-workers", daemon=True
        )
        self._starter.start()

    def _start(self, opener: StoreOpener) -> None:
        context = multiprocessing.get_context("forkserver")
        # what every worker imports, once in the fork server (if this starts it): the
        # parent's main script (see `forkserver_main`), this module and the store's
        script = spawn.get_preparation_data("audit").get("init_main_from_path")
        store_module = getattr(getattr(opener, "func", opener), "__module__", "")
        preload = [forkserver_main.__name__, __name__, store_module]
        context.set_forkserver_preload([name for name in preload if name])
        try:
            if script:
                os.environ[forkserver_main.MAIN] = f"{os.getpid()}:{script}"
            executor = self._processes = ProcessPoolExecutor(
                self._workers, mp_context=context, initializer=_open, initargs=(opener,)
            )
            started = [executor.submit(_started) for _ in range(self._workers)]
            wait(started)
            for future in started:
                future.result()
        except Exception:  # the audit goes on in this process
            _log.warning("audit workers could not start", exc_info=True)
            self._broken = True
            return
        finally:
            os.environ.pop(forkserver_main.MAIN, None)
        with self._lock:
            self._executor = executor
            self._give()

    def _give(self) -> None:
        """Hand the next tasks to the workers, up to AHEAD each (under the lock)."""
        if self._executor is None or self._broken:
            return
        while len(self._ahead) < AHEAD * self._workers:
            task = next(self._tasks, None)
            if task is None:
                return
            self._ahead.append((task, self._executor.submit(_run, *task)))

    def wait_started(self) -> None:
        self._starter.join()

    def results(self) -> Iterator[tuple[Task, object]]:
        """Each task with its result, in the order of the tasks."""
        while True:
            with self._lock:
                self._give()
                given = self._ahead.popleft() if self._ahead else None
                task = given[0] if given else next(self._tasks, None)  # not given: done here
            if task is None:
                return
            result = None if given is None else self._result(given[1])
            if given is None or (result is None and self._broken):
                result = done_here(self._store, task)
            yield task, result

    def _result(self, future: Future[object]) -> object:
        """A worker's result; None if the worker failed (the page is then checked here
        the sequential way, which meets the same fault, if any, and reports it)."""
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
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)


# in the worker processes

_store: Store | None = None


def _open(opener: StoreOpener) -> None:
    global _store
    _store = opener()
    multiprocessing.util.Finalize(None, _store.close, exitpriority=10)


def _started() -> bool:
    return _store is not None


def _run(function: Callable[..., object], bounds: tuple[object, ...]) -> object:
    assert _store is not None, "the worker's store is opened by its initializer"
    return function(_store, *bounds)
