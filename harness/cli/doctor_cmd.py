"""`harness doctor`: what the CARLA side of this machine looks like (client, server, towns,
Traffic Manager port, $CARLA_ROOT, GPU, the leaderboard compatibility layer) and what to fix.
Exit status 1 when a check failed, else 0; checks that cannot run here say so."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.checks import number
from harness.cli.main import app
from harness.sim.carla_checks import Check, Status, run_checks

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATUS_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red", Status.SKIP: "dim"}
FAILED_EXIT = 1


def checks_table(checks: list[Check]) -> Table:
    table = Table(title="harness doctor")
    for column in ("check", "status", "found", "what to do"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{STATUS_STYLE[c.status]}]{c.status.value}[/]", c.detail, c.fix)
    return table


@app.command("doctor")
def doctor(
    host: str = typer.Option("localhost", "--carla-host", help="CARLA server host."),
    port: int = typer.Option(2000, "--carla-port", min=1, max=65535, help="CARLA RPC port."),
    tm_port: int = typer.Option(8000, "--carla-tm-port", min=1, max=65535, help="Traffic Manager port."),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Server answer time limit [s]."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of the table."),
) -> None:
    """Check the carla client, the CARLA server (version, towns), the Traffic Manager port,
    $CARLA_ROOT, the GPU and which leaderboard / srunner / agents packages agent files import."""
    number(timeout, "--timeout", low=0.1)
    checks = run_checks(host, port, tm_port, timeout, PROJECT_ROOT)
    if as_json:
        typer.echo(json.dumps({"checks": [asdict(c) for c in checks]}))
    else:
        Console(width=200).print(checks_table(checks))
        for c in checks:
            if c.status in (Status.FAIL, Status.WARN) and c.fix:
                typer.echo(f"fix: {c.name}: {c.fix}")
    if any(c.status is Status.FAIL for c in checks):
        raise typer.Exit(FAILED_EXIT)
