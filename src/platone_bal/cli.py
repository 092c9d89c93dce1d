"""The `bal` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from platone_bal.config import Settings
from platone_bal.domain.users import Role
from platone_bal.lifecycle_cli import register as register_lifecycle
from platone_bal.lifecycle_cli import report_checks
from platone_bal.services.export import Format as ExportFormat
from platone_bal.services.export import export_readings
from platone_bal.stack.cli import stack_app

if TYPE_CHECKING:
    from platone_bal.ports import AnchorChain, NodeStateStore

app = typer.Typer(help="Platone Blockchain Access Layer", no_args_is_help=True)
users_app = typer.Typer(help="Manage users in the data directory's store.", no_args_is_help=True)
app.add_typer(users_app, name="users")
chain_app = typer.Typer(help="Contracts on an outside Ethereum node.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
app.add_typer(stack_app, name="stack")
console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else BAL_CONFIG_FILE)")
]


def print_plain(text: str) -> None:
    """Print exactly `text`: no emoji codes (a fingerprint's ":CD:" is not a CD), no
    markup, no highlighting, no wrapping, so it can be copied and compared."""
    console.print(text, emoji=False, markup=False, highlight=False, soft_wrap=True)


def _settings(config: Path | None) -> Settings:
    try:
        return Settings(config_file=config) if config else Settings()
    except (ValidationError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from None


@app.command()
def up(
    config: ConfigOption = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls", help="Serve HTTPS and MQTT over TLS; without BAL_TLS_CERT, self-signed"
        ),
    ] = False,
) -> None:
    """Run the node: store, MQTT broker (or subscriber), ingest and the HTTP API."""
    from platone_bal.adapters.tls import ensure_self_signed, fingerprint
    from platone_bal.app import Node

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _settings(config)
    if tls and settings.tls is None:
        cert, key = ensure_self_signed(settings.tls_dir, [settings.bind])
        settings = settings.model_copy(update={"tls_cert": cert, "tls_key": key})
    if settings.tls is not None:
        print_plain(
            f"TLS certificate {settings.tls[0]}\n"
            f"  SHA-256 fingerprint {fingerprint(settings.tls[0])}"
        )
    node = Node(settings)
    generated = node.bootstrap_admin()
    if generated is not None:
        console.print(
            "[bold]First admin created.[/bold] username: admin  "
            f"password: [bold]{generated}[/bold]\n"
            "This password is shown once; set BAL_ADMIN_PASSWORD to choose your own."
        )

    def ready() -> None:
        secure = settings.tls is not None
        mqtt = (
            f"mqtts://{settings.bind}:{settings.mqtt_tls_port} (the node's own Mosquitto)"
            if secure
            else f"mqtt://{settings.bind}:{settings.mqtt_port} (the node's own Mosquitto)"
        )
        if settings.broker != "embedded":
            from platone_bal.entrypoints.mqtt_subscriber import ingress_filter

            mqtt = (
                f"{settings.mqtt_url} (subscribed to {ingress_filter(settings.mqtt_shared_group)})"
            )
        http = f"{'https' if secure else 'http'}://{settings.bind}:{settings.http_port}"
        console.print(
            f"BAL up. data: {settings.data_dir.resolve()}\n"
            f"  HTTP  {http}  (dashboard: open it in a browser; API docs at /docs)\n"
            f"  MQTT  {mqtt}"
        )

    from platone_bal.ports import ChainError

    try:
        asyncio.run(node.serve(on_ready=ready))
    except (ConnectionError, OSError, ChainError) as error:  # a port in use, a broker...
        console.print(f"[red]BAL could not start:[/red] {error}")
        raise typer.Exit(1) from None
    console.print("BAL stopped.")


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, producer or consumer")] = Role.PRODUCER,
    password: Annotated[
        str | None, typer.Option(help="Asked for when omitted; prefer the prompt or env")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a user; a producer may publish on platone/USERNAME with the same password."""
    from platone_bal.app import Node
    from platone_bal.ports import UserExists
    from platone_bal.services.users import InvalidUser

    if password is None:
        if not sys.stdin.isatty():
            console.print("[red]--password is required when there is no terminal[/red]")
            raise typer.Exit(2)
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    node = Node(_settings(config))
    try:
        user = node.users.create(username, password, role)
    except (InvalidUser, UserExists) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        node.store.close()
    console.print(f"{user.role} {user.username} created; wallet {user.wallet}; topic {user.topic}")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """List users with role, topic and wallet."""
    from rich.table import Table

    from platone_bal.app import Node

    node = Node(_settings(config))
    table = Table("username", "role", "topic", "wallet", "disabled")
    for user in node.store.list_users():
        table.add_row(user.username, user.role, user.topic or "", user.wallet, str(user.disabled))
    node.store.close()
    console.print(table)


@app.command()
def simulate(
    meters: Annotated[int, typer.Option(min=0, help="Smart meters sending CIM XML")] = 2,
    pmus: Annotated[int, typer.Option(min=0, help="PMUs sending JSON")] = 1,
    interval: Annotated[float, typer.Option(min=0.0, help="Seconds between rounds")] = 1.0,
    rounds: Annotated[int, typer.Option(min=0, help="Rounds to send; 0 runs until Ctrl-C")] = 0,
    url: Annotated[str, typer.Option(help="Broker: mqtt://host:port or mqtts://")] = (
        "mqtt://127.0.0.1:1883"
    ),
    ca_file: Annotated[
        Path | None, typer.Option(help="CA of an mqtts:// broker (e.g. bal stack's)")
    ] = None,
    username: Annotated[str, typer.Option(help="Producer to publish as")] = "producer1",
    password: Annotated[
        str, typer.Option(envvar="BAL_SIMULATE_PASSWORD", help="The producer's (prompted)")
    ] = "",
    qos: Annotated[int, typer.Option(min=0, max=1)] = 1,
    start: Annotated[
        str | None,
        typer.Option(
            help="Time the first round's measurements at this UTC time (YYYY-MM-DD or RFC "
            "3339) instead of now: a past month sent in minutes, for the hot window"
        ),
    ] = None,
    step: Annotated[
        float, typer.Option(min=1.0, help="With --start: measurement seconds between rounds")
    ] = 900.0,
    light_nodes: Annotated[
        int,
        typer.Option(
            min=0,
            help="Run this many Light Nodes (signed envelopes, own logins) instead of meters "
            "and PMUs; new ones are registered with their keys by the admin",
        ),
    ] = 0,
    keystore: Annotated[
        Path, typer.Option(help="Light Nodes' keys and MQTT passwords (JSON, mode 0600)")
    ] = Path("light-nodes.json"),
    api: Annotated[str, typer.Option(help="The BAL's API, to register Light Nodes")] = (
        "http://127.0.0.1:8080"
    ),
    admin: Annotated[str, typer.Option(help="Administrator (DSO) who registers them")] = "admin",
    admin_password: Annotated[
        str, typer.Option(envvar="BAL_SIMULATE_ADMIN_PASSWORD", help="Needed for new ones")
    ] = "",
) -> None:
    """Meters and PMUs publishing realistic payloads to platone/USERNAME/DEVICE, or with
    --light-nodes N, N Light Nodes sending signed envelopes with their own logins."""
    if light_nodes:
        from platone_bal.light_node_sim import Registrar, run_light_nodes
        from platone_bal.light_node_sim import light_nodes as make_nodes

        registrar = Registrar(api, admin, admin_password, username) if admin_password else None
        try:
            nodes = make_nodes(light_nodes, keystore, username, registrar)
        except (RuntimeError, PermissionError) as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        console.print(f"{len(nodes)} Light Nodes, keys in {keystore}")
        sent = run_light_nodes(
            nodes, producer=username, url=url, interval=interval, rounds=rounds, ca_file=ca_file
        )
        console.print(f"sent {sent} signed envelopes")
        return
    from platone_bal.simulate import Fleet, run_fleet

    first = None
    if start is not None:
        from platone_bal.domain.readings import InvalidReading, parse_time

        try:
            first = parse_time(start if "T" in start else f"{start}T00:00:00Z")
        except InvalidReading as error:
            raise typer.BadParameter(str(error), param_hint="--start") from None
    password = password or typer.prompt("Password", hide_input=True)
    fleet = Fleet(username=username, meters=meters, pmus=pmus)
    sent = run_fleet(
        fleet,
        url=url,
        password=password,
        interval=interval,
        rounds=rounds,
        qos=qos,
        ca_file=ca_file,
        start=first,
        step=step,
    )
    console.print(f"sent {sent} payloads")


@app.command()
def verify(
    proof: Annotated[Path, typer.Argument(help="Proof bundle (JSON) from /v1/readings/ID/proof")],
    rpc: Annotated[
        str | None, typer.Option(help="Ethereum JSON-RPC URL to check the anchor on chain")
    ] = None,
    device_registry: Annotated[
        str | None,
        typer.Option(
            help="DeviceRegistry address: with --rpc, check a Light Node's signer was its "
            "device's key at the anchor block (the node's admin page names the address)"
        ),
    ] = None,
) -> None:
    """Verify a proof offline: leaf, inclusion, checkpoint signature, and the anchor with --rpc.
    A Light Node's reading also shows its signer, checked in DeviceRegistry with
    --rpc and --device-registry.

    Needs no BAL server. Exits 0 only when every check that ran passed.
    """
    from platone_bal.codecs import json_depth
    from platone_bal.domain.proof import verify_bundle

    try:
        bundle = json_depth.loads(proof.read_bytes())
    except (OSError, ValueError) as error:
        console.print(f"[red]INVALID[/red] cannot read {proof}: {error}")
        raise typer.Exit(1) from None
    lookup, signers = None, None
    if rpc is not None:
        from platone_bal.adapters.device_registry import rpc_signer_lookup
        from platone_bal.adapters.web3_chain import rpc_anchor_lookup

        lookup = rpc_anchor_lookup(rpc)
        if device_registry is not None:
            signers = rpc_signer_lookup(rpc, device_registry)
    report_checks(console, verify_bundle(bundle, lookup, signers))


@app.command()
def audit(
    config: ConfigOption = None,
    log_id: Annotated[str | None, typer.Option("--log", help="Log to audit")] = None,
    rpc: Annotated[
        str | None, typer.Option(help="Check anchors at this JSON-RPC URL instead of the node's")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes checking pages of records (default: one per CPU; 0: none)"),
    ] = None,
) -> None:
    """Recompute every stored reading's leaf (or, with --log bal-audit, every access
    record), the tree and every stored node, all checkpoints, the messages' payloads,
    and hold the log and its anchors against the chain.

    Exits non-zero and names the first bad index and what differs.
    """
    from rich.progress import Progress

    from platone_bal.bootstrap import open_archive_files, open_store, store_opener
    from platone_bal.domain.audit import AUDIT_LOG
    from platone_bal.services.audit import Pages, audit_log
    from platone_bal.services.audit.archived import WithArchives

    settings = _settings(config)
    log = log_id or settings.log_id
    store = open_store(settings)
    chain, closer = _audit_chain(settings, store, rpc)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"auditing {log}", total=store.log_size(log))
            pages = Pages(
                workers=(os.cpu_count() or 1) if workers is None else workers,
                opener=store_opener(settings),
            )
            archived = WithArchives(store, open_archive_files(settings), log)
            report = audit_log(
                archived.as_store(),
                log,
                chain,
                lambda done: progress.update(task, completed=done),
                pages,
            )
    finally:
        closer()
        store.close()
    records = "entries" if log == AUDIT_LOG else "readings"
    payloads = "" if log == AUDIT_LOG else f", {report.messages} message payloads rechecked"
    console.print(
        f"{log}: {report.readings} {records}, {report.checkpoints} checkpoints, "
        f"{report.anchors} anchors checked{payloads}"
    )
    if archived.files:
        console.print(
            f"archived: {len(archived.files)} archive files read, their "
            f"{archived.payloads} message payloads rechecked"
        )
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if not report.ok:
        where = f"index {report.bad_index}: " if report.bad_index is not None else ""
        console.print(f"[red bold]AUDIT FAILED[/red bold] {where}{report.problem}")
        raise typer.Exit(1)
    console.print("[green bold]AUDIT OK[/green bold]")


