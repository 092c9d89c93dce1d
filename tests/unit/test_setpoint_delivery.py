"""Set point delivery: only what a signed checkpoint covers goes out, once the broker took
it is it marked delivered, a broker that is down leaves it issued, and a set point past
its end without an answer expires."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from platone_bal.adapters.sqlite import SqliteStore
from platone_bal.domain.devices import Device, DeviceKind
from platone_bal.domain.setpoints import SETPOINT_LOG, SetPointRequest
from platone_bal.domain.users import User
from platone_bal.services.checkpointer import Checkpointer
from platone_bal.services.setpoint_delivery import SetPointDelivery
from platone_bal.services.setpoints import SetPointService

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Broker:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.down = False

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self.down:
            raise ConnectionError("the broker is down")
        self.messages.extend(messages)


def test_delivery_waits_for_a_checkpoint_and_for_the_broker(
    store: SqliteStore, producer: User
) -> None:
    store.add_device(Device("producer1", "ln1", DeviceKind.LIGHT_NODE, NOW))
    clock = [NOW]
    service = SetPointService(store, lambda: clock[0])
    broker = Broker()
    delivery = SetPointDelivery(store, broker, clock=lambda: clock[0])
    checkpointer = Checkpointer(
        store, log_id=SETPOINT_LOG, private_key=b"\x07" * 32, clock=lambda: clock[0]
    )
    soon = service.issue(
        SetPointRequest("producer1", "ln1", "p", "1", None, NOW, NOW + timedelta(minutes=1)),
        "admin",
    )
    assert delivery.step() == 0 and broker.messages == []  # no checkpoint yet
    checkpointer.checkpoint_now()
    later = service.issue(
        SetPointRequest("producer1", "ln1", "q", "2", "kW", NOW, NOW + timedelta(hours=1)),
        "admin",
    )
    assert delivery.step() == 1  # the second is not covered yet
    topic, body = broker.messages[0]
    assert topic == "setpoints/producer1/ln1"
    sent = json.loads(body)
    assert (sent["log"], sent["index"], sent["leaf"]["measurand"]) == (SETPOINT_LOG, 0, "p")
    first = store.setpoint(soon.id)
    assert first is not None and first.status == "delivered"

    broker.down = True
    checkpointer.checkpoint_now()
    with pytest.raises(ConnectionError):
        delivery.step()
    second = store.setpoint(later.id)
    assert second is not None and second.status == "issued"  # not lost: tried again
    broker.down = False
    assert delivery.step() == 1 and len(broker.messages) == 2

    clock[0] = NOW + timedelta(minutes=5)  # past the first's end, not the second's
    delivery.step()
    assert [s.status for s in store.setpoints()] == ["expired", "delivered"]
