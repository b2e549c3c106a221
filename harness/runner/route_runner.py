"""One route end to end, as the leaderboard evaluator runs it: plan the route, hand the agent its
global plan, set the agent up, build the route's scenarios, then run the episode loop
(:mod:`harness.runner.episode`: the scenarios are its world hook; the criteria, the step log and
the recorder its observers) until the criteria say the route is over; the outcome becomes a
leaderboard route record.

This module is the runner boundary of the error policy: an exception from the agent ends the
route as "Failed - Agent crashed" (or "Agent couldn't be set up"), one from the simulator,
the town / route planning or the scenarios as "Failed - Simulation crashed"; the traceback goes
to the DEBUG log, one line to WARNING, and the evaluation goes on with the next route. A sensor list the leaderboard
would reject (SensorConfigError: type, count, mount radius, missing fields) ends the route as
"Failed - Agent's sensors were invalid" before the simulation starts (entry status Rejected)
and the evaluation goes on. KeyboardInterrupt is not caught: it stops the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.errors import SensorConfigError
from harness.leaderboard import bench2drive as b2d
from harness.leaderboard.agent import is_privileged
from harness.leaderboard.criteria import RouteGeometry, town_lane_check
from harness.leaderboard.outcome import (
    FAILURE_AGENT_INIT,
    FAILURE_AGENT_RUNTIME,
    FAILURE_SENSORS,
    FAILURE_SIMULATION,
    RouteOutcome,
    failed_status,
)
from harness.leaderboard.results import RouteRecord, leaderboard_route_id, record_from_outcome
from harness.leaderboard.route_criteria import RouteCriteria
from harness.leaderboard.traffic_rules import SignalGeometry
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.routes.model import RouteConfig
from harness.runner.backends import make_backend, route_town
from harness.runner.closed_loop import CLOSED_LOOP
from harness.runner.config import RunConfig, VideoPolicy
from harness.runner.drivers import AgentDriver
from harness.runner.episode import EpisodeError, Observer, Phase, Tick, run_episode
from harness.runner.extensions import RouteContext, RouteObserver
from harness.runner.metric_info import MetricInfoObserver, metric_info_path
from harness.runner.observers import Recorder
from harness.runner.steps import StepLog
from harness.runner.videos import route_track, write_video
from harness.sim.sensors.spec import validate_sensors
from harness.world.backend import EpisodeSpec, SimulatorBackend
from harness.world.state import WorldState
from scenarios.context import ScenarioContext
from scenarios.registry import SCENARIO_CLASSES
from scenarios.route_scenario import RouteScenario

log = logging.getLogger(__name__)

STEPS_DIR = "steps"  # OUT/steps/<save_name>.parquet: per-step metrics of every route
RECORDINGS_DIR = "recordings"  # OUT/recordings/<save_name>.parquet: full episode recordings

_PHASE_FAILURE = {
    Phase.RESET: (FAILURE_SIMULATION, "the simulator reset / scenario setup"),
    Phase.SENSORS: (FAILURE_SIMULATION, "the simulator (sensor data)"),
    Phase.DRIVER: (FAILURE_AGENT_RUNTIME, "the agent"),
    Phase.WORLD: (FAILURE_SIMULATION, "the simulator / scenario tick"),
}
"""Episode phase -> (leaderboard failure reason, what failed, for the log)."""


@dataclass(frozen=True)
class RouteJob:
    """One route to run: ``index`` its record index in this run (position in the subset times
    the repetitions, plus ``repetition``), ``file_index`` its position in the route file,
    ``seed`` its episode seed, ``stamp`` the run's Bench2Drive save_name time stamp.
    Picklable: worker processes and Ray actors receive it."""

    index: int
    file_index: int
    route: RouteConfig
    seed: int
    repetition: int = 0
    stamp: str = ""

    @property
    def save_name(self) -> str:
        """The record's route id, also the stem of the route's output files."""
        return leaderboard_route_id(self.route.id, self.repetition)

    @property
    def record_save_name(self) -> str:
        """Bench2Drive's save_name of the record (also its metric_info folder)."""
        return b2d.save_name(self.save_name, self.route, self.stamp)


