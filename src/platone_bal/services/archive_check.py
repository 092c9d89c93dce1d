"""`bal verify-archive`: an archive checked with nothing but its two files (and, for the
anchor, any Ethereum JSON-RPC endpoint), as a proof bundle is.

1. file: the data file hashes (SHA3-256) to what its manifest says;
2. records: every reading's leaf is a canonical leaf of the manifest's log, measured on
   its day, and the columns stored beside it are what the leaf says; every message's
   payload hashes to its digest, the digest the leaves name;
3. tree: the leaves and the manifest's cover rebuild the checkpoint's root;
4. signature: the checkpoint is signed by its stated signer;
5. anchor: the registry on chain holds that root for that size (with an endpoint).
Each check reports its own verdict; the first that fails stops the ones after it.
"""

from __future__ import annotations

from platone_bal.domain.archive import ArchivedMessage, ArchivedReading, Manifest, rebuild_root
from platone_bal.domain.checkpoint import CheckpointError, verify_signature
from platone_bal.domain.leaf import message_digest
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.proof import AnchorLookup, Check
from platone_bal.services.audit.records import check_reading
from platone_bal.services.audit.report import BadRow


def verify_archive(
    manifest: Manifest,
    actual_sha3: bytes | None,
    readings: list[ArchivedReading] | None,
    messages: list[ArchivedMessage] | None,
    anchor_lookup: AnchorLookup | None = None,
) -> list[Check]:
    """The checks above in order; `actual_sha3` None: the data file is missing;
    `readings`/`messages` None: it could not be read."""
    if actual_sha3 != manifest.file_sha3:
        found = "missing" if actual_sha3 is None else f"0x{actual_sha3.hex()}"
        return [
            Check(
                "file",
                False,
                f"{manifest.file} hashes to {found}, the manifest says "
                f"0x{manifest.file_sha3.hex()}",
            )
        ]
    checks = [Check("file", True, f"{manifest.file}: SHA3-256 0x{manifest.file_sha3.hex()}")]
    if readings is None or messages is None:
        return [*checks, Check("records", False, f"{manifest.file} cannot be read")]
    problem = _records_problem(manifest, readings, messages)
    if problem is not None:
        return [*checks, Check("records", False, problem)]
    summary = f"{len(readings)} readings of {manifest.day}, {len(messages)} messages"
    checks.append(Check("records", True, summary))
    signed = manifest.checkpoint
    size, root = signed.checkpoint.size, signed.checkpoint.root
    try:
        leaves = {reading.index: SHA3_256.hash_leaf(reading.leaf) for reading in readings}
        rebuilt = rebuild_root(size, leaves, manifest.cover)
    except ValueError as error:
        return [*checks, Check("tree", False, str(error))]
    if rebuilt != root:
        return [
            *checks,
            Check(
                "tree",
                False,
                f"the leaves and cover give 0x{rebuilt.hex()}, the checkpoint 0x{root.hex()}",
            ),
        ]
    checks.append(
        Check(
            "tree",
            True,
            f"indices {manifest.first_index}-{manifest.last_index} are in the tree of size {size}",
        )
    )
    try:
        verify_signature(signed)
    except CheckpointError as error:
        return [*checks, Check("signature", False, str(error))]
    checks.append(Check("signature", True, f"checkpoint signed by {signed.signer}"))
    anchor = manifest.anchor
    if anchor_lookup is None:
        checks.append(Check("anchor", None, "no RPC endpoint given; anchor not checked"))
        return checks
    problem = anchor_lookup(anchor.bundle_json(), signed)
    if problem is None:
        checks.append(
            Check(
                "anchor",
                True,
                f"contract {anchor.contract} holds the root for {size} (block {anchor.block})",
            )
        )
    else:
        checks.append(Check("anchor", False, problem))
    return checks


def _records_problem(
    manifest: Manifest, readings: list[ArchivedReading], messages: list[ArchivedMessage]
) -> str | None:
    if (len(readings), len(messages)) != (manifest.readings, manifest.messages):
        return (
            f"the file holds {len(readings)} readings and {len(messages)} messages, the "
            f"manifest says {manifest.readings} and {manifest.messages}"
        )
    indices = [reading.index for reading in readings]
    if indices != sorted(set(indices)) or (
        indices and (indices[0], indices[-1]) != (manifest.first_index, manifest.last_index)
    ):
        return "the readings' indices are not the manifest's range, each once, in order"
    by_id = {message.id: message for message in messages}
    for message in messages:
        if message_digest(message.payload) != message.digest:
            return f"message {message.id}: its payload does not hash to its digest"
    day = manifest.day.isoformat()
    for reading in readings:
        where = f"index {reading.index}"
        try:
            check_reading(reading.leaf, reading.raw_values(by_id.get(reading.message_id)))
        except BadRow as bad:
            return f"{where}: {bad}"
        if reading.log != manifest.log or reading.day != day:
            return f"{where}: a reading of {reading.log} on {reading.day}, not {day}"
    return None
