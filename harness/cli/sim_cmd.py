"""`harness sim ...`: the embedded simulator's own commands."""

from __future__ import annotations

import json

import typer

from harness.cli.main import app, command_group
from harness.errors import ConfigError

sim_app = command_group("Embedded simulator tools.")
app.add_typer(sim_app, name="sim")


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--camera takes WIDTHxHEIGHT, e.g. 256x128; got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"--camera sizes must be positive, got {text!r}")
    return w, h


@sim_app.command("bench")
def bench(
    town: str = typer.Option(
        "Harness01", help="Town to drive (built-in, $HARNESS_MAPS or $CARLA_ROOT)."
    ),
    vehicles: int = typer.Option(50, min=0, help="Background vehicles."),
    ticks: int = typer.Option(2000, min=1, help="Ticks to run (0.05 s each)."),
    camera: str | None = typer.Option(None, help="Add one RGB camera of this size, e.g. 256x128."),
    pedestrians: int = typer.Option(0, min=0, help="Background pedestrians."),
    seed: int = typer.Option(0, help="Episode seed."),
) -> None:
    """Run a closed-loop episode with a route-following ego; print one JSON line of figures."""
    from harness.runner.bench import run_bench

    size = parse_size(camera) if camera else None
    typer.echo(json.dumps(run_bench(town, vehicles, ticks, size, pedestrians, seed)))
