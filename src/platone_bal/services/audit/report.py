"""What an audit found, and how a check reports it: the first problem ends the audit
(what follows rests on data known to be bad), so a check raises it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AuditReport:
    log: str
    size: int
    readings: int = 0
    checkpoints: int = 0
    anchors: int = 0
    messages: int = 0
    """Message payloads rechecked against their digests."""
    problem: str | None = None
    bad_index: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


class Finding(Exception):
    """The first problem found: the audit stops (what follows rests on data known bad)."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.index = index


class BadRow(Exception):
    """What is wrong with one row; the caller names the row."""
