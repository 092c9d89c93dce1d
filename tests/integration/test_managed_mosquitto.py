"""The node's Mosquitto supervisor against the real broker: it comes back after it dies,
also when a restart fails first."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from platone_bal.adapters.mosquitto_config import MosquittoConfig
from platone_bal.adapters.mosquitto_process import ManagedMosquitto, private_socket_path
from tests.conftest import free_port, require_binary
from tests.integration.nodes import wait_for


def test_the_broker_comes_back_even_when_a_restart_fails_first(tmp_path: Path) -> None:
    mosquitto = require_binary("mosquitto")
    broken = tmp_path / "broken"  # while it exists, the broker cannot start
    failed = tmp_path / "failed"  # a line per start that failed
    wrapper = tmp_path / "mosquitto"
    wrapper.write_text(
        f'#!/bin/sh\nif [ -e "{broken}" ]; then echo failed >> "{failed}"; exit 1; fi\n'
        f'exec {mosquitto} "$@"\n'
    )
    wrapper.chmod(0o755)
    broker = ManagedMosquitto(
        MosquittoConfig(
            directory=tmp_path / "data" / "mosquitto",
            bind="127.0.0.1",
            port=free_port(),
            tls_port=free_port(),
            tls=None,
            service_password="service-secret",
            socket_path=private_socket_path(),
            binary=str(wrapper),
        )
    )
    broker.start()
    try:
        first = broker.pid
        assert first is not None
        broken.touch()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: failed.exists(), what="a restart that failed")
        broken.unlink()
        wait_for(lambda: broker.pid not in (None, first), timeout=20, what="the broker back")
    finally:
        broker.stop()
    assert broker.pid is None
    assert not broker.config.socket_path.parent.exists()
