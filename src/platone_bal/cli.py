"""The `bal` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from platone_bal.config import Settings
from platone_bal.domain.users import Role

app = typer.Typer(help="Platone Blockchain Access Layer", no_args_is_help=True)
users_app = typer.Typer(help="Manage users in the data directory's store.", no_args_is_help=True)
app.add_typer(users_app, name="users")
console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (else BAL_CONFIG_FILE)")
]


def _settings(config: Path | None) -> Settings:
    try:
        return Settings(config_file=config) if config else Settings()
    except (ValidationError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from None


@app.command()
def up(config: ConfigOption = None) -> None:
    """Run the node: store, MQTT broker (or subscriber), ingest and the HTTP API."""
    from platone_bal.app import Node

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    settings = _settings(config)
    node = Node(settings)
    generated = node.bootstrap_admin()
    if generated is not None:
        console.print(
            "[bold]First admin created.[/bold] username: admin  "
            f"password: [bold]{generated}[/bold]\n"
            "This password is shown once; set BAL_ADMIN_PASSWORD to choose your own."
        )

    def ready() -> None:
        mqtt = (
            f"mqtt://{settings.bind}:{settings.mqtt_port} (embedded)"
            if settings.broker == "embedded"
            else f"{settings.mqtt_url} (subscribed to platone/#)"
        )
        console.print(
            f"BAL up. data: {settings.data_dir.resolve()}\n"
            f"  HTTP  http://{settings.bind}:{settings.http_port}  (docs at /docs)\n"
            f"  MQTT  {mqtt}"
        )

    try:
        asyncio.run(node.serve(on_ready=ready))
    except (ConnectionError, OSError) as error:  # a port in use, a broker that refuses us
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
    url: Annotated[str, typer.Option(help="Broker: mqtt://host:port")] = "mqtt://127.0.0.1:1883",
    username: Annotated[str, typer.Option(help="Producer to publish as")] = "producer1",
    password: Annotated[
        str, typer.Option(envvar="BAL_SIMULATE_PASSWORD", prompt=True, hide_input=True)
    ] = "",
    qos: Annotated[int, typer.Option(min=0, max=1)] = 1,
) -> None:
    """Meters and PMUs publishing realistic payloads to platone/USERNAME/DEVICE."""
    from platone_bal.simulate import Fleet, run_fleet

    fleet = Fleet(username=username, meters=meters, pmus=pmus)
    sent = run_fleet(fleet, url=url, password=password, interval=interval, rounds=rounds, qos=qos)
    console.print(f"sent {sent} payloads")


def main() -> None:
    app()
