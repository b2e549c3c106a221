"""RunningRedLightTest and RunningStopTest with the leaderboard's geometry (ScenarioRunner's
atomic_criteria.py, identical in Bench2Drive's fork), computed from the ego's pose and the town's
stop lines rather than from the simulator's events.

Red light: the *tail segment* of the ego, from 0.8 x half-length to half-length + 1 m behind its
centre along its heading, intersecting a red light's stop line (lane centre +- 0.6 lane width
across the lane), while the ego is within 15 m of the light's trigger centre, the far tail point
lies on the stop line's lane and the ego heads the lane's way. One infraction per light, not
repeated for the light run last. The ego has crossed a line once its rear has: a car stopped
with its front over the line has not run the light.

Stop sign: the ego is *affected* by a stop while its lane point (the projection of its centre
onto its lane) lies within 4 m of the stop's trigger centre and one of the lane points from there
to 4 m ahead (0.5 m apart) lies in the trigger area grown 1.2x about its centre; nothing is
scanned while reversing or heading against the lane (> 100 deg). After a stop becomes the target,
a tick with speed < 0.1 m/s completes it; once the ego is no longer affected, an uncompleted
stop is an infraction unless it is the stop failed last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.leaderboard.outcome import Infraction, InfractionKey, location_text
from harness.world.state import EGO_INDEX, LightState, WorldState

RED_LIGHT_DISTANCE_M = 15.0  # [m] RunningRedLightTest.DISTANCE_LIGHT
TAIL_NEAR_FRACTION = 0.8  # [-] the tail segment starts this x half-length behind the centre ...
TAIL_FAR_M = 1.0  # [m] ... and ends half-length + this behind it
STOP_LINE_HALF_WIDTHS = 0.6  # [lane widths] the stop line reaches this far each side of the centre
STOP_PROXIMITY_M = 4.0  # [m] RunningStopTest.PROXIMITY_THRESHOLD
STOP_SPEED_MPS = 0.1  # [m/s] RunningStopTest.SPEED_THRESHOLD
STOP_WAYPOINT_STEP_M = 0.5  # [m] RunningStopTest.WAYPOINT_STEP
STOP_AREA_GROWTH = 1.2  # [-] point_inside_boundingbox multiplier
AGAINST_COS = -0.17  # [-] cos(100 deg): heading against the lane, stops are not scanned ...
REVERSING_MPS = -0.17  # [m/s] ... nor when the velocity along the heading is below this
STOP_KIND_LIGHT, STOP_KIND_SIGN = 0, 1  # SignalSet.stop_kind values

LaneKey = Callable[[float, float], tuple[int, int, float, float]]
"""(x_m, y_m) -> (road_id, lane_id, s_m, yaw_rad) of the nearest driving lane (CARLA's
get_waypoint): the lane's identity and where on it the point projects."""


