"""Secrets generated once into the data directory, readable only by their owner (0600).

Used for the token signing key and the keystore passphrase: a node that was never
configured still has strong secrets, and they survive restarts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in `path`, creating it (hex, `nbytes` random bytes, mode 0600) if absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(nbytes))
    return path.read_text().strip()
