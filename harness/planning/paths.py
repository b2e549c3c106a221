"""Route context and candidate paths of the expert planner.

``RouteContext`` resamples a planned route at exactly ``STATION_STEP_M`` so that a *station*
(arc length along the route centerline) maps to an array index, and precomputes per station what
the planner needs every step: the right normal, lane width, the signed lateral offset of the
left neighbour lane (same-direction, else the opposite-direction lane) and of the right
same-direction lane, junction membership, the curvature-anticipating speed limit, the cruise
speed, and the stop lines (lights / stop signs) on the route.

A candidate path is the route centerline shifted by a lateral offset profile d(station) that
blends smoothly from the ego's current offset to a target (0 = route lane centre, +-in-lane
offsets, a neighbour lane's centre). Paths are parametrised by route station, so leads, stop
lines and trajectories share one longitudinal coordinate across paths. Lateral offsets are
positive to the right (CARLA's left-handed frame, ``harness.geometry.to_local``'s +y).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute

STATION_STEP_M = 1.0  # [m] spacing of route stations
RUN_OUT_M = 80.0  # [m] the route continues straight this far past its end (path windows)
CURVE_SMOOTH_M = 3  # [stations] half window of the curvature smoothing
A_LAT_MAX_MPS2 = 2.5  # [m/s2] lateral acceleration the cruise profile allows in curves
B_ANTICIPATE_MPS2 = 1.5  # [m/s2] deceleration used to slow down before curves
ANTICIPATE_M = 60  # [stations] how far ahead curves limit the speed
URBAN_CRUISE_MPS = 10.0  # [m/s] cruise without a known speed limit (36 km/h, urban)
HIGHWAY_CRUISE_MPS = 14.0  # [m/s] cruise on roads with >= HIGHWAY_LANES same-direction lanes
HIGHWAY_LANES = 3  # [-] same-direction lane count from which a road counts as a highway
NEIGHBOUR_MIN_M = 2.0  # [m] a neighbour lane centre closer than this is not a separate lane
NEIGHBOUR_MAX_M = 6.0  # [m] ... and farther than this is not adjacent
DEFAULT_LANE_WIDTH_M = 3.5  # [m] lane width assumed on the run-out
STOP_KIND_LIGHT = 0  # SignalSet.stop_kind of a traffic-light stop line
STOP_KIND_SIGN = 1  # ... of a stop-sign stop line
STOP_ON_ROUTE_M = 1.5  # [m] a stop line counts when the route passes this close to its extent
LANE_CHANGE_BLEND_M = 20.0  # [m] a lane change of the route is blended over this length before
# the switch (the planned route jumps between lane centres; a car cannot)


class PathKind(IntEnum):
    """What a candidate path does laterally."""

    CENTER = 0  # back to / along the route lane centre
    NUDGE_RIGHT = 1  # in-lane offset to the right
    NUDGE_LEFT = 2  # in-lane offset to the left
    LEFT_LANE = 3  # into the same-direction left lane
    OPPOSITE_LANE = 4  # into the opposite-direction lane on the left
    RIGHT_LANE = 5  # into the same-direction right lane


@dataclass(frozen=True, eq=False)
class RouteContext:
    """A route resampled at STATION_STEP_M, M stations (route + straight run-out).

    xy (M, 2) [m], yaw (M,) [rad], normal (M, 2) right unit normal, lane (M,) LaneSet index (-1
    on the run-out), width (M,) [m], in_junction (M,), junction_id (M,) (-1 outside),
    left_offset (M,) [m] signed offset of the left neighbour's centre (negative; NaN: none),
    left_opposite (M,) whether that neighbour runs the other way, right_offset (M,) [m] (positive;
    NaN: none), speed_limit (M,) [m/s] cruise capped by curves ahead, cruise (M,) [m/s];
    end_station [m] where the route proper ends; stops: stop_station (S,) [m], stop_owner (S,),
    stop_kind (S,) (STOP_KIND_LIGHT / STOP_KIND_SIGN).
    """

    xy: NDArray[np.float64]
    yaw: NDArray[np.float64]
    normal: NDArray[np.float64]
    lane: NDArray[np.int64]
    width: NDArray[np.float64]
    in_junction: NDArray[np.bool_]
    junction_id: NDArray[np.int64]
    left_offset: NDArray[np.float64]
    left_opposite: NDArray[np.bool_]
    right_offset: NDArray[np.float64]
    speed_limit: NDArray[np.float64]
    cruise: NDArray[np.float64]
    end_station: float
    stop_station: NDArray[np.float64]
    stop_owner: NDArray[np.int64]
    stop_kind: NDArray[np.int64]

    @property
    def n(self) -> int:
        """Number of stations M."""
        return int(self.yaw.shape[0])

    def locate(self, xy: NDArray[np.float64], lo: int, hi: int) -> tuple[float, float]:
        """Station [m] and signed lateral offset [m] of point ``xy`` (2,) projected onto the
        route segments between stations ``lo`` and ``hi`` (a window keeps it unambiguous)."""
        lo, hi = max(lo, 0), min(hi, self.n - 1)
        a, b = self.xy[lo:hi], self.xy[lo + 1 : hi + 1]
        d = b - a
        t = np.clip(((xy - a) * d).sum(axis=1) / np.maximum((d * d).sum(axis=1), 1e-9), 0.0, 1.0)
        foot = a + t[:, None] * d
        k = int(np.argmin(np.hypot(*(xy - foot).T)))
        station = (lo + k + float(t[k])) * STATION_STEP_M
        lateral = float(np.dot(xy - foot[k], self.normal[lo + k]))
        return station, lateral

    def project_many(
        self, xy: NDArray[np.float64], lo: int, hi: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Stations [m] and signed lateral offsets [m] of points (N, 2) against the station
        samples lo..hi (nearest sample: about STATION_STEP_M / 2 along-track error)."""
        lo, hi = max(lo, 0), min(hi, self.n)
        c = self.xy[lo:hi]
        rel = xy[:, None, :] - c[None, :, :]  # (N, W, 2)
        k = np.argmin((rel * rel).sum(axis=-1), axis=1)
        r = rel[np.arange(xy.shape[0]), k]
        tangent = np.stack([np.cos(self.yaw[lo + k]), np.sin(self.yaw[lo + k])], axis=-1)
        along = (r * tangent).sum(axis=-1)
        lateral = (r * self.normal[lo + k]).sum(axis=-1)
        return (lo + k) * STATION_STEP_M + along, lateral


