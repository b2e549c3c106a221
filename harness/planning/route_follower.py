"""A simple privileged route follower: tracks the planned route at a cruise speed, slowing for
actors in its corridor with IDM. The ego of `harness sim bench` and the base of the lane-following
baseline agent."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.idm import IDMParams, idm_accel_scalar
from harness.dynamics.tracking import PIDState, PurePursuitPID, interp1
from harness.jit import njit
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute
from harness.world.control import VehicleControl
from harness.world.state import LightState, WorldState
from harness.world.timing import POSE_DT_S

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
        self._stop_order_list: list[int] = self._stop_order.tolist()
        self._stop_s_list: list[float] = np.asarray(self.stop_s_m, dtype=np.float64).tolist()
        self._stop_kind_list: list[int] = np.asarray(self.stop_kind, dtype=np.int64).tolist()
        self._stop_owner_list: list[int] = np.asarray(self.stop_owner, dtype=np.int64).tolist()

    def control(self, state: WorldState, dt_s: float) -> VehicleControl:
        """One tick: progress along the route (searched in a window ahead), the target speed from
        the corridor and the stop lines, and the tracker's control toward a 3 s plan. The array
        work (progress, corridor, plan) runs in compiled kernels on the ego's floats."""
        a = state.actors
        x, y, yaw, v = float(a.x[0]), float(a.y[0]), float(a.yaw[0]), float(a.speed[0])
        self.index = _progress(self.route_xy, self.index, x, y)
        target = min(self.cruise_mps, self._gap_speed(state), self._stop_speed(state))
        s0 = float(self._s[self.index])
        # poses keep a minimum spacing so the path ahead stays defined when the target speed is 0
        poses = _plan_poses(
            self.route_xy, self._s, s0, max(target, MIN_PLAN_SPACING_MPS) * POSE_DT_S, PLAN_STEPS
        )
        if self._s_end - s0 < 2.0:
            target = 0.0
        return self.tracker.control_one(self.pid, x, y, yaw, v, poses, target, dt_s)

    def _stop_speed(self, state: WorldState) -> float:
        """Speed IDM allows one second from now given red/yellow lights and stop signs ahead."""
        if self.stop_s_m.size == 0:
            return self.cruise_mps
        a = state.actors
        v = float(a.speed[0])
        front = float(self._s[self.index]) + 0.5 * float(a.length[0])
        # only lines that can be ``ahead`` below (1 m slack on the bounds for rounding)
        lo = bisect.bisect_left(self._stop_sorted, front + STOP_MARGIN_M - 2.0)
        hi = bisect.bisect_right(self._stop_sorted, front + STOP_MARGIN_M + LOOKAHEAD_M + 21.0)
        if lo >= hi:
            return self.cruise_mps
        lights = state.light_state
        has_lights = lights.size > 0
        g = np.inf  # nearest line the ego must stop at [m]
        for i in self._stop_order_list[lo:hi]:  # a few lines: plain Python on floats
            gap = self._stop_s_list[i] - front - STOP_MARGIN_M
            if not -1.0 < gap < LOOKAHEAD_M + 20.0:
                continue
            if self._stop_kind_list[i] == 0:
                light = int(lights[self._stop_owner_list[i]]) if has_lights else GREEN
                must = light == RED or (light == YELLOW and gap > v * v / (2.0 * YELLOW_DECEL_MPS2))
            elif self._stop_kind_list[i] == 1:
                if i in self.served:
                    continue
                must = not (v < STOP_SERVED_SPEED_MPS and gap < STOP_SERVED_DIST_M)
                if not must:
                    self.served.add(i)
            else:
                continue
            if must:
                g = min(g, gap)
        if g == np.inf:
            return self.cruise_mps
        g = max(g, 0.0)
        p = self.idm
        acc = idm_accel_scalar(
            v, self.cruise_mps, g + p.s0_m, v, p.a_max_mps2, p.b_comf_mps2, p.s0_m, p.headway_s,
            p.delta,
        )  # fmt: skip
        return max(v + acc * 1.0, 0.0) if g > 0.3 else 0.0

    def _gap_speed(self, state: WorldState) -> float:
        """Speed IDM allows one second from now given the nearest actor in the path corridor."""
        a = state.actors
        v = float(a.speed[0])
        found, gap, v_other = _corridor_leader(
            self.route_xy, self._s, self.index, a.x, a.y, a.yaw, a.valid, a.length, a.width,
            a.speed,
        )  # fmt: skip
        if not found:
            return self.cruise_mps
        i = self.idm
        acc = idm_accel_scalar(
            v, self.cruise_mps, max(gap, 0.0), v - v_other, i.a_max_mps2, i.b_comf_mps2, i.s0_m,
            i.headway_s, i.delta,
        )  # fmt: skip
        return max(v + acc * 1.0, 0.0)


