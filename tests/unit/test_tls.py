"""The self-signed certificate of `bal up --tls` and the TLS settings."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from platone_bal.adapters.dynsec import DynsecControl
from platone_bal.adapters.mqtt_publisher import MqttPublisher
from platone_bal.adapters.tls import ensure_self_signed, fingerprint
from platone_bal.cli import print_plain
from platone_bal.config import Settings


def test_self_signed_certificate_is_made_once_for_local_names(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls", ["10.0.0.7", "bal.example"])
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "bal.example" in names.get_values_for_type(x509.DNSName)
    addresses = names.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert ipaddress.ip_address("10.0.0.7") in addresses
    printed = fingerprint(cert)
    assert len(printed.split(":")) == 32 and printed == printed.upper()
    again = ensure_self_signed(tmp_path / "tls", [])
    assert again == (cert, key) and fingerprint(cert) == printed  # reused, not remade


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="go together"):
        Settings(data_dir=tmp_path, tls_cert=tmp_path / "cert.pem")
    assert Settings(data_dir=tmp_path).tls is None
    both = Settings(data_dir=tmp_path, tls_cert=tmp_path / "c", tls_key=tmp_path / "k")
    assert both.tls == (tmp_path / "c", tmp_path / "k")


def test_fingerprints_are_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    # rich would turn ":CD:" and ":AB:" into emoji and wrap long lines
    text = "SHA-256 fingerprint " + ":".join(["6E", "CD", "AB", "22"] * 8)
    print_plain(text)
    assert capsys.readouterr().out == text + "\n"


def test_every_mqtt_connection_to_an_external_broker_trusts_the_given_ca(
    tmp_path: Path,
) -> None:
    """The egress publisher, like the ingest subscriber and the dynsec control, verifies
    an mqtts:// broker against BAL_MQTT_CA_FILE (it ignored it before)."""
    cert, _ = ensure_self_signed(tmp_path, ["localhost"])
    url = "mqtts://localhost:8883"
    publisher = MqttPublisher(url, "bal-service", "pw", client_id="egress", ca_file=cert)
    control = DynsecControl(url, "bal-service", "pw", ca_file=cert)
    for client in (publisher._client, control._client):
        context = client._ssl_context
        assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
        subjects = [dict(item[0] for item in c["subject"]) for c in context.get_ca_certs()]
        assert subjects and subjects[0]["commonName"] == "Platone BAL (self-signed)"
