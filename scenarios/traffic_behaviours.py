"""Behaviours that manage traffic rather than one scripted move: the actor flow (source -> sink
at a spacing and speed), the emergency vehicle approaching from behind with its yield criterion,
and the control-loss noise window."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.common import Status

from harness.leaderboard.route_criteria import ReportKind
from harness.maps.town import Town
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import COLLISION_EVENTS, ActorKind
from scenarios.behaviours import ActorPool, ScenarioBehaviour, actor_row
from scenarios.context import ControlNoise, ScenarioContext
from scenarios.placement import Path, lane_backward, lane_forward, lane_s_fine, path_s, path_yaw

log = logging.getLogger(__name__)

CAR_LENGTH_M = 4.8  # [m] flow / scenario car box
CAR_WIDTH_M = 2.0  # [m]
SINK_REACH_M = 2.0  # [m] a flow vehicle this close to the sink is removed
SOURCE_CLEAR_M = 6.0  # [m] nothing spawns while any vehicle is this close to the source
EV_LENGTH_M = 6.0  # [m] emergency vehicle (ambulance / fire truck scale)
EV_WIDTH_M = 2.3  # [m]
EV_SPEED_INCREMENT_MPS = (
    25.0  # [m/s] the EV drives at the ego's speed + this (speed_increment 25 x 3.6 km/h)
)
EV_ACCEL_MPS2 = 1000.0  # [m/s2] a constant-velocity agent changes its speed at once ...
EV_DECEL_MPS2 = 1000.0  # [m/s2] ... both ways
EV_DETECT_BASE_M = 10.0  # [m] its base_vehicle_threshold (plus its speed in m/s)
EV_CORRIDOR_M = 1.6  # [m] the ego blocks the EV when its centre is this close to the EV's path
EV_RECOMMAND_MPS = 0.5  # [m/s] re-command the EV when its target speed changes by more than this
OPPOSITE_SPEED_MPS = 30.0 / 3.6  # [m/s] OppositeActorFlow drives at the ego's lane speed limit:
# the towns here carry none, so CARLA's urban default (30 km/h)
OPPOSITE_TIME_DISTANCE = 1.5  # [m per km/h] its source / sink lie 1.5 x the limit [km/h] ...
OPPOSITE_BASE_DISTANCE_M = 30.0  # [m] ... + 30 m before / after the reference point


class ActorFlow(ScenarioBehaviour):
    """ScenarioRunner's ActorFlow: vehicles appear at the source (``path[0]``) whenever the last
    one is a spacing drawn from U(``spacing_m``) away, drive the path at ``speed_mps`` ignoring
    every other vehicle, the ego included (its Traffic Manager ignores vehicles, lights and signs
    at constant velocity), and are removed at the sink (``path[-1]``). As there, once the ego
    has collided with a flow vehicle the whole flow starts keeping gaps (``ignore_others=False``).
    ``prefill`` also places vehicles along the path at start (so a flow exists when the ego
    arrives instead of growing from the source). ``kind`` / ``size_m`` (length, width [m]) make
    it a bicycle flow; ``ignore_others=False`` makes the vehicles keep gaps from the start (a
    BasicAgent flow). Runs until stopped (RUNNING)."""

    def __init__(
        self,
        ctx: ScenarioContext,
        pool: ActorPool,
        path: Path,
        speed_mps: float,
        spacing_m: tuple[float, float],
        *,
        prefill: bool = False,
        name: str = "ActorFlow",
        kind: ActorKind = ActorKind.VEHICLE,
        size_m: tuple[float, float] = (CAR_LENGTH_M, CAR_WIDTH_M),
        ignore_others: bool = True,
    ) -> None:
        super().__init__(ctx, name)
        self.pool, self.path, self.speed = pool, np.asarray(path, dtype=np.float64), speed_mps
        self.spacing = (min(spacing_m), max(spacing_m))
        self.prefill = prefill
        self.kind, self.size_m = kind, size_m
        self.vehicles: list[int] = []
        self.ignore_others = ignore_others
        self._yaw = path_yaw(self.path)
        self._s = path_s(self.path)
        self._next_gap = 0.0

    def _draw_gap(self) -> float:
        return float(self.ctx.rng.uniform(*self.spacing))

    def _spawn_at(self, s_m: float) -> None:
        x = float(np.interp(s_m, self._s, self.path[:, 0]))
        y = float(np.interp(s_m, self._s, self.path[:, 1]))
        k = int(np.clip(np.searchsorted(self._s, s_m), 0, len(self._s) - 1))
        aid = self.pool.spawn(
            ActorSpec(self.kind, x, y, float(self._yaw[k]), *self.size_m, speed=self.speed)
        )
        self.ctx.backend.command_actor(aid, self._command())
        self.vehicles.append(aid)

    def _occupied(self, s_m: float) -> bool:
        """Whether a vehicle (the ego included) stands within a car length of path point s."""
        a = self.ctx.state.actors
        x = float(np.interp(s_m, self._s, self.path[:, 0]))
        y = float(np.interp(s_m, self._s, self.path[:, 1]))
        veh = a.valid & np.isin(a.kind, (ActorKind.VEHICLE, ActorKind.EMERGENCY))
        return bool(np.any(veh & (np.hypot(a.x - x, a.y - y) < CAR_LENGTH_M)))

    def _command(self) -> ActorCommand:
        return ActorCommand(self.path, self.speed, 3.0, 6.0, ignore_others=self.ignore_others)

    def _stop_ignoring_on_collision(self) -> None:
        """ScenarioRunner's stop_constant_velocity: a collision with a flow vehicle makes every
        flow vehicle (present and future) keep gaps from then on."""
        if not self.ignore_others or not self.vehicles:
            return
        hit = {e.other_id for e in self.ctx.state.events if e.kind in COLLISION_EVENTS}
        if hit.isdisjoint(self.vehicles):
            return
        self.ignore_others = False
        for aid in self.vehicles:
            self.ctx.backend.command_actor(aid, self._command())

    def initialise(self) -> None:
        if len(self.path) < 2:
            log.warning("%s: flow path is empty; no flow", self.name)
            return
        if self.prefill:  # leader first, so the last vehicle listed is the one nearest the source
            s = self._s[-1] - 2.0 * SINK_REACH_M
            while s >= 0.0:
                if not self._occupied(s):  # CARLA refuses a spawn onto another actor
                    self._spawn_at(s)
                s -= self._draw_gap()
        else:
            self._spawn_at(0.0)
        self._next_gap = self._draw_gap()

    def update(self) -> Status:
        if len(self.path) < 2:
            return Status.RUNNING
        self._stop_ignoring_on_collision()
        a = self.ctx.state.actors
        for aid in list(self.vehicles):
            r = actor_row(self.ctx, aid)
            if r is None:
                continue
            if float(np.hypot(a.x[r] - self.path[-1, 0], a.y[r] - self.path[-1, 1])) < SINK_REACH_M:
                self.pool.destroy(aid)
                self.vehicles.remove(aid)
        last = self.vehicles[-1] if self.vehicles else None
        r = actor_row(self.ctx, last) if last is not None else None
        if last is not None and r is None:
            return Status.RUNNING  # spawned this tick, not in the state yet
        src = self.path[0]
        if r is not None and float(np.hypot(a.x[r] - src[0], a.y[r] - src[1])) < self._next_gap:
            return Status.RUNNING
        veh = a.valid & np.isin(a.kind, (ActorKind.VEHICLE, ActorKind.EMERGENCY))
        if np.any(veh & (np.hypot(a.x - src[0], a.y - src[1]) < SOURCE_CLEAR_M)):
            return Status.RUNNING
        self._spawn_at(0.0)
        self._next_gap = self._draw_gap()
        return Status.RUNNING


class EmergencyApproach(ScenarioBehaviour):
    """ScenarioRunner's AdaptiveConstantVelocityAgentBehavior for the emergency vehicle: an
    EMERGENCY vehicle appears on ``path`` (the ego's route, extended backwards) ``behind_m``
    before arc length ``anchor_s_m`` (the trigger point) and drives it at the ego's speed +
    EV_SPEED_INCREMENT_MPS (re-read every tick, reached at once: a constant-velocity agent),
    taking the ego's speed at once when the ego is in its lane within EV_DETECT_BASE_M + its
    speed [m/s] ahead, as the ConstantVelocityAgent does. RUNNING while it exists (the scenario's end
    conditions end it; it is removed at the path end)."""

    def __init__(
        self,
        ctx: ScenarioContext,
        pool: ActorPool,
        path: Path,
        anchor_s_m: float,
        behind_m: float,
    ) -> None:
        super().__init__(ctx, "EmergencyApproach")
        self.pool, self.path = pool, np.asarray(path, dtype=np.float64)
        self._s = path_s(self.path)
        self._yaw = path_yaw(self.path)
        self.anchor_s_m, self.behind_m = anchor_s_m, behind_m
        self.ev_id: int | None = None
        self._commanded = 0.0

    def initialise(self) -> None:
        s0 = max(self.anchor_s_m - self.behind_m, 0.0)
        x = float(np.interp(s0, self._s, self.path[:, 0]))
        y = float(np.interp(s0, self._s, self.path[:, 1]))
        k = int(np.clip(np.searchsorted(self._s, s0), 0, len(self._s) - 1))
        self._commanded = float(self.ctx.state.actors.speed[0]) + EV_SPEED_INCREMENT_MPS
        self.ev_id = self.pool.spawn(
            ActorSpec(ActorKind.EMERGENCY, x, y, float(self._yaw[k]), EV_LENGTH_M, EV_WIDTH_M,
                      2.5, speed=self._commanded)
        )  # fmt: skip
        self._command(self._commanded)

    def _command(self, speed: float) -> None:
        assert self.ev_id is not None
        self.ctx.backend.command_actor(
            self.ev_id, ActorCommand(self.path, speed, EV_ACCEL_MPS2, EV_DECEL_MPS2)
        )

    def ev_row(self) -> int | None:
        return None if self.ev_id is None else actor_row(self.ctx, self.ev_id)

    def ego_ahead(self) -> bool | None:
        """YieldToEmergencyVehicleTest's check: the ego lies ahead of the EV (along the EV's
        heading); None while the EV is not in the state."""
        r = self.ev_row()
        if r is None:
            return None
        a = self.ctx.state.actors
        rel = np.array([a.x[0] - a.x[r], a.y[0] - a.y[r]])
        return bool(np.cos(a.yaw[r]) * rel[0] + np.sin(a.yaw[r]) * rel[1] > 0.0)

    def update(self) -> Status:
        r = self.ev_row()
        if self.ev_id is None or r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        ev_xy = np.array([a.x[r], a.y[r]])
        if float(np.hypot(*(ev_xy - self.path[-1]))) < SINK_REACH_M:
            self.pool.destroy(self.ev_id)
            self.ev_id = None
            return Status.RUNNING
        ev_s = float(self._s[int(np.argmin(np.hypot(*(self.path - ev_xy).T)))])
        d = np.hypot(*(self.path - np.array([a.x[0], a.y[0]])).T)
        k = int(np.argmin(d))
        gap = float(self._s[k] - ev_s - 0.5 * (EV_LENGTH_M + a.length[0]))
        v = float(a.speed[r])
        target = float(a.speed[0]) + EV_SPEED_INCREMENT_MPS
        # ConstantVelocityAgent: a vehicle ahead within 10 m + its own speed [m/s] sets its
        # velocity to that vehicle's at once
        if d[k] < EV_CORRIDOR_M and gap < EV_DETECT_BASE_M + v and gap > -EV_LENGTH_M:
            target = max(float(a.speed[0]), 0.0)
        if abs(target - self._commanded) > EV_RECOMMAND_MPS:
            self._commanded = target
            self._command(target)
        return Status.RUNNING


class EmergencyVehicleNear(ScenarioBehaviour):
    """InTriggerDistanceToVehicle: SUCCESS once the EV's centre is within ``distance_m`` of the
    ego's."""

    def __init__(
        self, ctx: ScenarioContext, approach: EmergencyApproach, distance_m: float
    ) -> None:
        super().__init__(ctx, "EmergencyVehicleNear")
        self.approach, self.distance_m = approach, distance_m

    def update(self) -> Status:
        r = self.approach.ev_row()
        if r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        near = float(np.hypot(a.x[0] - a.x[r], a.y[0] - a.y[r])) < self.distance_m
        return Status.SUCCESS if near else Status.RUNNING


