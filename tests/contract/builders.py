"""What the contract tests store: users, clients, devices, grants, decisions, messages
with real readings and leaves, access entries, checkpoints and anchors.

Messages are built the way ingest builds them: the payload is real PMU JSON or CIM XML,
decoded by the codecs, and every reading's leaf is the domain's leaf object and its
canonical bytes. Nothing here knows a backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from platone_bal.codecs import decode
from platone_bal.domain.audit import AuditEntry
from platone_bal.domain.checkpoint import Anchor, Checkpoint, SignedCheckpoint, sign_checkpoint
from platone_bal.domain.decisions import Decision, grant_topic
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.grants import Grant, GrantStatus, Slice
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.merkle import (
    SHA3_256,
    BatchNodeReader,
    Frontier,
    MemoryNodes,
    tree_root,
    with_nodes,
)
from platone_bal.domain.messages import Channel, MessageRecord, ReadingRecord, SaveResult
from platone_bal.domain.readings import format_time
from platone_bal.domain.users import Client, Role, Scope, User, producer_topic
from platone_bal.ports import Store
from platone_bal.services.recorder import Recorder

LOG = "bal-main"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
"""Measurement times start here."""
RECEIVED = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
"""When messages arrive, unless a test says otherwise."""
SIGNER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
CHAIN_ID = 1337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# people, platforms, devices


def wallet_of(name: str) -> str:
    """A distinct EIP-55 address per name."""
    return str(to_checksum_address(keccak(text=name)[-20:]))


def make_user(name: str, role: Role = Role.PRODUCER, *, disabled: bool = False) -> User:
    return User(name, role, f"$argon2id$v=19$hash-of-{name}", wallet_of(name), disabled)


def keystore_of(name: str) -> str:
    return json.dumps({"address": wallet_of(name)[2:].lower(), "crypto": {"of": name}})


def add_user(store: Store, name: str, role: Role = Role.PRODUCER) -> User:
    user = make_user(name, role)
    store.add_user(user, keystore_of(name))
    return user


def make_client(client_id: str, username: str, *scopes: Scope) -> Client:
    return Client(
        client_id,
        f"platform {client_id}",
        username,
        frozenset(scopes or (Scope.READ,)),
        f"$argon2id$v=19$secret-of-{client_id}",
    )


def make_device(
    producer: str,
    device_id: str,
    kind: DeviceKind = DeviceKind.METER,
    *,
    public_key: str | None = None,
    secret_hash: str | None = None,
    created: datetime = RECEIVED,
) -> Device:
    return Device(producer, device_id, kind, created, public_key, secret_hash)


# grants and their decisions


def make_grant(
    producer: str,
    consumer: str,
    *,
    devices: frozenset[str] | None = None,
    measurands: frozenset[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    expires: datetime | None = None,
    created: datetime = RECEIVED,
    reason: str | None = None,
) -> Grant:
    """A requested grant, id 0 until the store gives it one."""
    return Grant(
        id=0,
        consumer=consumer,
        scope=Slice(producer, devices, measurands, since, until),
        status=GrantStatus.REQUESTED,
        created=created,
        modified=created,
        expires=expires,
        reason=reason,
        decided_by=consumer,
    )


def decision_of(grant: Grant, status: GrantStatus | None = None, by: str | None = None) -> Decision:
    """The decision that brought `grant` to `status` (default: its own), as the grant
    service records it."""
    return Decision(
        grant.id,
        status or grant.status,
        by or grant.decided_by or grant.consumer,
        wallet_of(grant.producer),
        wallet_of(grant.consumer),
        grant_topic(grant),
        int(grant.modified.timestamp()),
    )


def accepted(grant: Grant, at: datetime | None = None, expires: datetime | None = None) -> Grant:
    """The producer's acceptance of a stored grant."""
    return grant.accept(grant.producer, at or grant.created + minutes(1), expires=expires)


# payloads, messages and their readings


