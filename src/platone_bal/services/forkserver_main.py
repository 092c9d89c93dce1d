"""Imported by the fork server `bal audit`'s workers are forked from: the parent's main
script, loaded once there, as `set_forkserver_preload(["__main__"])` should but does
not before Python 3.13 (CPython gh-126631: the fork server looks for `main_path`,
which spawn stopped giving). Without it every worker runs the main script again
before its first page: a third of a second for the storage benchmark's imports.

It lies outside the audit's package: importing that imports the main script's own
imports, which must come after this module (the script is loaded from here)."""

from __future__ import annotations

import os
import sys
from multiprocessing import process, spawn

MAIN = "PLATONE_BAL_FORKSERVER_MAIN"
"""The environment variable naming the parent and its script ("pid:path", the path as
spawn's `init_main_from_path`); set by the audit only while it starts the fork server."""


def _in_the_fork_server() -> str | None:
    """The script to load, if this is the fork server the audit is starting (a child of
    the process that set MAIN, running multiprocessing's fork server)."""
    parent, _, path = os.environ.get(MAIN, "").partition(":")
    started = parent == str(os.getppid()) and "multiprocessing.forkserver" in sys.modules
    return path if started and path else None


if script := _in_the_fork_server():
    process.current_process()._inheriting = True  # type: ignore[attr-defined]
    try:
        spawn.import_main_path(script)
    finally:
        del process.current_process()._inheriting  # type: ignore[attr-defined]