def _neighbour_offsets(
    town: Town, lane: NDArray[np.int64], xy: NDArray[np.float64], normal: NDArray[np.float64],
    neighbour: NDArray[np.int64],
) -> NDArray[np.float64]:  # fmt: skip
    """Signed lateral offset [m] from each station to the nearest centerline sample of its
    neighbour lane (NaN where there is none or it is not adjacent)."""
    out = np.full(lane.shape, np.nan)
    lanes = town.lanes
    for nb in np.unique(neighbour[neighbour >= 0]).tolist():
        rows = np.flatnonzero(neighbour == nb)
        pts = lanes.xy[lanes.lane_points(nb)]
        rel = pts[None, :, :] - xy[rows, None, :]
        k = np.argmin((rel * rel).sum(axis=-1), axis=1)
        off = (rel[np.arange(rows.size), k] * normal[rows]).sum(axis=-1)
        ok = (np.abs(off) > NEIGHBOUR_MIN_M) & (np.abs(off) < NEIGHBOUR_MAX_M)
        out[rows[ok]] = off[ok]
    return out


def _same_direction_lanes(town: Town, lane: int) -> int:
    """Number of same-direction lanes of the road section holding ``lane``."""
    g = town.graph
    count = 1
    for side in (g.left, g.right):
        cur = int(side[lane])
        while cur >= 0 and count < 10:
            count += 1
            cur = int(side[cur])
    return count


def _speed_profile(yaw: NDArray[np.float64], cruise: NDArray[np.float64]) -> NDArray[np.float64]:
    """Speed limit per station: cruise, capped by A_LAT_MAX in curves and braking into them."""
    kappa = np.abs(np.gradient(np.unwrap(yaw))) / STATION_STEP_M
    w = 2 * CURVE_SMOOTH_M + 1
    kappa = np.convolve(np.pad(kappa, CURVE_SMOOTH_M, mode="edge"), np.ones(w) / w, mode="valid")
    v_curve = np.minimum(cruise, np.sqrt(A_LAT_MAX_MPS2 / np.maximum(kappa, 1e-6)))
    padded = np.concatenate([v_curve, np.full(ANTICIPATE_M, v_curve[-1])])
    win = np.lib.stride_tricks.sliding_window_view(padded, ANTICIPATE_M)[: yaw.shape[0]]
    dist = np.arange(ANTICIPATE_M) * STATION_STEP_M
    return np.asarray(
        np.sqrt(win**2 + 2.0 * B_ANTICIPATE_MPS2 * dist[None, :]).min(axis=1), dtype=np.float64
    )


