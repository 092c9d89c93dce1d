"""Where the installed Mosquitto and its Dynamic Security plugin are, or why the node's
own broker cannot run: the node starts the system's Mosquitto rather than shipping one."""

from __future__ import annotations

import shutil
from pathlib import Path

PLUGIN_PATHS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)


class MosquittoUnavailable(RuntimeError):
    """Mosquitto is not installed or would not start."""


def find_binary(configured: str | None = None) -> str:
    for candidate in (configured, "mosquitto", "/usr/sbin/mosquitto"):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise MosquittoUnavailable(
        "mosquitto is not installed (apt-get install mosquitto); `make run` installs it"
    )


def find_plugin() -> Path:
    for pattern in PLUGIN_PATHS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    raise MosquittoUnavailable("Mosquitto's dynamic security plugin is missing")
