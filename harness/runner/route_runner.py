"""One route end to end, as the leaderboard evaluator runs it: plan the route, hand the agent its
global plan, set the agent up, reset the simulator with the agent's sensors, build the route's
scenarios, then tick (sensor_data -> run_step -> [scenario perturb] -> tick -> scenario tick ->
criteria update) until the criteria say the route is over; the outcome becomes a leaderboard
route record.

This module is the runner boundary of the error policy: an exception from the agent ends the
route as "Failed - Agent crashed" (or "Agent couldn't be set up"), one from the simulator,
the town / route planning or the scenarios as "Failed - Simulation crashed"; the traceback goes
to the DEBUG log, one line to WARNING, and the evaluation goes on with the next route. Invalid
sensors (SensorConfigError) and KeyboardInterrupt are not caught: they stop the run.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import SensorConfigError
from harness.leaderboard.agent import LiveWorldView, as_vehicle_control, checked_plan, is_privileged
from harness.leaderboard.criteria import RouteGeometry, town_lane_check
from harness.leaderboard.outcome import (
    FAILURE_AGENT_INIT,
    FAILURE_AGENT_RUNTIME,
    FAILURE_SIMULATION,
    RouteOutcome,
    failed_status,
)
from harness.leaderboard.results import RouteRecord, leaderboard_route_id, record_from_outcome
from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps import load_town
from harness.routes.model import RouteConfig
from harness.routes.planner import global_plan, plan_route
from harness.runner.config import RunConfig
from harness.runner.steps import StepLog
from harness.sim.embedded.simulator import EmbeddedConfig, EmbeddedSimulator
from harness.sim.sensors.spec import validate_sensors
from harness.world.backend import EpisodeSpec, SimulatorBackend

log = logging.getLogger(__name__)

STEPS_DIR = "steps"  # OUT/steps/<save_name>.parquet: per-step metrics of every route
RECORDINGS_DIR = "recordings"  # OUT/recordings/<save_name>.parquet: full episode recordings

BackendFactory = Callable[[bool], SimulatorBackend]
"""Builds a fresh backend for one route; the argument says whether the agent is privileged."""


@dataclass(frozen=True)
class RouteJob:
    """One route to run: ``index`` its record index in this run (position in the subset),
    ``file_index`` its position in the route file, ``seed`` its episode seed."""

    index: int
    file_index: int
    route: RouteConfig
    seed: int

    @property
    def save_name(self) -> str:
        """The record's route id, also the stem of the route's output files."""
        return leaderboard_route_id(self.route.id)


@dataclass(frozen=True)
class RouteResult:
    """What running one route produced: the results record, the criteria outcome, the agent's
    sensor types, and the output files written (None when none was)."""

    record: RouteRecord
    outcome: RouteOutcome
    sensors: tuple[str, ...]
    steps_path: Path | None
    recording_path: Path | None


class _RouteFailure(Exception):
    """Internal: ends the route loop with a leaderboard failure reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def _boundary(reason: str, what: str, route_id: str) -> Iterator[None]:
    """Turn any exception of ``what`` (agent / simulator / scenario code) into a route failure
    with ``reason``: the traceback at DEBUG, one line at WARNING. Invalid sensors pass through
    (they stop the run); KeyboardInterrupt is no Exception and passes too."""
    try:
        yield
    except SensorConfigError:
        raise
    except Exception as exc:  # noqa: BLE001  (the runner boundary: any failure becomes a status)
        log.debug("route %s: %s failed", route_id, what, exc_info=True)
        log.warning(
            "route %s: %s raised %s: %s -> Failed - %s",
            route_id, what, type(exc).__name__, exc, reason,
        )  # fmt: skip
        raise _RouteFailure(reason) from exc


def embedded_backend(privileged: bool) -> SimulatorBackend:
    """A fresh embedded simulator (privileged agents may also declare the BEV sensor)."""
    return EmbeddedSimulator(EmbeddedConfig(privileged_sensors=privileged))


_SCENARIO_WARNED: set[str] = set()


def route_scenario_class() -> tuple[type | None, type | None]:
    """(RouteScenario, ScenarioContext) from the ``scenarios`` package, or (None, None) when the
    scenario framework is not importable (routes then run without scenarios; logged once)."""
    try:
        scen = importlib.import_module("scenarios.route_scenario")
        ctx = importlib.import_module("scenarios.context")
        return scen.RouteScenario, ctx.ScenarioContext
    except (ImportError, AttributeError) as exc:
        key = f"{type(exc).__name__}: {exc}"
        if key not in _SCENARIO_WARNED:
            _SCENARIO_WARNED.add(key)
            log.warning("scenario framework not available (%s); routes run without scenarios", key)
        return None, None


def route_seed(run_seed: int, file_index: int) -> int:
    """The episode seed of the route at ``file_index`` of the file in a run seeded ``run_seed``
    (independent of the subset and of the order routes run in, so resumed runs match)."""
    return int(np.random.SeedSequence([run_seed, file_index]).generate_state(1)[0])