def _audit_chain(
    settings: Settings, store: NodeStateStore, rpc: str | None
) -> tuple[AnchorChain | None, Callable[[], None]]:
    """The chain to check anchors on: --rpc, the configured node, or the embedded chain."""
    from web3 import Web3

    from platone_bal.adapters.web3_chain import Web3Chain, http_web3
    from platone_bal.chain_setup import (
        deployment_path,
        embedded_chain_path,
        recorded_deployment,
    )

    deployment = recorded_deployment(store, deployment_path(settings))
    if deployment is None:
        return None, lambda: None
    if rpc is not None or settings.chain == "rpc":
        url = rpc or settings.chain_url
        assert url is not None
        return Web3Chain(http_web3(url), deployment), lambda: None
    from platone_bal.adapters.embedded_chain import EmbeddedChain

    embedded = EmbeddedChain(embedded_chain_path(settings), chain_id=settings.chain_id, funded=[])
    return Web3Chain(Web3(embedded.provider), deployment), embedded.close


@chain_app.command("accounts")
def chain_accounts(config: ConfigOption = None) -> None:
    """The BAL's chain accounts, to fund on a chain where gas costs something: the
    chain-admin deploys the contracts and registers device keys; the anchorer anchors
    checkpoints and records grant decisions."""
    from platone_bal.adapters.node_keys import NodeKeys
    from platone_bal.adapters.wallets import Wallets
    from platone_bal.app import keystore_passphrase
    from platone_bal.bootstrap import open_store

    settings = _settings(config)
    store = open_store(settings)
    try:
        keys = NodeKeys(store, Wallets(keystore_passphrase(settings)), legacy_dir=settings.data_dir)
        for name in ("chain-admin", "anchorer", "log-signer"):
            console.print(f"{name:<12} {keys[name].address}")
    finally:
        store.close()


