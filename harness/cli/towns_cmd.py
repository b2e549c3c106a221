"""`harness towns`: list every town the harness can load, with its size and signals."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from harness.cli.main import USAGE_EXIT, app, report
from harness.errors import MapLoadError
from harness.maps.towns import ORIGIN_BUILTIN, available_towns, load_town, resolve_town

WIDE_OUTPUT_COLUMNS = 200  # [characters] table width when stdout is not a terminal
SOURCE_LABELS = {
    "HARNESS_MAPS": "$HARNESS_MAPS",
    "CARLA_ROOT": "$CARLA_ROOT",
    ORIGIN_BUILTIN: "built-in",
}
COLUMNS = ("name", "source", "file", "roads", "lanes", "junctions", "traffic lights", "stop signs")
NUMBER_COLUMNS = ("roads", "lanes", "junctions", "stop signs")

NAMES_ARGUMENT = typer.Argument(None, help="Only these towns (default: every resolvable town).")


@app.command("towns")
def towns(name: list[str] | None = NAMES_ARGUMENT) -> None:
    """List the towns found in $HARNESS_MAPS (':'-separated folders), $CARLA_ROOT's OpenDRIVE folder
    and the built-in towns (first occurrence of a name wins), loading each to count roads, lanes,
    junctions, traffic lights (with a mark where they are synthesised) and stop signs. A file that
    does not load is listed as such (and named on stderr); naming an unknown or unloadable town
    is an error (exit status 2)."""
    files = [resolve_town(n) for n in name] if name else available_towns()
    table = Table(title="Towns", show_lines=False)
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in NUMBER_COLUMNS else "left")
    broken: list[MapLoadError] = []
    for tf in dict.fromkeys(files):  # a town named twice is listed once
        source = SOURCE_LABELS.get(tf.origin, tf.origin)
        path = str(tf.path) if tf.path is not None else "-"
        try:
            town = load_town(tf.name)
        except MapLoadError as exc:
            broken.append(exc)
            table.add_row(tf.name, source, path, "[red]does not load[/]", "-", "-", "-", "-")
            continue
        lights = f"{town.signals.lights_count}" + (
            " (synthesised)" if town.signals.synthesised else ""
        )
        table.add_row(
            town.name, source, path, str(town.road_count), str(town.lanes.n_lanes),
            str(len(town.junctions)), lights, str(town.signals.stop_signs_count),
        )  # fmt: skip
    console = Console()
    if not console.is_terminal:  # piped output: do not squeeze paths into 80 columns
        console = Console(width=WIDE_OUTPUT_COLUMNS)
    console.print(table)
    for err in broken:
        report(str(err), "error" if name else "warning")
    if broken and name:
        raise typer.Exit(USAGE_EXIT)
