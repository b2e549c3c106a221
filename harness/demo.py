"""`harness demo`: the main job end to end on the embedded default (built-in town and routes).

Steps: list towns; check the built-in route file; drive its routes closed loop with background
traffic and the privileged route follower; record each episode to Parquet and render a replay.
Later stages (teachers, evaluation) append their steps here as they land.
"""

from __future__ import annotations

import json
import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.maps import load_town
from harness.routes.check import check_route_file
from harness.routes.planner import plan_route
from harness.routes.xml_io import read_routes
from harness.sim.backend import EpisodeSpec, TrafficConfig
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.sim.lanefollow import RouteFollower
from harness.sim.recording import load_recording
from harness.sim.replay import render_topdown
from harness.sim.state import SIM_DT_S

log = logging.getLogger(__name__)

BUILTIN_TOWN = "Harness01"
MAX_TICKS = 4000  # [ticks] 200 s per demo episode at most (the Bench2Drive tick limit)
END_DISTANCE_M = 3.0  # [m] an episode ends when the ego is this close to the route's end


def builtin_route_file() -> Path:
    """The route file shipped with the package for the built-in town."""
    return Path(str(resources.files("scenarios") / "routes" / "harness01_routes.xml"))


def run_demo(out_dir: Path, routes: int = 2, vehicles: int = 30, pedestrians: int = 20, seed: int = 0,
             console: Console | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the demo into out_dir and return its summary (also written to out_dir/summary.json)."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    route_file = builtin_route_file()
    town = load_town(BUILTIN_TOWN)
    console.rule("[bold]1. town")
    console.print(f"{town.name}: {town.road_count} roads, {town.lanes.n_lanes} lanes, "
                  f"{len(town.junctions)} junctions, {town.signals.lights_count} traffic lights")  # fmt: skip
    console.rule("[bold]2. routes check")
    report = check_route_file(route_file)
    console.print(
        f"{route_file.name}: {len(report.routes)} routes, {len(report.problems)} problems"
    )
    for p in report.problems:
        console.print(f"  route {p.route_id} {p.where}: {p.message}")
    console.rule("[bold]3. closed-loop episodes")
    episodes = []
    table = Table(
        "route", "length m", "ticks", "sim s", "wall s", "x real time", "events", "replay"
    )
    for route in read_routes(route_file)[:routes]:
        planned = plan_route(town, route.keypoints, route.id)
        ep = _drive(planned, town, out_dir, vehicles, pedestrians, seed)
        episodes.append(ep)
        table.add_row(route.id, f"{planned.length_m:.0f}", str(ep["ticks"]), f"{ep['sim_s']:.1f}",
                      f"{ep['wall_s']:.1f}", f"{ep['sim_s'] / ep['wall_s']:.0f}",
                      ", ".join(f"{k}:{v}" for k, v in ep["events"].items()) or "-", ep["replay"])  # fmt: skip
    console.print(table)
    summary = {"town": town.name, "route_file": str(route_file), "route_problems": len(report.problems),
               "episodes": episodes}  # fmt: skip
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out_dir / "summary.json")
    console.print(f"wrote {out_dir}/summary.json")
    return summary


def _drive(
    planned: Any, town: Any, out_dir: Path, vehicles: int, pedestrians: int, seed: int
) -> dict[str, Any]:
    sim = EmbeddedSimulator()
    start = planned.xy[0]
    state = sim.reset(EpisodeSpec(
        town=town.name, ego_start=(float(start[0]), float(start[1]), 0.0, float(planned.yaw_rad[0])),
        route_xy=planned.xy, traffic=TrafficConfig(vehicles=vehicles, pedestrians=pedestrians, seed=seed),
        seed=seed, record=True,
    ))  # fmt: skip
    ego = RouteFollower.for_route(planned, town)
    events: dict[str, int] = {}
    t0 = time.perf_counter()
    ticks = 0
    while ticks < MAX_TICKS:
        state = sim.tick(ego.control(state, SIM_DT_S))
        ticks += 1
        for e in state.events:
            events[e.kind.name] = events.get(e.kind.name, 0) + 1
        if planned.length_m - ego._s[ego.index] < END_DISTANCE_M:
            break
    wall = time.perf_counter() - t0
    episode = out_dir / f"route_{planned.route_id}.parquet"
    sim.write_recording(episode, {"route_id": planned.route_id})
    replay = out_dir / f"route_{planned.route_id}.gif"
    render_topdown(load_recording(episode), town, replay, fps=10.0, every=4, size_px=384)
    return {"route_id": planned.route_id, "ticks": ticks, "sim_s": ticks * SIM_DT_S, "wall_s": wall,
            "completed_m": float(ego._s[ego.index]), "route_m": planned.length_m, "events": events,
            "episode": str(episode), "replay": str(replay)}  # fmt: skip
