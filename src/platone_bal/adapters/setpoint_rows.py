"""Rows of set points (bal-setpoints) <-> values, shared by both stores."""

from __future__ import annotations

from typing import Any

from platone_bal.ports import StoredSetPoint

Row = tuple[Any, ...]


SETPOINT_COLUMNS = (
    "id, idx, producer, device, measurand, value, unit, start, end_at, issuer, issued, status,"
    " delivered, answer_idx, answer_status, answer_time, answer_signer"
)
"""What `setpoint_from_row` reads, in its order."""
NEW_SETPOINT_COLUMNS = (
    "idx, producer, device, measurand, value, unit, start, end_at, issuer, issued, status"
)


def new_setpoint_values(index: int, leaf: dict[str, Any]) -> Row:
    """A just-issued set point's row (NEW_SETPOINT_COLUMNS) from its leaf."""
    return (
        index, leaf["producer"], leaf["device"], leaf["measurand"], leaf["value"], leaf["unit"],
        leaf["start"], leaf["end"], leaf["issuer"], leaf["time"], "issued",
    )  # fmt: skip


def answer_values(index: int, leaf: dict[str, Any]) -> Row:
    """(status, answer_idx, answer_status, answer_time, answer_signer) of an answer leaf."""
    return (leaf["status"], index, leaf["status"], leaf["time"], leaf["signer"])


def setpoint_from_row(row: Row) -> StoredSetPoint:
    return StoredSetPoint(*row)
