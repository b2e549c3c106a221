"""`harness gen-teachers` (the teacher dataset pipeline) and `harness teachers show` (a PNG of one
scene's map, agents and teachers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
from rich.table import Table

from harness.cli import backend_options
from harness.cli.checks import number, writable_dir, writable_file
from harness.cli.main import app, command_group
from harness.errors import ConfigError

teachers_app = command_group("Teacher dataset tools.")
app.add_typer(teachers_app, name="teachers")


def summary_table(summary: dict[str, Any]) -> Table:
    """The end-of-run table: scenes, candidates, pass rate, teachers per scene, throughput."""
    t = Table(title="gen-teachers")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rate = summary.get("candidates_per_s")
    rows = [
        ("scenes", f"{summary['scenes']}"),
        ("candidates scored", f"{summary['candidates_scored']}"),
        ("pass rate", f"{100 * summary['pass_rate']:.1f} %"),
        ("teachers per scene", f"{summary['teachers_per_scene']:.2f}"),
        ("scenes with K teachers", f"{summary['scenes_with_k']}"),
        ("scenes without a teacher", f"{summary['scenes_without_teacher']}"),
        ("pool per scene", f"{summary['pool_per_scene']:.1f}"),
        ("scenes with >= 2 modes kept", f"{100 * summary['multimodal_fraction']:.1f} % "
                                        f"({100 * summary['multimodal_available_fraction']:.1f} % "
                                        "available)"),
        ("throughput", f"{rate:.0f} candidates/s" if rate else "- (all parts resumed)"),
        *(
            [("reactive collision-free", f"{summary['reactive_collision_free']} of "
                                         f"{summary['teachers']}")]
            if "reactive_collision_free" in summary else []
        ),
        ("drive / score / wall", f"{summary['drive_s']:.0f} s / {summary['score_s']:.0f} s / "
                                 f"{summary['wall_s']:.0f} s"),
    ]  # fmt: skip
    for k, v in rows:
        t.add_row(k, v)
    return t


def scenario_table(summary: dict[str, Any]) -> Table:
    """Scenes and teachers per active scenario type."""
    t = Table(title="by scenario type")
    for name in ("scenario type", "scenes", "triggered", "teachers / scene", "no teacher",
                 ">= 2 modes"):  # fmt: skip
        t.add_column(name, justify="left" if name == "scenario type" else "right")
    for typ, row in summary.get("by_scenario_type", {}).items():
        t.add_row(
            typ, str(row["scenes"]), str(row["triggered_scenes"]),
            f"{row['teachers_per_scene']:.2f}", str(row["scenes_without_teacher"]),
            f"{100 * row['multimodal_fraction']:.0f} %",
        )  # fmt: skip
    return t


@app.command("gen-teachers")
def gen_teachers(
    town: str = typer.Option(..., help="Town to drive, e.g. Town05."),
    out: Path = typer.Option(..., help="Dataset directory (resumes when it exists)."),
    routes: Path | None = typer.Option(None, help="Route XML; routes are generated when omitted."),
    k: int = typer.Option(8, min=1, help="Teachers per scene."),
    every: float = typer.Option(0.5, help="Scene spacing [s]."),
    max_scenes: int | None = typer.Option(None, min=1, help="Stop after this many scenes."),
    max_routes: int | None = typer.Option(None, min=1, help="Use only the first N routes."),
    workers: int = typer.Option(1, min=1, help="Driving / scoring processes."),
    ray: str | None = typer.Option(
        None, "--ray",
        help="Score on a Ray cluster: its address, or 'auto' to start a local one "
        "(pip install 'harness[ray]'); --workers then counts actors (default one per CPU).",
    ),
    threshold: float = typer.Option(0.95, help="Minimum EPDMS of a teacher."),
    vocab_size: int = typer.Option(
        1024, min=1, max=8192, help="Entries of the k-means vocabulary of --vocabulary drives."
    ),
    vocabulary: str = typer.Option(
        "carla-8192-v1",
        help="A registered vocabulary id (default: the shipped 8,192 entries), a vocabulary .npz, "
        "or 'drives' (k-means of this run's drives, --vocab-size entries).",
    ),
    agent: str = typer.Option(
        "expert",
        help="Driving agent; route_follower (or an agent that does not load) uses the RouteFollower.",
    ),
    seed: int = typer.Option(0, help="Seed for routes, traffic and k-means."),
    reactive: bool = typer.Option(
        False,
        "--reactive",
        help="Re-simulate each teacher with reactive traffic (fills `reactive`).",
    ),
    backend: str = backend_options.BACKEND,
    carla_host: str = backend_options.CARLA_HOST,
    carla_port: int = backend_options.CARLA_PORT,
    carla_tm_port: int = backend_options.CARLA_TM_PORT,
    carla_timeout: float = backend_options.CARLA_TIMEOUT,
    carla_launch: bool = backend_options.CARLA_LAUNCH,
    carla_root: Path | None = backend_options.CARLA_ROOT,
    carla_gpu: int | None = backend_options.CARLA_GPU,
    ego_blueprint: str = backend_options.EGO_BLUEPRINT,
    profile: str = typer.Option("navsim", "--profile", help="Scoring rules: navsim or harness."),
) -> None:
    """Generate a PDMS / EPDMS teacher dataset for a town."""
    from dataclasses import replace

    from harness.runner.backends import backend_session
    from teachers.generate import GenerateConfig, generate
    from teachers.scoring.profile import get_profile
    from teachers.selection import SelectionConfig

    number(every, "--every", low=0.0, low_open=True)
    number(threshold, "--threshold", low=0.0, high=1.0)
    writable_dir(out, "--out")
    get_profile(profile)  # an unknown name is one line naming the known ones
    if routes is not None:
        from harness.routes.xml_io import read_route_file

        if not routes.is_file():
            raise ConfigError(f"--routes {routes} does not exist; pass a leaderboard route XML")
        read_route_file(routes)  # a malformed file is reported before any work starts
    from teachers.vocabulary import REGISTERED, registered_ids

    vocab_id: str | None = vocabulary if vocabulary in REGISTERED else None
    vocab_file: Path | None = None
    if vocabulary != "drives" and vocab_id is None:
        vocab_file = Path(vocabulary)
        if not vocab_file.is_file():
            raise ConfigError(
                f"--vocabulary {vocabulary} is neither a registered id "
                f"({', '.join(registered_ids())}), 'drives' nor a file"
            )
    if ray is not None:
        from harness.runner.ray_pool import import_ray

        if not ray.strip():
            raise ConfigError("--ray needs 'auto' or a cluster address such as 10.0.0.5:6379")
        import_ray()  # not installed: one line saying how, before any work
    cfg = GenerateConfig(
        town=town, out=out, routes_file=routes, every_s=every, max_scenes=max_scenes, max_routes=max_routes,
        workers=workers, ray_address=ray, vocabulary_size=vocab_size, vocabulary_file=vocab_file,
        vocabulary_id=vocab_id, agent=agent,
        seed=seed, reactive=reactive, command_line=tuple(sys.argv),
        backend=backend_options.backend_spec(
            backend, carla_host, carla_port, carla_tm_port, carla_timeout, carla_launch,
            carla_root, carla_gpu, ego_blueprint,
        ),
        scoring_profile=profile,
    )  # fmt: skip
    cfg = replace(cfg, selection=SelectionConfig(k=k, threshold=threshold))
    bar = Progress(
        TextColumn("scenes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    )  # fmt: skip
    tasks: list[TaskID] = []

    def progress(done: int, total: int) -> None:
        """Shown from the first call on (after the input checks: an error stays one line)."""
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("scenes", total=None))
        bar.update(tasks[0], completed=done, total=total or None)

    try:
        with backend_session(cfg.backend) as (live, _guard):  # no server: one line, exit 2
            summary = generate(replace(cfg, backend=live), progress)
    finally:
        if tasks:
            bar.stop()
    Console().print(summary_table(summary))
    Console().print(scenario_table(summary))


@teachers_app.command("show")
def show(
    dataset: Path = typer.Argument(..., help="Dataset directory written by gen-teachers."),
    scene: str = typer.Option(..., "--scene", help="scene_id to draw."),
    out: Path = typer.Option(..., help="PNG file to write."),
) -> None:
    """Draw a scene: lanes, agents (t=0 boxes and 4 s tracks) and the teachers by EPDMS."""
    from teachers.show import draw_scene

    writable_file(out, "--out")
    typer.echo(str(draw_scene(dataset, scene, out)))


vocabulary_app = command_group("The trajectory vocabulary (build, inspect).")
teachers_app.add_typer(vocabulary_app, name="vocabulary")


@vocabulary_app.command("build")
def vocabulary_build(
    out: Path = typer.Option(..., help="Build folder (episodes, futures, vocabulary.npz); resumes."),
    town: list[str] = typer.Option([], "--town", help="Town to drive (repeatable; default: all at hand)."),
    routes_per_town: int = typer.Option(6, min=1, help="Generated routes driven per town."),
    route_m: float = typer.Option(400.0, help="Length of each generated route [m]."),
    size: int = typer.Option(8192, min=1, max=8192, help="Vocabulary entries."),
    min_cell: int = typer.Option(150, min=1, help="Lattice top-up of (speed x manoeuvre) cells below this."),
    seed: int = typer.Option(0, help="Seed for routes, traffic, top-up sampling and k-means."),
    workers: int = typer.Option(1, min=1, help="Driving processes."),
) -> None:
    """Build a trajectory vocabulary from expert drives (+ lattice top-up), deterministic per seed."""
    import json

    from teachers.vocabulary_build import BuildConfig, build

    number(route_m, "--route-m", low=10.0)
    writable_dir(out, "--out")
    cfg = BuildConfig(
        out=out, towns=tuple(town) or None, routes_per_town=routes_per_town, route_m=route_m,
        seed=seed, size=size, min_cell=min_cell, workers=workers,
    )  # fmt: skip
    vocab = build(cfg)
    p = vocab.provenance
    typer.echo(json.dumps({"out": str(out / "vocabulary.npz"), "size": vocab.size,
                           "sha256": vocab.sha256, "futures": p["futures"],
                           "lattice_rows": p["lattice"]["lattice_rows"]}))  # fmt: skip


@vocabulary_app.command("show")
def vocabulary_show(
    source: str = typer.Argument("", help="A registered id or a vocabulary .npz (default: the default)."),
) -> None:
    """Print a vocabulary's provenance (towns, seed, coverage histograms, hash) as JSON."""
    import json

    from teachers.vocabulary import DEFAULT_VOCABULARY_ID, resolve_vocabulary

    vocab = resolve_vocabulary(source or DEFAULT_VOCABULARY_ID)
    typer.echo(json.dumps({"size": vocab.size, "sha256": vocab.sha256, **vocab.provenance},
                          indent=2, sort_keys=True))  # fmt: skip


@teachers_app.command("export")
def export(
    dataset: Path = typer.Argument(..., help="Dataset directory written by gen-teachers."),
    out: Path = typer.Argument(..., help="Folder to write the export into."),
    fmt: str = typer.Option(
        "drivejepa", "--format", help="drivejepa (Drive-JEPA's files), numpy or parquet."
    ),
) -> None:
    """Export the vocabulary and per-scene pools (docs/TEACHERS.md, "Exports")."""
    import json

    from teachers.export import FORMATS, export_dataset

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt} is not one of {', '.join(FORMATS)}")
    writable_dir(out, "OUT")
    typer.echo(json.dumps(export_dataset(dataset, fmt, out)))