def pmu_payload(
    device: str, time: datetime, values: Sequence[tuple[str, str]], unit: str = "V"
) -> bytes:
    """PMU JSON of one device at one time; each value is (measurand, JSON number text)."""
    readings = ", ".join(
        f'{{"component": "BUS{n}", "measurand": {json.dumps(measurand)}, "phase": "A",'
        f' "data": {value}, "unit": {json.dumps(unit)}}}'
        for n, (measurand, value) in enumerate(values, start=1)
    )
    return (
        f'{{"device": {json.dumps(device)}, "timestamp": "{format_time(time)}",'
        f' "readings": [{readings}]}}'
    ).encode()


def cim_payload(device: str, readings: Sequence[tuple[datetime, str, str]]) -> bytes:
    """CIM MeterReadings XML of one meter; each reading is (time, value text, ReadingType)."""
    items = "".join(
        "<mr:Readings>"
        f"<mr:timeStamp>{format_time(time)}</mr:timeStamp>"
        f"<mr:value>{value}</mr:value>"
        f'<mr:ReadingType ref="{code}"/>'
        "</mr:Readings>"
        for time, value, code in readings
    )
    return (
        '<mr:MeterReadings xmlns:mr="http://iec.ch/TC57/2011/MeterReadings#">'
        "<mr:MeterReading>"
        f"<mr:Meter><mr:Names><mr:name>{device}</mr:name></mr:Names></mr:Meter>"
        f"{items}"
        "<mr:UsagePoint><mr:mRID>111111</mr:mRID></mr:UsagePoint>"
        "</mr:MeterReading>"
        "</mr:MeterReadings>"
    ).encode()


def message(
    producer: User,
    payload: bytes,
    *,
    received: datetime = RECEIVED,
    log: str = LOG,
    channel: Channel = Channel.MQTT,
    topic: str | None = None,
    sender: str | None = None,
) -> MessageRecord:
    """What ingest decides about a payload its producer sent: the codec's readings, each
    with its leaf and canonical leaf bytes, and the codec's problems as rejections."""
    decoded = decode(payload)
    digest = message_digest(payload)
    source = Source(decoded.format, digest, received)
    readings = []
    for reading in decoded.readings:
        leaf = leaf_object(
            reading,
            log=log,
            producer=producer.username,
            owner=producer.wallet,
            source=source,
            salt=new_salt(),
        )
        readings.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))
    return MessageRecord(
        channel=channel,
        topic=topic or f"{producer_topic(producer.username)}/{decoded.readings[0].device}",
        producer=producer.username,
        sender=sender,
        digest=digest,
        size=len(payload),
        payload=payload,
        received=received,
        format=decoded.format,
        readings=readings,
        rejections=list(decoded.problems),
    )


def pmu_message(
    producer: User,
    device: str,
    time: datetime,
    values: Sequence[tuple[str, str]],
    **options: object,
) -> MessageRecord:
    """A PMU payload of `producer`'s `device` at `time`, as ingest records it."""
    return message(producer, pmu_payload(device, time, values), **options)  # type: ignore[arg-type]


def rejected_message(
    producer: str | None,
    payload: bytes,
    reasons: Sequence[str],
    *,
    received: datetime = RECEIVED,
    channel: Channel = Channel.MQTT,
    topic: str | None = None,
    sender: str | None = None,
    cut_to: int | None = None,
) -> MessageRecord:
    """A payload refused whole (no readings); with `cut_to`, stored cut to that many
    bytes as an oversized payload is."""
    return MessageRecord(
        channel=channel,
        topic=topic or (producer_topic(producer) if producer else "elsewhere/x"),
        producer=producer,
        sender=sender,
        digest=message_digest(payload),
        size=len(payload),
        payload=payload if cut_to is None else payload[:cut_to],
        received=received,
        rejections=list(reasons),
    )


def with_received(record: MessageRecord, received: datetime) -> MessageRecord:
    return replace(record, received=received)


def save(store: Store, records: Sequence[MessageRecord], log: str = LOG) -> SaveResult:
    """One batch through the shared write path."""
    return Recorder(store).save(records, log)


