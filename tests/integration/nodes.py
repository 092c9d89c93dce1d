"""Running real BAL nodes (in a thread or as a `bal up` process) for integration tests."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from platone_bal.app import Node
from platone_bal.config import Settings
from platone_bal.simulate import connect
from tests.conftest import free_port
from tests.integration.stores import store_settings

ADMIN_PASSWORD = "admin-pass-1"


class NodeThread:
    """A Node serving on free ports in a background thread, with an HTTP client."""

    def __init__(self, data_dir: Path, **settings: object) -> None:
        self.settings = Settings(
            data_dir=data_dir,
            http_port=free_port(),
            mqtt_port=free_port(),
            mqtt_tls_port=free_port(),
            chain_rpc_port=free_port(),
            admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
            **{**store_settings(data_dir), **settings},  # type: ignore[arg-type]
        )
        self.node = Node(self.settings)
        self.node.bootstrap_admin()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        tls = self.settings.tls
        scheme = "https" if tls else "http"
        self.http = httpx.Client(
            base_url=f"{scheme}://127.0.0.1:{self.settings.http_port}",
            timeout=10,
            verify=ssl.create_default_context(cafile=tls[0]) if tls else True,
        )

    def _run(self) -> None:
        try:
            asyncio.run(self.node.serve(on_ready=self._ready.set))
        except BaseException as error:
            self.error = error
            self._ready.set()

    def __enter__(self) -> NodeThread:
        self._thread.start()
        if not self._ready.wait(20) or self.error is not None:
            raise RuntimeError(f"node did not start: {self.error!r}")
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()  # an idle TLS keep-alive connection would hold up the shutdown
        self.node.request_stop()
        self._thread.join(20)

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
        answer = self.http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def add_user(self, username: str, password: str, role: str = "producer") -> dict[str, object]:
        answer = self.http.post(
            "/v1/users",
            json={"username": username, "password": password, "role": role},
            headers=self.token(),
        )
        answer.raise_for_status()
        return dict(answer.json())

    def get(self, path: str, **params: object) -> dict[str, object]:
        answer = self.http.get(path, params=params, headers=self.token())  # type: ignore[arg-type]
        answer.raise_for_status()
        return dict(answer.json())


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def publish_as_producer1(node: NodeThread, *payloads: bytes) -> None:
    """Publish payloads as producer1 (password secret-pass-1) under platone/producer1/dev."""
    client = connect(f"mqtt://127.0.0.1:{node.settings.mqtt_port}", "producer1", "secret-pass-1")
    for payload in payloads:
        client.publish("platone/producer1/dev", payload, qos=1).wait_for_publish(5)
    client.disconnect()