def build_route_context(town: Town, planned: PlannedRoute) -> RouteContext:
    """Resample ``planned`` at STATION_STEP_M, append a straight run-out and precompute the
    per-station lane facts and the route's stop lines (see :class:`RouteContext`)."""
    s_src = planned.s_m
    end = float(s_src[-1])
    st = np.arange(0.0, end + RUN_OUT_M, STATION_STEP_M)
    inside = st <= end
    yaw_u = np.unwrap(planned.yaw_rad)
    src_xy = blend_lane_changes(town, planned)
    x = np.interp(st, s_src, src_xy[:, 0])
    y = np.interp(st, s_src, src_xy[:, 1])
    yaw = np.interp(st, s_src, yaw_u)
    over = st - end
    x = np.where(inside, x, planned.xy[-1, 0] + over * np.cos(yaw_u[-1]))
    y = np.where(inside, y, planned.xy[-1, 1] + over * np.sin(yaw_u[-1]))
    yaw = wrap_angle(yaw)
    xy = np.column_stack([x, y])
    normal = np.column_stack([-np.sin(yaw), np.cos(yaw)])
    src = np.clip(np.searchsorted(s_src, st), 0, len(s_src) - 1)
    lane = np.where(inside, planned.lane[src], -1).astype(np.int64)
    lanes, g = town.lanes, town.graph
    safe = np.maximum(lane, 0)
    lane_width = np.add.reduceat(lanes.width_m, lanes.start) / lanes.count  # (L,) mean [m]
    width = np.where(lane >= 0, lane_width[safe], DEFAULT_LANE_WIDTH_M)
    junction_id = np.where(lane >= 0, lanes.junction_id[safe], -1).astype(np.int64)
    in_j = junction_id >= 0
    left_same = np.where((lane >= 0) & ~in_j, g.left[safe], -1)
    left_opp = np.where((lane >= 0) & ~in_j & (left_same < 0), g.left_opposite[safe], -1)
    left_nb = np.where(left_same >= 0, left_same, left_opp)
    right_nb = np.where((lane >= 0) & ~in_j, g.right[safe], -1)
    left_offset = _neighbour_offsets(town, lane, xy, normal, left_nb)
    left_offset = np.where(left_offset < 0.0, left_offset, np.nan)
    right_offset = _neighbour_offsets(town, lane, xy, normal, right_nb)
    right_offset = np.where(right_offset > 0.0, right_offset, np.nan)
    # (inside a blended lane change the offsets are measured from the moved centre)
    n_same = {ln: _same_direction_lanes(town, ln) for ln in np.unique(lane[lane >= 0]).tolist()}
    lanes_here = np.array([n_same.get(int(ln), 1) for ln in lane])
    cruise = np.where(lanes_here >= HIGHWAY_LANES, HIGHWAY_CRUISE_MPS, URBAN_CRUISE_MPS)
    stop_station, stop_owner, stop_kind = _route_stops(town, planned)
    return RouteContext(
        xy=xy, yaw=yaw, normal=normal, lane=lane, width=width, in_junction=in_j,
        junction_id=junction_id, left_offset=left_offset, left_opposite=left_opp >= 0,
        right_offset=right_offset, speed_limit=_speed_profile(yaw, cruise.astype(np.float64)),
        cruise=cruise.astype(np.float64), end_station=end, stop_station=stop_station,
        stop_owner=stop_owner, stop_kind=stop_kind,
    )  # fmt: skip


