"""`harness demo`: the main job end to end on the built-in town."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.checks import writable_dir
from harness.cli.main import app


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("results/demo"), "--out", help="Output folder."),
    routes: int = typer.Option(2, min=1, help="How many built-in routes to drive."),
    vehicles: int = typer.Option(30, min=0, help="Background vehicles per route."),
    pedestrians: int = typer.Option(20, min=0, help="Background pedestrians per episode."),
    seed: int = typer.Option(0, help="Episode seed."),
) -> None:
    """Run the main job on the embedded default (built-in town and routes): check the routes,
    evaluate the expert closed loop with scenarios and traffic (results.json), replay a route,
    and generate a small PDMS/EPDMS teacher dataset, all under --out."""
    from harness.demo import run_demo

    writable_dir(out, "--out")
    run_demo(out, routes, vehicles, pedestrians, seed)
