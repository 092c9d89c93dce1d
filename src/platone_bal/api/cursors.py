"""Opaque keyset cursors: clients pass back what they got; the server decodes the last id."""

from __future__ import annotations

import base64

from fastapi import HTTPException


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int:
    """The id after which the next page starts; 400 for a cursor that is not ours."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == kind and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise HTTPException(400, "the cursor is not valid for this listing")
