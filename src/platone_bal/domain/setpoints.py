"""Set points (ARCHITECTURE §8; FR-BAP-NC-01..03, D3.2): what the DSO asks a Light Node
to do, and the Light Node's signed answer, both leaves of the log `bal-setpoints`.

A set point's leaf is certified like a reading's (checkpoint, anchor, proof), and so is
the answer: whoever holds both proofs can show, without the BAL, that the DSO asked for
this value in this window and the device said it applied (or refused) exactly that
leaf. The leaves (RFC 8785 bytes, like §4's):

- set point: `{"v": 1, "log": "bal-setpoints", "kind": "setpoint", "producer", "owner",
  "device", "measurand", "value", "unit", "start", "end", "issuer", "time", "salt"}`;
- answer: `{"v": 1, "log": "bal-setpoints", "kind": "answer", "producer", "owner",
  "device", "setpoint": index, "leaf_hash": "0x..", "status", "time", "signer",
  "source": {"format", "message", "received"}, "salt"}`.

This module only shapes and checks them; services store, deliver and answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from platone_bal.domain.devices import valid_device_id
from platone_bal.domain.leaf import Source
from platone_bal.domain.readings import (
    FIELD_LIMITS,
    InvalidReading,
    decimal_text,
    format_time,
    parse_time,
)

SETPOINT_LOG = "bal-setpoints"
ANSWER_STATUSES = ("applied", "refused")
LEAF_KEYS = {
    "setpoint": frozenset(
        {"v", "log", "kind", "producer", "owner", "device", "measurand", "value", "unit",
         "start", "end", "issuer", "time", "salt"}
    ),
    "answer": frozenset(
        {"v", "log", "kind", "producer", "owner", "device", "setpoint", "leaf_hash", "status",
         "time", "signer", "source", "salt"}
    ),
}  # fmt: skip
"""The keys of each kind of leaf of bal-setpoints, exactly."""


class SetPointStatus(StrEnum):
    ISSUED = "issued"
    """Logged; waiting for a signed checkpoint before it goes out."""
    DELIVERED = "delivered"
    """Published at QoS 1 on setpoints/NAME/DEVICE and acknowledged by the broker."""
    APPLIED = "applied"
    REFUSED = "refused"
    EXPIRED = "expired"
    """Past its `end` without an answer."""


class InvalidSetPoint(ValueError):
    """A set point or an answer breaks a rule; the message says which."""


@dataclass(frozen=True, slots=True)
class SetPointRequest:
    """What the DSO asks: a value for one measurand of one device, in a time window."""

    producer: str
    device: str
    measurand: str
    value: str
    unit: str | None
    start: datetime
    end: datetime

    @classmethod
    def of(cls, body: dict[str, Any]) -> SetPointRequest:
        """From §8's JSON body (`value` a decimal string, times RFC 3339 with a zone)."""
        try:
            producer, device, measurand = body["producer"], body["device"], body["measurand"]
            value, unit = decimal_text(str(body["value"])), body.get("unit")
            start, end = parse_time(str(body["start"])), parse_time(str(body["end"]))
        except KeyError as missing:
            raise InvalidSetPoint(f"{missing.args[0]} is required") from None
        except InvalidReading as error:
            raise InvalidSetPoint(str(error)) from None
        if not isinstance(device, str) or not valid_device_id(device):
            raise InvalidSetPoint("device must be a device id")
        if not isinstance(producer, str) or not producer:
            raise InvalidSetPoint("producer must be a username")
        limit = FIELD_LIMITS["measurand"]
        if not isinstance(measurand, str) or not 0 < len(measurand) <= limit:
            raise InvalidSetPoint(f"measurand must be text of 1 to {limit} characters")
        limit = FIELD_LIMITS["unit"]
        if unit is not None and (not isinstance(unit, str) or len(unit) > limit):
            raise InvalidSetPoint(f"unit must be text of at most {limit} characters")
        if end <= start:
            raise InvalidSetPoint("end must be after start")
        return cls(producer, device, measurand, value, unit, start, end)

    def leaf(self, *, owner: str, issuer: str, time: datetime, salt: str) -> dict[str, Any]:
        return {
            "v": 1,
            "log": SETPOINT_LOG,
            "kind": "setpoint",
            "producer": self.producer,
            "owner": owner,
            "device": self.device,
            "measurand": self.measurand,
            "value": self.value,
            "unit": self.unit,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "issuer": issuer,
            "time": format_time(time),
            "salt": salt,
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """A Light Node's answer to set point `setpoint` (its index in bal-setpoints)."""

    setpoint: int
    leaf_hash: bytes
    """The Merkle leaf hash of the set point's leaf: the device answers that exact leaf."""
    status: str
    time: datetime

    @classmethod
    def of(cls, payload: bytes) -> Answer:
        """From the signed envelope's payload, §8's JSON answer."""
        try:
            document = json.loads(payload)
        except ValueError:
            raise InvalidSetPoint("the answer is not JSON") from None
        if not isinstance(document, dict):
            raise InvalidSetPoint("the answer is not a JSON object")
        index, leaf_hash = document.get("setpoint"), document.get("leaf_hash")
        status, time = document.get("status"), document.get("time")
        if type(index) is not int or index < 0:
            raise InvalidSetPoint("setpoint must be the set point's index")
        if not isinstance(leaf_hash, str) or len(leaf_hash) != 66 or leaf_hash[:2] != "0x":
            raise InvalidSetPoint("leaf_hash must be 0x and 32 bytes in hex")
        try:
            digest = bytes.fromhex(leaf_hash[2:])
        except ValueError:
            raise InvalidSetPoint("leaf_hash must be 0x and 32 bytes in hex") from None
        if status not in ANSWER_STATUSES:
            raise InvalidSetPoint(f"status must be one of {', '.join(ANSWER_STATUSES)}")
        try:
            moment = parse_time(str(time))
        except InvalidReading as error:
            raise InvalidSetPoint(f"time: {error}") from None
        return cls(index, digest, str(status), moment)

    def leaf(
        self, *, producer: str, owner: str, device: str, signer: str, source: Source, salt: str
    ) -> dict[str, Any]:
        return {
            "v": 1,
            "log": SETPOINT_LOG,
            "kind": "answer",
            "producer": producer,
            "owner": owner,
            "device": device,
            "setpoint": self.setpoint,
            "leaf_hash": "0x" + self.leaf_hash.hex(),
            "status": self.status,
            "time": format_time(self.time),
            "signer": signer,
            "source": {
                "format": source.format,
                "message": source.message,
                "received": format_time(source.received),
            },
            "salt": salt,
        }


def delivery_message(index: int, leaf: dict[str, Any]) -> bytes:
    """What goes out on setpoints/NAME/DEVICE (§8)."""
    return json.dumps({"log": SETPOINT_LOG, "index": index, "leaf": leaf}).encode()


SETPOINT_ROOT = "setpoints"


def setpoint_topic(producer: str, device: str) -> str:
    return f"{SETPOINT_ROOT}/{producer}/{device}"