class EmergencyVehiclePassed(ScenarioBehaviour):
    """WaitUntilInFront + DriveDistance: SUCCESS once the EV is ahead of the ego and has driven
    ``distance_m`` since (or has left the path)."""

    def __init__(
        self, ctx: ScenarioContext, approach: EmergencyApproach, distance_m: float
    ) -> None:
        super().__init__(ctx, "EmergencyVehiclePassed")
        self.approach, self.distance_m = approach, distance_m
        self._from: np.ndarray | None = None
        self._driven = 0.0

    def update(self) -> Status:
        if self.approach.ev_id is None and self._from is not None:
            return Status.SUCCESS
        r = self.approach.ev_row()
        if r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        xy = np.array([a.x[r], a.y[r]])
        if self._from is None:
            if self.approach.ego_ahead() is False:
                self._from = xy
            return Status.RUNNING
        self._driven += float(np.hypot(*(xy - self._from)))
        self._from = xy
        return Status.SUCCESS if self._driven >= self.distance_m else Status.RUNNING


class YieldToEmergencyVehicleTest(ScenarioBehaviour):
    """Leaderboard 2.0's YieldToEmergencyVehicleTest: every tick it notes whether the ego is ahead
    of the emergency vehicle; when the scenario ends (the criterion is stopped) with the ego
    still ahead, YIELD_EMERGENCY_VEHICLE is reported once. Stays RUNNING (a criterion never ends a
    scenario)."""

    def __init__(self, ctx: ScenarioContext, approach: EmergencyApproach) -> None:
        super().__init__(ctx, "YieldToEmergencyVehicleTest")
        self.approach = approach
        self.failing = False
        self.failed = False

    def update(self) -> Status:
        ahead = self.approach.ego_ahead()
        if ahead is not None:
            self.failing = ahead
        return Status.RUNNING

    def terminate(self, new_status: Status) -> None:
        if new_status != Status.RUNNING and self.failing and not self.failed:
            self.failed = True
            self.ctx.criteria.report(ReportKind.YIELD_EMERGENCY_VEHICLE)


