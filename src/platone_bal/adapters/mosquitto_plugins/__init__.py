"""Mosquitto plugins of the node's own broker, in C, built by the node itself.

- `bal_throttle.c`: failed MQTT logins slow down per username and per address (loaded
  before Dynamic Security);
- `bal_journal.c`: every ingest publish is on record before its PUBACK (`journal.py`
  reads what it writes).

Each is compiled from its source once per source version, into the broker's
directory: that needs a C compiler and Mosquitto's headers (Debian: gcc, mosquitto-dev,
libmosquitto-dev; `make run` installs them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCES = Path(__file__).parent


class PluginBuildError(RuntimeError):
    """A plugin could not be built."""


def build_plugin(name: str, directory: Path, compiler: str | None = None) -> Path:
    """Plugin `name`'s shared object in `directory`, compiled now if this source version
    was not compiled there yet."""
    source = SOURCES / f"{name}.c"
    version = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = directory / f"{name}-{version}.so"
    if target.exists():
        return target
    cc = compiler or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise PluginBuildError(
            "building Mosquitto's plugins needs a C compiler and Mosquitto's headers"
            " (apt-get install gcc mosquitto-dev libmosquitto-dev; `make run` installs them)"
        )
    for stale in directory.glob(f"{name}-*.so"):
        stale.unlink()
    partial = target.with_suffix(".partial")
    built = subprocess.run(
        [cc, "-O2", "-fPIC", "-shared", "-o", str(partial), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise PluginBuildError(
            f"could not build Mosquitto's plugin {name} (are gcc, mosquitto-dev and "
            f"libmosquitto-dev installed?):\n{built.stderr.strip()[-2000:]}"
        )
    os.replace(partial, target)
    return target
