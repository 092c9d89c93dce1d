"""Which adapter plays each part, from settings: the one place that reads BAL_STORE.

`Node` (app.py) wires services to what `open_store` returns; a test gives `Node` a store
of its own instead (an in-memory fake, a store on a throwaway PostgreSQL cluster).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from platone_bal.config import Settings
from platone_bal.ports import ArchiveFiles, Store


def open_store(settings: Settings) -> Store:
    """The Shared Customer Database the settings name, its schema created or migrated."""
    if settings.store == "postgres":
        from platone_bal.adapters.postgres import PostgresStore

        assert settings.database_url is not None  # Settings refuses postgres without one
        return PostgresStore(
            settings.database_url.get_secret_value(), max_size=settings.database_pool
        )
    from platone_bal.adapters.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / "scd.sqlite3")


def store_opener(settings: Settings) -> Callable[[], Store]:
    """What opens another store on the database the settings name, as a callable that
    pickles (the store class and its path or URL): `bal audit`'s worker processes each
    open their own with it."""
    if settings.store == "postgres":
        from platone_bal.adapters.postgres import PostgresStore

        assert settings.database_url is not None
        url = settings.database_url.get_secret_value()
        return partial(PostgresStore, url, max_size=settings.database_pool)
    from platone_bal.adapters.sqlite import SqliteStore

    return partial(SqliteStore, settings.data_dir / "scd.sqlite3")


def open_archive_files(settings: Settings) -> ArchiveFiles:
    """Where the hot window's archive files are kept (BAL_ARCHIVE_DIR)."""
    from platone_bal.adapters.archive_files import LocalArchiveFiles

    return LocalArchiveFiles(settings.archive_path)


def kafka_config(settings: Settings) -> dict[str, str | int | bool] | None:
    """librdkafka settings of the node's Kafka producer (None: no Kafka configured)."""
    if settings.kafka_bootstrap is None:
        return None
    config: dict[str, str | int | bool] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
        "client.id": "platone-bal",
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        assert settings.kafka_username and settings.kafka_password  # Settings checks
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_username
        config["sasl.password"] = settings.kafka_password.get_secret_value()
    if settings.kafka_ca_file is not None:
        config["ssl.ca.location"] = str(settings.kafka_ca_file)
    return config
