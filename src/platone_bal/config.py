"""Settings of one BAL node.

Every setting has an embedded default so that `bal up` runs with no configuration at
all. Values come, strongest first, from: keyword arguments, environment variables with
the prefix ``BAL_``, a TOML file named by ``BAL_CONFIG_FILE``, and the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """What a BAL node needs to know; names match ARCHITECTURE §7 (`BAL_` + upper case)."""

    model_config = SettingsConfigDict(env_prefix="BAL_", extra="forbid")

    config_file: Path | None = Field(
        default=None, description="TOML file with any of these settings (lower-case keys)."
    )
    data_dir: Path = Field(default=Path("./bal-data"), description="Where all state lives.")
    bind: str = Field(
        default="127.0.0.1",
        description="Address the HTTP and MQTT listeners bind to; 0.0.0.0 exposes them.",
    )
    http_port: int = Field(default=8080, ge=0, le=65535)
    mqtt_port: int = Field(
        default=1883, ge=0, le=65535, description="The node's own Mosquitto: plain MQTT port."
    )
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain): HTTPS, MQTT over TLS and the chain RPC use it.",
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert.")
    mqtt_tls_port: int = Field(
        default=8883,
        ge=0,
        le=65535,
        description="The node's own Mosquitto: TLS port; with TLS configured the only one.",
    )
    mosquitto_binary: str | None = Field(
        default=None, description="Mosquitto executable for BAL_BROKER=embedded (else PATH)."
    )
    mosquitto_autosave: int = Field(
        default=1,
        gt=0,
        description="The node's own Mosquitto saves its state after this many changes. 1 "
        "(every change) loses least on a Mosquitto crash but rewrites its whole state each "
        "time, which slows ingest under a backlog; larger trades that window for speed.",
    )
    mosquitto_journal: bool = Field(
        default=True,
        description="The node's own Mosquitto writes each ingest publish to a journal before "
        "acknowledging it, and the node replays what a Mosquitto crash lost. Needs a C "
        "compiler and Mosquitto's headers to build the plugin (`make run` installs them).",
    )
    mosquitto_journal_fsync: bool = Field(
        default=False,
        description="Flush every journal record to disk before the PUBACK: also survives "
        "the machine losing power, at one disk flush per message.",
    )
    shutdown_grace: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a stop may take: stop taking work, write and acknowledge what "
        "was received, then exit (what is left unacknowledged is delivered again later).",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the first admin; generated and printed once if unset.",
    )
    store: Literal["sqlite", "postgres"] = Field(
        default="sqlite",
        description="sqlite: one file in the data directory; postgres: the PostgreSQL "
        "database at database_url (schema created and migrated at start).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="BAL_STORE=postgres: postgresql://USER:PASSWORD@HOST:PORT/DB (libpq "
        "URL; add ?sslmode=verify-full for TLS).",
    )
    database_pool: int = Field(
        default=8, gt=0, description="Largest number of PostgreSQL connections of one node."
    )
    broker: Literal["embedded", "mosquitto"] = Field(
        default="embedded",
        description="embedded: the node starts and supervises its own Mosquitto in the data "
        "dir; mosquitto: an outside Mosquitto at mqtt_url.",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="External broker (BAL_BROKER=mosquitto): mqtt://host:port or mqtts://.",
    )
    mqtt_username: str | None = Field(default=None, description="Service user on that broker.")
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = Field(
        default="bal-ingest",
        description="Persistent-session client id of the ingest subscriber.",
    )
    mqtt_shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Several nodes on one outside broker split the ingest through the MQTT 5 "
        "shared subscription $share/GROUP/platone/#; each node's session is then "
        "BAL_MQTT_CLIENT_ID-NODE_NAME.",
    )
    node_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="This node's name among the BAL's nodes (default: host name and an id kept "
        "in the data directory). Keep it stable across restarts (a StatefulSet's pod name): "
        "Mosquitto keeps a stopped node's share of messages in that node's session.",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://.")
    mqtt_dynsec: bool = Field(
        default=True,
        description="Keep the external broker's Dynamic Security plugin equal to the BAL's "
        "users, devices and grants; the service user must hold the plugin's admin role.",
    )
    broker_resync: float = Field(
        default=60.0, gt=0, description="Seconds between two full repairs of the broker's rules."
    )
    max_payload_bytes: int = Field(default=1024 * 1024, gt=0)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body the API and the chain RPC read (ingest payloads "
        "have max_payload_bytes); a larger one is refused with 413 before it is read.",
    )
    log_id: str = Field(default="bal-main", pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    token_ttl: int = Field(default=3600, gt=0, description="Bearer token lifetime, seconds.")
    ingest_batch: int = Field(default=2000, gt=0, description="Most messages per write.")
    key_passphrase: SecretStr | None = Field(
        default=None,
        description="Passphrase of the node's keystores; generated into secrets/ if unset.",
    )
    chain: Literal["embedded", "rpc"] = Field(
        default="embedded",
        description="embedded: py-evm chain in the data dir; rpc: any Ethereum node at chain_url.",
    )
    chain_url: str | None = Field(default=None, description="JSON-RPC URL when BAL_CHAIN=rpc.")
    chain_id: int = Field(default=1337, gt=0, description="Chain id of the embedded chain.")
    chain_rpc_port: int = Field(
        default=8545, ge=0, le=65535, description="Read-only JSON-RPC of the embedded chain."
    )
    anchor_interval: float = Field(
        default=10.0, gt=0, description="Least seconds between two anchor transactions."
    )
    rate_limit: float = Field(
        default=100.0, gt=0, description="HTTP requests per second each client may sustain."
    )
    rate_burst: int = Field(default=200, gt=0, description="HTTP requests a client may burst.")
    trusted_proxies: str = Field(
        default="",
        pattern=r"^[0-9A-Fa-f.:/, ]*$",
        description="Load balancers whose X-Forwarded-For names the caller (comma-separated "
        "addresses or networks, e.g. 10.0.0.0/8); behind one, per-address limits (sign-in "
        "throttling, anonymous rate limits) otherwise count every caller as the balancer.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (JSON list); none by default.",
    )
    checkpoint_interval: float = Field(
        default=0.2, gt=0, le=0.9, description="Least seconds between two signed checkpoints."
    )
    leader_lease: float = Field(
        default=5.0,
        ge=1.0,
        le=60.0,
        description="Seconds a node leads without renewing its lease (renewed every fifth):"
        " how long a dead leader's duties wait before another node takes them over.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka brokers (host:port,...): certified readings are also produced to "
        "bal.certified.NAME (key: device id), at least once. Unset: no Kafka.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How the node reaches Kafka (SSL: TLS)."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", description="With SASL_*: the mechanism."
    )
    kafka_username: str | None = Field(default=None, description="With SASL_*: the user.")
    kafka_password: SecretStr | None = Field(default=None, description="With SASL_*: its password.")
    kafka_delivery_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a page of records may take to be acknowledged before it is sent "
        "again (after an outage, the wait before the node tries anew).",
    )
    kafka_ca_file: Path | None = Field(
        default=None, description="With SSL or SASL_SSL: the CA bundle (else the system's)."
    )
    hot_days: int = Field(
        default=60,
        ge=1,
        description="Days of readings (by measurement day, UTC, today included) kept in the "
        "live store; older days move to archive files (daily, or `bal archive`).",
    )
    archive_dir: Path | None = Field(
        default=None,
        description="Where archive files are written (default: archives/ in the data dir). "
        "Every node and `bal audit` must see the same directory.",
    )
    restore_keep_days: int = Field(
        default=7,
        ge=0,
        description="Days a restored archive stays live before it is archived again.",
    )
    archive_interval: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between two looks of the leader for days that left the hot window.",
    )
    key_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=4.0,
        description="Seconds between two reads of DeviceRegistry's events: a key registered "
        "or revoked on chain counts within this (and at most 5 s, ARCHITECTURE §8).",
    )

    @model_validator(mode="after")
    def _external_broker_needs_credentials(self) -> Settings:
        if self.broker == "mosquitto" and not (self.mqtt_username and self.mqtt_password):
            raise ValueError("BAL_BROKER=mosquitto needs BAL_MQTT_USERNAME and BAL_MQTT_PASSWORD")
        if self.mqtt_shared_group and self.broker != "mosquitto":
            raise ValueError("BAL_MQTT_SHARED_GROUP needs an outside broker (BAL_BROKER=mosquitto)")
        if self.store == "postgres" and not self.database_url:
            raise ValueError("BAL_STORE=postgres needs BAL_DATABASE_URL")
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_username and self.kafka_password
        ):
            raise ValueError("BAL_KAFKA_SECURITY_PROTOCOL=SASL_* needs BAL_KAFKA_USERNAME and "
                             "BAL_KAFKA_PASSWORD")  # fmt: skip
        if self.chain == "rpc" and not self.chain_url:
            raise ValueError("BAL_CHAIN=rpc needs BAL_CHAIN_URL")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("BAL_TLS_CERT and BAL_TLS_KEY go together")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Put the TOML file (if `BAL_CONFIG_FILE` names one) below the environment."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _config_file_from(init_settings, env_settings)
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archives"

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def tls_dir(self) -> Path:
        """Where `bal up --tls` keeps its self-signed certificate."""
        return self.data_dir / "tls"

    @property
    def tls(self) -> tuple[Path, Path] | None:
        """(cert, key) when TLS is configured."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return self.tls_cert, self.tls_key


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        value = source().get("config_file")
        if value:
            path = Path(value)
            if not path.is_file():
                raise FileNotFoundError(f"BAL_CONFIG_FILE {path} does not exist")
            return path
    return None
