"""Proposals: candidate paths x IDM target speeds unrolled over the horizon (PDM-Closed style).

Each proposal follows one path with IDM toward a fraction of the station's speed limit; the IDM
leader is the nearer of the path's corridor lead (:func:`harness.planning.forecast.corridor_leads`)
and a stopped object at the nearest rule stop (red / yellow light, unserved stop sign, yielding
at a junction, end of route). The rollout is vectorised over proposals, stepping time.

Also here: the traffic-rule and junction-yield stop stations the expert feeds to the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.idm import MIN_GAP_M, IDMParams
from harness.planning.forecast import VULNERABLE, CorridorLeads, corridor_arrivals
from harness.planning.paths import STOP_KIND_LIGHT, STOP_KIND_SIGN, PathSet, RouteContext
from harness.world.state import ActorKind, LightState, WorldState
from harness.world.timing import HORIZON_STEPS, POSE_DT_S

PDM_IDM = IDMParams(a_max_mps2=1.5, b_comf_mps2=3.0, s0_m=1.0, headway_s=1.5, delta=4.0)
SPEED_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)  # [-] IDM target speeds as fractions of the limit
MAX_DECEL_MPS2 = 7.0  # [m/s2] hardest braking a proposal may plan (the MKZ brakes ~8)
YELLOW_DECEL_MPS2 = 3.0  # [m/s2] stop for yellow when this deceleration suffices
STOP_LOOKAHEAD_M = 80.0  # [m] rule stops farther than this are ignored
STOP_PASSED_M = -0.5  # [m] a stop line this far behind the front bumper is passed
STOP_SERVED_SPEED_MPS = 0.1  # [m/s] a stop sign is served by dropping below this ...
STOP_SERVED_DIST_M = 4.0  # [m] ... with the front bumper this close to the line
END_STOP_PAST_M = 8.0  # [m] the stop target (front bumper) this far past the route end: with
# IDM's minimum gap and half a car length behind the bumper, the centre then stops ~3 m past the
# last route point, which RouteCompletionTest must see passed on a short route (RC > 99 %)
JUNCTION_LOOKAHEAD_M = 50.0  # [m] junctions farther ahead are not yielded for yet
JUNCTION_EXIT_EXTRA_M = 6.0  # [m] the conflict area reaches this far past the junction exit
JUNCTION_ENTRY_MARGIN_M = 1.0  # [m] the yield stop sits this far before the junction entry
YIELD_MARGIN_S = 2.0  # [s] gap wanted between the ego clearing and another arriving
YIELD_MARGIN_IMPATIENT_S = 0.5  # [s] ... after waiting YIELD_PATIENCE_S (deadlock breaker)
YIELD_PATIENCE_S = 10.0  # [s]
YIELD_MIN_SPEED_MPS = 0.5  # [m/s] slower actors are not yielded to (they are leads if in the way)
SAME_HEADING_COS = 0.7  # [-] cos of the heading difference under which an actor on the route
# corridor counts as travelling with the ego (a lead or follower, not a conflict)
RED_RUNNER_DECEL_MPS2 = 3.5  # [m/s2] at green, yield only to actors that could not stop anymore
LIGHT_NEAR_JUNCTION_M = 15.0  # [m] a route stop line this close before a junction controls it
MERGE_MARGIN_S = 1.0  # [s] a vehicle merging into the ego's lane behind it must arrive this long
# after the ego's rear passed its merge point (it then follows the ego: a gap, not a crossing)
MERGE_AHEAD_S = 1.0  # [s] ... or this long before the ego's front gets there (it leads)


@dataclass(frozen=True)
class ProposalConfig:
    """Longitudinal model of the proposals."""

    idm: IDMParams = field(default_factory=lambda: PDM_IDM)
    speed_fractions: tuple[float, ...] = SPEED_FRACTIONS
    max_decel_mps2: float = MAX_DECEL_MPS2
    steps: int = HORIZON_STEPS  # [-] horizon steps (4 s at POSE_DT_S)
    dt_s: float = POSE_DT_S  # [s]


@dataclass(frozen=True, eq=False)
class Proposals:
    """Q = P x F proposals over T+1 steps (t = 0 is now).

    path (Q,) path index; target_mps (Q,) IDM target speed fraction; station (Q, T+1) [m]
    relative to the path origin; speed (Q, T+1) [m/s]; accel (Q, T+1) [m/s2]; poses (Q, T+1, 3)
    [x, y, yaw] box centre, world frame; offset (Q, T+1) [m] lateral offset from the route."""

    path: NDArray[np.int64]
    fraction: NDArray[np.float64]
    station: NDArray[np.float64]
    speed: NDArray[np.float64]
    accel: NDArray[np.float64]
    poses: NDArray[np.float64]
    offset: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.path.shape[0])


def rollout(
    paths: PathSet, limit: NDArray[np.float64], v0_mps: float, s0_m: float, leads: CorridorLeads,
    stop_m: float, ego_half_length_m: float, cfg: ProposalConfig,
) -> Proposals:  # fmt: skip
    """Unroll IDM on every (path, speed fraction): ``limit`` (K,) [m/s] speed limit per path
    station (the route's, shared by all paths), ego speed ``v0_mps`` at relative station ``s0_m``, ``stop_m`` relative station of
    the nearest rule stop (inf: none)."""
    fr = np.asarray(cfg.speed_fractions, dtype=np.float64)
    path = np.repeat(np.arange(paths.n_paths), fr.size)
    frac = np.tile(fr, paths.n_paths)
    lead_s, lead_v = leads.station[path], leads.speed[path]
    t_n = cfg.steps + 1
    station = np.empty((path.size, t_n))
    speed = np.empty((path.size, t_n))
    accel = np.zeros((path.size, t_n))
    s = np.full(path.size, s0_m)
    v = np.full(path.size, max(v0_mps, 0.0))
    station[:, 0], speed[:, 0] = s, v
    p = cfg.idm
    sqrt_ab2 = 2.0 * np.sqrt(p.a_max_mps2 * p.b_comf_mps2)
    k_max = limit.shape[0] - 1
    for k in range(1, t_n):
        # IDM against two leaders at once (the moving lead and the rule stop): the smaller
        # acceleration of the two is the one with the larger interaction term
        t = (k - 1) * cfg.dt_s
        lim = limit[np.clip((s + 0.5).astype(np.int64), 0, k_max)]
        v_des = np.maximum(frac * lim, 0.5)
        front = s + ego_half_length_m
        gap_lead = np.maximum(lead_s + lead_v * t - front, MIN_GAP_M)
        gap_stop = np.maximum(stop_m - front, MIN_GAP_M)
        vt = v * p.headway_s
        want_lead = p.s0_m + np.maximum(vt + v * (v - lead_v) / sqrt_ab2, 0.0)
        want_stop = p.s0_m + np.maximum(vt + v * v / sqrt_ab2, 0.0)
        inter = np.maximum((want_lead / gap_lead) ** 2, (want_stop / gap_stop) ** 2)
        a = p.a_max_mps2 * (1.0 - (v / v_des) ** p.delta - inter)
        a = np.clip(a, -cfg.max_decel_mps2, p.a_max_mps2)
        v_new = np.maximum(v + a * cfg.dt_s, 0.0)
        accel[:, k] = (v_new - v) / cfg.dt_s
        s = s + 0.5 * (v + v_new) * cfg.dt_s
        v = v_new
        station[:, k], speed[:, k] = s, v
    accel[:, 0] = accel[:, 1]
    poses = paths.poses_at(path[:, None], station)
    offset = paths.sample(paths.offset, path[:, None], station)
    return Proposals(path, frac, station, speed, accel, poses, offset)


def traffic_stop(
    ctx: RouteContext, state: WorldState, front_m: float, speed_mps: float, served: set[int]
) -> float:
    """Station [m] of the nearest stop line the ego must stop at (inf: none): red lights, yellow
    lights it can still stop for, stop signs not yet served; marks a stop sign served (in
    ``served``) once the ego stood still at it. Also the end of the route."""
    gap = ctx.stop_station - front_m
    ahead = (gap > STOP_PASSED_M) & (gap < STOP_LOOKAHEAD_M)
    light = np.full(ctx.stop_kind.shape, int(LightState.GREEN))
    is_light = (ctx.stop_kind == STOP_KIND_LIGHT) & (state.light_state.size > 0)
    light[is_light] = state.light_state[ctx.stop_owner[is_light]]
    must = ahead & is_light & (light == LightState.RED)
    can_stop = gap > speed_mps * speed_mps / (2.0 * YELLOW_DECEL_MPS2)
    must |= ahead & is_light & (light == LightState.YELLOW) & can_stop
    for i in np.flatnonzero(ahead & (ctx.stop_kind == STOP_KIND_SIGN)).tolist():
        if i in served:
            continue
        if speed_mps < STOP_SERVED_SPEED_MPS and gap[i] < STOP_SERVED_DIST_M:
            served.add(i)
        else:
            must[i] = True
    end = ctx.end_station + END_STOP_PAST_M
    return min(float(ctx.stop_station[must].min()) if must.any() else np.inf, end)


@dataclass(frozen=True)
class JunctionAhead:
    """The next junction on the route: entry and exit stations [m] and whether the ego's light
    there is green (None: no light controls it)."""

    entry_m: float
    exit_m: float
    green: bool | None


def next_junction(ctx: RouteContext, state: WorldState, front_m: float) -> JunctionAhead | None:
    """The first junction whose exit is ahead of the front bumper within JUNCTION_LOOKAHEAD_M."""
    i0 = max(int(front_m), 0)
    i1 = min(int(front_m + JUNCTION_LOOKAHEAD_M), ctx.n - 1)
    inj = ctx.in_junction[i0 : i1 + 1]
    if not inj.any():
        return None
    first = i0 + int(np.argmax(inj))
    last = first
    while last + 1 < ctx.n and ctx.in_junction[last + 1]:
        last += 1
    entry = first
    while entry > 0 and ctx.in_junction[entry - 1]:
        entry -= 1
    near = (ctx.stop_kind == STOP_KIND_LIGHT) & (ctx.stop_station <= entry + 1.0)
    near &= ctx.stop_station > entry - LIGHT_NEAR_JUNCTION_M
    green: bool | None = None
    if near.any() and state.light_state.size > 0:
        green = bool(np.all(state.light_state[ctx.stop_owner[near]] == LightState.GREEN))
    return JunctionAhead(float(entry), float(last + 1), green)


def time_to_cover(distance_m: float, v_mps: float, v_max_mps: float, a_mps2: float) -> float:
    """Time [s] to drive ``distance_m`` from speed ``v_mps`` accelerating at ``a_mps2`` up to
    ``v_max_mps`` (then constant)."""
    if distance_m <= 0.0:
        return 0.0
    v_max = max(v_max_mps, v_mps, 0.5)
    d_acc = (v_max * v_max - v_mps * v_mps) / (2.0 * a_mps2)
    if d_acc >= distance_m:
        return float((-v_mps + np.sqrt(v_mps * v_mps + 2.0 * a_mps2 * distance_m)) / a_mps2)
    return float((v_max - v_mps) / a_mps2 + (distance_m - d_acc) / v_max)


def yield_stop(
    ctx: RouteContext, state: WorldState, junction: JunctionAhead, front_m: float,
    ego_station_m: float, ego_length_m: float, ego_half_width_m: float, waited_s: float,
) -> float:  # fmt: skip
    """Station [m] where the ego waits before ``junction`` (inf: go): gap acceptance against
    vehicles whose constant-velocity forecast enters the route corridor over the junction (and
    a little past it) before the ego could clear it plus a margin. At a green light only
    vehicles that can no longer stop (red-light runners) are yielded to. Once the front bumper
    is in the junction the ego is committed and does not stop for yielding."""
    if front_m > junction.entry_m + JUNCTION_ENTRY_MARGIN_M:
        return np.inf
    a = state.actors
    moving = a.valid & (a.speed > YIELD_MIN_SPEED_MPS)
    moving &= ~np.isin(a.kind, VULNERABLE) | (a.kind == int(ActorKind.BICYCLE))
    moving[0] = False
    rows = np.flatnonzero(moving)
    if rows.size == 0:
        return np.inf
    lo = int(ego_station_m) - 40
    hi = int(junction.exit_m + 40.0)
    st, lat = ctx.project_many(np.column_stack([a.x[rows], a.y[rows]]), lo, hi)
    k = np.clip(np.rint(st).astype(np.int64), 0, ctx.n - 1)
    with_ego = (np.abs(lat) < 0.5 * ctx.width[k]) & (
        np.cos(a.yaw[rows] - ctx.yaw[k]) > SAME_HEADING_COS
    )
    rows = rows[~with_ego]
    if rows.size == 0:
        return np.inf
    lo_c, hi_c = int(junction.entry_m), int(junction.exit_m + JUNCTION_EXIT_EXTRA_M) + 1
    arr = corridor_arrivals(ctx, state, rows, lo_c, hi_c, ego_half_width_m)
    v_ego = float(max(a.speed[0], 0.0))
    v_max = float(ctx.speed_limit[lo_c:hi_c].min()) if hi_c > lo_c else v_ego
    clear = junction.exit_m + JUNCTION_EXIT_EXTRA_M + ego_length_m - front_m
    t_clear = time_to_cover(clear, v_ego, v_max, PDM_IDM.a_max_mps2)
    margin = YIELD_MARGIN_S if waited_s < YIELD_PATIENCE_S else YIELD_MARGIN_IMPATIENT_S
    conflict = arr.enter_s < t_clear + margin
    # merging traffic (it joins the ego's lane heading its way) needs a gap, not a clear
    # junction: the ego's rear must pass its merge point MERGE_MARGIN_S before it arrives, or
    # it arrives MERGE_AHEAD_S before the ego's front and leads
    merging = np.nan_to_num(arr.heading_cos, nan=-1.0) > SAME_HEADING_COS
    if merging.any():
        to_merge = np.nan_to_num(arr.station_m, nan=front_m) - front_m
        t_front = np.array([time_to_cover(d, v_ego, v_max, PDM_IDM.a_max_mps2) for d in to_merge])
        t_rear = np.array([time_to_cover(d + ego_length_m, v_ego, v_max, PDM_IDM.a_max_mps2)
                           for d in to_merge])  # fmt: skip
        gap_conflict = (arr.enter_s > t_front - MERGE_AHEAD_S) & (
            arr.enter_s < t_rear + MERGE_MARGIN_S
        )
        conflict = np.where(merging, gap_conflict, conflict)
    if junction.green:
        conflict &= arr.enter_s < arr.speed / (2.0 * RED_RUNNER_DECEL_MPS2)
    return junction.entry_m - JUNCTION_ENTRY_MARGIN_M if conflict.any() else np.inf
