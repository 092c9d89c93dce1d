"""Every stored message's payload against its digest, the digest the leaves name: a
payload changed in the database shows here. A payload refused as too large is stored
cut to the limit and cannot be rechecked; a message that gave readings is never cut."""

from __future__ import annotations

from platone_bal.domain.leaf import message_digest
from platone_bal.ports import Store
from platone_bal.services.audit.report import AuditReport, BadRow, Finding
from platone_bal.services.audit.rows import PAGE, as_int, sql_type


def check_messages(store: Store, log: str, report: AuditReport) -> None:
    """Every stored message's payload against its digest, in any outcome (a refused
    payload is evidence too). The table is shared by the readings' logs; a finding
    names the first reading of `log` from that message, if any."""
    cut = 0
    after = 0
    while page := store.raw_messages(after, PAGE):
        for message_id, digest, size, payload in page:
            try:
                whole = payload_checked(digest, size, payload)
            except BadRow as bad:
                index = store.message_reading_index(log, message_id)
                raise Finding(f"message {message_id}: {bad}", index) from None
            report.messages += whole
            cut += not whole
        after = page[-1][0]
    if cut:
        report.notes.append(
            f"{cut} message(s) refused as too large are stored cut to the size limit: "
            "their payloads cannot be rechecked against their digests"
        )


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
