"""Every codec path, with the field-trial samples and the variants seen in the field."""

from __future__ import annotations

import pytest

from platone_bal.codecs import DecodeError, decode
from platone_bal.codecs.reading_type import decode_reading_type
from platone_bal.domain.readings import format_time
from tests.conftest import SAMPLE_PMU, SAMPLE_XML

NS = 'xmlns="http://iec.ch/TC57/2011/MeterReadings#"'
KWH = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.224.3.72.0"


def cim(body: str, root: str = f"<MeterReadings {NS}>{{}}</MeterReadings>") -> bytes:
    return root.replace("{}", body).encode()


def meter_reading(name: str = "M1", readings: str = "", extra: str = "") -> str:
    return (
        f"<MeterReading><Meter><Names><name>{name}</name></Names></Meter>{readings}{extra}"
        "</MeterReading>"
    )


def reading(value: str = "1.5", stamp: str = "2024-01-01T00:15:00Z", code: str = KWH) -> str:
    return (
        f"<Readings><timeStamp>{stamp}</timeStamp><value>{value}</value>"
        f'<ReadingType ref="{code}"/></Readings>'
    )


# CIM 61968-9


def test_field_trial_sample_keeps_19_field_codes_as_undecodable() -> None:
    decoded = decode(SAMPLE_XML)
    assert decoded.format == "cim-61968-9"
    assert decoded.problems == []
    assert [(r.device, r.value, r.unit) for r in decoded.readings] == [
        ("11111111", "11.04", None),
        ("11111111", "3.45", None),
    ]
    first = decoded.readings[0]
    assert first.measurand == "0.26.0.0.1.1.12.0.0.0.0.0.0.0.0.224.3.72.0"
    assert format_time(first.time) == "2019-09-13T12:30:00.000000Z"
    assert first.attrs == {"usagePoint": "111111", "readingType": "undecodable"}


def test_well_formed_codes_decode_unit_kind_and_phase() -> None:
    decoded = decode(cim(meter_reading(readings=reading())))
    (only,) = decoded.readings
    assert (only.unit, only.attrs["kind"], only.attrs["phase"]) == ("kWh", "energy", "ABC")
    assert decode_reading_type("0.0.0.0.0.1.54.0.0.0.0.0.0.0.128.0.29.0").unit == "V"  # type: ignore[union-attr]
    assert decode_reading_type("0.0.0.0.0.1.37.0.0.0.0.0.0.0.224.6.38.0").unit == "MW"  # type: ignore[union-attr]
    assert decode_reading_type("0.0.0.0.0.1.37.0.0.0.0.0.0.0.224.3.999.0").unit is None  # type: ignore[union-attr]
    assert decode_reading_type("a.b.c") is None


def test_message_envelope_with_header_and_payload() -> None:
    envelope = (
        '<msg:RequestMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message">'
        "<msg:Header><msg:Verb>create</msg:Verb><msg:Noun>MeterReadings</msg:Noun></msg:Header>"
        f"<msg:Payload><MeterReadings {NS}>{{}}</MeterReadings></msg:Payload></msg:RequestMessage>"
    )
    decoded = decode(cim(meter_reading(readings=reading("42")), root=envelope))
    assert [r.value for r in decoded.readings] == ["42"]


def test_envelope_without_meter_readings_is_refused() -> None:
    with pytest.raises(DecodeError, match="no MeterReadings"):
        decode(b"<EventMessage><Header/><Payload><EndDeviceEvents/></Payload></EventMessage>")


def test_interval_blocks_share_their_reading_type_and_keep_qualities() -> None:
    block = (
        f'<IntervalBlocks><ReadingType ref="{KWH}"/>'
        "<IntervalReadings><timeStamp>2024-01-01T00:15:00Z</timeStamp><value>1.0</value>"
        '<ReadingQualities><ReadingQualityType ref="1.0.0"/></ReadingQualities></IntervalReadings>'
        "<IntervalReadings><timeStamp>2024-01-01T00:30:00Z</timeStamp><value>2.0</value>"
        "</IntervalReadings></IntervalBlocks>"
    )
    decoded = decode(cim(meter_reading(extra=block)))
    assert [(format_time(r.time), r.value, r.unit) for r in decoded.readings] == [
        ("2024-01-01T00:15:00.000000Z", "1.0", "kWh"),
        ("2024-01-01T00:30:00.000000Z", "2.0", "kWh"),
    ]
    assert decoded.readings[0].attrs["quality"] == ["1.0.0"]
    assert "quality" not in decoded.readings[1].attrs


def test_several_meters_and_mrid_fallback() -> None:
    by_mrid = "<MeterReading><Meter><mRID>MRID-7</mRID></Meter>" + reading("7") + "</MeterReading>"
    decoded = decode(
        cim(meter_reading("A", reading("1")) + meter_reading("B", reading("2")) + by_mrid)
    )
    assert [(r.device, r.value) for r in decoded.readings] == [
        ("A", "1"),
        ("B", "2"),
        ("MRID-7", "7"),
    ]


