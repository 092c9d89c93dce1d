"""A simulated fleet: smart meters sending CIM 61968-9 XML and PMUs sending JSON.

Payloads look like the field trials' (see shared/samples), with standard 18-field
ReadingType codes so their units decode, and values that move like a feeder does.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from platone_bal.domain.users import producer_topic

ACTIVE_ENERGY = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.224.3.72.0"  # 15-min delta kWh, forward, ABC
REACTIVE_ENERGY = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.224.3.73.0"  # 15-min delta kVArh
PMU_MEASURANDS = ("voltmagnitude", "voltangle", "currmagnitude", "currangle")
PHASES = ("A", "B", "C")


def cim_payload(
    meter: str, usage_point: str, moment: datetime, energy: float, reactive: float
) -> bytes:
    """One MeterReading of a meter in a 61968-100 message envelope, as a DSO server sends it."""
    stamp = moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<msg:EventMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message">
  <msg:Header><msg:Verb>created</msg:Verb><msg:Noun>MeterReadings</msg:Noun>
    <msg:Timestamp>{stamp}</msg:Timestamp><msg:Source>bal-simulate</msg:Source></msg:Header>
  <msg:Payload>
    <mr:MeterReadings xmlns:mr="http://iec.ch/TC57/2011/MeterReadings#">
      <mr:MeterReading>
        <mr:Meter><mr:Names><mr:name>{meter}</mr:name></mr:Names></mr:Meter>
        <mr:Readings><mr:timeStamp>{stamp}</mr:timeStamp><mr:value>{energy:.3f}</mr:value>
          <mr:ReadingType ref="{ACTIVE_ENERGY}"/></mr:Readings>
        <mr:Readings><mr:timeStamp>{stamp}</mr:timeStamp><mr:value>{reactive:.3f}</mr:value>
          <mr:ReadingType ref="{REACTIVE_ENERGY}"/></mr:Readings>
        <mr:UsagePoint><mr:mRID>{usage_point}</mr:mRID></mr:UsagePoint>
      </mr:MeterReading>
    </mr:MeterReadings>
  </msg:Payload>
</msg:EventMessage>
""".encode()


def pmu_payload(device: str, moment: datetime, phase_shift: float) -> bytes:
    """One PMU frame: voltage and current phasors of three phases on one bus."""
    readings = []
    for number, phase in enumerate(PHASES):
        angle = (phase_shift - 120.0 * number + 180.0) % 360.0 - 180.0
        values = {
            "voltmagnitude": 11.0 + random.uniform(-0.15, 0.15),
            "voltangle": angle,
            "currmagnitude": 120.0 + random.uniform(-8, 8),
            "currangle": angle - 25.0,
        }
        readings += [
            {"component": "BUS1", "measurand": name, "phase": phase, "data": round(value, 4)}
            for name, value in values.items()
        ]
    readings.append(
        {
            "component": "BUS1",
            "measurand": "frequency",
            "data": round(50 + random.uniform(-0.02, 0.02), 4),
        }
    )
    document = {
        "device": device,
        "timestamp": moment.astimezone(UTC).isoformat(),
        "readings": readings,
    }
    return json.dumps(document).encode()


def one_reading_payload(device: str) -> bytes:
    """The smallest PMU payload: one reading, unique by its device id (fault tests and
    the hammer count what is stored by device)."""
    document = {
        "device": device,
        "timestamp": datetime.now(UTC).isoformat(),
        "readings": [{"measurand": "frequency", "data": 50}],
    }
    return json.dumps(document).encode()


def signed_envelope(payload: bytes, device: str, account: LocalAccount) -> bytes:
    """A Light Node's signed envelope (ARCHITECTURE §8) of `payload`, by `account`."""
    signature = account.sign_message(encode_defunct(primitive=payload)).signature
    envelope = {
        "v": 1,
        "device": device,
        "payload": payload.decode(),
        "signature": signature.to_0x_hex(),
    }
    return json.dumps(envelope).encode()


@dataclass(frozen=True)
class Fleet:
    username: str
    meters: int
    pmus: int

    def devices(self) -> list[str]:
        return [f"meter{n:04d}" for n in range(1, self.meters + 1)] + [
            f"pmu{n:03d}" for n in range(1, self.pmus + 1)
        ]

    def round(self, moment: datetime) -> Iterator[tuple[str, bytes]]:
        """(topic, payload) of every device for one round at `moment`."""
        base = producer_topic(self.username)
        hour = moment.hour + moment.minute / 60
        load = 0.6 + 0.4 * math.sin((hour - 6) / 24 * 2 * math.pi)
        for device in self.devices():
            if device.startswith("meter"):
                energy = max(0.0, load * random.uniform(0.5, 1.5))
                payload = cim_payload(device, f"UP-{device[5:]}", moment, energy, energy * 0.3)
            else:
                payload = pmu_payload(device, moment, (moment.timestamp() * 3.0) % 360)
            yield f"{base}/{device}", payload


def connect(
    url: str,
    username: str,
    password: str,
    client_id: str = "",
    inflight: int = 20,
    ca_file: Path | None = None,
    clean_session: bool = True,
) -> mqtt.Client:
    """A connected paho client with its network loop running; raises on refusal.

    `mqtts://` URLs verify the broker against `ca_file`, else the system's CAs.
    """
    parts = urlsplit(url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    client.username_pw_set(username, password)
    client.max_inflight_messages_set(inflight)
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    connected = threading.Event()
    refusal: list[str] = []

    def on_connect(
        _: mqtt.Client, __: object, ___: object, reason: ReasonCode, ____: object
    ) -> None:
        if reason.is_failure:
            refusal.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    if not connected.wait(10) or refusal:
        client.loop_stop()
        raise ConnectionError(f"broker refused {username!r}: {refusal or 'timeout'}")
    return client


def run_fleet(
    fleet: Fleet,
    *,
    url: str,
    password: str,
    interval: float,
    rounds: int,
    qos: int,
    ca_file: Path | None = None,
    start: datetime | None = None,
    step: float = 60.0,
) -> int:
    """Publish rounds until `rounds` are sent (0: until Ctrl-C); returns the payloads
    the broker acknowledged (QoS 1) or that were written to the socket (QoS 0).

    Measurements are timed now, or with `start` from then on, `step` seconds apart per
    round (a past month sent in minutes: days for the hot window to archive)."""
    client = connect(url, fleet.username, password, ca_file=ca_file)
    sent = 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} payloads"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns) as progress:
            task = progress.add_task(
                f"{len(fleet.devices())} devices -> {url}",
                total=rounds * len(fleet.devices()) or None,
            )
            done = 0
            while rounds == 0 or done < rounds:
                started = time.monotonic()
                infos = [
                    client.publish(topic, payload, qos=qos)
                    for topic, payload in fleet.round(
                        datetime.now(UTC)
                        if start is None
                        else start + timedelta(seconds=step * done)
                    )
                ]
                for info in infos:
                    with contextlib.suppress(RuntimeError, ValueError):  # connection lost
                        info.wait_for_publish(timeout=30)
                sent += sum(info.is_published() for info in infos)
                done += 1
                progress.update(task, completed=sent)
                if rounds == 0 or done < rounds:
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return sent
