"""`harness towns`: list every town the harness can load, with its size and signals."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.main import app
from harness.maps.towns import ORIGIN_BUILTIN, available_towns, load_town

WIDE_OUTPUT_COLUMNS = 200  # [characters] table width when stdout is not a terminal
SOURCE_LABELS = {
    "HARNESS_MAPS": "$HARNESS_MAPS",
    "CARLA_ROOT": "$CARLA_ROOT",
    ORIGIN_BUILTIN: "built-in",
}


NAMES_ARGUMENT = typer.Argument(None, help="Only these towns (default: every resolvable town).")


@app.command("towns")
def towns(name: list[str] | None = NAMES_ARGUMENT) -> None:
    """List the towns found in $HARNESS_MAPS (':'-separated folders), $CARLA_ROOT's OpenDRIVE folder
    and the built-in towns (first occurrence of a name wins), loading each to count roads, lanes,
    junctions, traffic lights (with a mark where they are synthesised) and stop signs."""
    files = available_towns()
    if name:
        wanted = {n.lower() for n in name}
        files = [f for f in files if f.name.lower() in wanted]
    table = Table(title="Towns", show_lines=False)
    for col in (
        "name",
        "source",
        "file",
        "roads",
        "lanes",
        "junctions",
        "traffic lights",
        "stop signs",
    ):
        table.add_column(
            col, justify="right" if col in ("roads", "lanes", "junctions", "stop signs") else "left"
        )
    for tf in files:
        town = load_town(tf.name)
        lights = f"{town.signals.lights_count}" + (
            " (synthesised)" if town.signals.synthesised else ""
        )
        table.add_row(
            town.name,
            SOURCE_LABELS.get(tf.origin, tf.origin),
            str(tf.path) if tf.path is not None else "-",
            str(town.road_count),
            str(town.lanes.n_lanes),
            str(len(town.junctions)),
            lights,
            str(town.signals.stop_signs_count),
        )
    console = Console()
    if not console.is_terminal:  # piped output: do not squeeze paths into 80 columns
        console = Console(width=WIDE_OUTPUT_COLUMNS)
    console.print(table)