class ControlNoiseWindow(ScenarioBehaviour):
    """Ask the runner (through RouteScenario.perturb) to add noise to the ego's control for
    ``duration_s``; SUCCESS when the window is over."""

    def __init__(
        self,
        ctx: ScenarioContext,
        duration_s: float,
        steer_std: float,
        throttle_drop: float,
        hold_s: float,
    ) -> None:
        super().__init__(ctx, "ControlNoiseWindow")
        self.duration_s, self.steer_std, self.drop, self.hold_s = (
            duration_s,
            steer_std,
            throttle_drop,
            hold_s,
        )
        self._until = 0.0

    def initialise(self) -> None:
        self._until = self.ctx.board.time_s + self.duration_s
        self.ctx.board.noise = ControlNoise(self._until, self.steer_std, self.drop, self.hold_s)

    def update(self) -> Status:
        return Status.SUCCESS if self.ctx.board.time_s >= self._until else Status.RUNNING

    def terminate(self, new_status: Status) -> None:
        if self.ctx.board.noise is not None and self.ctx.board.noise.until_s == self._until:
            self.ctx.board.noise = None


def opposite_flow(
    ctx: ScenarioContext,
    pool: ActorPool,
    lane: int,
    xy: np.ndarray,
    spacing_m: tuple[float, float],
    name: str = "OppositeActorFlow",
) -> ActorFlow | None:
    """ScenarioRunner's OppositeActorFlow next to the point ``xy`` of the ego's ``lane``: on the
    oncoming lane, from OPPOSITE_TIME_DISTANCE x the limit [km/h] + OPPOSITE_BASE_DISTANCE_M
    upstream of ``xy`` to as far downstream (each end stopping where a junction begins), empty at
    the start, at OPPOSITE_SPEED_MPS, spaced by U(``spacing_m``), keeping gaps to the vehicles
    ahead on their path, the ego included (its BasicAgent controllers do). None when the lane has
    no oncoming neighbour."""
    town = ctx.town
    opp = int(town.graph.left_opposite[lane])
    if opp < 0:
        return None
    reach = OPPOSITE_TIME_DISTANCE * OPPOSITE_SPEED_MPS * 3.6 + OPPOSITE_BASE_DISTANCE_M
    s = lane_s_fine(town, opp, xy)
    up = _until_junction(town, lane_backward(town, opp, s, reach)[::-1])[::-1]
    down = _until_junction(town, lane_forward(town, opp, s, reach))
    path = np.concatenate([up, down[1:]])
    return ActorFlow(ctx, pool, path, OPPOSITE_SPEED_MPS, spacing_m, name=name, ignore_others=False)


def _until_junction(town: Town, path: Path) -> Path:
    """The leading part of ``path`` (N, 2) before its first point inside a junction
    (ScenarioRunner's _move_waypoint_forward / _backwards stop there)."""
    if len(path) < 2:
        return path
    inside = town.lanes.junction_id[town.lanes.project(path).lane] >= 0
    inside[0] = False
    cut = int(np.argmax(inside)) if inside.any() else len(path)
    return path[: max(cut, 2)]
