"""Opaque keyset cursors: clients pass back what they got; the server decodes the last id."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Protocol

from fastapi import HTTPException

from platone_bal.ports import MAX_ROW_ID


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


class _Row(Protocol):
    @property
    def id(self) -> int: ...


def next_cursor(kind: str, rows: Sequence[_Row], limit: int) -> str | None:
    """The cursor of the page after `rows`, or None when this page is the last."""
    return encode_cursor(kind, rows[-1].id) if len(rows) == limit else None


def decode_cursor(kind: str, cursor: str | None) -> int:
    """The id after which the next page starts; 400 for a cursor that is not ours."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == kind and number.isdigit() and int(number) <= MAX_ROW_ID:
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise HTTPException(400, "the cursor is not valid for this listing")
