import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from platone_bal.domain.leaf import Source, leaf_bytes, leaf_object, message_digest, new_salt
from platone_bal.domain.readings import Reading
from platone_bal.domain.users import (
    Role,
    publish_refusal,
    subscription_refusal,
    topic_producer,
    valid_username,
)

WHEN = datetime(2019, 9, 13, 12, 30, tzinfo=UTC)
SOURCE = Source("pmu-json", message_digest(b"raw"), datetime(2026, 1, 1, 0, 0, 1, 5, tzinfo=UTC))


def leaf(reading: Reading, salt: str = "0" * 32) -> dict[str, object]:
    return leaf_object(
        reading, log="bal-main", producer="producer1", owner="0xAb", source=SOURCE, salt=salt
    )


def test_leaf_has_exactly_the_contract_fields_in_canonical_order() -> None:
    reading = Reading(
        "pmu1", WHEN, "voltmagnitude", "11", None, {"phase": "A", "component": "BUS1"}
    )
    raw = leaf_bytes(leaf(reading))
    assert raw == (
        b'{"attrs":{"component":"BUS1","phase":"A"},"device":"pmu1","log":"bal-main",'
        b'"measurand":"voltmagnitude","owner":"0xAb","producer":"producer1","salt":"'
        + b"0" * 32
        + b'","source":{"format":"pmu-json","message":"'
        + message_digest(b"raw").encode()
        + b'","received":"2026-01-01T00:00:01.000005Z"},"time":"2019-09-13T12:30:00.000000Z",'
        b'"unit":null,"v":1,"value":"11"}'
    )


def test_empty_attrs_are_left_out_not_null() -> None:
    reading = Reading("m", WHEN, "x", "1", "kWh", {"phase": None, "quality": [], "usagePoint": "7"})
    assert leaf(reading)["attrs"] == {"usagePoint": "7"}


def test_digest_is_sha3_256_and_salt_is_32_hex() -> None:
    assert message_digest(b"") == "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
    salt = new_salt()
    assert len(salt) == 32 and int(salt, 16) >= 0 and salt == salt.lower()
    assert new_salt() != salt


@given(st.text(min_size=1), st.decimals(allow_nan=False, allow_infinity=False).map(str))
def test_leaf_bytes_round_trip_as_json(device: str, value: str) -> None:
    obj = leaf(Reading(device, WHEN, "m", value))
    assert json.loads(leaf_bytes(obj)) == obj


def test_topic_rules() -> None:
    assert topic_producer("platone/producer1") == "producer1"
    assert topic_producer("platone/producer1/meter7/x") == "producer1"
    assert topic_producer("platone") is None
    assert topic_producer("platone//x") is None
    assert topic_producer("certified/producer1") is None
    assert publish_refusal("producer1", Role.PRODUCER, "platone/producer1/m1") is None
    assert publish_refusal("producer1", Role.PRODUCER, "platone/producer10") is not None
    assert publish_refusal("producer1", Role.PRODUCER, "platone/producer2") is not None
    assert publish_refusal("consumer1", Role.CONSUMER, "platone/consumer1") is not None
    assert publish_refusal(None, None, "platone/x") is not None


def test_subscription_rules_fail_closed() -> None:
    assert subscription_refusal("admin", Role.ADMIN, "#") is None
    assert subscription_refusal("p", Role.PRODUCER, "platone/p/#") is None
    assert subscription_refusal("p", Role.PRODUCER, "platone/+/x") is not None
    assert subscription_refusal("p", Role.PRODUCER, "platone/#") is not None
    assert subscription_refusal("c", Role.CONSUMER, "platone/p/#") is not None
    assert subscription_refusal(None, None, "#") is not None


def test_usernames_are_single_topic_levels() -> None:
    assert valid_username("producer1") and valid_username("dso.server-2")
    for bad in ("", "a/b", "a+b", "a#", "Upper", "-x", "x" * 65):
        assert not valid_username(bad)


leaf_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
attr_values = st.one_of(leaf_text, st.lists(leaf_text, max_size=3))


@given(
    device=leaf_text,
    measurand=leaf_text,
    unit=st.one_of(st.none(), leaf_text),
    attrs=st.dictionaries(
        st.one_of(st.text(alphabet=st.characters(max_codepoint=127), min_size=1), leaf_text),
        attr_values,
        max_size=4,
    ),
)
def test_leaf_bytes_equal_the_general_rfc8785_encoder(
    device: str, measurand: str, unit: str | None, attrs: dict[str, object]
) -> None:
    import rfc8785

    obj = leaf(Reading(device, WHEN, measurand, "1.5", unit, attrs))
    obj["attrs"] = attrs  # unfiltered, including empty values and non-ASCII keys
    assert leaf_bytes(obj) == rfc8785.dumps(obj)


def test_leaf_bytes_escape_every_character_as_rfc8785_does() -> None:
    """Each control character, quote, backslash, DEL, the JavaScript line separators, a
    BOM and characters outside the BMP, in values and in an attribute key: the fast
    encoder's escapes must be RFC 8785's exactly (a difference would change leaf hashes
    that other verifiers recompute)."""
    import rfc8785

    specials = [chr(c) for c in range(0x21)] + ['"', "\\", "/", "\x7f", "\u2028", "\u2029"]
    specials += ["\ufeff", "\U0001f600", "é", "\u00a0"]
    for char in specials:
        obj = leaf(Reading(f"d{char}", WHEN, char, f"1{char}", char, {f"k{char}": char}))
        assert leaf_bytes(obj) == rfc8785.dumps(obj), repr(char)
