"""`bal archive`, `bal restore`, `bal verify-archive`: the hot window by hand.

They work beside running nodes (the archiver's lease keeps one archiver at a time) and
on a stopped one; `verify-archive` needs nothing but the archive's two files.
"""

from __future__ import annotations

import fcntl
import json
import socket
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from platone_bal.config import Settings

if TYPE_CHECKING:
    from platone_bal.domain.proof import Check
    from platone_bal.ports import ArchiveRecord, Store
    from platone_bal.services.archiver import Archiver, PartDone

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else BAL_CONFIG_FILE)")
]
_HELD: list[object] = []
"""The command's lock on the archive directory, held until the process ends."""


def register(
    app: typer.Typer, settings_of: Callable[[Path | None], Settings], console: Console
) -> None:
    """Add the commands to `app`; `settings_of` reads the settings as the other commands do."""

    @app.command()
    def archive(
        config: ConfigOption = None,
        list_only: Annotated[
            bool, typer.Option("--list", help="Only list the archive files")
        ] = False,
    ) -> None:
        """Move the readings of days older than BAL_HOT_DAYS to archive files (what the
        leader does every BAL_ARCHIVE_INTERVAL); --list shows live days and archives."""
        from platone_bal.services.archiver import ArchiverBusy

        settings = settings_of(config)
        archiver, store = _archiver(settings, console)
        try:
            if list_only:
                _list(console, store.live_days(settings.log_id), store.archives(settings.log_id))
                return
            done = archiver.archive_due(lambda part: _say(console, part))
        except ArchiverBusy as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        finally:
            store.close()
        if not done:
            console.print(f"nothing to archive: every live day is within {settings.hot_days} days")

    @app.command()
    def restore(
        since: Annotated[str, typer.Option("--from", help="First UTC day, YYYY-MM-DD")],
        until: Annotated[str, typer.Option("--to", help="Last UTC day, YYYY-MM-DD")],
        config: ConfigOption = None,
    ) -> None:
        """Bring the archived readings of days FROM..TO back into the live store (each
        file checked against the SHA3-256 listed when it was written, and every leaf
        against the log); run it again safely."""
        from platone_bal.services.archiver import ArchiverBusy, ArchiveTampered

        first, last = _day(since, "--from"), _day(until, "--to")
        settings = settings_of(config)
        archiver, store = _archiver(settings, console)
        try:
            done = archiver.restore(
                first,
                last,
                lambda part: _say(console, part),
            )
        except (ArchiverBusy, ArchiveTampered) as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        finally:
            store.close()
        if not done:
            console.print(f"no archived day between {first} and {last}")

    @app.command("verify-archive")
    def verify_archive(
        file: Annotated[Path, typer.Argument(help="Archive data file (.parquet) or its manifest")],
        rpc: Annotated[
            str | None, typer.Option(help="Ethereum JSON-RPC URL to check the anchor on chain")
        ] = None,
        bundle: Annotated[
            int | None,
            typer.Option(help="Also write the proof bundle of the reading at this log index"),
        ] = None,
        out: Annotated[
            Path | None, typer.Option(help="Where --bundle writes (default: stdout)")
        ] = None,
    ) -> None:
        """Verify an archive offline: its file's SHA3-256, every reading against its leaf,
        the leaves and cover against the signed checkpoint, and the anchor with --rpc.
        Needs no BAL server and no database. Exits 0 only when every check that ran passed."""
        from platone_bal.adapters.archive_files import LocalArchiveFiles
        from platone_bal.domain.archive import (
            ArchivedMessage,
            ArchivedReading,
            ArchiveError,
            ArchiveTree,
            archive_bundle,
        )
        from platone_bal.domain.merkle import SHA3_256
        from platone_bal.services.archive_check import verify_archive as check

        name = file.name.removesuffix(".manifest.json")
        name = name if name.endswith(".parquet") else name + ".parquet"
        files = LocalArchiveFiles(file.parent)
        try:
            manifest = files.read_manifest(name)
        except ArchiveError as error:
            console.print(f"[red]INVALID[/red] {error}")
            raise typer.Exit(1) from None
        readings: list[ArchivedReading] | None
        messages: list[ArchivedMessage] | None
        try:
            readings, messages = files.read_data(name)
        except ArchiveError:
            readings = messages = None
        lookup = None
        if rpc is not None:
            from platone_bal.adapters.web3_chain import rpc_anchor_lookup

            lookup = rpc_anchor_lookup(rpc)
        report_checks(console, check(manifest, files.digest(name), readings, messages, lookup))
        if bundle is not None and readings is not None:
            wanted = [reading for reading in readings if reading.index == bundle]
            if not wanted:
                console.print(f"[red]index {bundle} is not in this archive[/red]")
                raise typer.Exit(1)
            tree = ArchiveTree(
                {r.index: SHA3_256.hash_leaf(r.leaf) for r in readings}, manifest.cover
            )
            text = json.dumps(archive_bundle(manifest, tree, wanted[0]), indent=1)
            if out is None:
                print(text)
            else:
                out.write_text(text + "\n")
                console.print(f"proof bundle of index {bundle} written to {out}")


def report_checks(console: Console, checks: Sequence[Check]) -> None:
    """Each check's verdict on a line, then VALID, or INVALID and exit status 1 (the
    output of `bal verify` and `bal verify-archive`)."""
    mark = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "[yellow]SKIP[/yellow]"}
    for item in checks:
        console.print(f"{mark[item.ok]} {item.name:<10} {item.detail}", soft_wrap=True)
    failed = [item for item in checks if item.ok is False]
    if failed:
        console.print(f"[red bold]INVALID[/red bold]: {failed[0].name} check failed")
        raise typer.Exit(1)
    console.print("[green bold]VALID[/green bold]")


def _say(console: Console, part: PartDone) -> None:
    console.print(f"{part.day} part {part.part}: {part.readings} readings {part.action}")


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a day (YYYY-MM-DD)", param_hint=option) from None


def _archiver(settings: Settings, console: Console) -> tuple[Archiver, Store]:
    """The archiver of a command, holding the archiver's lease as `HOST-cli`: a command
    killed on this host leaves a lease the next one here takes over at once, while
    nodes wait for it to expire. Two commands on one host are kept apart by a lock
    on the archive directory, which the system lets go when a process dies."""
    from platone_bal.bootstrap import open_archive_files, open_store
    from platone_bal.services.archiver import Archiver

    settings.archive_path.mkdir(parents=True, exist_ok=True)
    lock = (settings.archive_path / ".bal-archive.lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        console.print("[red]another bal archive or restore is running on this host[/red]")
        raise typer.Exit(1) from None
    _HELD.append(lock)
    store = open_store(settings)
    holder = f"{socket.gethostname()}-cli"
    archiver = Archiver(
        store,
        open_archive_files(settings),
        settings.log_id,
        holder,
        hot_days=settings.hot_days,
        keep_restored_days=settings.restore_keep_days,
    )
    return archiver, store


def _list(console: Console, live: list[tuple[date, int]], archives: list[ArchiveRecord]) -> None:
    for day, count in live:
        console.print(f"{day} live      {count} readings")
    for record in archives:
        console.print(
            f"{record.day} {record.status.value:<9} {record.readings} readings  "
            f"part {record.part}  {record.file}",
            soft_wrap=True,
        )
