"""Drive a town's routes with the expert (by default in the embedded simulator) through the
runner's episode loop and record the episodes.

The route's scenarios are built and triggered exactly as ``harness eval`` builds them
(:func:`harness.runner.route_runner.build_route_scenario` as the loop's world hook, the route
criteria fed every tick, the ego starting where a scenario wants it) and the drive ends where
evaluation would end it (route completed, blocked, route timeout, ...) or when the ego arrived;
which scenario was active at every tick, whether it had triggered, and the actor ids every
scenario owned then go to ``<route>.scenarios.parquet``. A drive that ends early (a scenario
blocks the ego, a simulator or scenario error) still writes what it recorded, so its scenes are
cut as any other.

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

from harness.leaderboard.agent import is_privileged
from harness.leaderboard.criteria import RouteGeometry, town_lane_check
from harness.leaderboard.loader import AgentLoadError, load_agent
from harness.leaderboard.route_criteria import CriteriaConfig, RouteCriteria
from harness.maps.town import Town
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.runner.backends import BackendSpec, make_backend, prepare_for_workers
from harness.runner.drivers import AgentDriver, FollowerDriver
from harness.runner.episode import (
    EpisodeError,
    Tick,
    WorldHook,
    after_ticks,
    any_of,
    ego_arrived,
    run_episode,
)
from harness.runner.observers import Recorder
from harness.runner.route_runner import build_route_scenario, scenario_ego_start
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.state import WorldState
from harness.world.timing import HORIZON_STEPS, SIM_DT_S
from scenarios.route_scenario import RouteScenario
from teachers.episode_scenes import ScenarioTrack, plans_path, scenarios_path, write_plans

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


class PlanLog:
    """Observer: the driver's plan at every tick that had one of at least HORIZON_STEPS poses,
    keyed by the frame the plan was made at (the state the driver saw)."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.plans: list[NDArray[np.float64]] = []

    def on_start(self, state: WorldState) -> None:
        pass

    def on_tick(self, tick: Tick) -> None:
        if tick.plan is not None and len(tick.plan) >= HORIZON_STEPS:
            self.frames.append(tick.before.frame)
            self.plans.append(tick.plan[:HORIZON_STEPS])


class CriteriaFeed:
    """Observer: the route criteria see every new state (scenarios read and switch them, and
    their verdict ends the drive as it ends an evaluated route)."""

    def __init__(self, criteria: RouteCriteria) -> None:
        self.criteria = criteria

    def on_start(self, state: WorldState) -> None:
        pass

    def on_tick(self, tick: Tick) -> None:
        self.criteria.update(tick.state)


