"""A simple privileged route follower: tracks the planned route at a cruise speed, slowing for
actors in its corridor with IDM. The ego of `harness sim bench` and the base of the lane-following
baseline agent."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from harness.dynamics.control import VehicleControl
from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.maps.town import Town
from harness.routes.planner import PlannedRoute
from harness.sim.embedded.idm import IDMParams, idm_accel
from harness.sim.state import LightState, WorldState

PLAN_DT_S = 0.1  # [s] spacing of the poses handed to the tracker
PLAN_STEPS = 30  # [-] 3 s of plan
CORRIDOR_HALF_WIDTH_M = 1.6  # [m] actors whose centre is this close to the path block it
LOOKAHEAD_M = 40.0  # [m] how far ahead blocking actors are searched
MIN_PLAN_SPACING_MPS = 3.0  # [m/s] pose spacing of the plan when the target speed is lower
STOP_MARGIN_M = 1.0  # [m] the front bumper stops this far before a stop line
YELLOW_DECEL_MPS2 = 3.0  # [m/s2] stop for yellow only when this deceleration suffices
STOP_SERVED_SPEED_MPS = 0.1  # [m/s] a stop sign is honoured by dropping below this ...
STOP_SERVED_DIST_M = 4.0  # [m] ... within this distance of its line
RED, YELLOW, GREEN = (
    int(LightState.RED),
    int(LightState.YELLOW),
    int(LightState.GREEN),
)  # plain ints
_PLAN_STEPS = np.arange(1, PLAN_STEPS + 1)  # [-] pose numbers of the plan


@dataclass
class RouteFollower:
    """Follows ``route_xy`` (M, 2) at ``cruise_mps``; call :meth:`control` once per tick."""

    route_xy: np.ndarray
    cruise_mps: float = 8.0
    idm: IDMParams = field(default_factory=IDMParams)
    tracker: PurePursuitPID = field(default_factory=PurePursuitPID)
    pid: PIDState = field(default_factory=PIDState)
    index: int = 0  # progress along the route (monotone)
    # stop lines on the route: route arc length [m], owning light / sign index, kind (0 light, 1 sign)
    stop_s_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stop_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stop_kind: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    served: set[int] = field(default_factory=set)  # stop-sign lines already honoured

    @classmethod
    def for_route(cls, planned: PlannedRoute, town: Town, cruise_mps: float = 8.0) -> RouteFollower:
        """A follower that also obeys the traffic lights and stop signs on the planned route."""
        sig = town.signals
        on_route = np.isin(sig.stop_lane, planned.lane)
        s_list, owner, kind = [], [], []
        for i in np.flatnonzero(on_route).tolist():
            rows = np.flatnonzero(planned.lane == sig.stop_lane[i])
            mid = 0.5 * (sig.stop_a[i] + sig.stop_b[i])
            k = rows[int(np.argmin(np.hypot(*(planned.xy[rows] - mid).T)))]
            s_list.append(planned.s_m[k])
            owner.append(int(sig.stop_owner[i]))
            kind.append(int(sig.stop_kind[i]))
        return cls(
            planned.xy, cruise_mps, stop_s_m=np.asarray(s_list, dtype=np.float64),
            stop_owner=np.asarray(owner, dtype=np.int64), stop_kind=np.asarray(kind, dtype=np.int64),
        )  # fmt: skip

    def __post_init__(self) -> None:
        self.route_xy = np.asarray(self.route_xy, dtype=np.float64).reshape(-1, 2)
        seg = np.hypot(*np.diff(self.route_xy, axis=0).T)
        self._s = np.concatenate([[0.0], np.cumsum(seg)])
        self._s_end = float(self._s[-1])
        # stop lines by route position, so each tick only looks at the few within reach
        self._stop_order = np.argsort(np.asarray(self.stop_s_m, dtype=np.float64), kind="stable")
        self._stop_sorted = np.asarray(self.stop_s_m, dtype=np.float64)[self._stop_order].tolist()

    def control(self, state: WorldState, dt_s: float) -> VehicleControl:
        """One tick: progress along the route (searched in a window ahead), the target speed from
        the corridor and the stop lines, and the tracker's control toward a 3 s plan."""
        a = state.actors
        ego_xy = np.array([a.x[0], a.y[0]])
        lo, hi = self.index, min(self.index + 60, len(self.route_xy))
        d = np.hypot(*(self.route_xy[lo:hi] - ego_xy).T)
        self.index = lo + int(np.argmin(d))
        target = min(self.cruise_mps, self._gap_speed(state), self._stop_speed(state))
        s0 = self._s[self.index]
        # poses keep a minimum spacing so the path ahead stays defined when the target speed is 0
        s = s0 + max(target, MIN_PLAN_SPACING_MPS) * PLAN_DT_S * _PLAN_STEPS
        s = np.minimum(s, self._s_end)
        poses = np.empty((PLAN_STEPS, 3))
        poses[:, 0] = np.interp(s, self._s, self.route_xy[:, 0])
        poses[:, 1] = np.interp(s, self._s, self.route_xy[:, 1])
        # np.gradient of x and y (unit spacing) in one pass: same operations, same bits
        xy, grad = poses[:, :2], np.empty((PLAN_STEPS, 2))
        grad[1:-1] = (xy[2:] - xy[:-2]) / 2.0
        grad[0], grad[-1] = xy[1] - xy[0], xy[-1] - xy[-2]
        poses[:, 2] = np.arctan2(grad[:, 1], grad[:, 0])
        if self._s_end - s0 < 2.0:
            target = 0.0
        plan = PlannedTrajectory(
            poses=poses, dt_s=PLAN_DT_S, speeds_mps=np.full(PLAN_STEPS, target)
        )
        return self.tracker.control(
            self.pid, [a.x[0], a.y[0], a.yaw[0]], float(a.speed[0]), plan, dt_s
        )

    def _stop_speed(self, state: WorldState) -> float:
        """Speed IDM allows one second from now given red/yellow lights and stop signs ahead."""
        if self.stop_s_m.size == 0:
            return self.cruise_mps
        a = state.actors
        v = float(a.speed[0])
        front = self._s[self.index] + 0.5 * float(a.length[0])
        # only lines that can be ``ahead`` below (1 m slack on the bounds for rounding)
        lo = bisect.bisect_left(self._stop_sorted, front + STOP_MARGIN_M - 2.0)
        hi = bisect.bisect_right(self._stop_sorted, front + STOP_MARGIN_M + LOOKAHEAD_M + 21.0)
        if lo >= hi:
            return self.cruise_mps
        idx = self._stop_order[lo:hi]
        kind, owner = self.stop_kind[idx], self.stop_owner[idx]
        gap = self.stop_s_m[idx] - front - STOP_MARGIN_M
        ahead = (gap > -1.0) & (gap < LOOKAHEAD_M + 20.0)
        light = np.full(kind.shape, GREEN)
        is_light = (kind == 0) & (state.light_state.size > 0)
        light[is_light] = state.light_state[owner[is_light]]
        must = ahead & (kind == 0) & (light == RED)
        can_stop = gap > v * v / (2.0 * YELLOW_DECEL_MPS2)
        must |= ahead & (kind == 0) & (light == YELLOW) & can_stop
        for k in np.flatnonzero(ahead & (kind == 1)).tolist():
            i = int(idx[k])
            if i in self.served:
                continue
            if v < STOP_SERVED_SPEED_MPS and gap[k] < STOP_SERVED_DIST_M:
                self.served.add(i)
            else:
                must[k] = True
        if not must.any():
            return self.cruise_mps
        g = max(float(gap[must].min()), 0.0)
        acc = float(idm_accel(v, self.cruise_mps, g + self.idm.s0_m, v, self.idm))
        return max(v + acc * 1.0, 0.0) if g > 0.3 else 0.0

    def _gap_speed(self, state: WorldState) -> float:
        """Speed IDM allows one second from now given the nearest actor in the path corridor."""
        a = state.actors
        others = np.flatnonzero(a.valid)[1:]
        v = float(a.speed[0])
        if others.size == 0:
            return self.cruise_mps
        i0 = self.index
        i1 = min(i0 + int(LOOKAHEAD_M) + 1, len(self.route_xy))
        path = self.route_xy[i0:i1]
        if len(path) < 2:
            return self.cruise_mps
        # x of harness.geometry.to_local (same operations), for the other actors only
        c, s = np.cos(a.yaw[0]), np.sin(a.yaw[0])
        ahead = c * (a.x[others] - a.x[0]) + s * (a.y[others] - a.y[0])
        near = others[(ahead > 0.0) & (ahead < LOOKAHEAD_M + 5.0)]
        if near.size == 0:
            return self.cruise_mps
        pts = np.column_stack([a.x[near], a.y[near]])
        dist = np.hypot(pts[:, None, 0] - path[None, :, 0], pts[:, None, 1] - path[None, :, 1])
        k = np.argmin(dist, axis=1)
        blocking = dist[np.arange(near.size), k] < CORRIDOR_HALF_WIDTH_M + 0.5 * a.width[near]
        if not blocking.any():
            return self.cruise_mps
        s_path = self._s[i0 + k[blocking]] - self._s[i0]
        gap = s_path - 0.5 * (a.length[0] + a.length[near][blocking])
        j = int(np.argmin(gap))
        acc = float(
            idm_accel(
                v,
                self.cruise_mps,
                max(float(gap[j]), 0.0),
                v - float(a.speed[near][blocking][j]),
                self.idm,
            )
        )
        return max(v + acc * 1.0, 0.0)
