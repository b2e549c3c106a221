"""`harness eval`: leaderboard-style closed-loop evaluation of an agent on a route file (or on
routes generated for a town, written to OUT/routes_<town>.xml), in this process, a pool of
worker processes (--workers) or on a Ray cluster (--ray).

Writes OUT/results.json (leaderboard format) as routes finish, in record-index order, and
resumes from it; shows a live progress bar on stderr when it is a terminal (not with --quiet);
prints one table row per route, the global record, the Bench2Drive metrics over the route
file and the closed-loop PDMS / EPDMS. Exit status 0 when the run completes
(failed routes included), 2 on bad input (agent, route file, subset, settings, invalid sensors,
a route whose town is unknown or that cannot be planned, a resume with other settings than
OUT/harness/run.json's, --ray without Ray installed), 130 when interrupted (results.json then holds the
finished routes; run again to resume).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli import backend_options
from harness.cli.checks import number, writable_dir
from harness.cli.main import app
from harness.errors import ConfigError
from harness.leaderboard.bench2drive import ABILITIES, Bench2DriveMetrics
from harness.leaderboard.results import RouteRecord
from harness.leaderboard.route_criteria import CriteriaConfig
from harness.leaderboard.statistics import bench2drive_summary
from harness.report.page import write_report
from harness.runner.backends import BackendSpec
from harness.runner.closed_loop import ClosedLoopSummary, closed_loop_summary
from harness.runner.config import PENALTY_TABLES, Mode, RunConfig, VideoPolicy
from harness.runner.evaluation import EvaluationResult, run_evaluation
from harness.runner.ray_pool import import_ray
from harness.runner.time_limit import DEFAULT_AGENT_TIMEOUT_S
from harness.runner.town_routes import town_routes_path, write_town_routes
from harness.world.backend import TrafficConfig
from teachers.closed_loop import ClosedLoopScoring

INTERRUPTED_EXIT = 130  # shell convention for SIGINT
WIDE_CONSOLE = 160  # [columns] table width when stdout is not a terminal


def _mode(text: str) -> Mode:
    try:
        return Mode(text)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise ConfigError(f"--mode must be one of {choices}, got {text!r}") from None




def build_config(
    *,
    agent: str,
    routes: Path | None,
    subset: str | None,
    out: Path,
    agent_config: str,
    resume: bool,
    rerun_crashed: bool,
    seed: int,
    traffic: int,
    pedestrians: int,
    record: bool,
    penalties: str | None,
    mode: str,
    blocked_time_s: float | None,
    backend: BackendSpec | None = None,
    agent_timeout_s: float = DEFAULT_AGENT_TIMEOUT_S,
    closed_loop: bool = True,
    town: str | None = None,
    workers: int | None = None,
    ray: str | None = None,
    repetitions: int = 1,
    videos: str = "none",
) -> RunConfig:
    """The RunConfig of the command-line options (the only place defaults are overridden).
    Without --penalties the table follows the mode: Bench2Drive's own table in bench2drive mode
    (its statistics manager marks the min-speed penalty 'unused'), the 2.0 table otherwise.
    With ``town`` instead of ``routes`` the town's generated routes are written into ``out``
    (once every other option has been checked)."""
    if (routes is None) == (town is None):
        raise ConfigError(
            "give exactly one of --routes FILE (a leaderboard route XML) and --town T (routes "
            "generated for that town)"
        )
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if repetitions < 1:
        raise ConfigError(f"--repetitions must be >= 1, got {repetitions}")
    if blocked_time_s is not None:
        number(blocked_time_s, "--blocked-time", low=0.0, low_open=True)
    number(agent_timeout_s, "--agent-timeout", low=0.0, low_open=True)
    writable_dir(out, "--out")
    if penalties is None:
        penalties = DEFAULT_PENALTIES_BY_MODE.get(mode, "2.0")
    if penalties not in PENALTY_TABLES:
        raise ConfigError(
            f"--penalties must be one of {', '.join(PENALTY_TABLES)}, got {penalties!r}"
        )
    if routes is not None and not routes.is_file():
        raise ConfigError(f"route file {routes} does not exist; pass a leaderboard route XML")
    m = _mode(mode)
    try:
        policy = VideoPolicy(videos)
    except ValueError:
        choices = ", ".join(v.value for v in VideoPolicy)
        raise ConfigError(f"--videos must be one of {choices}, got {videos!r}") from None
    criteria = m.criteria()
    if blocked_time_s is not None:
        criteria = CriteriaConfig(
            blocked_time_s=blocked_time_s, tick_limit=criteria.tick_limit,
            min_speed_checkpoints=criteria.min_speed_checkpoints,
            speed_limit_mps=criteria.speed_limit_mps, route_deviation_m=criteria.route_deviation_m,
        )  # fmt: skip
    config = RunConfig.for_mode(
        m, agent=agent, out_dir=out, agent_config=agent_config,
        routes_file=routes if routes is not None else town_routes_path(out, str(town)),
        subset=subset, criteria=criteria, penalties=PENALTY_TABLES[penalties],
        traffic=TrafficConfig(vehicles=traffic, pedestrians=pedestrians), seed=seed,
        record=record, resume=resume, rerun_crashed=rerun_crashed,
        backend=backend or BackendSpec(), agent_timeout_s=agent_timeout_s,
        route_observers=(ClosedLoopScoring(),) if closed_loop else (),
        workers=workers, ray_address=ray, repetitions=repetitions,
        videos=policy,
    )  # fmt: skip
    if ray is not None:
        import_ray()  # not installed: one line saying how, before any file is written
    if town is not None:  # every option is valid: now the routes file may be written
        write_town_routes(town, config.routes_file, seed, resume)
    return config


DEFAULT_PENALTIES_BY_MODE = {"bench2drive": "bench2drive", "leaderboard": "2.0"}
"""The penalty table each --mode uses when --penalties is not given."""


def _infraction_text(rec: RouteRecord) -> str:
    """'red_light x2, min_speed_infractions x1' ('-' for none)."""
    parts = [f"{k} x{len(v)}" for k, v in rec.infractions.items() if v]
    return ", ".join(parts) or "-"


def route_table(records: tuple[RouteRecord, ...], route_ids: tuple[str, ...]) -> Table:
    """One row per route record: index, route id (``route_ids[index]``, the file's id), town,
    scenario, status, RC, IP, DS, infractions."""
    table = Table(title="Routes", show_lines=False)
    for col, justify in (
        ("#", "right"), ("route", "left"), ("town", "left"), ("scenario", "left"),
        ("status", "left"), ("RC %", "right"), ("IP", "right"), ("DS", "right"),
        ("infractions", "left"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for rec in records:
        s = rec.scores
        style = "green" if rec.status in ("Perfect", "Completed") else "red"
        table.add_row(
            str(rec.index), route_ids[rec.index], rec.town_name or "-", rec.scenario_name or "-",
            f"[{style}]{rec.status}[/]", f"{s.score_route:.2f}", f"{s.score_penalty:.3f}",
            f"{s.score_composed:.2f}", _infraction_text(rec),
        )  # fmt: skip
    return table


def unimplemented_line(records: tuple[RouteRecord, ...], route_ids: tuple[str, ...]) -> str | None:
    """'TYPE x2 (routes 3, 7); ...' for the scenario types routes ran without (None: none)."""
    by_type: dict[str, list[str]] = {}
    for rec in records:
        for t in rec.unimplemented_scenarios:
            by_type.setdefault(t, []).append(route_ids[rec.index])
    if not by_type:
        return None
    return "; ".join(
        f"{t} x{len(ids)} (routes {', '.join(dict.fromkeys(ids))})" for t, ids in sorted(by_type.items())
    )


def global_table(result: EvaluationResult) -> Table:
    """The global record: DS, RC, IP (means over all routes of the run, missing ones 0) and the
    Bench2Drive success rate."""
    glob: dict[str, Any] = result.global_record
    total = int(result.results["_checkpoint"]["progress"][1])
    recs = result.results["_checkpoint"]["records"]
    b2d = bench2drive_summary(recs, total)
    means = glob["scores_mean"]
    table = Table(title="Global record")
    for col in ("routes", "DS", "RC %", "IP", "success rate %", "entry status"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{len(recs)}/{total}", f"{means['score_composed']:.3f}", f"{means['score_route']:.3f}",
        f"{means['score_penalty']:.3f}", f"{b2d.success_rate_pct:.2f}",
        str(result.results["entry_status"]),
    )  # fmt: skip
    return table


def _pct(value: float | None, scale: float = 100.0) -> str:
    return "-" if value is None else f"{value * scale:.2f}"


def bench2drive_table(m: Bench2DriveMetrics) -> Table:
    """Bench2Drive's numbers as its tools print them: DS and SR over every route of the route
    file (unrun ones 0), efficiency, comfortness (smoothness), SR per ability and their mean."""
    table = Table(title=f"Bench2Drive (over all {m.total_routes} routes of the route file)")
    cols = ["routes", "DS", "SR %", "efficiency %", "comfortness %", *ABILITIES, "ability mean %"]
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    rates = m.abilities.rates
    table.add_row(
        f"{m.num_records}/{m.total_routes}", f"{m.driving_score:.2f}", _pct(m.success_rate),
        _pct(m.efficiency_pct, 1.0), _pct(m.smoothness), *(_pct(rates[a]) for a in ABILITIES),
        _pct(m.abilities.mean),
    )  # fmt: skip
    return table


def scenario_type_table(m: Bench2DriveMetrics) -> Table:
    """DS and SR per scenario type (the routes' first scenario), unrun routes counting 0."""
    table = Table(title="Per scenario type")
    for col in ("scenario type", "routes", "run", "DS", "SR %"):
        table.add_column(col, justify="left" if col == "scenario type" else "right")
    for name, t in m.scenario_types.items():
        table.add_row(name, str(t.routes), str(t.records), f"{t.driving_score:.2f}",
                      _pct(t.success_rate))  # fmt: skip
    return table


CLOSED_LOOP_HEADERS = (
    ("NC", "nc"), ("DAC", "dac"), ("DDC", "ddc"), ("TLC", "tlc"), ("EP", "ep"), ("TTC", "ttc"),
    ("LK", "lk"), ("HC", "hc"), ("EC", "ec"), ("C", "c"), ("PDMS", "pdms"), ("EPDMS", "epdms"),
)  # fmt: skip


def closed_loop_table(summary: ClosedLoopSummary) -> Table:
    """Closed-loop PDMS / EPDMS: every sub-score's mean over the routes with scored steps."""
    table = Table(title="Closed-loop PDMS / EPDMS (agent plans, hindsight)")
    table.add_column("routes", justify="right")
    table.add_column("steps", justify="right")
    for head, _ in CLOSED_LOOP_HEADERS:
        table.add_column(head, justify="right")
    table.add_row(
        str(summary.routes), str(summary.steps),
        *(f"{summary.means[key]:.3f}" for _, key in CLOSED_LOOP_HEADERS),
    )  # fmt: skip
    return table


@app.command("eval")
def eval_command(
    agent: str = typer.Option(..., "--agent", help="Registered agent name or agent .py file."),
    routes: Path | None = typer.Option(None, "--routes", help="Leaderboard route XML file."),
    town: str | None = typer.Option(
        None,
        "--town",
        help="Instead of --routes: routes generated for this town (written to OUT/routes_T.xml).",
    ),
    routes_subset: str | None = typer.Option(
        None, "--routes-subset", help="Route indices in file order, e.g. '0,3-5' (default all)."
    ),
    out: Path = typer.Option(Path("eval_out"), "--out", help="Output folder (results.json, ...)."),
    agent_config: str = typer.Option(
        "", "--agent-config", help="path_to_conf_file passed to the agent's setup()."
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from OUT/results.json when it exists."
    ),
    rerun_crashed: bool = typer.Option(
        False, "--rerun-crashed", help="On resume, also re-run routes whose simulation crashed."
    ),
    seed: int = typer.Option(0, "--seed", help="Run seed (each route's seed derives from it)."),
    traffic: int = typer.Option(30, "--traffic", min=0, help="Background vehicles per route."),
    pedestrians: int = typer.Option(20, "--pedestrians", min=0, help="Background pedestrians."),
    record: bool = typer.Option(False, "--record", help="Write a full recording per route."),
    penalties: str | None = typer.Option(
        None,
        "--penalties",
        help="Penalty table: 2.0, 2.1 or bench2drive (no min-speed). Default: bench2drive in "
        "bench2drive mode, 2.0 in leaderboard mode.",
    ),
    mode: str = typer.Option(
        "bench2drive", "--mode", help="bench2drive (60 s blocked, 4000 ticks) or leaderboard."
    ),
    blocked_time: float | None = typer.Option(
        None, "--blocked-time", help="Override the mode's agent-blocked timeout [s]."
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
    agent_timeout: float = typer.Option(
        DEFAULT_AGENT_TIMEOUT_S,
        "--agent-timeout",
        help="Time limit of each agent call (setup, run_step, destroy), seconds.",
    ),
    closed_loop: bool = typer.Option(
        True,
        "--closed-loop/--no-closed-loop",
        help="Score the agent's plans (or executed path) with PDMS / EPDMS every 0.5 s.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Worker processes running routes in parallel (default 1; with --ray: actors, "
        "default one per cluster CPU). Results do not depend on it.",
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Run routes on a Ray cluster: its address, or 'auto' to start a local one "
        "(pip install 'harness[ray]').",
    ),
    repetitions: int = typer.Option(
        1, "--repetitions", help="Run every route this many times (ids ..._rep<i>, own seeds)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    videos: str = typer.Option(
        "none",
        "--videos",
        help="Episode videos under OUT/videos/: failed (routes not completed), all or none "
        "(mp4 with imageio-ffmpeg installed, else gif).",
    ),
) -> None:
    """Evaluate an agent on a route file, leaderboard style (exit 0 even when routes fail)."""
    config = build_config(
        agent=agent, routes=routes, subset=routes_subset, out=out, agent_config=agent_config,
        resume=resume, rerun_crashed=rerun_crashed, seed=seed, traffic=traffic,
        pedestrians=pedestrians, record=record, penalties=penalties, mode=mode,
        blocked_time_s=blocked_time,
        backend=backend_options.backend_spec(
            backend, carla_host, carla_port, carla_tm_port, carla_timeout, carla_launch,
            carla_root, carla_gpu, ego_blueprint,
        ),
        agent_timeout_s=agent_timeout, closed_loop=closed_loop, town=town, workers=workers,
        ray=ray, repetitions=repetitions, videos=videos,
    )  # fmt: skip
    console = Console()
    if not console.is_terminal:  # piped / captured: do not squeeze the tables to 80 columns
        console = Console(width=WIDE_CONSOLE)
    try:
        result = run_evaluation(config, progress=sys.stderr.isatty() and not quiet)
    except KeyboardInterrupt:
        Console(stderr=True).print(
            f"interrupted; {config.results_path} holds the finished routes; run the same "
            "command again to resume"
        )
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if result.privileged:
        console.print("[yellow]privileged agent: not a leaderboard-eligible result[/]")
    route_ids = tuple(r.id for r in result.routes)
    console.print(route_table(result.records, route_ids))
    missing = unimplemented_line(result.records, route_ids)
    if missing:
        console.print(f"[yellow]scenario types not implemented, routes ran without them[/]: {missing}")
    console.print(global_table(result))
    if result.bench2drive is not None:
        console.print(bench2drive_table(result.bench2drive))
        if len(result.bench2drive.scenario_types) > 1:
            console.print(scenario_type_table(result.bench2drive))
    if closed_loop:
        summary = closed_loop_summary(config.out_dir, (r.route_id for r in result.records))
        if summary.routes:
            console.print(closed_loop_table(summary))
    console.print(f"results: {result.results_path}")
    console.print(f"report: {write_report(config.out_dir)}")