class ScenarioLog:
    """Observer: per recorded state (the reset state, then every tick) the route scenario active
    then - the latest triggered one still running, else the nearest built one not yet
    triggered, else none - and the actor ids every scenario owns then."""

    def __init__(self, scenario: RouteScenario) -> None:
        self.scenario = scenario
        self.frames: list[int] = []
        self.types: list[str] = []
        self.names: list[str] = []
        self.triggered: list[bool] = []
        self.actor_ids: list[list[int]] = []

    def _note(self, state: WorldState) -> None:
        running = [s for s in self.scenario.scenarios if s.built and not s.finished]
        fired = [s for s in running if s.triggered]
        waiting = [s for s in running if not s.triggered]
        active = (
            max(fired, key=lambda s: s.trigger_s_m)
            if fired
            else min(waiting, key=lambda s: s.trigger_s_m, default=None)
        )
        self.frames.append(int(state.frame))
        self.types.append(active.config.type if active is not None else "")
        self.names.append(active.config.name if active is not None else "")
        self.triggered.append(bool(active is not None and active.triggered))
        self.actor_ids.append(sorted(a for s in self.scenario.scenarios for a in s.pool.alive))

    def on_start(self, state: WorldState) -> None:
        self._note(state)

    def on_tick(self, tick: Tick) -> None:
        self._note(tick.state)

    def track(self) -> ScenarioTrack:
        """What was logged, as the episode's scenario track."""
        return ScenarioTrack(
            frames=np.asarray(self.frames, dtype=np.int64),
            types=tuple(self.types),
            names=tuple(self.names),
            triggered=np.asarray(self.triggered, dtype=bool),
            actor_ids=tuple(np.asarray(a, dtype=np.int64) for a in self.actor_ids),
        )


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
    town: Town,
    route: RouteConfig,
    agent_cls: type[Any] | None,
    path: Path,
    seed: int,
    backend: BackendSpec | None = None,
    extra_hooks: Sequence[WorldHook] = (),
    agent_config: str = "",
    max_ticks: int | None = None,
) -> Path:
    """Drive one route with its scenarios until evaluation would end it, the ego arrived or
    the time limit, and write the recording (+ plans, + the scenario track). ``extra_hooks``
    act on the world after the route's scenarios (e.g. control perturbations of data drives);
    ``agent_config`` is the agent's setup file; ``max_ticks`` caps the time limit [ticks]."""
    planned = plan_route(town, route.keypoints, route.id)
    sim = make_backend(backend or BackendSpec(), privileged=is_privileged(agent_cls))
    criteria = RouteCriteria(
        RouteGeometry.from_planned(planned), CriteriaConfig.bench2drive(), town_lane_check(town),
        route_id=route.id,
    )
    scenario = build_route_scenario(sim, town, planned, route, criteria, seed)
    driver: AgentDriver | FollowerDriver
    if agent_cls is None:
        driver = FollowerDriver(RouteFollower.for_route(planned, town))
        sensors: tuple[dict[str, Any], ...] = ()
    else:
        driver = AgentDriver.set_up(
            agent_cls, planned, town, plan_spacing_m=GLOBAL_PLAN_SPACING_M, agent_config=agent_config,
            world_state=lambda: sim.state,
        )  # fmt: skip
        sensors = tuple(driver.sensors())
    spec = EpisodeSpec(
        town=town.name,
        ego_start=scenario_ego_start(planned, scenario),
        route_xy=planned.xy,
        sensors=sensors,
        traffic=TrafficConfig(
            vehicles=TRAFFIC_VEHICLES, pedestrians=TRAFFIC_PEDESTRIANS, seed=seed
        ),
        seed=seed,
    )
    limit = int((planned.s_m[-1] / MIN_DRIVE_SPEED_MPS + EXTRA_DRIVE_S) / SIM_DT_S)
    if max_ticks is not None:
        limit = min(limit, max_ticks)
    stop = any_of(
        after_ticks(limit),
        ego_arrived(planned.xy[-1], END_RADIUS_M, STOPPED_MPS),
        lambda _s, _t: criteria.done[0],
    )
    recorder, plans, track = Recorder.for_spec(spec), PlanLog(), ScenarioLog(scenario)
    ended = ""
    try:
        summary = run_episode(
            sim, spec, driver, stop, hooks=(scenario, *extra_hooks),
            observers=(CriteriaFeed(criteria), recorder, plans, track),
        )  # fmt: skip
        if criteria.done[0]:
            ended = criteria.done[1]
        else:
            ended = "time limit" if summary.ticks >= limit else "arrived"
    except EpisodeError as err:  # the drive so far is still good for scenes
        ended = f"{err.phase.value} error: {err.__cause__ or err}"
        log.warning("route %s: drive ended early (%s); keeping %d ticks", route.id, ended,
                    max(len(recorder) - 1, 0))  # fmt: skip
    finally:
        scenario.cleanup()
        if isinstance(driver, AgentDriver):
            driver.close()
    if plans.plans:
        write_plans(plans_path(path), plans.frames, plans.plans)
    track.track().write(scenarios_path(path))
    meta = {
        "route_id": route.id,
        "route_keypoints": np.asarray(route.keypoints).tolist(),
        "driver": agent_cls.__name__ if agent_cls is not None else "RouteFollower",
        "ended": ended,
        "scenarios": [{"name": st.name, "type": st.type, "triggered": st.triggered,
                       "finished": st.finished, "timed_out": st.timed_out,
                       "skipped": st.skipped} for st in scenario.status()],
    }  # fmt: skip
    out = recorder.write(path, extra_meta=meta)
    sim.close()
    return out


def _drive_task(
    town_name: str,
    route: RouteConfig,
    agent_name: str,
    path: Path,
    seed: int,
    backend: BackendSpec,
) -> Path:
    """Pool entry: resolve the driver and drive one route in a worker process."""
    from harness.maps import load_town

    return drive_route(load_town(town_name), route, resolve_driver(agent_name), path, seed, backend)


def drive_routes(
    town: Town,
    routes: Sequence[RouteConfig],
    agent_name: str,
    out_dir: str | Path,
    seed: int = 0,
    workers: int = 1,
    backend: BackendSpec | None = None,
) -> list[Path]:
    """Record one episode per route under ``out_dir`` (existing recordings are kept; route k
    uses seed + k) and return their paths in route order; ``workers > 1`` drives routes in a
    process pool."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = backend or BackendSpec()
    paths = [episode_path(out, r.id) for r in routes]
    todo = [(k, r) for k, r in enumerate(routes) if not paths[k].is_file()]
    if not todo:
        return paths
    if workers > 1 and len(todo) > 1:
        prepare_for_workers(spec)  # e.g. compile once here; forked workers inherit the kernels
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(todo)), ctx) as pool:
            futs = [
                pool.submit(_drive_task, town.name, r, agent_name, paths[k], seed + k, spec)
                for k, r in todo
            ]
            for f in futs:
                f.result()
        return paths
    agent_cls = resolve_driver(agent_name)
    for k, route in todo:
        drive_route(town, route, agent_cls, paths[k], seed + k, spec)
    return paths
