"""`harness demo`: the main job end to end on the embedded default (built-in town and routes).

1. the built-in town and a check of its route file (leaderboard rules);
2. closed-loop evaluation of the privileged expert on the built-in routes, with their scenarios
   and background traffic, scored like Bench2Drive: ``results.json`` in the leaderboard format
   and per-step Parquet and report.html (``harness eval``'s code path);
3. the Drive-JEPA planner (``agents/drivejepa_agent.py`` with its committed checkpoint
   ``agents/drivejepa/model.pt``: camera, speedometer, IMU, GNSS, no privileged input) on the same
   routes, scored the same way, with its closed-loop PDMS / EPDMS;
4. top-down replays (GIF) of the first route, the expert's and the planner's;
5. a small teacher dataset (``harness gen-teachers``'s code path): scenes from expert drives,
   candidates scored with PDMS/EPDMS, K diverse teachers per scene.
"""

from __future__ import annotations

import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.io import atomic_write_json
from harness.maps import load_town
from harness.report.page import write_report
from harness.routes.check import check_route_file, unimplemented_by_type
from harness.runner.closed_loop import closed_loop_summary
from harness.runner.config import Mode, RunConfig
from harness.runner.evaluation import run_evaluation
from harness.sim.replay import render_topdown
from harness.world.backend import TrafficConfig
from harness.world.recording import load_recording
from scenarios.registry import SCENARIO_CLASSES

log = logging.getLogger(__name__)

BUILTIN_TOWN = "Harness01"
DEMO_TEACHER_SCENES = 24  # scenes in the demo's teacher dataset
DEMO_VOCABULARY_SIZE = 128  # k-means centres of the demo's vocabulary
DRIVEJEPA_CHECKPOINT = Path(__file__).resolve().parents[1] / "agents" / "drivejepa" / "model.pt"


def builtin_route_file() -> Path:
    """The route file shipped with the package for the built-in town."""
    return Path(str(resources.files("scenarios") / "routes" / "harness01_routes.xml"))


def _evaluate(agent: str, out: Path, route_file: Path, routes: int, vehicles: int,
              pedestrians: int, seed: int, console: Console) -> dict[str, Any]:  # fmt: skip
    """One closed-loop evaluation of ``agent`` on the first ``routes`` routes (``harness eval``'s
    code path, Bench2Drive mode, recorded); prints its table; its results and global scores."""
    from teachers.closed_loop import ClosedLoopScoring  # the scorer of the agent's plans

    config = RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent=agent, routes_file=route_file, out_dir=out,
        subset=f"0-{routes - 1}", traffic=TrafficConfig(vehicles=vehicles, pedestrians=pedestrians),
        seed=seed, record=True, resume=False, route_observers=(ClosedLoopScoring(),),
    )  # fmt: skip
    result = run_evaluation(config, progress=True)
    table = Table("route", "scenarios", "status", "RC", "IP", "DS")
    for rec in result.records:
        s = rec.scores
        table.add_row(str(rec.route_id), str(rec.scenario_name or "-"), rec.status,
                      f"{s.score_route:.1f}", f"{s.score_penalty:.3f}", f"{s.score_composed:.1f}")  # fmt: skip
    console.print(table)
    g = result.global_record["scores_mean"]
    console.print(f"{agent}: driving score {g['score_composed']:.1f}, route completion "
                  f"{g['score_route']:.1f}, results: {result.results_path}")  # fmt: skip
    closed = closed_loop_summary(out, (r.route_id for r in result.records)).means
    if closed:
        console.print(f"{agent}: closed-loop PDMS {closed['pdms']:.3f}, EPDMS {closed['epdms']:.3f} "
                      "of its plans")  # fmt: skip
    console.print(f"report: {write_report(out)}")
    return {"results": str(result.results_path), "global": g, "closed_loop": closed}


def run_demo(out_dir: Path, routes: int = 2, vehicles: int = 30, pedestrians: int = 20, seed: int = 0,
             console: Console | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the demo into out_dir and return its summary (also written to out_dir/summary.json)."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    route_file = builtin_route_file()
    town = load_town(BUILTIN_TOWN)
    console.rule("[bold]1. town and routes")
    console.print(f"{town.name}: {town.road_count} roads, {town.lanes.n_lanes} lanes, "
                  f"{len(town.junctions)} junctions, {town.signals.lights_count} traffic lights")  # fmt: skip
    report = check_route_file(route_file, implemented=frozenset(SCENARIO_CLASSES))
    console.print(
        f"{route_file.name}: {len(report.routes)} routes, {len(report.problems)} problems"
    )
    for p in report.problems:
        console.print(f"  route {p.route_id} {p.where}: {p.message}")
    for name, (n, ids) in unimplemented_by_type(report.unimplemented).items():
        console.print(
            f"  [yellow]{name}[/] x{n} (routes {', '.join(ids)}): not implemented, those routes "
            "run without it"
        )

    console.rule("[bold]2. closed-loop evaluation (expert, Bench2Drive rules)")
    expert = _evaluate("expert", out_dir / "eval", route_file, routes, vehicles, pedestrians,
                       seed, console)  # fmt: skip

    console.rule("[bold]3. closed-loop evaluation (DriveJEPA planner, camera only)")
    planner: dict[str, Any] | None = None
    if DRIVEJEPA_CHECKPOINT.is_file():
        planner = _evaluate("drivejepa", out_dir / "eval_drivejepa", route_file, routes, vehicles,
                            pedestrians, seed, console)  # fmt: skip
    else:
        console.print(f"[yellow]no checkpoint at {DRIVEJEPA_CHECKPOINT}[/]: `make drivejepa-model` "
                      "makes it; skipped")  # fmt: skip

    console.rule("[bold]4. replays")
    replays = {}
    for name, folder in (("expert", out_dir / "eval"), ("drivejepa", out_dir / "eval_drivejepa")):
        episodes = sorted((folder / "recordings").glob("*.parquet"))
        if episodes:
            gif = out_dir / ("route_0.gif" if name == "expert" else f"route_0_{name}.gif")
            render_topdown(load_recording(episodes[0]), town, gif, fps=10.0, every=4, size_px=384)
            console.print(f"wrote {gif}")
            replays[name] = str(gif)

    console.rule("[bold]5. teachers (PDMS/EPDMS, K diverse per scene)")
    from teachers.generate import GenerateConfig, generate

    summary_t = generate(GenerateConfig(
        town=BUILTIN_TOWN, out=out_dir / "teachers", routes_file=route_file, max_routes=1,
        max_scenes=DEMO_TEACHER_SCENES, vocabulary_size=DEMO_VOCABULARY_SIZE, seed=seed,
        command_line=("harness", "demo"),
    ))  # fmt: skip
    console.print({k: v for k, v in summary_t.items() if isinstance(v, int | float | str)})

    summary = {
        "town": town.name, "route_file": str(route_file), "route_problems": len(report.problems),
        "evaluation": expert, "drivejepa": planner,
        "replays": replays, "teachers": str(out_dir / "teachers"),
        "wall_s": round(time.perf_counter() - t_start, 1),
    }  # fmt: skip
    atomic_write_json(out_dir / "summary.json", summary, indent=2, default=str)
    console.print(f"wrote {out_dir}/summary.json in {summary['wall_s']} s")
    return summary
