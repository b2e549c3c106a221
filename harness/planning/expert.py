"""The privileged expert planner: PDM-Closed style proposals, scored, the best tracked.

Per plan (10 Hz): locate the ego on the route -> constant-velocity forecast -> candidate paths
(route centre, +-in-lane nudges, and when a stopped obstacle blocks the route lane, paths into
the adjacent lane: same-direction left, else the opposite lane, or same-direction right) ->
IDM proposals toward SPEED_FRACTIONS of the speed limit with rule stops (lights, stop signs,
junction yielding, end of route) -> scoring -> best -> emergency brake when even the best
collides within EMERGENCY_TTC_S. Between plans (20 Hz ticks) the last plan is tracked with
:class:`harness.dynamics.tracking.PurePursuitPID`.

Scoring (:mod:`harness.planning.scoring`) mirrors PDMS: gates (no at-fault collision, drivable
area, opposite lane only when clear for the whole manoeuvre) x weighted (progress, TTC, comfort,
route-lane keeping).

Emergency vehicle from behind (in the route lane, within EV_BEHIND_M): the expert makes room by
leaving the EV's lane - to the same-direction right lane when there is one, else the
same-direction left lane, else EV_NUDGE_M to the right within its lane - and keeps its speed (it
neither stops nor speeds up beyond the limit) until the EV is past.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.maps.town import Town
from harness.planning.forecast import CorridorLeads, Forecast, constant_velocity, corridor_leads
from harness.planning.paths import (
    STATION_STEP_M,
    PathKind,
    PathSet,
    RouteContext,
    build_paths,
    build_route_context,
)
from harness.planning.proposals import (
    SAME_HEADING_COS,
    ProposalConfig,
    Proposals,
    next_junction,
    rollout,
    time_to_cover,
    traffic_stop,
    yield_stop,
)
from harness.planning.scoring import ScoreConfig, Scores, drivable_ok, score_proposals
from harness.routes.interpolate import PlannedRoute
from harness.world.control import VehicleControl
from harness.world.state import ActorKind, WorldState
from harness.world.timing import POSE_DT_S, SIM_DT_S

PATH_STATIONS = 72  # [-] stations per candidate path (72 m)
LOCATE_BACK_M = 5  # [stations] the ego is searched for from this far behind its last station
LOCATE_AHEAD_M = 30  # [stations] ... to this far ahead
NUDGE_M = 0.5  # [m] in-lane lateral offsets
IN_LANE_RAMP_S = 1.5  # [s] in-lane offset changes take this long at the current speed ...
IN_LANE_RAMP_M = (5.0, 15.0)  # [m] ... clipped to this range
LANE_CHANGE_RAMP_S = 2.5  # [s] lane changes take this long ...
LANE_CHANGE_RAMP_M = (10.0, 25.0)  # [m] ... clipped to this range
OFF_LANE_M = 1.0  # [m] |lateral offset| beyond which the ego counts as out of its route lane
BLOCKER_SPEED_MPS = 3.0  # [m/s] a corridor lead slower than this may be a blocking obstacle ...
BLOCKER_RANGE_M = 40.0  # [m] ... when this close
QUEUE_CLEARANCE_M = 20.0  # [m] a stopped vehicle this close before a stop / junction is queuing
BLOCKER_STOPPED_S = 3.0  # [s] a vehicle must have stood this long to be passed (not a braking lead)
BLOCKER_STANDOFF_M = 5.0  # [m] extra standstill gap behind a blocker (room to pull out)
BLOCKER_CHAIN_M = 30.0  # [m] slow objects within this of the first belong to the same blockage
PASS_CLEAR_M = 3.0  # [m] the ego's rear clears the blockage by this much before it returns
PASS_RETURN_FRACTION = 0.75  # [-] the ego's body leaves the opposite lane this far into its
# return ramp (a smoothstep back from a full lane width)
ONCOMING_MARGIN_S = 1.0  # [s] spare time to oncoming traffic after the whole pass
ONCOMING_SEARCH_M = 250  # [stations] oncoming vehicles are searched this far ahead
OPPOSITE_START_MPS = 3.0  # [m/s] a pass through the opposite lane starts from (near) standstill
PASS_NUDGE_OVER_M = 0.3  # [m] a pass nudge lets the ego's side cross its lane line by this ...
PASS_NUDGE_MAX_M = 0.95  # [m] ... with its centre at most this far off (within OFF_LANE_M)
EV_BEHIND_M = 60.0  # [m] an emergency vehicle this close behind triggers making room
EV_NUDGE_M = 0.8  # [m] in-lane move to the right for an emergency vehicle (no lane to yield to)
EV_LANE_MARGIN_M = 0.5  # [m] an EV this far beyond half the lane width is out of the route lane
EV_LANE_LOOK_STATIONS = 10  # [stations] neighbour lanes to yield into are looked for this far ahead
PULL_OUT_MAX_MPS = 6.0  # [m/s] a vehicle moving off the drivable lanes slower than this ...
PULL_OUT_REACH_M = 1.5  # [m] ... this close to a path's corridor is treated as cutting in now
EMERGENCY_TTC_S = 2.0  # [s] brake fully when the best proposal collides this soon
SLOWING_MPS = 0.2  # [m/s] a plan this much slower than the ego 0.3 s ahead asks to slow down
STANDSTILL_MPS = 0.3  # [m/s] slower counts as waiting (yield patience)
PLAN_EVERY_TICKS = 2  # [-] plan at 10 Hz on the 20 Hz simulation


@dataclass(frozen=True)
class ExpertConfig:
    """Everything tunable of the expert, with units."""

    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    scoring: ScoreConfig = field(default_factory=ScoreConfig)
    ego: VehicleParams = LINCOLN_MKZ_2017
    tracker: PurePursuitPID = field(default_factory=PurePursuitPID)
    plan_every_ticks: int = PLAN_EVERY_TICKS
    emergency_ttc_s: float = EMERGENCY_TTC_S


@dataclass(frozen=True, eq=False)
class Plan:
    """One planning result: ``poses`` (T, 3) [x, y, yaw] at t = POSE_DT_S .. T * POSE_DT_S,
    ``speeds`` (T,) [m/s]; ``emergency`` when the expert brakes fully; the chosen ``path_kind``
    and proposal index; all ``proposals`` and their ``scores`` for inspection / teachers."""

    poses: NDArray[np.float64]
    speeds: NDArray[np.float64]
    emergency: bool
    path_kind: PathKind
    best: int
    proposals: Proposals
    scores: Scores


@dataclass
class _Blockage:
    """A stopped obstacle in the route lane: nearest rear and farthest front stations [m]."""

    rear_m: float
    front_m: float


class ExpertPlanner:
    """Plans along one route; holds the per-route memory (progress, served stop signs, yield
    waiting time, the last plan). ``step(state)`` once per 20 Hz tick returns the control."""

    def __init__(self, town: Town, planned: PlannedRoute, config: ExpertConfig | None = None):
        self.town = town
        self.config = config or ExpertConfig()
        self.ctx: RouteContext = build_route_context(town, planned)
        self.station_index = 0
        self.served: set[int] = set()
        self.waited_s = 0.0
        self.pid = PIDState()
        self.last_plan: Plan | None = None
        self.plan_times_s: list[float] = []
        self._stopped_since: dict[int, float] = {}  # actor id -> time [s] it came to a stop
        self._tick = 0

    # ------------------------------------------------------------------ per tick
    def step(self, state: WorldState) -> VehicleControl:
        """Plan every ``plan_every_ticks`` ticks (reusing the last plan in between) and track."""
        fresh = self._tick % self.config.plan_every_ticks == 0 or self.last_plan is None
        if fresh:
            t0 = time.perf_counter()
            self.last_plan = self.plan(state)
            self.plan_times_s.append(time.perf_counter() - t0)
        self._tick += 1
        assert self.last_plan is not None
        age = 0.0 if fresh else SIM_DT_S * ((self._tick - 1) % self.config.plan_every_ticks)
        return self.control(state, self.last_plan, age)

    def control(self, state: WorldState, plan: Plan, age_s: float = 0.0) -> VehicleControl:
        """Track ``plan`` (made ``age_s`` ago) for one tick; full brake in an emergency."""
        a = state.actors
        pose = [a.x[0], a.y[0], a.yaw[0]]
        traj = PlannedTrajectory(plan.poses, dt_s=POSE_DT_S, t0_s=POSE_DT_S - age_s,
                                 speeds_mps=plan.speeds)  # fmt: skip
        if plan.speeds[min(2, plan.speeds.size - 1)] < a.speed[0] - SLOWING_MPS:
            self.pid.integral_m = min(self.pid.integral_m, 0.0)  # no wind-up when slowing down
        ctrl = self.config.tracker.control(self.pid, pose, float(a.speed[0]), traj, SIM_DT_S)
        if plan.emergency:
            self.pid.reset()
            return VehicleControl(throttle=0.0, steer=ctrl.steer, brake=1.0)
        return ctrl

    # ------------------------------------------------------------------ planning
    def plan(self, state: WorldState) -> Plan:
        """One planning step on the true world state."""
        cfg, ctx, ego = self.config, self.ctx, self.config.ego
        a = state.actors
        ego_xy = np.array([a.x[0], a.y[0]])
        v = float(max(a.speed[0], 0.0))
        s_ego, d0 = ctx.locate(ego_xy, self.station_index - LOCATE_BACK_M,
                               self.station_index + LOCATE_AHEAD_M)  # fmt: skip
        self.station_index = max(self.station_index, int(s_ego / STATION_STEP_M))
        origin = max(int(s_ego / STATION_STEP_M) - 1, 0)
        s_rel = s_ego - origin * STATION_STEP_M
        front = s_ego + 0.5 * ego.length_m
        half_w = 0.5 * ego.width_m
        fc = constant_velocity(state)
        self._note_stopped(fc, state.time_s)
        idx = np.clip(origin + np.arange(PATH_STATIONS), 0, ctx.n - 1)

        ev_behind = self._emergency_behind(state, s_ego)
        base_t, base_k = self._base_targets(idx, ev_behind)
        paths = build_paths(ctx, origin, PATH_STATIONS, d0, base_t, base_k, self._ramps(base_k, v))
        reach = self._pull_out_reach(fc)
        leads = corridor_leads(paths, fc, s_rel, half_w, reach)
        blockage = self._blockage(state, fc, leads, origin, s_ego)
        opposite_ok = False
        if blockage is not None or abs(d0) > OFF_LANE_M or ev_behind:
            extra_t, extra_k = self._lane_targets(idx)
            if blockage is not None:
                extra_t = np.concatenate([extra_t, self._pass_nudge(idx)[None]])
                extra_k = np.append(extra_k, int(PathKind.NUDGE_LEFT))
            if extra_k.size:
                targets = np.concatenate([base_t, extra_t])
                kinds = np.concatenate([base_k, extra_k])
                paths = build_paths(ctx, origin, PATH_STATIONS, d0, targets, kinds,
                                    self._ramps(kinds, v))  # fmt: skip
                leads = corridor_leads(paths, fc, s_rel, half_w, reach)
            if blockage is not None and d0 > -OFF_LANE_M and v < OPPOSITE_START_MPS:
                opposite_ok = self._opposite_clear(state, s_ego, v, blockage)
        blocked = np.zeros(paths.n_paths, dtype=bool)
        if blockage is not None:
            leads, blocked = self._stand_off(paths, leads, blockage, origin)

        stop = traffic_stop(ctx, state, front, v, self.served)
        junction = next_junction(ctx, state, front)
        if junction is not None:
            stop = min(stop, yield_stop(ctx, state, junction, front, s_ego, ego.length_m, half_w,
                                        self.waited_s))  # fmt: skip
        plan_dt_s = cfg.plan_every_ticks * SIM_DT_S  # [s] time between two plans
        self.waited_s = self.waited_s + plan_dt_s if v < STANDSTILL_MPS else 0.0
        limit = ctx.speed_limit[idx]
        props = rollout(paths, limit, v, s_rel, leads, stop - origin * STATION_STEP_M,
                        0.5 * ego.length_m, cfg.proposals)  # fmt: skip
        scores = score_proposals(
            props, paths, fc, drivable_ok(self.town, paths, ego), ego, cfg.scoring,
            preferred_offset_m=self._preferred_offset(idx) if ev_behind else 0.0,
            opposite_allowed=opposite_ok or d0 < -OFF_LANE_M, blocked=blocked,
        )  # fmt: skip
        best = scores.best
        emergency = bool(scores.first_collision_s[best] < cfg.emergency_ttc_s)
        speeds = props.speed[best, 1:]
        return Plan(
            poses=props.poses[best, 1:], speeds=np.zeros_like(speeds) if emergency else speeds,
            emergency=emergency, path_kind=PathKind(int(paths.kind[props.path[best]])),
            best=best, proposals=props, scores=scores,
        )  # fmt: skip

    def _ramps(self, kinds: NDArray[np.int64], v: float) -> NDArray[np.float64]:
        """Lateral blend length [m] per path: lane changes take longer than in-lane moves."""
        lane = np.isin(kinds, [PathKind.LEFT_LANE, PathKind.OPPOSITE_LANE, PathKind.RIGHT_LANE])
        in_lane = np.clip(v * IN_LANE_RAMP_S, *IN_LANE_RAMP_M)
        change = np.clip(v * LANE_CHANGE_RAMP_S, *LANE_CHANGE_RAMP_M)
        return np.where(lane, change, in_lane).astype(np.float64)

    def _base_targets(
        self, idx: NDArray[np.int64], ev_behind: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Target offsets (P, K) and kinds of the always-present paths: centre and nudges."""
        k = idx.size
        offs = [0.0, NUDGE_M, -NUDGE_M]
        kinds = [PathKind.CENTER, PathKind.NUDGE_RIGHT, PathKind.NUDGE_LEFT]
        if ev_behind:
            offs.append(EV_NUDGE_M)
            kinds.append(PathKind.NUDGE_RIGHT)
        return np.repeat(np.asarray(offs)[:, None], k, axis=1), np.asarray(kinds, dtype=np.int64)

    def _lane_targets(
        self, idx: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Paths into the left neighbour (same-direction or opposite) and the right
        same-direction lane where they exist near the ego; gaps in the neighbour are filled."""
        ctx = self.ctx
        out_t, out_k = [], []
        near = idx[: max(idx.size // 3, 1)]
        for offsets, kind in (
            (ctx.left_offset, PathKind.OPPOSITE_LANE if ctx.left_opposite[near].any()
             else PathKind.LEFT_LANE),
            (ctx.right_offset, PathKind.RIGHT_LANE),
        ):  # fmt: skip
            row = offsets[idx]
            if not np.isfinite(row[: near.size]).any():
                continue
            valid = np.isfinite(row)
            fill = np.maximum.accumulate(np.where(valid, np.arange(row.size), 0))
            first = int(np.argmax(valid))
            row = np.where(np.arange(row.size) < first, row[first], row[fill])
            out_t.append(row)
            out_k.append(int(kind))
        if not out_t:
            return np.zeros((0, idx.size)), np.zeros(0, dtype=np.int64)
        return np.stack(out_t), np.asarray(out_k, dtype=np.int64)

    def _pass_nudge(self, idx: NDArray[np.int64]) -> NDArray[np.float64]:
        """Offsets (K,) [m] of the widest in-lane pass to the left: the ego's left side crosses
        its lane line by at most PASS_NUDGE_OVER_M (narrow obstacles at the lane edge, such as
        bicycles, are passed without taking the opposite lane; oncoming traffic keeps room)."""
        half_free = 0.5 * self.ctx.width[idx] - 0.5 * self.config.ego.width_m + PASS_NUDGE_OVER_M
        return -np.clip(half_free, NUDGE_M, PASS_NUDGE_MAX_M)

    def _blockage(
        self, state: WorldState, fc: Forecast, leads: CorridorLeads, origin: int, s_ego: float
    ) -> _Blockage | None:
        """The stopped obstacle in the route lane that the expert should pass, or None: the
        centre path's lead when it is slow, close, and not a vehicle queuing at a stop line or
        junction; the blockage extends over slow objects chained behind it in the lane."""
        row = int(leads.row[0])
        if row < 0 or leads.speed[0] > BLOCKER_SPEED_MPS:
            return None
        rear = float(leads.station[0]) + origin * STATION_STEP_M
        if rear - s_ego > BLOCKER_RANGE_M:
            return None
        kind = int(fc.kind[row])
        if kind == ActorKind.PEDESTRIAN:
            return None
        if kind in (ActorKind.VEHICLE, ActorKind.EMERGENCY):
            since = self._stopped_since.get(int(fc.actor_id[row]), state.time_s)
            if fc.speed[row] > 0.0 or state.time_s - since < BLOCKER_STOPPED_S:
                return None
            ahead = self.ctx.stop_station[
                (self.ctx.stop_station > rear) & (self.ctx.stop_station < rear + QUEUE_CLEARANCE_M)
            ]
            lo, hi = int(rear), min(int(rear + QUEUE_CLEARANCE_M), self.ctx.n)
            if ahead.size or self.ctx.in_junction[lo:hi].any():
                return None
        b0 = fc.boxes[0]
        slow = np.flatnonzero(fc.speed < BLOCKER_SPEED_MPS)
        st, lat = self.ctx.project_many(b0[slow, :2], int(rear) - 5, int(rear + BLOCKER_CHAIN_M))
        k = np.clip(np.rint(st).astype(np.int64), 0, self.ctx.n - 1)
        in_lane = (np.abs(lat) < 0.5 * self.ctx.width[k] + 0.5 * b0[slow, 4]) & (st > rear - 1.0)
        in_lane &= fc.kind[slow] != ActorKind.PEDESTRIAN
        front = float(np.max(st[in_lane] + 0.5 * b0[slow[in_lane], 3], initial=rear + 1.0))
        return _Blockage(rear, front)

    def _pull_out_reach(self, fc: Forecast) -> NDArray[np.float64]:
        """Extra corridor reach [m] (N,) at t = 0 per forecast actor: PULL_OUT_REACH_M for a
        vehicle ahead that moves off the drivable lanes (leaving a parking spot or the shoulder)
        at under PULL_OUT_MAX_MPS - it is about to enter a lane, and its heading does not show
        it yet - else 0."""
        b0 = fc.boxes[0]
        cand = (fc.kind == ActorKind.VEHICLE) & (fc.speed > 0.0) & (fc.speed < PULL_OUT_MAX_MPS)
        cand &= fc.ahead_m > 0.0
        out = np.zeros(fc.n)
        if cand.any():
            rows = np.flatnonzero(cand)
            off = ~np.asarray(self.town.area.contains(b0[rows, :2]), dtype=bool)
            out[rows[off]] = PULL_OUT_REACH_M
        return out

    def _note_stopped(self, fc: Forecast, time_s: float) -> None:
        """Remember since when each forecast actor stands still (forgets moving ones)."""
        stopped = {int(i) for i in fc.actor_id[fc.speed <= 0.0]}
        self._stopped_since = {i: self._stopped_since.get(i, time_s) for i in stopped}

    def _stand_off(
        self, paths: PathSet, leads: CorridorLeads, blockage: _Blockage, origin: int
    ) -> tuple[CorridorLeads, NDArray[np.bool_]]:
        """Stop BLOCKER_STANDOFF_M farther back behind a blockage on in-lane paths, leaving room
        to pull out around it; also which paths (P,) end at the blockage (they make no progress
        past it, so a free way around is preferred as soon as one exists)."""
        in_lane = paths.kind <= PathKind.NUDGE_LEFT
        at_block = np.abs(leads.station + origin * STATION_STEP_M - blockage.rear_m) < 1.0
        blocked = np.asarray(in_lane & at_block, dtype=bool)
        shift = np.where(blocked, BLOCKER_STANDOFF_M, 0.0)
        return CorridorLeads(leads.station - shift, leads.speed, leads.row), blocked

    def _opposite_clear(self, state: WorldState, s_ego: float, v: float, b: _Blockage) -> bool:
        """Whether the opposite lane stays free of oncoming traffic for the whole pass: the ego
        occupies it until its rear cleared the blockage by PASS_CLEAR_M and it is
        PASS_RETURN_FRACTION into its return ramp, driving at the route's speed limit after
        accelerating with the proposals' IDM; every oncoming vehicle must reach that point no
        sooner than ONCOMING_MARGIN_S after the ego left it."""
        ctx, a, ego = self.ctx, state.actors, self.config.ego
        rows = np.flatnonzero(a.valid & np.isin(a.kind, [ActorKind.VEHICLE, ActorKind.EMERGENCY,
                                                           ActorKind.BICYCLE]))  # fmt: skip
        rows = rows[rows != 0]
        k_b = int(np.clip(b.front_m, 0, ctx.n - 1))
        v_pass = float(ctx.speed_limit[int(np.clip(s_ego, 0, ctx.n - 1)) : k_b + 1].min())
        ramp = float(np.clip(v_pass * LANE_CHANGE_RAMP_S, *LANE_CHANGE_RAMP_M))
        pass_m = b.front_m - s_ego + 0.5 * ego.length_m + PASS_CLEAR_M + PASS_RETURN_FRACTION * ramp
        t_pass = time_to_cover(pass_m, v, v_pass, self.config.proposals.idm.a_max_mps2)
        if rows.size == 0:
            return True
        lo = int(s_ego) - 5
        st, lat = ctx.project_many(
            np.column_stack([a.x[rows], a.y[rows]]), lo, lo + ONCOMING_SEARCH_M
        )
        k = np.clip(np.rint(st).astype(np.int64), 0, ctx.n - 1)
        left = np.where(np.isfinite(ctx.left_offset[k]), ctx.left_offset[k], -ctx.width[k])
        in_opp = np.abs(lat - left) < 0.5 * ctx.width[k] + 0.5 * a.width[rows]
        oncoming = np.cos(a.yaw[rows] - ctx.yaw[k]) < 0.0
        ahead = st - s_ego - 0.5 * a.length[rows]  # to the oncoming front bumper
        relevant = in_opp & oncoming & (ahead > -2.0) & (ahead < ONCOMING_SEARCH_M - 10)
        need = pass_m + np.maximum(a.speed[rows], 0.0) * (t_pass + ONCOMING_MARGIN_S)
        return bool(np.all(ahead[relevant] > need[relevant]))

    def _emergency_behind(self, state: WorldState, s_ego: float) -> bool:
        """Whether an emergency vehicle drives in the ego's route lane behind it, within
        EV_BEHIND_M, heading the route's way. Measured along the route (not from the ego), so
        the ego keeps making room while it stands in a neighbour lane until the EV is past."""
        a, ctx = state.actors, self.ctx
        rows = np.flatnonzero(a.valid & (a.kind == ActorKind.EMERGENCY))
        if rows.size == 0:
            return False
        lo = int(s_ego - EV_BEHIND_M) - 5
        st, lat = ctx.project_many(np.column_stack([a.x[rows], a.y[rows]]), lo, int(s_ego) + 5)
        k = np.clip(np.rint(st).astype(np.int64), 0, ctx.n - 1)
        same_dir = np.cos(a.yaw[rows] - ctx.yaw[k]) > SAME_HEADING_COS
        in_lane = np.abs(lat) < 0.5 * ctx.width[k] + EV_LANE_MARGIN_M
        behind = (st < s_ego) & (st > s_ego - EV_BEHIND_M)
        return bool(np.any(behind & in_lane & same_dir))

    def _preferred_offset(self, idx: NDArray[np.int64]) -> float:
        """Lateral offset [m] the lane-keeping score pulls toward while an emergency vehicle
        comes from behind: out of its way, into the same-direction right lane, else the
        same-direction left lane, else EV_NUDGE_M to the right within the lane."""
        ctx, near = self.ctx, idx[:EV_LANE_LOOK_STATIONS]
        right = ctx.right_offset[near]
        if np.isfinite(right).any():
            return float(np.nanmean(right))
        left = ctx.left_offset[near]
        if np.isfinite(left).any() and not ctx.left_opposite[near].any():
            return float(np.nanmean(left))
        return EV_NUDGE_M
