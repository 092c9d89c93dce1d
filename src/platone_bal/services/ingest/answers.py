"""A Light Node's signed answer to a set point (ARCHITECTURE §8), arriving on
`platone/NAME/DEVICE/ack`: checked against the set point it names and made the leaf of
bal-setpoints the writer appends after the batch's readings.

The answer must be signed by the device's current key (checked like any envelope, by
the caller), be for a set point of that same device that is still open (issued or
delivered), and name that set point's leaf by its Merkle leaf hash: the device answers
exactly the leaf it was sent, so the two proofs tie the answer to what was asked.
"""

from __future__ import annotations

from platone_bal.codecs.envelope import FORMAT as SIGNED_ENVELOPE
from platone_bal.codecs.envelope import Envelope
from platone_bal.domain.leaf import Source, leaf_bytes, new_salt
from platone_bal.domain.merkle import SHA3_256
from platone_bal.domain.messages import AnswerRecord
from platone_bal.domain.setpoints import (
    SETPOINT_LOG,
    Answer,
    InvalidSetPoint,
    SetPointStatus,
)
from platone_bal.domain.users import User
from platone_bal.ports import Store

ACK_LEVEL = "ack"
OPEN = (SetPointStatus.ISSUED, SetPointStatus.DELIVERED)


class AnswerRefused(Exception):
    """The answer cannot be logged; the message says why."""


def ack_device(topic: str) -> str | None:
    """The device of an answer topic `platone/NAME/DEVICE/ack`, else None."""
    levels = topic.split("/")
    if len(levels) == 4 and levels[3] == ACK_LEVEL and levels[2]:
        return levels[2]
    return None


def answer_record(
    store: Store,
    envelope: Envelope,
    signer: str,
    producer: User,
    device: str,
    source: Source,
    answered: set[int],
) -> AnswerRecord:
    """The answer's leaf, once it may be logged; `answered` holds the set points this
    batch already answered (one answer each)."""
    if envelope.device != device:
        raise AnswerRefused(
            f"an answer on device {device!r}'s topic is signed for device {envelope.device!r}"
        )
    try:
        answer = Answer.of(envelope.payload)
    except InvalidSetPoint as error:
        raise AnswerRefused(f"set point answer: {error}") from None
    setpoint = store.setpoint_at(answer.setpoint)
    if setpoint is None or (setpoint.producer, setpoint.device) != (producer.username, device):
        raise AnswerRefused(f"no set point at index {answer.setpoint} for device {device!r}")
    if setpoint.id in answered:
        raise AnswerRefused(f"set point {setpoint.id} was already answered")
    if setpoint.status not in OPEN:
        raise AnswerRefused(f"set point {setpoint.id} is {setpoint.status}: it takes no answer")
    stored = store.leaf_bytes(SETPOINT_LOG, setpoint.index)
    if stored is None or SHA3_256.hash_leaf(stored) != answer.leaf_hash:
        raise AnswerRefused(f"leaf_hash is not the leaf of set point {setpoint.id}")
    leaf = answer.leaf(
        producer=producer.username,
        owner=producer.wallet,
        device=device,
        signer=signer,
        source=Source(SIGNED_ENVELOPE, source.message, source.received),
        salt=new_salt(),
    )
    answered.add(setpoint.id)
    return AnswerRecord(setpoint.id, leaf, leaf_bytes(leaf))