@dataclass(frozen=True, eq=False)
class SignalGeometry:
    """What the two tests read of a town, CARLA frame.

    Light stop lines (L,): ``line_light`` owner light, ``line_a``/``line_b`` (L, 2) [m] ends
    (lane centre +- 0.6 lane width), ``line_road``/``line_lane`` the lane's road_id / lane_id,
    ``line_yaw`` (L,) [rad] lane heading. Lights (T,): ``light_centre`` (T, 2) [m] trigger centre,
    ``light_xy`` (T, 2) [m] pole. Stop signs' stop lines (G,): ``stop_sign`` owner sign,
    ``stop_area`` (G, K, 2) [m] trigger-area ring grown 1.2x about ``stop_centre`` (G, 2) [m];
    ``sign_xy`` (signs, 2) [m]. ``lane_key`` projects points; ``lane_points`` gives (n, 2) lane
    points ``step`` apart from (x, y) up to ``ahead`` along the lane."""

    line_light: NDArray[np.int64]
    line_a: NDArray[np.float64]
    line_b: NDArray[np.float64]
    line_road: NDArray[np.int64]
    line_lane: NDArray[np.int64]
    line_yaw: NDArray[np.float64]
    light_centre: NDArray[np.float64]
    light_xy: NDArray[np.float64]
    stop_sign: NDArray[np.int64]
    stop_area: NDArray[np.float64]
    stop_centre: NDArray[np.float64]
    sign_xy: NDArray[np.float64]
    lane_key: LaneKey
    lane_points: Callable[[float, float, float, float], NDArray[np.float64]]

    @staticmethod
    def from_town(town: object) -> SignalGeometry:
        """From a ``harness.maps.Town`` (its signals and lanes)."""
        sig, lanes = getattr(town, "signals"), getattr(town, "lanes")  # noqa: B009
        kind = np.asarray(sig.stop_kind, dtype=np.int64)
        a, b = np.asarray(sig.stop_a, np.float64), np.asarray(sig.stop_b, np.float64)
        mid, half = 0.5 * (a + b), 0.5 * (b - a)
        grow = 2.0 * STOP_LINE_HALF_WIDTHS  # the SignalSet line spans one lane width
        lane = np.asarray(sig.stop_lane, dtype=np.int64)
        _, yaw = lanes.position(lane, np.asarray(sig.stop_s_m, dtype=np.float64))
        lt = np.flatnonzero(kind == STOP_KIND_LIGHT)
        owner = np.asarray(sig.stop_owner, dtype=np.int64)
        n_lights = int(np.asarray(sig.light_xy).shape[0])
        centre = np.asarray(sig.light_xy, dtype=np.float64).copy()
        for t in range(n_lights):
            rows = lt[owner[lt] == t]
            if rows.size:
                centre[t] = mid[rows].mean(axis=0)
        st = np.flatnonzero(kind == STOP_KIND_SIGN)
        rings = np.asarray(sig.stop_area_xy, dtype=np.float64)[st]
        s_centre = rings.mean(axis=1) if st.size else np.zeros((0, 2))
        rings = s_centre[:, None, :] + STOP_AREA_GROWTH * (rings - s_centre[:, None, :])

        def lane_key(x: float, y: float) -> tuple[int, int, float, float]:
            p = lanes.project(np.array([[x, y]]))
            ln, s = int(p.lane[0]), float(p.s_m[0])
            _, yaw_l = lanes.position(ln, s)
            return int(lanes.road_id[ln]), int(lanes.lane_id[ln]), s, float(yaw_l)

        def lane_points(x: float, y: float, ahead_m: float, step_m: float) -> NDArray[np.float64]:
            p = lanes.project(np.array([[x, y]]))
            ln, s = int(p.lane[0]), float(p.s_m[0])
            ss = s + np.arange(0.0, ahead_m + 1e-9, step_m)
            ss = ss[ss <= float(lanes.length_m[ln])]  # CARLA walks on into the junction: outside
            xy, _ = lanes.position(np.full(ss.shape, ln), ss)
            return np.asarray(xy, dtype=np.float64).reshape(-1, 2)

        return SignalGeometry(
            line_light=owner[lt], line_a=(mid - grow * half)[lt], line_b=(mid + grow * half)[lt],
            line_road=np.asarray(lanes.road_id, dtype=np.int64)[lane[lt]],
            line_lane=np.asarray(lanes.lane_id, dtype=np.int64)[lane[lt]],
            line_yaw=np.asarray(yaw, dtype=np.float64)[lt], light_centre=centre,
            light_xy=np.asarray(sig.light_xy, dtype=np.float64), stop_sign=owner[st],
            stop_area=rings, stop_centre=s_centre,
            sign_xy=np.asarray(sig.sign_xy, dtype=np.float64).reshape(-1, 2),
            lane_key=lane_key, lane_points=lane_points,
        )  # fmt: skip


def segments_intersect(
    p0: NDArray[np.float64],
    p1: NDArray[np.float64],
    q0: NDArray[np.float64],
    q1: NDArray[np.float64],
) -> bool:
    """Whether the closed segments p0-p1 and q0-q1 share a point (shapely's non-empty
    intersection of two LineStrings)."""

    def orient(a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    def on(a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]) -> bool:
        return bool(min(a[0], b[0]) <= c[0] <= max(a[0], b[0])
                    and min(a[1], b[1]) <= c[1] <= max(a[1], b[1]))  # fmt: skip

    d1, d2 = orient(q0, q1, p0), orient(q0, q1, p1)
    d3, d4 = orient(p0, p1, q0), orient(p0, p1, q1)
    if ((d1 > 0.0 > d2) or (d1 < 0.0 < d2)) and ((d3 > 0.0 > d4) or (d3 < 0.0 < d4)):
        return True
    return (
        (d1 == 0.0 and on(q0, q1, p0)) or (d2 == 0.0 and on(q0, q1, p1))
        or (d3 == 0.0 and on(p0, p1, q0)) or (d4 == 0.0 and on(p0, p1, q1))
    )  # fmt: skip


