"""Atomic py_trees behaviours of the scenarios. Each takes the ScenarioContext explicitly (no
global data provider) and reads the latest state from ``ctx.state`` / the ego's route progress
from ``ctx.board``; actors are driven through ``ctx.backend.command_actor``.

Leaf statuses follow ScenarioRunner's atomics: triggers and waits return RUNNING until their
condition holds, then SUCCESS; commands return SUCCESS once issued (or once done when ``wait``)."""

from __future__ import annotations

import logging

import numpy as np
import py_trees
from py_trees.common import Status

from harness.leaderboard.route_criteria import ReportKind
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import ActorKind, LightState
from scenarios.context import ScenarioContext
from scenarios.placement import Path, blend_onto, path_s

log = logging.getLogger(__name__)

ARRIVED_M = 1.0  # [m] an actor this close to its path end has arrived
STOPPED_MPS = 0.1  # [m/s] below this an actor counts as stopped
HOLD = np.zeros((0, 2))  # an empty path: hold position
EPSILON_MPS = (
    1e-3  # [m/s] below this the ego's time to arrival is infinite (ScenarioRunner's EPSILON)
)


class ActorPool:
    """The actors one scenario spawned and still owns (so cleanup destroys each exactly once)."""

    def __init__(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.alive: list[int] = []

    def spawn(self, spec: ActorSpec) -> int:
        aid = self.ctx.backend.spawn_actor(spec)
        self.alive.append(aid)
        return aid

    def destroy(self, actor_id: int) -> None:
        if actor_id in self.alive:
            self.alive.remove(actor_id)
            self.ctx.backend.destroy_actor(actor_id)

    def destroy_all(self) -> None:
        for aid in list(self.alive):
            self.destroy(aid)


def actor_row(ctx: ScenarioContext, actor_id: int) -> int | None:
    """Row of ``actor_id`` in the latest state, None when absent (not yet ticked or destroyed)."""
    a = ctx.state.actors
    rows = np.flatnonzero((a.actor_id == actor_id) & a.valid)
    return int(rows[0]) if rows.size else None


class ScenarioBehaviour(py_trees.behaviour.Behaviour):
    """Base: keeps the context."""

    def __init__(self, ctx: ScenarioContext, name: str) -> None:
        super().__init__(name)
        self.ctx = ctx


class InTriggerDistanceAlongRoute(ScenarioBehaviour):
    """SUCCESS once the ego is within ``distance_m`` before route arc length ``route_s_m``."""

    def __init__(self, ctx: ScenarioContext, route_s_m: float, distance_m: float) -> None:
        super().__init__(ctx, "InTriggerDistanceAlongRoute")
        self.route_s_m, self.distance_m = route_s_m, distance_m

    def update(self) -> Status:
        reached = self.ctx.board.ego_s_m >= self.route_s_m - self.distance_m
        return Status.SUCCESS if reached else Status.RUNNING


class InTriggerDistanceToLocation(ScenarioBehaviour):
    """SUCCESS once the ego's centre is within ``distance_m`` of ``xy`` (straight line)."""

    def __init__(self, ctx: ScenarioContext, xy: np.ndarray, distance_m: float) -> None:
        super().__init__(ctx, "InTriggerDistanceToLocation")
        self.xy, self.distance_m = np.asarray(xy, dtype=np.float64)[:2], distance_m

    def update(self) -> Status:
        a = self.ctx.state.actors
        d = float(np.hypot(a.x[0] - self.xy[0], a.y[0] - self.xy[1]))
        return Status.SUCCESS if d <= self.distance_m else Status.RUNNING


class WaitUntilEgoPassed(ScenarioBehaviour):
    """SUCCESS once the ego's route progress reaches ``route_s_m`` (the scenario's end)."""

    def __init__(self, ctx: ScenarioContext, route_s_m: float) -> None:
        super().__init__(ctx, "WaitUntilEgoPassed")
        self.route_s_m = route_s_m

    def update(self) -> Status:
        return Status.SUCCESS if self.ctx.board.ego_s_m >= self.route_s_m else Status.RUNNING


class Idle(ScenarioBehaviour):
    """RUNNING for ``duration_s`` of simulation time (forever when None), then SUCCESS."""

    def __init__(self, ctx: ScenarioContext, duration_s: float | None = None) -> None:
        super().__init__(ctx, "Idle")
        self.duration_s = duration_s
        self._start = 0.0

    def initialise(self) -> None:
        self._start = self.ctx.board.time_s

    def update(self) -> Status:
        if self.duration_s is None or self.ctx.board.time_s - self._start < self.duration_s:
            return Status.RUNNING
        return Status.SUCCESS


class FollowPath(ScenarioBehaviour):
    """Command an actor along ``path`` at ``speed_mps``. SUCCESS at once, or with ``wait`` when it
    reached the path end or travelled ``until_m`` (ScenarioRunner's KeepVelocity / WaypointFollower)."""

    def __init__(
        self,
        ctx: ScenarioContext,
        actor_id: int,
        path: Path,
        speed_mps: float,
        *,
        accel_mps2: float = 3.0,
        decel_mps2: float = 6.0,
        ignore_others: bool = True,
        wait: bool = False,
        until_m: float | None = None,
        name: str = "FollowPath",
    ) -> None:
        super().__init__(ctx, name)
        self.actor_id, self.path, self.speed_mps = actor_id, np.asarray(path), speed_mps
        self.accel, self.decel, self.ignore_others = accel_mps2, decel_mps2, ignore_others
        self.wait, self.until_m = wait or until_m is not None, until_m
        self._start_xy: np.ndarray | None = None
        self._travelled = 0.0

    def initialise(self) -> None:
        self.ctx.backend.command_actor(
            self.actor_id,
            ActorCommand(self.path, self.speed_mps, self.accel, self.decel, self.ignore_others),
        )
        self._start_xy, self._travelled = None, 0.0

    def update(self) -> Status:
        if not self.wait:
            return Status.SUCCESS
        r = actor_row(self.ctx, self.actor_id)
        if r is None:
            return Status.RUNNING if self._start_xy is None else Status.SUCCESS
        a = self.ctx.state.actors
        xy = np.array([a.x[r], a.y[r]])
        if self._start_xy is not None:
            self._travelled += float(np.hypot(*(xy - self._start_xy)))
        self._start_xy = xy
        if self.until_m is not None and self._travelled >= self.until_m:
            return Status.SUCCESS
        if len(self.path) and float(np.hypot(*(xy - self.path[-1]))) < ARRIVED_M:
            return Status.SUCCESS
        return Status.RUNNING


class KeepSpeed(FollowPath):
    """Drive along ``path`` at a constant speed for ``distance_m``, then SUCCESS."""

    def __init__(
        self, ctx: ScenarioContext, actor_id: int, path: Path, speed_mps: float, distance_m: float
    ) -> None:
        super().__init__(ctx, actor_id, path, speed_mps, until_m=distance_m, name="KeepSpeed")


class AccelerateToSpeed(FollowPath):
    """Accelerate along ``path`` at ``accel_mps2`` until ``speed_mps`` is reached, then SUCCESS."""

    def __init__(
        self, ctx: ScenarioContext, actor_id: int, path: Path, speed_mps: float, accel_mps2: float
    ) -> None:
        super().__init__(
            ctx, actor_id, path, speed_mps, accel_mps2=accel_mps2, name="AccelerateToSpeed"
        )

    def update(self) -> Status:
        r = actor_row(self.ctx, self.actor_id)
        if r is None:
            return Status.RUNNING
        done = self.ctx.state.actors.speed[r] >= 0.95 * self.speed_mps
        return Status.SUCCESS if done else Status.RUNNING


class StopActor(ScenarioBehaviour):
    """Brake an actor to a standstill at ``decel_mps2``; SUCCESS once it stands."""

    def __init__(self, ctx: ScenarioContext, actor_id: int, decel_mps2: float = 6.0) -> None:
        super().__init__(ctx, "StopActor")
        self.actor_id, self.decel = actor_id, decel_mps2

    def initialise(self) -> None:
        self.ctx.backend.command_actor(self.actor_id, ActorCommand(HOLD, 0.0, 0.0, self.decel))

    def update(self) -> Status:
        r = actor_row(self.ctx, self.actor_id)
        stopped = r is None or self.ctx.state.actors.speed[r] < STOPPED_MPS
        return Status.SUCCESS if stopped else Status.RUNNING


class HoldSetup(ScenarioBehaviour):
    """Keep a static set-up (accident, construction, parked cars) in place: commands every actor
    to hold once, then stays RUNNING (run it in parallel with the scenario's behaviour)."""

    def __init__(self, ctx: ScenarioContext, actor_ids: list[int]) -> None:
        super().__init__(ctx, "HoldSetup")
        self.actor_ids = list(actor_ids)

    def initialise(self) -> None:
        for aid in self.actor_ids:
            self.ctx.backend.command_actor(aid, ActorCommand(HOLD, 0.0))

    def update(self) -> Status:
        return Status.RUNNING


class CutIn(ScenarioBehaviour):
    """Move an actor from where it stands onto ``target_path`` (the ego's lane ahead): it keeps
    its lateral offset for ``hold_m`` and eases onto the path over ``blend_m`` at ``speed_mps``
    (ScenarioRunner's LaneChange / CutIn). SUCCESS once it has travelled hold + blend."""

    def __init__(
        self,
        ctx: ScenarioContext,
        actor_id: int,
        target_path: Path,
        speed_mps: float,
        hold_m: float,
        blend_m: float,
        accel_mps2: float = 3.0,
        name: str = "CutIn",
    ) -> None:
        super().__init__(ctx, name)
        self.actor_id, self.target, self.speed = actor_id, np.asarray(target_path), speed_mps
        self.hold_m, self.blend_m, self.accel = hold_m, blend_m, accel_mps2
        self.path: Path = np.zeros((0, 2))

    def initialise(self) -> None:
        r = actor_row(self.ctx, self.actor_id)
        if r is None:
            return
        a = self.ctx.state.actors
        xy = np.array([a.x[r], a.y[r]])
        k = int(np.argmin(np.hypot(*(self.target - xy).T)))
        k = min(k, len(self.target) - 2)
        tail = self.target[k:]
        d = tail[1] - tail[0]
        yaw = float(np.arctan2(d[1], d[0]))
        rel = xy - tail[0]
        offset = float(-np.sin(yaw) * rel[0] + np.cos(yaw) * rel[1])
        self.path = blend_onto(tail, offset, self.hold_m, self.blend_m)
        self.ctx.backend.command_actor(
            self.actor_id, ActorCommand(self.path, self.speed, self.accel, 6.0, True)
        )

    def update(self) -> Status:
        r = actor_row(self.ctx, self.actor_id)
        if r is None or len(self.path) < 2:
            return Status.SUCCESS
        a = self.ctx.state.actors
        xy = np.array([a.x[r], a.y[r]])
        k = int(np.argmin(np.hypot(*(self.path - xy).T)))
        done = path_s(self.path)[k] >= self.hold_m + self.blend_m
        return Status.SUCCESS if done else Status.RUNNING


LaneChange = CutIn


class CrossRoad(FollowPath):
    """A walker or bicycle crossing along ``path`` at ``speed_mps``; SUCCESS when across."""

    def __init__(self, ctx: ScenarioContext, actor_id: int, path: Path, speed_mps: float) -> None:
        super().__init__(
            ctx, actor_id, path, speed_mps, accel_mps2=2.0, wait=True, name="CrossRoad"
        )


class OpenDoor(ScenarioBehaviour):
    """A car door opening: a small box appears beside a parked car (on its ``side``: +1 right,
    -1 left), a VEHICLE (in CARLA the door is part of the car: a hit is collisions_vehicle).
    SUCCESS once spawned; the pool owns it."""

    DOOR_LENGTH_M = 1.0  # [m]
    DOOR_WIDTH_M = 0.2  # [m]

    def __init__(self, ctx: ScenarioContext, pool: ActorPool, car_id: int, side: float) -> None:
        super().__init__(ctx, "OpenDoor")
        self.pool, self.car_id, self.side = pool, car_id, side
        self.door_id: int | None = None

    def update(self) -> Status:
        r = actor_row(self.ctx, self.car_id)
        if r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        yaw = float(a.yaw[r])
        n = np.array([-np.sin(yaw), np.cos(yaw)]) * self.side
        fwd = np.array([np.cos(yaw), np.sin(yaw)])
        xy = np.array([a.x[r], a.y[r]]) + n * (0.5 * a.width[r] + 0.5) + fwd * 0.6
        self.door_id = self.pool.spawn(
            ActorSpec(ActorKind.VEHICLE, float(xy[0]), float(xy[1]), yaw + self.side * 1.1,
                      self.DOOR_LENGTH_M, self.DOOR_WIDTH_M, 1.2)
        )  # fmt: skip
        return Status.SUCCESS


class ActorDestroy(ScenarioBehaviour):
    """Destroy the given actors (those the pool still owns); SUCCESS."""

    def __init__(
        self, ctx: ScenarioContext, pool: ActorPool, actor_ids: list[int] | None = None
    ) -> None:
        super().__init__(ctx, "ActorDestroy")
        self.pool, self.actor_ids = pool, actor_ids

    def update(self) -> Status:
        for aid in list(self.pool.alive if self.actor_ids is None else self.actor_ids):
            self.pool.destroy(aid)
        return Status.SUCCESS


class ScenarioTimeout(ScenarioBehaviour):
    """Leaderboard 2.0's ScenarioTimeout + ScenarioTimeoutTest: when the ego has not got through
    the scenario ``timeout_s`` after its trigger, report SCENARIO_TIMEOUT once and SUCCEED (which
    ends the scenario's parallel). While it runs the route's agent-blocked test is off (switched
    off when it starts, back on when it ends, each switch restarting the blocked clock), as
    ScenarioRunner's AC_SwitchActorBlockedTest does."""

    def __init__(self, ctx: ScenarioContext, timeout_s: float, scenario_name: str) -> None:
        super().__init__(ctx, "ScenarioTimeout")
        self.timeout_s, self.scenario_name = timeout_s, scenario_name
        self.timed_out = False
        self._start = 0.0
        self._blocked_paused = False

    def initialise(self) -> None:
        self._start = self.ctx.board.time_s
        self.ctx.criteria.set_blocked_test_active(False)
        self._blocked_paused = True

    def terminate(self, new_status: Status) -> None:
        if self._blocked_paused and new_status != Status.RUNNING:
            self.ctx.criteria.set_blocked_test_active(True)
            self._blocked_paused = False

    def update(self) -> Status:
        if self.timed_out:
            return Status.SUCCESS
        if self.ctx.board.time_s - self._start < self.timeout_s:
            return Status.RUNNING
        self.timed_out = True
        log.info("scenario %s timed out after %.0f s", self.scenario_name, self.timeout_s)
        self.ctx.criteria.report(
            ReportKind.SCENARIO_TIMEOUT, f"Agent timed out a scenario ({self.scenario_name})"
        )
        return Status.SUCCESS


class SwitchWrongDirectionTest(ScenarioBehaviour):
    """Leaderboard 2.0's SwitchWrongDirectionTest: switch the wrong-direction part of the
    outside-route-lanes criterion off (``active=False``, scenarios whose way around an obstacle
    is the opposite lane) or back on; SUCCESS at once."""

    def __init__(self, ctx: ScenarioContext, active: bool) -> None:
        super().__init__(ctx, "SwitchWrongDirectionTest")
        self.active = active

    def update(self) -> Status:
        self.ctx.criteria.set_wrong_direction_active(self.active)
        return Status.SUCCESS


class InTimeToArrivalAlongRoute(ScenarioBehaviour):
    """SUCCESS once the ego would reach route arc length ``route_s_m`` within ``time_s`` at its
    current speed, or is closer than ``min_m`` (ScenarioRunner's time-to-arrival triggers)."""

    def __init__(self, ctx: ScenarioContext, route_s_m: float, time_s: float, min_m: float) -> None:
        super().__init__(ctx, "InTimeToArrivalAlongRoute")
        self.route_s_m, self.time_s, self.min_m = route_s_m, time_s, min_m

    def update(self) -> Status:
        gap = self.route_s_m - self.ctx.board.ego_s_m
        v = float(self.ctx.state.actors.speed[0])
        return Status.SUCCESS if gap <= max(self.min_m, v * self.time_s) else Status.RUNNING


class EgoStandstill(ScenarioBehaviour):
    """SUCCESS once the ego has stood still (below STOPPED_MPS x 5) for ``duration_s`` in a row."""

    def __init__(self, ctx: ScenarioContext, duration_s: float) -> None:
        super().__init__(ctx, "EgoStandstill")
        self.duration_s = duration_s
        self._since: float | None = None

    def update(self) -> Status:
        now = self.ctx.board.time_s
        if float(self.ctx.state.actors.speed[0]) > 5 * STOPPED_MPS:
            self._since = None
            return Status.RUNNING
        self._since = now if self._since is None else self._since
        return Status.SUCCESS if now - self._since >= self.duration_s else Status.RUNNING


class InTimeToArrivalToLocation(ScenarioBehaviour):
    """ScenarioRunner's InTimeToArrivalToLocation OR InTriggerDistanceToLocation (the pair its
    adversary triggers use): SUCCESS once the ego's straight-line distance to ``xy`` divided by
    its speed drops below ``time_s``, or the distance below ``min_m``."""

    def __init__(self, ctx: ScenarioContext, xy: np.ndarray, time_s: float, min_m: float) -> None:
        super().__init__(ctx, "InTimeToArrivalToLocation")
        self.xy, self.time_s, self.min_m = np.asarray(xy, dtype=np.float64)[:2], time_s, min_m

    def update(self) -> Status:
        a = self.ctx.state.actors
        d = float(np.hypot(a.x[0] - self.xy[0], a.y[0] - self.xy[1]))
        v = float(a.speed[0])
        if d < self.min_m or (v > EPSILON_MPS and d / v < self.time_s):
            return Status.SUCCESS
        return Status.RUNNING


class FreezeLights(ScenarioBehaviour):
    """ScenarioRunner's TrafficLightFreezer: hold each light of ``states`` (town light index ->
    LightState) for ``duration_s`` (None: until the behaviour is stopped), then SUCCESS; the
    lights go back to their own cycle when it ends or is stopped."""

    def __init__(
        self, ctx: ScenarioContext, states: dict[int, LightState], duration_s: float | None = None
    ) -> None:
        super().__init__(ctx, "FreezeLights")
        self.states, self.duration_s = dict(states), duration_s
        self._start = 0.0
        self._held = False

    def initialise(self) -> None:
        self._start = self.ctx.board.time_s
        for state in set(self.states.values()):
            lights = [k for k, v in self.states.items() if v == state]
            self.ctx.backend.force_lights(lights, state, self.duration_s)
        self._held = bool(self.states)

    def update(self) -> Status:
        if self.duration_s is None or self.ctx.board.time_s - self._start < self.duration_s:
            return Status.RUNNING
        return Status.SUCCESS

    def terminate(self, new_status: Status) -> None:
        if self._held and new_status != Status.RUNNING:
            self.ctx.backend.release_lights(list(self.states))
            self._held = False


class DriveDistance(ScenarioBehaviour):
    """SUCCESS once an actor has driven ``distance_m`` (summed tick to tick) since it started, or
    is gone."""

    def __init__(self, ctx: ScenarioContext, actor_id: int, distance_m: float) -> None:
        super().__init__(ctx, "DriveDistance")
        self.actor_id, self.distance_m = actor_id, distance_m
        self._last: np.ndarray | None = None
        self._driven = 0.0

    def initialise(self) -> None:
        self._last, self._driven = None, 0.0

    def update(self) -> Status:
        r = actor_row(self.ctx, self.actor_id)
        if r is None:
            return Status.SUCCESS
        a = self.ctx.state.actors
        xy = np.array([a.x[r], a.y[r]])
        if self._last is not None:
            self._driven += float(np.hypot(*(xy - self._last)))
        self._last = xy
        return Status.SUCCESS if self._driven >= self.distance_m else Status.RUNNING


class EgoDriveDistance(ScenarioBehaviour):
    """ScenarioRunner's DriveDistance on the ego: SUCCESS once the ego's route progress has grown
    by ``distance_m`` since the behaviour started."""

    def __init__(self, ctx: ScenarioContext, distance_m: float) -> None:
        super().__init__(ctx, "EgoDriveDistance")
        self.distance_m = distance_m
        self._from = 0.0

    def initialise(self) -> None:
        self._from = self.ctx.board.ego_s_m

    def update(self) -> Status:
        done = self.ctx.board.ego_s_m - self._from >= self.distance_m
        return Status.SUCCESS if done else Status.RUNNING