def leaves_of(records: Sequence[MessageRecord]) -> list[bytes]:
    """The leaf bytes of the records' readings, in the order the log takes them."""
    return [item.leaf_bytes for record in records for item in record.readings]


def batch_reader(store: Store, log: str) -> BatchNodeReader:
    """The log's stored nodes as the port gives them: a reader that also reads many
    nodes in one round trip (`nodes_at`)."""
    reader = store.nodes(log)
    assert callable(getattr(reader, "nodes_at", None)), "store.nodes(log) has no nodes_at"
    return cast(BatchNodeReader, reader)


def memory_tree(leaves: Sequence[bytes]) -> MemoryNodes:
    """The perfect subtrees of an in-memory tree of these leaf bytes."""
    nodes = MemoryNodes()
    nodes.add(Frontier(SHA3_256).extend(SHA3_256.hash_leaf(leaf) for leaf in leaves))
    return nodes


# the access log


def entry(
    who: str,
    *producers: str,
    action: str = "readings.read",
    at: datetime = RECEIVED,
    count: int = 1,
) -> AuditEntry:
    return AuditEntry(
        time=at,
        who=who,
        channel="http",
        action=action,
        producers=tuple(sorted(set(producers))),
        query=f"/v1/readings?producer={','.join(producers)}",
        count=count,
    )


# checkpoints and anchors


def signed(
    log: str, size: int, root: bytes | None = None, at: datetime = RECEIVED
) -> SignedCheckpoint:
    """A checkpoint really signed (a fake root unless given)."""
    body = Checkpoint(log, size, root or keccak(text=f"{log}/{size}"), format_time(at))
    return sign_checkpoint(body, SIGNER_KEY)


def tx_of(log: str, size: int, chain_id: int = CHAIN_ID) -> str:
    """A transaction hash as web3 gives it: 0x and 64 lowercase hex digits."""
    return "0x" + keccak(text=f"tx {log} {size} {chain_id}").hex()


def make_anchor(
    log: str,
    size: int,
    root: bytes | None = None,
    *,
    chain_id: int = CHAIN_ID,
    contract: str = CONTRACT,
    block: int | None = None,
) -> Anchor:
    return Anchor(
        log,
        size,
        root or keccak(text=f"{log}/{size}"),
        chain_id,
        contract,
        tx_of(log, size, chain_id),
        block if block is not None else 100 + size,
        format_time(RECEIVED + timedelta(seconds=size % 86_400)),
    )


# days of readings for the hot window

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)
"""The first of `fill_days`'s three days of readings."""


def anchor_all(store: Store) -> int:
    """Sign and anchor the log as it is (as the checkpointer and anchorer would)."""
    size = store.log_size(LOG)
    root = with_nodes(store.nodes(LOG), lambda nodes: tree_root(SHA3_256, nodes, size), LOG)
    store.add_checkpoint(signed(LOG, size, root))
    store.add_anchor(make_anchor(LOG, size, root))
    return size


def fill_days(store: Store) -> None:
    """Days 1-3 of readings (PMU, two measurands each), a CIM message across midnight
    of days 2-3, received days later, then anchored."""
    alice = add_user(store, "alice")
    records = []
    for day in range(3):
        for minute in range(0, 60, 10):
            at = DAY1 + timedelta(days=day, hours=10, minutes=minute)
            values = [("voltage", f"{230 + minute / 10}"), ("frequency", "50.01")]
            records.append(pmu_message(alice, "pmu-1", at, values, received=at))
    midnight = DAY1 + timedelta(days=2)
    payload = cim_payload(
        "meter-9",
        [
            (midnight - timedelta(minutes=1), "10.5", "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),
            (midnight + timedelta(minutes=1), "10.6", "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"),
        ],
    )
    records.append(message(alice, payload, received=midnight + timedelta(minutes=2)))
    result = save(store, records)
    assert not result.duplicates
    anchor_all(store)