def _point_in_ring(ring: NDArray[np.float64], x: float, y: float) -> bool:
    """Even-odd point-in-polygon test of (x, y) against a closed ring (K, 2)."""
    xs, ys = ring[:, 0], ring[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    cross = (ys > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = (xj - xs) * (y - ys) / (yj - ys) + xs
    return bool(np.count_nonzero(cross & (x < xi)) % 2)


def _ego(state: WorldState) -> tuple[float, float, float, float, float]:
    a, i = state.actors, EGO_INDEX
    return float(a.x[i]), float(a.y[i]), float(a.yaw[i]), float(a.length[i]), float(a.speed[i])


class RunningRedLight:
    """RunningRedLightTest on :class:`SignalGeometry` (None: no lights, nothing to check)."""

    def __init__(self, geometry: SignalGeometry | None) -> None:
        self.geometry = geometry
        self.items: list[Infraction] = []
        self._last_light: int | None = None

    def update(self, state: WorldState) -> None:
        g = self.geometry
        if g is None or g.line_light.size == 0 or state.light_state.size == 0:
            return
        x, y, yaw, length, _ = _ego(state)
        n = min(int(state.light_state.size), int(g.light_centre.shape[0]))
        near = (
            np.hypot(g.light_centre[:n, 0] - x, g.light_centre[:n, 1] - y) <= RED_LIGHT_DISTANCE_M
        )
        near &= state.light_state[:n] == LightState.RED
        if not near.any():
            return
        c, s = math.cos(yaw), math.sin(yaw)
        half = 0.5 * length
        tail_near = np.array([x - TAIL_NEAR_FRACTION * half * c, y - TAIL_NEAR_FRACTION * half * s])
        far = half + TAIL_FAR_M
        tail_far = np.array([x - far * c, y - far * s])
        road, lane, _, _ = g.lane_key(float(tail_far[0]), float(tail_far[1]))
        for light in np.flatnonzero(near).tolist():
            if light == self._last_light:
                continue
            for k in np.flatnonzero(g.line_light == light).tolist():
                heads_along = c * math.cos(g.line_yaw[k]) + s * math.sin(g.line_yaw[k]) > 0.0
                if (g.line_road[k], g.line_lane[k]) != (road, lane) or not heads_along:
                    continue
                if segments_intersect(tail_near, tail_far, g.line_a[k], g.line_b[k]):
                    lx, ly = (float(v) for v in g.light_xy[light])
                    msg = f"Agent ran a red light {light} at {location_text(lx, ly, 0.0)}"
                    self.items.append(Infraction(
                        InfractionKey.RED_LIGHT, msg, state.frame, state.time_s, lx, ly,
                        other_id=light,
                    ))  # fmt: skip
                    self._last_light = light
                    break


class RunningStop:
    """RunningStopTest on :class:`SignalGeometry` (None: no stop signs, nothing to check)."""

    def __init__(self, geometry: SignalGeometry | None) -> None:
        self.geometry = geometry
        self.items: list[Infraction] = []
        self._target: int | None = None  # index into geometry.stop_sign
        self._completed = False
        self._last_failed: int | None = None  # sign index

    def _affected(self, k: int, wps: NDArray[np.float64]) -> bool:
        g = self.geometry
        assert g is not None
        if math.dist(g.stop_centre[k], wps[0]) > STOP_PROXIMITY_M:
            return False
        return any(_point_in_ring(g.stop_area[k], float(p[0]), float(p[1])) for p in wps)

    def update(self, state: WorldState) -> None:
        g = self.geometry
        if g is None or g.stop_sign.size == 0:
            return
        x, y, yaw, _, speed = _ego(state)
        if self._target is None:
            near = np.hypot(g.stop_centre[:, 0] - x, g.stop_centre[:, 1] - y)
            if not np.any(near <= 2.0 * STOP_PROXIMITY_M):
                return  # no stop can be within 4 m of the ego's lane point
        wps = g.lane_points(x, y, STOP_PROXIMITY_M, STOP_WAYPOINT_STEP_M)
        if self._target is None:
            _, _, _, lane_yaw = g.lane_key(x, y)
            if speed < REVERSING_MPS or math.cos(yaw - lane_yaw) < AGAINST_COS:
                return
            for k in range(g.stop_sign.size):
                if self._affected(k, wps):
                    self._target = k
                    break
            return
        if not self._completed and abs(speed) < STOP_SPEED_MPS:
            self._completed = True
        if not self._affected(self._target, wps):
            sign = int(g.stop_sign[self._target])
            if not self._completed and self._last_failed != sign:
                sx, sy = (float(v) for v in g.sign_xy[sign])
                msg = f"Agent ran a stop with id={sign} at {location_text(sx, sy, 0.0)}"
                self.items.append(Infraction(
                    InfractionKey.STOP_INFRACTION, msg, state.frame, state.time_s, sx, sy,
                    other_id=sign,
                ))  # fmt: skip
                self._last_failed = sign
            self._target, self._completed = None, False
