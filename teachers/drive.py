"""Drive a town's routes with the expert in the embedded simulator and record the episodes.

With a loadable leaderboard agent (``agent_name``, default the privileged ``expert``) each route
runs the leaderboard lifecycle (global plan -> set_world for privileged agents -> setup ->
sensors -> run_step per tick) and the agent's ``planned_trajectory()`` is stored per tick beside
the recording (``<route>.plans.parquet``). When the agent cannot be loaded (the expert is not in
this tree yet) the privileged :class:`RouteFollower` drives and no plans are stored; the log
says which. Recordings are written atomically and existing ones are reused (resume).
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.leaderboard.agent import LiveWorldView, checked_plan, is_privileged, run_agent_step
from harness.leaderboard.loader import AgentLoadError, load_agent
from harness.maps.town import Town
from harness.planning.route_follower import RouteFollower
from harness.routes.model import RouteConfig
from harness.routes.planner import PlannedRoute, global_plan, plan_route
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.sim.warmup import warm_up_kernels
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S
from teachers.scenes import HORIZON_STEPS, plans_path, write_plans

log = logging.getLogger(__name__)

MIN_DRIVE_SPEED_MPS = 2.0  # route timeout assumes at least this average speed [m/s]
EXTRA_DRIVE_S = 40.0  # plus this much time for lights and traffic [s]
END_RADIUS_M = 10.0  # the drive ends once the ego is this close to the route's end [m]
STOPPED_MPS = 0.1  # ... and slower than this [m/s]
GLOBAL_PLAN_SPACING_M = 50.0  # Bench2Drive's global plan spacing [m]
TRAFFIC_VEHICLES = 30  # background vehicles per episode
TRAFFIC_PEDESTRIANS = 20  # background pedestrians per episode
ROUTE_FOLLOWER = "route_follower"  # agent name selecting the built-in privileged follower


def episode_path(out_dir: Path, route_id: str) -> Path:
    """The recording file of a route (route ids made file-name safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", route_id)
    return out_dir / f"route_{safe}.parquet"


class _Driver:
    """One route's controller: a leaderboard agent or the RouteFollower fallback."""

    def __init__(
        self, agent_cls: type[Any] | None, planned: PlannedRoute, town: Town, sim: EmbeddedSimulator
    ) -> None:
        self.agent: Any = None
        self.follower: RouteFollower | None = None
        self._state: WorldState | None = None
        if agent_cls is None:
            self.follower = RouteFollower.for_route(planned, town)
            return
        self.agent = agent_cls()
        gp = global_plan(planned, town, GLOBAL_PLAN_SPACING_M)
        self.agent.set_global_plan(gp.gps, gp.world)
        if is_privileged(self.agent):
            self.agent.set_world(LiveWorldView(source=self._current, town=town))
        self.agent.setup("")

    def _current(self) -> WorldState:
        assert self._state is not None
        return self._state

    def sensors(self) -> tuple[dict[str, Any], ...]:
        return tuple(self.agent.sensors()) if self.agent is not None else ()

    def step(self, sim: EmbeddedSimulator, state: WorldState) -> tuple[VehicleControl, Any]:
        """Control for this tick and the agent's plan (40, 3) or None."""
        self._state = state
        if self.follower is not None:
            return self.follower.control(state, SIM_DT_S), None
        control = run_agent_step(self.agent, sim.sensor_data(), state.time_s)
        plan = checked_plan(getattr(self.agent, "planned_trajectory", lambda: None)())
        if plan is not None and len(plan) >= HORIZON_STEPS:
            return control, plan[:HORIZON_STEPS]
        return control, None

    def close(self) -> None:
        if self.agent is not None:
            self.agent.destroy()


def resolve_driver(agent_name: str) -> type[Any] | None:
    """The agent class, or None (RouteFollower) for ROUTE_FOLLOWER or when it cannot be loaded."""
    if agent_name == ROUTE_FOLLOWER:
        log.info("driving with the RouteFollower")
        return None
    try:
        cls, _ = load_agent(agent_name)
    except (AgentLoadError, ImportError) as exc:
        log.warning("agent %r not usable (%s); driving with the RouteFollower", agent_name, exc)
        return None
    log.info("driving with agent %r (%s)", agent_name, cls.__name__)
    return cls


def drive_route(
    town: Town, route: RouteConfig, agent_cls: type[Any] | None, path: Path, seed: int
) -> Path:
    """Drive one route to its end (or its time limit) and write the recording (+ plans)."""
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    driver = _Driver(agent_cls, planned, town, sim)
    start = planned.xy[0]
    spec = EpisodeSpec(
        town=town.name,
        ego_start=(float(start[0]), float(start[1]), 0.0, float(planned.yaw_rad[0])),
        route_xy=planned.xy,
        sensors=driver.sensors(),
        traffic=TrafficConfig(
            vehicles=TRAFFIC_VEHICLES, pedestrians=TRAFFIC_PEDESTRIANS, seed=seed
        ),
        seed=seed,
        record=True,
    )
    state = sim.reset(spec)
    limit = int((planned.s_m[-1] / MIN_DRIVE_SPEED_MPS + EXTRA_DRIVE_S) / SIM_DT_S)
    end = planned.xy[-1]
    frames: list[int] = []
    plans: list[NDArray[np.float64]] = []
    try:
        for _ in range(limit):
            control, plan = driver.step(sim, state)
            if plan is not None:
                frames.append(state.frame)
                plans.append(plan)
            state = sim.tick(control)
            a = state.actors
            if (
                np.hypot(a.x[0] - end[0], a.y[0] - end[1]) < END_RADIUS_M
                and a.speed[0] < STOPPED_MPS
            ):
                break
    finally:
        driver.close()
    if plans:
        write_plans(plans_path(path), frames, plans)
    meta = {
        "route_id": route.id,
        "route_keypoints": np.asarray(route.keypoints).tolist(),
        "driver": agent_cls.__name__ if agent_cls is not None else "RouteFollower",
    }
    out = sim.write_recording(path, extra_meta=meta)
    sim.close()
    return out


def _drive_task(town_name: str, route: RouteConfig, agent_name: str, path: Path, seed: int) -> Path:
    """Pool entry: resolve the driver and drive one route in a worker process."""
    from harness.maps import load_town

    return drive_route(load_town(town_name), route, resolve_driver(agent_name), path, seed)


def drive_routes(
    town: Town,
    routes: Sequence[RouteConfig],
    agent_name: str,
    out_dir: str | Path,
    seed: int = 0,
    workers: int = 1,
) -> list[Path]:
    """Record one episode per route under ``out_dir`` (existing recordings are kept; route k
    uses seed + k) and return their paths in route order; ``workers > 1`` drives routes in a
    process pool."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [episode_path(out, r.id) for r in routes]
    todo = [(k, r) for k, r in enumerate(routes) if not paths[k].is_file()]
    if not todo:
        return paths
    if workers > 1 and len(todo) > 1:
        warm_up_kernels()  # compile once here; forked workers inherit the compiled kernels
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(todo)), ctx) as pool:
            futs = [
                pool.submit(_drive_task, town.name, r, agent_name, paths[k], seed + k)
                for k, r in todo
            ]
            for f in futs:
                f.result()
        return paths
    agent_cls = resolve_driver(agent_name)
    for k, route in todo:
        drive_route(town, route, agent_cls, paths[k], seed + k)
    return paths