@dataclass(frozen=True)
class RouteResult:
    """What running one route produced: the results record, the criteria outcome, the agent's
    sensor types, the output files written (None when none was) and the route means of each
    extension observer (``RunConfig.route_observers``) by its name."""

    record: RouteRecord
    outcome: RouteOutcome
    sensors: tuple[str, ...]
    steps_path: Path | None
    recording_path: Path | None
    observer_metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def closed_loop(self) -> dict[str, float] | None:
        """Per-route means of the closed-loop PDMS / EPDMS sub-scores (None when not scored)."""
        return self.observer_metrics.get(CLOSED_LOOP)


class _RouteFailure(Exception):
    """Internal: ends the route with a leaderboard failure reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _log_failure(route_id: str, what: str, exc: BaseException, reason: str) -> None:
    """The traceback at DEBUG, one line at WARNING."""
    log.debug("route %s: %s failed", route_id, what, exc_info=exc)
    log.warning(
        "route %s: %s raised %s: %s -> Failed - %s",
        route_id, what, type(exc).__name__, exc, reason,
    )  # fmt: skip


@contextmanager
def _boundary(reason: str, what: str, route_id: str) -> Iterator[None]:
    """Turn any exception of ``what`` (agent / simulator / scenario code) into a route failure
    with ``reason``. Invalid sensors pass through (they stop the run); KeyboardInterrupt is no
    Exception and passes too."""
    try:
        yield
    except SensorConfigError:
        raise
    except Exception as exc:  # noqa: BLE001  (the runner boundary: any failure becomes a status)
        _log_failure(route_id, what, exc, reason)
        raise _RouteFailure(reason) from exc


def route_seed(run_seed: int, file_index: int, repetition: int = 0) -> int:
    """The episode seed of repetition ``repetition`` of the route at ``file_index`` of the file
    in a run seeded ``run_seed`` (independent of the subset, of the order routes run in and of
    the process that runs them, so resumed and parallel runs match; repetition 0 keeps the seed
    of a run without repetitions)."""
    entropy = [run_seed, file_index] + ([repetition] if repetition else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def keypoint_length_m(route: RouteConfig) -> float:
    """Length [m] of the keypoint polyline (the route length when the route cannot be planned)."""
    kp = route.keypoints[:, :2]
    return float(np.linalg.norm(np.diff(kp, axis=0), axis=1).sum()) if len(kp) > 1 else 0.0


def unimplemented_types(route: RouteConfig) -> tuple[str, ...]:
    """The types of the route's scenarios without a class in the registry, in route order: the
    route runs without them, and its record says so."""
    return tuple(sc.type for sc in route.scenarios if sc.type not in SCENARIO_CLASSES)


def build_route_scenario(
    backend: SimulatorBackend,
    town: Town,
    planned: PlannedRoute,
    route: RouteConfig,
    criteria: RouteCriteria,
    seed: int,
) -> RouteScenario:
    """A route's scenarios as evaluation builds them (the episode loop's world hook), their
    generator seeded from the episode seed; shared with the teachers' drives."""
    ctx = ScenarioContext(
        backend=backend, town=town, planned=planned, route=route, criteria=criteria,
        rng=np.random.default_rng([seed, 1]),
    )  # fmt: skip
    return RouteScenario(ctx)


def scenario_ego_start(
    planned: PlannedRoute, scenario: RouteScenario
) -> tuple[float, float, float, float]:
    """The ego's reset pose (x, y, z [m], yaw [rad]): the route start, or where a scenario
    wants it (ParkingExit)."""
    wanted = scenario.ego_start_override()
    if wanted is None:
        return planned.start_pose
    x, y, z, yaw = (float(v) for v in wanted)
    return (x, y, z, yaw)


class _CriteriaObserver:
    """Feeds every new state to the route criteria, then the step log its row."""

    def __init__(self, criteria: RouteCriteria, steps: StepLog) -> None:
        self.criteria, self.steps = criteria, steps
        self.start_time_s = 0.0

    def on_start(self, state: WorldState) -> None:
        self.start_time_s = state.time_s

    @property
    def duration_s(self) -> float:
        """Simulation time [s] from the reset to the last logged tick (0 before any tick)."""
        return self.steps.last_time_s - self.start_time_s if len(self.steps) else 0.0

    def on_tick(self, tick: Tick) -> None:
        self.criteria.update(tick.state)
        self.steps.append(tick.state, tick.control, self.criteria, tick.plan)