@chain_app.command("deploy")
def chain_deploy(
    rpc: Annotated[str, typer.Option(help="JSON-RPC URL of the Ethereum node")],
    config: ConfigOption = None,
) -> None:
    """Deploy the contracts once from this node's chain-admin key and record their addresses.

    The chain-admin account needs funds on that chain; the node's anchorer gets its roles.
    """
    from platone_bal.adapters.node_keys import NodeKeys
    from platone_bal.adapters.wallets import Wallets
    from platone_bal.adapters.web3_chain import deploy_contracts, http_web3
    from platone_bal.app import keystore_passphrase
    from platone_bal.bootstrap import open_store
    from platone_bal.chain_setup import deployment_path, record_deployment, recorded_deployment
    from platone_bal.ports import ChainError

    settings = _settings(config)
    store = open_store(settings)
    try:
        if recorded_deployment(store, deployment_path(settings)) is not None:
            console.print("[red]the contracts are already deployed and recorded[/red]")
            raise typer.Exit(1)
        keys = NodeKeys(store, Wallets(keystore_passphrase(settings)), legacy_dir=settings.data_dir)
        try:
            deployed = deploy_contracts(
                http_web3(rpc), keys["chain-admin"].private_key, [keys["anchorer"].address]
            )
        except ChainError as error:
            console.print(
                f"[red]deploy failed:[/red] {error}\n"
                f"chain-admin {keys['chain-admin'].address} needs funds on that chain."
            )
            raise typer.Exit(1) from None
        deployment = record_deployment(store, deployed)
    finally:
        store.close()
    if deployment != deployed:
        console.print("[red]another node recorded its deployment first; this one is unused[/red]")
        raise typer.Exit(1)
    for name, address in deployment.contracts.items():
        console.print(f"{name:<22} {address}")
    console.print(f"chain {deployment.chain_id}; recorded in the store")