def test_missing_fields_reject_only_that_reading() -> None:
    body = (
        meter_reading(
            readings=reading("1")
            + "<Readings><value>2</value></Readings>"
            + reading("three")
            + reading("4", stamp="2024-01-01T00:15:00")
            + "<Readings><timeStamp>2024-01-01T00:15:00Z</timeStamp>"
            + f"<ReadingType ref='{KWH}'/></Readings>"
        )
        + "<MeterReading><Meter/>"
        + reading()
        + "</MeterReading>"
    )
    decoded = decode(cim(body))
    assert [r.value for r in decoded.readings] == ["1"]
    assert len(decoded.problems) == 5
    reasons = " | ".join(decoded.problems)
    for expected in ("no ReadingType", "not a decimal", "no UTC offset", "no value", "no Meter"):
        assert expected in reasons


def test_document_without_readings_is_refused() -> None:
    with pytest.raises(DecodeError, match="no readings"):
        decode(cim(""))


def test_xxe_is_refused() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><MeterReadings>&x;</MeterReadings>'
    with pytest.raises(DecodeError, match="DTD"):
        decode(xxe)


def test_billion_laughs_is_refused_without_expanding() -> None:
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE lolz [{lol}]><MeterReadings>&lol9;</MeterReadings>'
    with pytest.raises(DecodeError, match="DTD"):
        decode(bomb.encode())


@pytest.mark.parametrize(
    "payload",
    [
        b"<MeterReadings><MeterReading>",  # truncated
        '<?xml version="1.0" encoding="UTF-8"?><MeterReadings>\xe9</MeterReadings>'.encode(
            "latin-1"
        ),
        b'<?xml version="1.0" encoding="UTF-16"?><MeterReadings/>',
        b'<?xml version="1.0" encoding="x-no-such"?><MeterReadings/>',
    ],
)
def test_malformed_xml_and_wrong_encodings_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(payload)


def test_declared_latin1_is_read_as_declared() -> None:
    body = meter_reading(name="Zähler", readings=reading("5"))
    payload = f'<?xml version="1.0" encoding="ISO-8859-1"?><MeterReadings>{body}</MeterReadings>'
    assert decode(payload.encode("latin-1")).readings[0].device == "Zähler"


# PMU JSON


def test_pmu_sample_keeps_integers_as_sent() -> None:
    decoded = decode(SAMPLE_PMU)
    assert decoded.format == "pmu-json"
    assert [(r.device, r.measurand, r.value, dict(r.attrs)) for r in decoded.readings] == [
        ("pmu1", "voltmagnitude", "11", {"component": "BUS1", "phase": "A"}),
        ("pmu1", "voltmagnitude", "22", {"component": "BUS2", "phase": "A"}),
    ]
    assert format_time(decoded.readings[0].time) == "2020-05-20T10:27:57.980802Z"


def pmu(readings: str, device: str = '"pmu1"', stamp: str = '"2024-01-01T00:00:00Z"') -> bytes:
    return f'{{"device": {device}, "timestamp": {stamp}, "readings": [{readings}]}}'.encode()


def test_pmu_number_text_is_exact() -> None:
    decoded = decode(
        pmu('{"measurand": "frequency", "data": 50.000}, {"measurand": "f", "data": "1e-3"}')
    )
    assert [r.value for r in decoded.readings] == ["50.000", "1e-3"]


def test_pmu_bad_items_are_problems_and_the_rest_stays() -> None:
    decoded = decode(
        pmu(
            '{"measurand": "a", "data": 1}, {"measurand": "b", "data": true}, {"measurand": "c"},'
            ' {"data": 3}, 7, {"measurand": "d", "data": 1, "phase": 3}'
        )
    )
    assert [r.measurand for r in decoded.readings] == ["a"]
    assert len(decoded.problems) == 5


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (pmu('{"measurand": "a", "data": NaN}'), "NaN"),
        (pmu('{"measurand": "a", "data": 1}', device="null"), "device"),
        (pmu('{"measurand": "a", "data": 1}', stamp='"2024-01-01 00:00"'), "UTC offset"),
        (pmu('{"measurand": "a", "data": 1}', stamp="12"), "timestamp"),
        (b'{"device": "p", "timestamp": "2024-01-01T00:00:00Z", "readings": []}', "readings"),
        (b'{"device": "p", "device": "q", "readings": []}', "repeats"),
        (b'{"device": "p", "readings": [', "malformed JSON"),
        ('{"device": "pm\u00fc", "readings": []}'.encode("latin-1"), "UTF-8"),
        ('{"readings": []}'.encode("utf-16"), "neither"),
        (b"[1, 2]", "neither"),
        (b'{"hello": "world"}', "neither PMU"),
        (b"   ", "empty"),
    ],
)
def test_pmu_and_detection_refusals_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(payload)


def test_signed_envelopes_are_detected_and_a_malformed_one_refused_with_a_reason() -> None:
    with pytest.raises(DecodeError, match="signed envelope version must be the number 1"):
        decode(b'{"payload": "e30=", "signature": "0x00"}')


def test_utf8_bom_is_accepted() -> None:
    assert decode(b"\xef\xbb\xbf" + SAMPLE_PMU).format == "pmu-json"
    assert decode(b"\xef\xbb\xbf" + SAMPLE_XML).format == "cim-61968-9"