def keypoint_length_m(route: RouteConfig) -> float:
    """Length [m] of the keypoint polyline (the route length when the route cannot be planned)."""
    kp = route.keypoints[:, :2]
    return float(np.linalg.norm(np.diff(kp, axis=0), axis=1).sum()) if len(kp) > 1 else 0.0


def scenario_name(route: RouteConfig) -> str | None:
    """The Bench2Drive record's scenario name: the route's scenario types ('+'-joined)."""
    return "+".join(s.type for s in route.scenarios) or None


class RouteRunner:
    """Runs routes one at a time with a fresh agent instance and a fresh backend each."""

    def __init__(
        self,
        config: RunConfig,
        agent_cls: type,
        backend_factory: BackendFactory = embedded_backend,
    ) -> None:
        self.config = config
        self.agent_cls = agent_cls
        self.privileged = is_privileged(agent_cls)
        self.backend_factory = backend_factory

    # ------------------------------------------------------------------ public
    def run(self, job: RouteJob) -> RouteResult:
        """Run one route and return its record (also on failure; see the module docstring)."""
        wall0 = time.monotonic()
        route = job.route
        try:
            with _boundary(FAILURE_SIMULATION, "loading the town / planning the route", route.id):
                town = load_town(route.town)
                planned = plan_route(town, route.keypoints, route.id)
        except _RouteFailure as f:
            outcome = self._unplanned_outcome(route, f.reason)
            return RouteResult(self._record(job, outcome, wall0), outcome, (), None, None)

        criteria = RouteCriteria(
            RouteGeometry.from_planned(planned),
            self.config.criteria,
            town_lane_check(town),
            route_id=route.id,
        )
        backend = self.backend_factory(self.privileged)
        steps = StepLog()
        agent: Any = None
        scenario: Any = None
        sensors: tuple[str, ...] = ()
        t0_s = 0.0
        state = None
        try:
            agent = self._setup_agent(job, town, planned, backend)
            sensor_list = list(agent.sensors())
            validate_sensors(sensor_list, privileged=self.privileged)
            sensors = tuple(str(s.get("type", "")) for s in sensor_list)
            scenario = self._build_scenario(job, backend, town, planned, criteria)
            with _boundary(FAILURE_SIMULATION, "the simulator reset / scenario setup", route.id):
                spec = self._episode_spec(job, planned, sensor_list, scenario)
                state = backend.reset(spec)
                t0_s = state.time_s
                if scenario is not None:
                    scenario.setup()
            self._loop(job, agent, scenario, backend, criteria, steps, state)
        except _RouteFailure as f:
            criteria.fail(f.reason)
        finally:
            self._cleanup(route.id, agent, scenario)
        duration_game_s = steps.last_time_s - t0_s if len(steps) else 0.0
        outcome = criteria.summary(duration_game_s=duration_game_s)
        steps_path = self._write_steps(job, steps, outcome)
        recording = self._write_recording(job, backend, outcome) if state is not None else None
        backend.close()
        record = self._record(job, outcome, wall0)
        return RouteResult(record, outcome, sensors, steps_path, recording)

    # ------------------------------------------------------------------ steps of a route
    def _setup_agent(self, job: RouteJob, town: Any, planned: Any, backend: Any) -> Any:
        """Instantiate the agent, give it the global plan (and the world view when privileged),
        then call setup(path_to_conf_file); failures end the route as 'Agent couldn't be set up'."""
        with _boundary(FAILURE_AGENT_INIT, "agent set-up", job.route.id):
            plan = global_plan(planned, town, self.config.plan_spacing_m)
            agent = self.agent_cls(None, None, False)
            agent.set_global_plan(plan.gps, plan.world)
            if self.privileged:
                agent.set_world(LiveWorldView(lambda: backend.state, town))
            agent.setup(self.config.agent_config)
        return agent

    def _build_scenario(
        self, job: RouteJob, backend: Any, town: Any, planned: Any, criteria: RouteCriteria
    ) -> Any:
        """The route's RouteScenario, or None when the scenario framework is not available."""
        scenario_cls, context_cls = route_scenario_class()
        if scenario_cls is None or context_cls is None:
            if job.route.scenarios:
                log.info("route %s: its scenarios are skipped (no framework)", job.route.id)
            return None
        with _boundary(FAILURE_SIMULATION, "building the route scenario", job.route.id):
            rng = np.random.default_rng([job.seed, 1])
            ctx = context_cls(
                backend=backend, town=town, planned=planned, route=job.route,
                criteria=criteria, rng=rng,
            )  # fmt: skip
            return scenario_cls(ctx)

    def _episode_spec(
        self, job: RouteJob, planned: Any, sensors: list[dict[str, Any]], scenario: Any
    ) -> EpisodeSpec:
        """Reset spec: ego at the route start (or where the scenario wants it), the agent's
        sensors, traffic seeded from the route seed."""
        start = (
            float(planned.xy[0, 0]),
            float(planned.xy[0, 1]),
            float(planned.z[0]),
            float(planned.yaw_rad[0]),
        )
        override = getattr(scenario, "ego_start_override", None)
        if callable(override):
            wanted = override()  # (x, y, z [m], yaw [rad]) as scenarios compute it
            if wanted is not None:
                x, y, z, yaw = (float(v) for v in wanted)
                start = (x, y, z, yaw)
        return EpisodeSpec(
            town=job.route.town,
            ego_start=start,
            route_xy=planned.xy,
            sensors=tuple(sensors),
            traffic=replace(self.config.traffic, seed=job.seed),
            seed=job.seed,
            record=self.config.record,
        )

    def _loop(
        self,
        job: RouteJob,
        agent: Any,
        scenario: Any,
        backend: SimulatorBackend,
        criteria: RouteCriteria,
        steps: StepLog,
        state: Any,
    ) -> None:
        """Tick from the reset ``state`` until the criteria end the route (every tick's row goes
        to ``steps``; a failure raises _RouteFailure after the rows so far)."""
        rid = job.route.id
        has_plan = callable(getattr(agent, "planned_trajectory", None))
        perturb = getattr(scenario, "perturb", None)
        while not criteria.done[0]:
            with _boundary(FAILURE_SIMULATION, "the simulator (sensor data)", rid):
                input_data = backend.sensor_data()
            with _boundary(FAILURE_AGENT_RUNTIME, "the agent", rid):
                control = as_vehicle_control(agent.run_step(input_data, state.time_s))
                plan = checked_plan(agent.planned_trajectory()) if has_plan else None
            with _boundary(FAILURE_SIMULATION, "the simulator / scenario tick", rid):
                if callable(perturb):
                    control = as_vehicle_control(perturb(control))
                state = backend.tick(control)
                if scenario is not None:
                    scenario.tick(state)
            criteria.update(state)
            steps.append(state, control, criteria, plan)

    def _cleanup(self, route_id: str, agent: Any, scenario: Any) -> None:
        """Scenario cleanup and agent destroy; their errors are logged, never change the status."""
        for obj, method in ((scenario, "cleanup"), (agent, "destroy")):
            if obj is None:
                continue
            try:
                getattr(obj, method)()
            except Exception as exc:  # noqa: BLE001  (runner boundary; the route is over anyway)
                log.debug("route %s: %s() failed", route_id, method, exc_info=True)
                log.warning(
                    "route %s: %s() raised %s: %s", route_id, method, type(exc).__name__, exc
                )

    # ------------------------------------------------------------------ outputs
    def _record(self, job: RouteJob, outcome: RouteOutcome, wall0: float) -> RouteRecord:
        return record_from_outcome(
            outcome,
            job.index,
            route_id=job.save_name,
            table=self.config.penalties,
            duration_system_s=time.monotonic() - wall0,
            scenario_name=scenario_name(job.route),
            town_name=job.route.town,
            save_name=job.save_name,
        )

    def _unplanned_outcome(self, route: RouteConfig, reason: str) -> RouteOutcome:
        """The outcome of a route that never started (town or planning failure)."""
        return RouteOutcome(
            route_id=route.id, status=failed_status(reason), route_completion_pct=0.0,
            completed=False, failure=reason, end_reason="failure", infractions=(),
            route_length_m=keypoint_length_m(route), duration_game_s=0.0, ticks=0,
        )  # fmt: skip

    def _metadata(self, job: RouteJob, outcome: RouteOutcome) -> dict[str, str]:
        return {
            "route_id": job.route.id,
            "town": job.route.town,
            "file_index": str(job.file_index),
            "seed": str(job.seed),
            "agent": self.config.agent,
            "privileged": str(self.privileged).lower(),
            "status": outcome.status,
        }

    def _write_steps(self, job: RouteJob, steps: StepLog, outcome: RouteOutcome) -> Path | None:
        """OUT/steps/<save_name>.parquet (none when the route never ticked)."""
        if not len(steps):
            return None
        path = self.config.out_dir / STEPS_DIR / f"{job.save_name}.parquet"
        return steps.write(path, self._metadata(job, outcome))

    def _write_recording(
        self, job: RouteJob, backend: SimulatorBackend, outcome: RouteOutcome
    ) -> Path | None:
        """OUT/recordings/<save_name>.parquet when recording was asked and the backend can."""
        if not self.config.record:
            return None
        writer = getattr(backend, "write_recording", None)
        if not callable(writer):
            log.warning("the %s backend cannot write recordings", self.config.backend)
            return None
        path = self.config.out_dir / RECORDINGS_DIR / f"{job.save_name}.parquet"
        out: Path = writer(path, extra_meta=self._metadata(job, outcome))
        return out
