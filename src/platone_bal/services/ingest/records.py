"""What becomes of one delivery: its readings, each with its certified leaf, or its
rejection with the reasons. The checks that need no decoding come first (size, topic,
sender, producer); then the codec, then each reading's own checks.

Anything that goes wrong while the record is built (a codec or leaf bug) is that
payload's rejection, never the pipeline's stop; only the store's own failure
(`StoreUnavailable`) is raised, so that the batch is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import overload

from platone_bal import metrics
from platone_bal.codecs import DecodeError, decode, decode_envelope
from platone_bal.codecs.envelope import FORMAT as SIGNED_ENVELOPE
from platone_bal.codecs.envelope import Envelope
from platone_bal.domain.devices import device_publish_refusal, parse_device_login
from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.light_nodes import BadSignature, recover_signer, signer_refusal
from platone_bal.domain.messages import (
    MessageRecord,
    ReadingRecord,
    capped_reasons,
    clipped_reason,
)
from platone_bal.domain.readings import implausible_time, oversized_field, shown
from platone_bal.domain.users import Role, User, topic_producer
from platone_bal.ports import Store, StoreUnavailable
from platone_bal.services.device_keys import DeviceKeys
from platone_bal.services.ingest.answers import AnswerRefused, ack_device, answer_record
from platone_bal.services.ingest.delivery import Delivery

log = logging.getLogger(__name__)


@dataclass
class Lookups:
    """Store look-ups shared by the deliveries of one batch."""

    producers: dict[str, User | None] = field(default_factory=dict)
    device_logins: dict[tuple[str, str], bool] = field(default_factory=dict)
    """(producer, device) -> whether that device has a login of its own."""
    answered: set[int] = field(default_factory=set)
    """Set points answered in this batch (each takes one answer)."""


class EnvelopeRefused(Exception):
    """A signed envelope whose signer may not speak for its device; the message says why."""


class RecordBuilder:
    """Decides each delivery into the record the writer stores for it."""

    def __init__(
        self,
        store: Store,
        *,
        log_id: str,
        max_payload_bytes: int,
        keys: DeviceKeys | None = None,
    ) -> None:
        self.store = store
        self.log_id = log_id
        self.max_payload_bytes = max_payload_bytes
        self.keys = keys
        """DeviceRegistry's keys; None (no chain): signed envelopes cannot be checked and
        are refused, and no device is known to have to sign."""

    def build(self, delivery: Delivery, lookups: Lookups | None = None) -> MessageRecord:
        """Everything decided about one delivery: its readings or its rejection reasons
        (at most `MAX_REASONS` of them, and a count of the rest)."""
        lookups = Lookups() if lookups is None else lookups
        producer_name = topic_producer(delivery.topic)
        record = self.bare(delivery, producer_name)
        try:
            self._decide(delivery, record, producer_name, lookups)
        except StoreUnavailable:
            raise  # the store's fault, not the payload's: the batch is retried
        except Exception as error:  # a codec or leaf bug must not stop the pipeline
            log.exception("building the leaves of a %d-byte payload failed", record.size)
            metrics.POISON.inc()
            record.readings.clear()
            record.rejections.append(f"internal error while decoding ({describe(error)})")
        record.rejections = capped_reasons(record.rejections)
        return record

    def bare(self, delivery: Delivery, producer_name: str | None) -> MessageRecord:
        """The delivery's record before anything is decided: no readings, no reasons."""
        payload = delivery.payload
        return MessageRecord(
            channel=delivery.channel,
            topic=delivery.topic,
            # A refused payload belongs to whoever sent it (a device: to its producer),
            # not to the topic it aimed at.
            producer=_owner_of(delivery.sender) or producer_name,
            sender=delivery.sender,
            digest=message_digest(payload),
            size=len(payload),
            payload=payload[: self.max_payload_bytes],
            received=delivery.received,
        )

    def _decide(
        self,
        delivery: Delivery,
        record: MessageRecord,
        producer_name: str | None,
        lookups: Lookups,
    ) -> None:
        refusal = delivery.refusal or self._refusal(delivery, producer_name, lookups.producers)
        if refusal is not None:
            record.rejections.append(refusal)
            return
        producer = lookups.producers[producer_name or ""]
        assert producer is not None  # _refusal let it through, so it exists
        device = ack_device(delivery.topic)
        if device is not None:
            self._answer(delivery, record, producer, device, lookups.answered)
            return
        self._certify(delivery, record, producer, self._topic_device(delivery, lookups))

    def _topic_device(self, delivery: Delivery, lookups: Lookups) -> str | None:
        """The device whose own readings alone the delivery may carry: the sender's, if
        a device login sent it; else, when the broker does not say who published, the
        device of the topic `platone/NAME/DEVICE/...` if that device has a login of its
        own (its topic is its own, whoever publishes there)."""
        device = parse_device_login(delivery.sender)
        if device is not None:
            return device[1]
        levels = delivery.topic.split("/")
        if delivery.sender is not None or len(levels) < 3 or not levels[2]:
            return None
        key = (levels[1], levels[2])
        if key not in lookups.device_logins:
            stored = self.store.get_device(*key)
            lookups.device_logins[key] = stored is not None and stored.login is not None
        return levels[2] if lookups.device_logins[key] else None

    def _certify(
        self, delivery: Delivery, record: MessageRecord, producer: User, own_device: str | None
    ) -> None:
        """Decode the payload into `record`: its readings with their leaves, or reasons.
        With `own_device`, readings of other devices are refused."""
        try:
            decoded = decode(delivery.payload)
        except DecodeError as error:
            record.rejections.append(str(error))
            return
        record.format = decoded.format
        signer: str | None = None
        if decoded.envelope is not None:
            try:
                signer = self._signer(decoded.envelope, producer)
            except EnvelopeRefused as refused:
                record.rejections.append(str(refused))
                return
        record.rejections.extend(decoded.problems)
        source = Source(decoded.format, record.digest, delivery.received)
        for reading in decoded.readings:
            too_long = oversized_field(reading)
            if too_long is not None:
                record.rejections.append(f"{shown(reading.device)}: {too_long}")
                continue
            if own_device is not None and reading.device != own_device:
                record.rejections.append(
                    f"{reading.device} {reading.measurand}: device {own_device!r} "
                    "may send only its own readings"
                )
                continue
            why = implausible_time(reading.time, delivery.received)
            if why is not None:
                record.rejections.append(f"{reading.device} {reading.measurand}: {why}")
                continue
            if signer is not None:
                assert decoded.envelope is not None
                if reading.device != decoded.envelope.device:
                    record.rejections.append(
                        f"{shown(reading.device)} {reading.measurand}: device mismatch, "
                        f"the envelope is signed for device {decoded.envelope.device!r}"
                    )
                    continue
                reading = replace(reading, attrs={**reading.attrs, "signer": signer})
            elif self.keys is not None and self.keys.must_sign(producer.username, reading.device):
                record.rejections.append(
                    f"{reading.device} {reading.measurand}: device {reading.device!r} has a "
                    "key in DeviceRegistry and must send signed envelopes"
                )
                continue
            leaf = leaf_object(
                reading,
                log=self.log_id,
                producer=producer.username,
                owner=producer.wallet,
                source=source,
                salt=new_salt(),
            )
            record.readings.append(ReadingRecord(reading, leaf, leaf_bytes(leaf)))

    def _answer(
        self,
        delivery: Delivery,
        record: MessageRecord,
        producer: User,
        device: str,
        answered: set[int],
    ) -> None:
        """A set point answer on platone/NAME/DEVICE/ack: a signed envelope whose payload
        is §8's answer; logged in bal-setpoints, or refused with the reason."""
        try:
            envelope = decode_envelope(delivery.payload)
            record.format = SIGNED_ENVELOPE
            signer = self._signer(envelope, producer)
            source = Source(SIGNED_ENVELOPE, record.digest, delivery.received)
            record.answers.append(
                answer_record(self.store, envelope, signer, producer, device, source, answered)
            )
        except (DecodeError, EnvelopeRefused, AnswerRefused) as error:
            record.rejections.append(str(error))

    def _signer(self, envelope: Envelope, producer: User) -> str:
        """The envelope's signer, if the registry lets that key speak for its device;
        else EnvelopeRefused says why."""
        if self.keys is None:
            raise EnvelopeRefused("signed envelopes cannot be checked: no DeviceRegistry here")
        try:
            signer = recover_signer(envelope.payload, envelope.signature)
        except BadSignature as error:
            raise EnvelopeRefused(f"bad signature: {error}") from None
        refusal = signer_refusal(
            envelope.device, self.keys.state(producer.username, envelope.device), signer
        )
        if refusal is not None:
            raise EnvelopeRefused(refusal)
        return signer

    def _refusal(
        self,
        delivery: Delivery,
        producer_name: str | None,
        producers: dict[str, User | None],
    ) -> str | None:
        """Why a delivery cannot be accepted before decoding, or None."""
        size = len(delivery.payload)
        if size > self.max_payload_bytes:
            return f"payload of {size} bytes exceeds the limit of {self.max_payload_bytes}"
        if producer_name is None:
            return f"topic {delivery.topic!r} is not under platone/<producer>"
        device = parse_device_login(delivery.sender)
        if device is not None:
            refusal = device_publish_refusal(*device, delivery.topic)
            if refusal is not None:
                return refusal
            stored = self.store.get_device(*device)
            if stored is None or stored.disabled:
                return f"device {delivery.sender!r} is unknown or disabled"
        elif delivery.sender is not None and delivery.sender != producer_name:
            return f"{delivery.sender!r} may not publish on {delivery.topic!r}"
        if producer_name not in producers:
            producers[producer_name] = self.store.get_user(producer_name)
        producer = producers[producer_name]
        if producer is None:
            return f"unknown producer {producer_name!r}"
        if producer.role is not Role.PRODUCER:
            return f"{producer_name!r} is not a producer"
        if producer.disabled:
            return f"producer {producer_name!r} is disabled"
        return None


def describe(error: Exception) -> str:
    """An exception as a rejection reason: its type and message, clipped, storable."""
    return clipped_reason(printable(f"{type(error).__name__}: {error}"))


@overload
def printable(text: str) -> str: ...
@overload
def printable(text: None) -> None: ...
def printable(text: str | None) -> str | None:
    """Text that any store can hold: lone surrogates and the like escaped."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _owner_of(sender: str | None) -> str | None:
    device = parse_device_login(sender)
    return device[0] if device is not None else sender
