"""The hammer: a random mix of traffic on a real `bal up`, its promises checked throughout
(see `benchmarks.hammering.cli` for what it does and how to run it).

Modules, by job:

- `ledger`:   what was sent and PUBACKed, counters and failures, the final comparison;
- `node`:     the node's own `bal up`, its metrics and its store;
- `api`:      tokens, GETs, the stored readings of the hammer's producers;
- `checks`:   proofs, signed checkpoints and consistency proofs, verified offline;
- `sessions`: the hammer's producer logins and persistent MQTT sessions;
- `workers`:  the actions, the worker threads, the final drain;
- `cli`:      the run, its report and the command line.
"""

from __future__ import annotations

from benchmarks.hammering.api import Api, Apis, Reading, Readings, Tokens
from benchmarks.hammering.checks import CheckpointBook, Checks
from benchmarks.hammering.cli import main, parse_args, run, summary
from benchmarks.hammering.ledger import FAILURES, PROBE_PREFIX, Ledger, Sent, Tally, compare
from benchmarks.hammering.sessions import Account, OneAtATime, PersistentSession
from benchmarks.hammering.workers import ACTIONS, DEFAULT_WEIGHTS, Hammer, Options

__all__ = [
    "ACTIONS",
    "DEFAULT_WEIGHTS",
    "FAILURES",
    "PROBE_PREFIX",
    "Account",
    "Api",
    "Apis",
    "CheckpointBook",
    "Checks",
    "Hammer",
    "Ledger",
    "OneAtATime",
    "Options",
    "PersistentSession",
    "Reading",
    "Readings",
    "Sent",
    "Tally",
    "Tokens",
    "compare",
    "main",
    "parse_args",
    "run",
    "summary",
]
