"""Behaviours that manage traffic rather than one scripted move: the actor flow (source -> sink
at a spacing and speed), the emergency vehicle approaching from behind with its yield criterion,
and the control-loss noise window."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.common import Status

from harness.dynamics.idm import IDMParams, idm_accel
from harness.leaderboard.route_criteria import ReportKind
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import COLLISION_EVENTS, ActorKind
from scenarios.behaviours import ActorPool, ScenarioBehaviour, actor_row
from scenarios.context import ControlNoise, ScenarioContext
from scenarios.placement import Path, path_s, path_yaw

log = logging.getLogger(__name__)

CAR_LENGTH_M = 4.8  # [m] flow / scenario car box
CAR_WIDTH_M = 2.0  # [m]
SINK_REACH_M = 2.0  # [m] a flow vehicle this close to the sink is removed
SOURCE_CLEAR_M = 6.0  # [m] nothing spawns while any vehicle is this close to the source
EV_LENGTH_M = 6.0  # [m] emergency vehicle (ambulance / fire truck scale)
EV_WIDTH_M = 2.3  # [m]
EV_CRUISE_MPS = 18.0  # [m/s] the emergency vehicle's desired speed (~65 km/h)
EV_CORRIDOR_M = 1.6  # [m] the ego blocks the EV when its centre is this close to the EV's path
EV_LOOKAHEAD_M = 60.0  # [m]
EV_RECOMMAND_MPS = 0.5  # [m/s] re-command the EV when its IDM speed changes by more than this
EV_BLOCK_GAP_M = 20.0  # [m] the ego blocks the EV when within this bumper gap ahead of it ...
EV_BLOCK_SPEED_FRACTION = 0.7  # [-] ... and the EV is held below this fraction of its cruise speed
EV_IDM = IDMParams(a_max_mps2=3.0, b_comf_mps2=4.0, s0_m=3.0, headway_s=0.8)


class ActorFlow(ScenarioBehaviour):
    """ScenarioRunner's ActorFlow: vehicles appear at the source (``path[0]``) whenever the last
    one is a spacing drawn from U(``spacing_m``) away, drive the path at ``speed_mps`` ignoring
    every other vehicle, the ego included (its Traffic Manager ignores vehicles, lights and signs
    at constant velocity), and are removed at the sink (``path[-1]``). As there, once the ego
    has collided with a flow vehicle the whole flow starts keeping gaps (``ignore_others=False``).
    ``prefill`` also places vehicles along the path at start (so a flow exists when the ego
    arrives instead of growing from the source). Runs until stopped (RUNNING)."""

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
    ) -> None:
        super().__init__(ctx, name)
        self.pool, self.path, self.speed = pool, np.asarray(path, dtype=np.float64), speed_mps
        self.spacing = (min(spacing_m), max(spacing_m))
        self.prefill = prefill
        self.vehicles: list[int] = []
        self.ignore_others = True
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
            ActorSpec(
                ActorKind.VEHICLE,
                x,
                y,
                float(self._yaw[k]),
                CAR_LENGTH_M,
                CAR_WIDTH_M,
                speed=self.speed,
            )
        )
        self.ctx.backend.command_actor(aid, self._command())
        self.vehicles.append(aid)

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
    """An EMERGENCY vehicle appears ``behind_m`` behind the ego on ``path`` (the ego's lane and
    route, extended backwards) and drives it at EV_CRUISE_MPS, slowing with IDM when the ego is in
    its way; ``blocked`` says whether the ego holds it up this tick. RUNNING until the EV reaches
    the path end (then it is removed and SUCCESS)."""

    def __init__(
        self,
        ctx: ScenarioContext,
        pool: ActorPool,
        path: Path,
        behind_m: float,
    ) -> None:
        super().__init__(ctx, "EmergencyApproach")
        self.pool, self.path = pool, np.asarray(path, dtype=np.float64)
        self._s = path_s(self.path)
        self._yaw = path_yaw(self.path)
        self.behind_m = behind_m
        self.ev_id: int | None = None
        self.blocked = False
        self._commanded = EV_CRUISE_MPS

    def initialise(self) -> None:
        a = self.ctx.state.actors
        ego_s = float(
            self._s[int(np.argmin(np.hypot(self.path[:, 0] - a.x[0], self.path[:, 1] - a.y[0])))]
        )
        s0 = max(ego_s - self.behind_m, 0.0)
        x = float(np.interp(s0, self._s, self.path[:, 0]))
        y = float(np.interp(s0, self._s, self.path[:, 1]))
        k = int(np.clip(np.searchsorted(self._s, s0), 0, len(self._s) - 1))
        self.ev_id = self.pool.spawn(
            ActorSpec(
                ActorKind.EMERGENCY,
                x,
                y,
                float(self._yaw[k]),
                EV_LENGTH_M,
                EV_WIDTH_M,
                2.5,
                speed=EV_CRUISE_MPS,
            )
        )
        self.ctx.backend.command_actor(self.ev_id, ActorCommand(self.path, EV_CRUISE_MPS, 4.0, 8.0))

    def update(self) -> Status:
        self.blocked = False
        if self.ev_id is None:
            return Status.SUCCESS
        r = actor_row(self.ctx, self.ev_id)
        if r is None:
            return Status.RUNNING
        a = self.ctx.state.actors
        ev_xy = np.array([a.x[r], a.y[r]])
        if float(np.hypot(*(ev_xy - self.path[-1]))) < SINK_REACH_M:
            self.pool.destroy(self.ev_id)
            self.ev_id = None
            return Status.SUCCESS
        ev_s = float(self._s[int(np.argmin(np.hypot(*(self.path - ev_xy).T)))])
        ego_xy = np.array([a.x[0], a.y[0]])
        d = np.hypot(*(self.path - ego_xy).T)
        k = int(np.argmin(d))
        gap = float(self._s[k] - ev_s - 0.5 * (EV_LENGTH_M + a.length[0]))
        v = float(a.speed[r])
        target = EV_CRUISE_MPS
        if d[k] < EV_CORRIDOR_M and -EV_LENGTH_M < gap < EV_LOOKAHEAD_M:
            acc = float(idm_accel(v, EV_CRUISE_MPS, max(gap, 0.0), v - float(a.speed[0]), EV_IDM))
            target = float(np.clip(v + acc, 0.0, EV_CRUISE_MPS))
            self.blocked = gap < EV_BLOCK_GAP_M and v < EV_BLOCK_SPEED_FRACTION * EV_CRUISE_MPS
        if abs(target - self._commanded) > EV_RECOMMAND_MPS:
            self._commanded = target
            self.ctx.backend.command_actor(self.ev_id, ActorCommand(self.path, target, 4.0, 8.0))
        return Status.RUNNING


class YieldToEmergencyVehicleTest(ScenarioBehaviour):
    """Leaderboard 2.0's yield criterion, simplified: when the ego keeps the emergency vehicle
    blocked (``EmergencyApproach.blocked``) for more than ``max_blocked_s`` in a row, report
    YIELD_EMERGENCY_VEHICLE once. Stays RUNNING (a criterion never ends a scenario)."""

    def __init__(
        self, ctx: ScenarioContext, approach: EmergencyApproach, max_blocked_s: float
    ) -> None:
        super().__init__(ctx, "YieldToEmergencyVehicleTest")
        self.approach, self.max_blocked_s = approach, max_blocked_s
        self.failed = False
        self._since: float | None = None

    def update(self) -> Status:
        now = self.ctx.board.time_s
        if not self.approach.blocked:
            self._since = None
            return Status.RUNNING
        self._since = now if self._since is None else self._since
        if not self.failed and now - self._since > self.max_blocked_s:
            self.failed = True
            self.ctx.criteria.report(ReportKind.YIELD_EMERGENCY_VEHICLE)
        return Status.RUNNING


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
