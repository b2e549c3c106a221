"""`harness collect`: the Drive-JEPA training data (expert drives with perturbations, rendered
front-camera frames, status, expert futures and teachers per scene; docs/DRIVEJEPA.md). The
``drivejepa`` package is imported inside the command only (the CLI edge)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from harness.cli.checks import number, writable_dir
from harness.cli.main import app
from harness.errors import ConfigError

DEFAULT_ROUTES_PER_TOWN = 3  # mirrors drivejepa.data.collect (not imported at CLI load)
DEFAULT_ROUTE_M = 400.0
MIN_IMAGE_PX = 16  # [px] the encoder's patch size: smaller images make no token


@app.command("collect")
def collect_cmd(
    out: Path = typer.Option(..., "--out", help="Dataset folder (DATA)."),
    routes: Path | None = typer.Option(
        None, help="Route XML (bench2drive220.xml: its 46 evaluation routes are never collected)."
    ),
    routes_subset: str | None = typer.Option(
        None, "--routes-subset", help="Route indices of --routes in file order, e.g. '0,3-5'."
    ),
    town: list[str] = typer.Option(
        [],
        "--town",
        help="Town to generate routes on (repeatable; 'all': every town at hand). "
        "Default without --routes: all.",
    ),  # fmt: skip
    routes_per_town: int = typer.Option(
        DEFAULT_ROUTES_PER_TOWN, "--routes-per-town", min=1, help="Generated routes per town."
    ),
    route_m: float = typer.Option(DEFAULT_ROUTE_M, "--route-m", help="Generated route length [m]."),
    max_routes: int | None = typer.Option(
        None, "--max-routes", min=1, help="Collect at most N routes."
    ),
    perturb: bool = typer.Option(
        True,
        "--perturb/--no-perturb",
        help="Inject seeded steering / speed bursts into the drives.",
    ),
    width: int = typer.Option(256, help="Camera image width [px]."),
    height: int = typer.Option(128, help="Camera image height [px]."),
    val_fraction: float = typer.Option(
        0.1, "--val-fraction", help="Share of routes held out for val."
    ),
    workers: int = typer.Option(1, min=1, help="Processes driving and scoring routes."),
    seed: int = typer.Option(
        0, help="Seed for routes, traffic, perturbations, pools and the split."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue a collection in --out."),
    teacher_gate: str = typer.Option(
        "EPDMS",
        "--teacher-gate",
        help="Score a teacher must reach (>= 0.95): EPDMS or PDMS (Drive-JEPA's pools).",
        case_sensitive=False,
    ),
) -> None:
    """Collect Drive-JEPA training data from expert drives (resumable; a manifest at the end)."""
    from rich.table import Table

    from drivejepa.camera import CameraSetup
    from drivejepa.data.collect import CollectConfig, collect
    from drivejepa.data.perturb import PerturbationConfig
    from drivejepa.data.routes import ALL_TOWNS, resolve_towns
    from teachers.selection import GATE_METRICS

    writable_dir(out, "--out")
    number(route_m, "--route-m", low=20.0)
    number(val_fraction, "--val-fraction", low=0.0, high=1.0)
    for value, option in ((width, "--width"), (height, "--height")):
        if value < MIN_IMAGE_PX or value % MIN_IMAGE_PX:
            raise ConfigError(f"{option} must be a multiple of {MIN_IMAGE_PX} px, got {value}")
    gate = teacher_gate.upper()
    if gate not in GATE_METRICS:
        raise ConfigError(
            f"--teacher-gate must be one of {', '.join(GATE_METRICS)}, got {teacher_gate!r}"
        )
    if routes_subset is not None and routes is None:
        raise ConfigError("--routes-subset needs --routes FILE")
    if routes is not None and not routes.is_file():
        raise ConfigError(f"--routes {routes} does not exist; pass a leaderboard route XML")
    towns = resolve_towns(town or ([ALL_TOWNS] if routes is None else []))
    config = CollectConfig(
        out=out, routes_file=routes, routes_subset=routes_subset, towns=tuple(towns),
        routes_per_town=routes_per_town, route_m=route_m, max_routes=max_routes,
        perturbation=PerturbationConfig(enabled=perturb),
        camera=CameraSetup(width=width, height=height), workers=workers, seed=seed,
        resume=resume, val_fraction=val_fraction, teacher_gate=gate,
        command_line=tuple(sys.argv),
    )  # fmt: skip
    bar = Progress(
        TextColumn("routes"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[scenes]} scenes"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=False,
        auto_refresh=False,  # no refresh thread: the route pool forks while the bar shows
    )  # fmt: skip
    tasks: list[TaskID] = []

    def progress(done: int, total: int, scenes: int) -> None:
        """Shown from the first call on (after the input checks: an error stays one line)."""
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("routes", total=total, scenes=0))
        bar.update(tasks[0], completed=done, total=total, scenes=scenes)
        bar.refresh()

    try:
        manifest = collect(config, progress)
    finally:
        if tasks:
            bar.stop()
    s = manifest["summary"]
    t = Table(title="collect")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("routes (train / val)", f"{s['routes']} ({s['routes_by_split']['train']} / "
                                 f"{s['routes_by_split']['val']})"),
        ("scenes (train / val)", f"{s['scenes']} ({s['scenes_by_split']['train']} / "
                                 f"{s['scenes_by_split']['val']})"),
        ("frames", str(s["frames"])),
        ("routes completed", f"{s['routes_completed']} of {s['routes']} "
                             f"(mean completion {100 * s['mean_completion']:.1f} %)"),
        ("ego collisions", str(s["collisions"])),
        ("scenes without a teacher", str(s["scenes_without_teacher"])),
        ("excluded evaluation routes", str(len(manifest["excluded_routes"]))),
        ("disk", f"{s['bytes'] / 1e6:.1f} MB"),
        ("made now", f"{s['scenes_made']} scenes in {s['work_s']:.0f} s"),
    ]  # fmt: skip
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
