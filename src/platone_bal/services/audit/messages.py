"""Every stored message's payload against its digest, the digest the leaves name: a
payload changed in the database shows here. A payload refused as too large is stored
cut to the limit and cannot be rechecked; a message that gave readings is never cut.

Payloads are hashed a page at a time, in id order; a page can be checked apart
(`message_page`, in a worker: most of the audit's hashing after the leaves'), and a
page that is not clean is checked here message by message, to name the first bad one.
"""

from __future__ import annotations

from collections.abc import Iterable

from platone_bal.domain.leaf import message_digest
from platone_bal.ports import Store
from platone_bal.services.audit.report import AuditReport, BadRow, Finding
from platone_bal.services.audit.rows import PAGE, as_int, sql_type

MessageCounts = tuple[int, int, int]
"""(payloads rechecked, payloads stored cut, the page's last message id)."""
MessagePage = tuple[int, int, MessageCounts | None]
"""(after, limit, and for a clean page its counts, else None): `message_page`."""


def check_messages(
    store: Store, log: str, report: AuditReport, pages: Iterable[MessagePage] = ()
) -> None:
    """Every stored message's payload against its digest, in any outcome (a refused
    payload is evidence too), in id order: the given pages, then any message after
    them (all of them, without pages). The table is shared by the readings' logs; a
    finding names the first reading of `log` from that message, if any."""
    cut = 0
    after = 0
    for page_after, limit, counts in pages:
        counts = counts or checked_messages(store, log, page_after, limit)
        if counts is None:
            break  # the page is gone since it was listed: go on from the last one
        report.messages += counts[0]
        cut, after = cut + counts[1], counts[2]
    while counts := checked_messages(store, log, after, PAGE):
        report.messages += counts[0]
        cut, after = cut + counts[1], counts[2]
    if cut:
        report.notes.append(
            f"{cut} message(s) refused as too large are stored cut to the size limit: "
            "their payloads cannot be rechecked against their digests"
        )


def message_page(store: Store, after: int, limit: int) -> MessageCounts | None:
    """The counts of a page of messages (id above `after`, at most `limit`) when every
    payload is whole and hashes to its digest, or is stored cut; else None."""
    rows = store.raw_messages(after, limit)
    if not rows:
        return None
    whole = 0
    for _, digest, size, payload in rows:
        try:
            whole += payload_checked(digest, size, payload)
        except BadRow:
            return None
    return whole, len(rows) - whole, rows[-1][0]


def checked_messages(store: Store, log: str, after: int, limit: int) -> MessageCounts | None:
    """The counts of a page of messages, each checked here: the first bad one is the
    finding. None when there are no messages above `after`."""
    rows = store.raw_messages(after, limit)
    if not rows:
        return None
    whole = 0
    for message_id, digest, size, payload in rows:
        try:
            whole += payload_checked(digest, size, payload)
        except BadRow as bad:
            index = store.message_reading_index(log, message_id)
            raise Finding(f"message {message_id}: {bad}", index) from None
    return whole, len(rows) - whole, rows[-1][0]


def payload_checked(digest: object, size: object, payload: object) -> bool:
    """True when the payload was rechecked, False when it is stored cut (cannot be)."""
    if not isinstance(payload, bytes):
        raise BadRow(f"payload is stored as {sql_type(payload)}, not as the bytes received")
    whole = as_int(size, "size")
    if len(payload) > whole:
        raise BadRow(f"payload of {len(payload)} bytes is longer than its recorded size {whole}")
    if len(payload) < whole:
        return False
    actual = message_digest(payload)
    if actual != digest:
        raise BadRow(f"payload does not hash to its digest {digest!r} (SHA3-256 gives {actual})")
    return True