@app.command()
def export(
    producer: Annotated[str, typer.Option(help="Whose readings")],
    out: Annotated[Path, typer.Option(help="The file to write")],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="JSON-LD (SAREF/SARGON), CSV or Parquet")
    ] = ExportFormat.JSONLD,
    device: Annotated[str | None, typer.Option(help="Only this device")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Measured at or after (RFC 3339)")
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="Measured before (RFC 3339)")] = None,
    base_url: Annotated[
        str, typer.Option(help="The node's public address, for each reading's proof link")
    ] = "http://127.0.0.1:8080",
    config: ConfigOption = None,
) -> None:
    """Write a producer's readings (a device, a window of measurement time) to a file
    for other platforms: JSON-LD on SAREF/SARGON, CSV or Parquet, each reading with its
    place in the log and its proof's link. Reads the store directly (no server)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from platone_bal.bootstrap import open_store
    from platone_bal.domain.readings import InvalidReading, parse_time
    from platone_bal.ports import ReadingQuery

    try:
        window = [parse_time(text) if text else None for text in (since, until)]
    except InvalidReading as error:
        raise typer.BadParameter(str(error), param_hint="--from/--to") from None
    query = ReadingQuery(producer=producer, device=device, since=window[0], until=window[1])
    store = open_store(_settings(config))
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"exporting {producer}'s readings to {out}")
            count = export_readings(
                store, query, export_format, out, base_url,
                lambda done: progress.update(task, description=f"{done} readings to {out}"),
            )  # fmt: skip
    finally:
        store.close()
    console.print(f"{count} readings written to {out} ({export_format.value})")


register_lifecycle(app, _settings, console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