@njit
def _progress(route_xy: NDArray[np.float64], index: int, x: float, y: float) -> int:
    """Route index nearest (x, y) among the 60 from ``index`` on (progress is monotone)."""
    hi = min(index + 60, route_xy.shape[0])
    best, bi = np.inf, index
    for k in range(index, hi):
        d = np.hypot(route_xy[k, 0] - x, route_xy[k, 1] - y)
        if d < best:
            best, bi = d, k
    return bi


@njit
def _plan_poses(
    route_xy: NDArray[np.float64], route_s: NDArray[np.float64], s0: float, spacing_m: float,
    steps: int,
) -> NDArray[np.float64]:  # fmt: skip
    """(steps, 3) poses every ``spacing_m`` from route arc length s0 (clamped at the end), the
    yaw from np.gradient of x and y (central differences inside, one-sided at the ends)."""
    poses = np.empty((steps, 3))
    s_end = route_s[route_s.shape[0] - 1]
    for k in range(steps):
        s = min(s0 + spacing_m * (k + 1), s_end)
        poses[k, 0] = interp1(s, route_s, route_xy[:, 0])
        poses[k, 1] = interp1(s, route_s, route_xy[:, 1])
    for k in range(steps):
        lo, hi = max(k - 1, 0), min(k + 1, steps - 1)
        div = 2.0 if 0 < k < steps - 1 else 1.0
        gx = (poses[hi, 0] - poses[lo, 0]) / div
        gy = (poses[hi, 1] - poses[lo, 1]) / div
        poses[k, 2] = np.arctan2(gy, gx)
    return poses


@njit
def _corridor_leader(
    route_xy: NDArray[np.float64], route_s: NDArray[np.float64], i0: int,
    x: NDArray[np.float64], y: NDArray[np.float64], yaw: NDArray[np.float64],
    valid: NDArray[np.bool_], length: NDArray[np.float64], width: NDArray[np.float64],
    speed: NDArray[np.float64],
) -> tuple[bool, float, float]:  # fmt: skip
    """(found, gap [m], speed [m/s]) of the nearest actor (rows 1..) ahead of the ego (row 0)
    whose centre lies within CORRIDOR_HALF_WIDTH_M + half its width of the route's next
    LOOKAHEAD_M samples; the gap is along the route, bumper to bumper."""
    i1 = min(i0 + int(LOOKAHEAD_M) + 1, route_xy.shape[0])
    if i1 - i0 < 2:
        return False, np.inf, 0.0
    c, s = np.cos(yaw[0]), np.sin(yaw[0])
    best, bv, found = np.inf, 0.0, False
    for j in range(1, x.shape[0]):
        if not valid[j]:
            continue
        ahead = c * (x[j] - x[0]) + s * (y[j] - y[0])
        if not (0.0 < ahead < LOOKAHEAD_M + 5.0):
            continue
        dmin, kmin = np.inf, i0
        for k in range(i0, i1):
            d = np.hypot(x[j] - route_xy[k, 0], y[j] - route_xy[k, 1])
            if d < dmin:
                dmin, kmin = d, k
        if dmin >= CORRIDOR_HALF_WIDTH_M + 0.5 * width[j]:
            continue
        gap = route_s[kmin] - route_s[i0] - 0.5 * (length[0] + length[j])
        if gap < best:
            best, bv, found = gap, speed[j], True
    return found, best, bv