class RouteRunner:
    """Runs routes one at a time with a fresh agent instance and a fresh backend each."""

    def __init__(self, config: RunConfig, agent_cls: type) -> None:
        self.config = config
        self.agent_cls = agent_cls
        self.privileged = is_privileged(agent_cls)

    # ------------------------------------------------------------------ public
    def run(self, job: RouteJob) -> RouteResult:
        """Run one route and return its record (also on failure; see the module docstring)."""
        wall0 = time.monotonic()
        route = job.route
        try:
            with _boundary(FAILURE_SIMULATION, "loading the town / planning the route", route.id):
                town = route_town(self.config.backend, route.town)
                planned = plan_route(town, route.keypoints, route.id)
        except _RouteFailure as f:
            outcome = self._unplanned_outcome(route, f.reason)
            return RouteResult(self._record(job, outcome, wall0), outcome, (), None, None)

        criteria = RouteCriteria(
            RouteGeometry.from_planned(planned),
            self.config.criteria,
            town_lane_check(town),
            route_id=route.id,
            signals=SignalGeometry.from_town(town),
        )
        try:
            with _boundary(FAILURE_SIMULATION, "connecting to the simulator", route.id):
                backend = make_backend(self.config.backend, self.privileged)
        except _RouteFailure as f:
            outcome = self._unplanned_outcome(route, f.reason)
            return RouteResult(self._record(job, outcome, wall0), outcome, (), None, None)
        steps = StepLog()
        driver: AgentDriver | None = None
        scenario: RouteScenario | None = None
        recorder: Recorder | None = None
        sensors: tuple[str, ...] = ()
        watcher = _CriteriaObserver(criteria, steps)
        metric_info = MetricInfoObserver()
        context = RouteContext(town, planned, route, job.save_name, self.config.out_dir)
        extras: list[RouteObserver] = [make(context) for make in self.config.route_observers]
        try:
            with _boundary(FAILURE_AGENT_INIT, "agent set-up", route.id):
                driver = AgentDriver.set_up(
                    self.agent_cls, planned, town,
                    plan_spacing_m=self.config.plan_spacing_m,
                    agent_config=self.config.agent_config,
                    world_state=lambda: backend.state,
                    time_limit_s=self.config.agent_timeout_s,
                )  # fmt: skip
                sensor_list = driver.sensors()
            try:
                validate_sensors(sensor_list, privileged=self.privileged)
            except SensorConfigError as exc:  # the leaderboard's SensorConfigurationInvalid
                log.warning("route %s: invalid sensors: %s -> Failed - %s", route.id, exc,
                            FAILURE_SENSORS)  # fmt: skip
                raise _RouteFailure(FAILURE_SENSORS) from exc
            sensors = tuple(str(s.get("type", "")) for s in sensor_list)
            with _boundary(FAILURE_SIMULATION, "building the route scenario", route.id):
                scenario = self._build_scenario(job, backend, town, planned, criteria)
                spec = self._episode_spec(job, planned, sensor_list, scenario)
            keep = self.config.record or self.config.videos is not VideoPolicy.NONE
            recorder = Recorder.for_spec(spec) if keep else None
            observers: list[Observer] = [watcher, metric_info, *extras]
            if recorder is not None:
                observers.append(recorder)
            try:
                run_episode(
                    backend, spec, driver, lambda _s, _t: criteria.done[0],
                    hooks=(scenario,), observers=observers,
                )  # fmt: skip
            except EpisodeError as err:
                reason, what = _PHASE_FAILURE[err.phase]
                _log_failure(route.id, what, err.__cause__ or err, reason)
                raise _RouteFailure(reason) from err
        except _RouteFailure as f:
            criteria.fail(f.reason)
        finally:
            self._cleanup(route.id, driver, scenario)
            self._close(route.id, backend)
        outcome = criteria.summary(duration_game_s=watcher.duration_s)
        steps_path = self._write_steps(job, steps, outcome)
        if recorder is not None and len(recorder):
            recorder.recorder.route = route_track(planned.xy, steps, outcome, self.config.penalties)
        recording = self._write_recording(job, recorder, outcome)
        if len(metric_info):
            metric_info.write(metric_info_path(self.config.out_dir, job.record_save_name))
        if recorder is not None and len(recorder) and self.config.videos.wants(outcome.completed):
            write_video(recorder, town, self.config.out_dir, job.save_name)
        metrics = {o.name: m for o in extras if (m := o.finish()) is not None}
        record = self._record(job, outcome, wall0)
        return RouteResult(record, outcome, sensors, steps_path, recording, metrics)

    def failed(self, job: RouteJob, reason: str) -> RouteResult:
        """The result of a route that produced none (its worker process or Ray node was lost):
        failed with ``reason`` and no progress, as a route that never started."""
        outcome = self._unplanned_outcome(job.route, reason)
        return RouteResult(self._record(job, outcome, time.monotonic()), outcome, (), None, None)

    # ------------------------------------------------------------------ steps of a route
    def _build_scenario(
        self,
        job: RouteJob,
        backend: SimulatorBackend,
        town: Town,
        planned: PlannedRoute,
        criteria: RouteCriteria,
    ) -> RouteScenario:
        """The route's scenarios (built near their triggers while the route runs)."""
        return build_route_scenario(backend, town, planned, job.route, criteria, job.seed)

    def _episode_spec(
        self,
        job: RouteJob,
        planned: PlannedRoute,
        sensors: list[dict[str, object]],
        scenario: RouteScenario,
    ) -> EpisodeSpec:
        """Reset spec: ego at the route start (or where the scenario wants it), the agent's
        sensors, traffic seeded from the route seed."""
        return EpisodeSpec(
            town=job.route.town,
            ego_start=scenario_ego_start(planned, scenario),
            route_xy=planned.xy,
            sensors=tuple(sensors),
            traffic=replace(self.config.traffic, seed=job.seed),
            seed=job.seed,
        )

    def _cleanup(
        self, route_id: str, driver: AgentDriver | None, scenario: RouteScenario | None
    ) -> None:
        """Scenario cleanup and agent destroy; their errors are logged, never change the status."""
        for what, close in (
            ("cleanup", scenario.cleanup if scenario is not None else None),
            ("destroy", driver.close if driver is not None else None),
        ):
            if close is None:
                continue
            try:
                close()
            except Exception as exc:  # noqa: BLE001  (runner boundary; the route is over anyway)
                log.debug("route %s: %s() failed", route_id, what, exc_info=True)
                log.warning("route %s: %s() raised %s: %s", route_id, what, type(exc).__name__, exc)

    def _close(self, route_id: str, backend: SimulatorBackend) -> None:
        """Close the backend on every exit path (a CARLA server gets its actors destroyed and
        its settings back); an error here is logged, the route's status stands."""
        try:
            backend.close()
        except Exception as exc:  # noqa: BLE001  (runner boundary; the route is over anyway)
            log.debug("route %s: closing the simulator failed", route_id, exc_info=True)
            log.warning("route %s: closing the simulator raised %s: %s", route_id,
                        type(exc).__name__, exc)  # fmt: skip

    # ------------------------------------------------------------------ outputs
    def _record(self, job: RouteJob, outcome: RouteOutcome, wall0: float) -> RouteRecord:
        return record_from_outcome(
            outcome,
            job.index,
            route_id=job.save_name,
            table=self.config.penalties,
            duration_system_s=time.monotonic() - wall0,
            scenario_name=b2d.first_scenario_name(job.route),
            town_name=job.route.town,
            weather_id=b2d.weather_id(job.route.weathers),
            save_name=job.record_save_name,
            unimplemented_scenarios=unimplemented_types(job.route),
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
        self, job: RouteJob, recorder: Recorder | None, outcome: RouteOutcome
    ) -> Path | None:
        """OUT/recordings/<save_name>.parquet when recording was asked and the route started."""
        if recorder is None or not len(recorder) or not self.config.record:
            return None
        path = self.config.out_dir / RECORDINGS_DIR / f"{job.save_name}.parquet"
        return recorder.write(path, extra_meta=self._metadata(job, outcome))
