"""`bal stack`: the production topology on this machine (see `stack.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

stack_app = typer.Typer(
    help="PostgreSQL, Mosquitto (TLS, Dynamic Security), a JSON-RPC chain and N BAL nodes "
    "behind one HTTP port, on this machine.",
    no_args_is_help=True,
)
console = Console()
DirOption = Annotated[Path, typer.Option("--dir", help="Where the stack keeps everything")]


@stack_app.command("up")
def up(
    directory: DirOption = Path("bal-stack"),
    nodes: Annotated[int, typer.Option(min=1, max=9, help="BAL nodes")] = 2,
    http_port: Annotated[int, typer.Option(help="The one HTTP port in front")] = 8080,
    mqtt_port: Annotated[int, typer.Option(help="Mosquitto's TLS port for devices")] = 8883,
) -> None:
    """Start the stack (again, with its data, after `down`)."""
    from platone_bal.stack.run import Stack, StackError

    stack = Stack(directory, say=console.print)
    try:
        state = stack.up(nodes, http_port, mqtt_port)
    except StackError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    secrets = stack.directory / "secrets"
    console.print(
        f"BAL stack up in {stack.directory} with {state.nodes} nodes:\n"
        f"  HTTP   http://127.0.0.1:{state.http_port}"
        f"  (admin; password in {secrets}/admin-password)\n"
        f"  MQTT   mqtts://127.0.0.1:{state.mqtt_port}  (CA: {stack.broker(state).ca_file})\n"
        f"  chain  {stack.chain_url(state)}   PostgreSQL 127.0.0.1:{state.postgres_port}\n"
        f"  nodes  {', '.join(f'127.0.0.1:{port}' for port in state.node_ports)}"
        f"   logs: {stack.directory}/logs\n"
        "stop it with `make stack-down` (bal stack down)"
    )


@stack_app.command("down")
def down(
    directory: DirOption = Path("bal-stack"),
    remove: Annotated[bool, typer.Option("--remove", help="Also delete all its data")] = False,
) -> None:
    """Stop the stack; its data stay in the directory unless --remove."""
    from platone_bal.stack.run import Stack, StackError

    stack = Stack(directory)
    try:
        stack.down()
    except StackError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    if remove:
        stack.remove()
    console.print(f"BAL stack in {directory} stopped" + (" and removed" if remove else ""))


@stack_app.command("proxy", hidden=True)
def proxy(
    backends: Annotated[list[str], typer.Argument(help="Node base URLs")],
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    bind: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """Round robin over the nodes (the stack's HTTP front)."""
    import uvicorn

    from platone_bal.stack.proxy import RoundRobinProxy

    uvicorn.run(RoundRobinProxy(backends), host=bind, port=port, log_level="warning")