def _route_stops(
    town: Town, planned: PlannedRoute
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Stop lines that the route crosses on their incoming lane, or that lie ahead of its end on
    its last lane: station [m] (past the end: the end + the distance ahead along the route's
    last heading), owner, kind. A route that changes to another lane before the stop line of the
    lane it leaves does not meet that line."""
    sig = town.signals
    stations, owner, kind = [], [], []
    for i in np.flatnonzero(np.isin(sig.stop_lane, planned.lane)).tolist():
        rows = np.flatnonzero(planned.lane == sig.stop_lane[i])
        a, b = (
            np.asarray(sig.stop_a[i], dtype=np.float64),
            np.asarray(sig.stop_b[i], dtype=np.float64),
        )
        ab = b - a
        u = np.clip(((planned.xy[rows] - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        dist = np.hypot(*(planned.xy[rows] - (a + u[:, None] * ab)).T)
        j = int(np.argmin(dist))
        if dist[j] <= STOP_ON_ROUTE_M:
            station = float(planned.s_m[rows[j]])
        elif rows[-1] == planned.lane.shape[0] - 1:  # the route ends on this lane: ahead?
            yaw = float(planned.yaw_rad[-1])
            ahead = float((0.5 * (a + b) - planned.xy[-1]) @ np.array([np.cos(yaw), np.sin(yaw)]))
            if ahead <= 0.0:
                continue
            station = float(planned.s_m[-1]) + ahead
        else:
            continue
        stations.append(station)
        owner.append(int(sig.stop_owner[i]))
        kind.append(int(sig.stop_kind[i]))
    return (
        np.asarray(stations, dtype=np.float64),
        np.asarray(owner, dtype=np.int64),
        np.asarray(kind, dtype=np.int64),
    )


@dataclass(frozen=True, eq=False)
class PathSet:
    """P candidate paths over K stations starting at route station ``origin`` (an index).

    xy (P, K, 2) [m], yaw (P, K) [rad], offset (P, K) [m] lateral offset from the route centre,
    kind (P,) PathKind, curvature (P, K) [1/m]."""

    origin: int
    xy: NDArray[np.float64]
    yaw: NDArray[np.float64]
    offset: NDArray[np.float64]
    kind: NDArray[np.int64]
    curvature: NDArray[np.float64]

    @property
    def n_paths(self) -> int:
        return int(self.kind.shape[0])

    def poses_at(
        self, path: NDArray[np.int64], station: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Poses (..., 3) [x, y, yaw] on paths ``path`` (...,) at relative stations (...,) [m]
        (clamped to the window), linear interpolation between samples."""
        k_max = self.yaw.shape[1] - 1
        u = np.clip(station / STATION_STEP_M, 0.0, k_max - 1e-9)
        i = np.floor(u).astype(np.int64)
        f = u - i
        p0, p1 = self.xy[path, i], self.xy[path, i + 1]
        xy = p0 + f[..., None] * (p1 - p0)
        y0 = self.yaw[path, i]
        yaw = wrap_angle(y0 + f * wrap_angle(self.yaw[path, i + 1] - y0))
        return np.concatenate([xy, yaw[..., None]], axis=-1)

    def sample(self, table: NDArray[np.float64], path: NDArray[np.int64],
               station: NDArray[np.float64]) -> NDArray[np.float64]:  # fmt: skip
        """A per-(path, station) table (P, K) read at the nearest sample of (path, station)."""
        k = np.clip(np.rint(station / STATION_STEP_M).astype(np.int64), 0, table.shape[1] - 1)
        return np.asarray(table[path, k], dtype=np.float64)


def smoothstep(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """C1 blend 0 -> 1 on u in [0, 1] (3u^2 - 2u^3), clamped outside."""
    u = np.clip(u, 0.0, 1.0)
    return np.asarray(u * u * (3.0 - 2.0 * u), dtype=np.float64)


def build_paths(
    ctx: RouteContext,
    origin: int,
    n_stations: int,
    d0_m: float,
    targets: NDArray[np.float64],
    kinds: NDArray[np.int64],
    ramp_m: NDArray[np.float64],
) -> PathSet:
    """Paths over stations origin..origin+n_stations-1: the lateral offset blends from ``d0_m``
    (the ego's offset at the origin) to each row of ``targets`` (P, K) over ``ramp_m`` (P,) [m]."""
    idx = np.clip(origin + np.arange(n_stations), 0, ctx.n - 1)
    s = np.arange(n_stations) * STATION_STEP_M
    blend = smoothstep(s[None, :] / np.maximum(ramp_m[:, None], 1e-3))
    offset = d0_m + (targets - d0_m) * blend
    xy = ctx.xy[idx][None] + offset[..., None] * ctx.normal[idx][None]
    d = np.gradient(xy, axis=1)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    step = np.hypot(d[..., 0], d[..., 1])
    curvature = np.abs(np.gradient(np.unwrap(yaw, axis=1), axis=1)) / np.maximum(step, 1e-6)
    return PathSet(origin, xy, yaw, offset, kinds.astype(np.int64), curvature)


def blend_lane_changes(town: Town, planned: PlannedRoute) -> NDArray[np.float64]:
    """``planned.xy`` (M, 2) [m] with each lane change (a switch to the same-direction left or
    right neighbour lane, where the planned route jumps between lane centres) spread over up to
    LANE_CHANGE_BLEND_M before the switch: the points on the old lane move toward the new
    lane's centre along a smoothstep, reaching it at the last old-lane point."""
    xy = planned.xy.copy()
    lane, s = planned.lane, planned.s_m
    g, lanes = town.graph, town.lanes
    start = 0  # first point of the current lane stretch
    for k in range(1, lane.shape[0]):
        if lane[k] == lane[k - 1]:
            continue
        old, new = int(lane[k - 1]), int(lane[k])
        if new in (int(g.left[old]), int(g.right[old])):
            rows = np.flatnonzero(s[start:k] >= s[k - 1] - LANE_CHANGE_BLEND_M) + start
            pts = lanes.xy[lanes.lane_points(new)]
            rel = pts[None, :, :] - planned.xy[rows, None, :]
            near = pts[np.argmin((rel * rel).sum(axis=-1), axis=1)]
            yaw = planned.yaw_rad[rows]
            normal = np.column_stack([-np.sin(yaw), np.cos(yaw)])
            off = ((near - planned.xy[rows]) * normal).sum(axis=1)  # to the new centre [m]
            span = max(float(s[k - 1] - s[rows[0]]), 1e-9)
            w = smoothstep((s[rows] - s[rows[0]]) / span)
            xy[rows] += (off * w)[:, None] * normal
        start = k
    return xy
