"""Route interpolation: keypoints -> a dense (~1 m) lane-following path with CARLA RoadOptions.

Like the leaderboard's `interpolate_trajectory` (GlobalRoutePlanner between consecutive
keypoints), but robust to keypoints inside junctions: each keypoint gets every lane within a few
metres as a candidate, and a Viterbi pass picks the candidate sequence with the least driven
distance (A* on the lane graph between candidates) plus a small penalty for the offset.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.errors import RoutePlanningError
from harness.geometry import wrap_angle

if TYPE_CHECKING:
    from harness.maps import Town

SAMPLE_SPACING_M = 1.0  # [m] spacing of the dense route points
MAX_KEYPOINT_OFFSET_M = 3.0  # [m] a keypoint farther than this from every lane is unplannable
OFFSET_COST = 5.0  # [m of driving per m of offset] Viterbi penalty for a keypoint's lane offset
LANE_CHANGE_COST_M = 10.0  # [m] A* / Viterbi cost of one lane change
BACKTRACK_TOL_M = 1.0  # [m] a keypoint this little behind the last on one lane counts as equal
HEADING_GATE_RAD = math.radians(90.0)  # [rad] drop candidates facing further from the keypoint
TURN_THRESHOLD_RAD = math.radians(35.0)  # [rad] junction heading change below this: STRAIGHT
DETOUR_FACTOR = 4.0  # [-] A* gives up beyond DETOUR_FACTOR x straight distance + DETOUR_SLACK_M
DETOUR_SLACK_M = 400.0  # [m]


class RoadOption(IntEnum):
    """CARLA's `agents.navigation.local_planner.RoadOption`, same integer values."""

    VOID = -1
    LEFT = 1
    RIGHT = 2
    STRAIGHT = 3
    LANEFOLLOW = 4
    CHANGELANELEFT = 5
    CHANGELANERIGHT = 6


@dataclass(frozen=True)
class PlannedRoute:
    """A planned route sampled at about 1 m; M points, world frame.

    xy (M, 2) [m]; z (M,) [m] interpolated between keypoint heights; yaw_rad (M,) lane heading;
    lane (M,) lane index in town.lanes; option (M,) RoadOption values; s_m (M,) cumulative
    distance [m]; keypoint_index (N,) index of the point where each keypoint landed;
    keypoint_offset_m (N,) distance [m] from each keypoint to its lane's centerline.
    """

    route_id: str
    xy: NDArray[np.float64]
    z: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]
    lane: NDArray[np.int64]
    option: NDArray[np.int64]
    s_m: NDArray[np.float64]
    keypoint_index: NDArray[np.int64]
    keypoint_offset_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        m = self.xy.shape[0]
        if self.xy.shape != (m, 2) or any(
            a.shape != (m,) for a in (self.z, self.yaw_rad, self.lane, self.option, self.s_m)
        ):
            raise ValueError("PlannedRoute arrays must be xy (M, 2) and (M,) for the rest")
        for a in (
            self.xy,
            self.z,
            self.yaw_rad,
            self.lane,
            self.option,
            self.s_m,
            self.keypoint_index,
            self.keypoint_offset_m,
        ):
            a.setflags(write=False)

    @property
    def length_m(self) -> float:
        """Total length [m]."""
        return float(self.s_m[-1]) if self.s_m.size else 0.0

    @property
    def start_pose(self) -> tuple[float, float, float, float]:
        """Where an ego starts on this route: (x [m], y [m], z [m], yaw [rad]) of the first point,
        the ``ego_start`` of an episode spec."""
        return (
            float(self.xy[0, 0]), float(self.xy[0, 1]), float(self.z[0]), float(self.yaw_rad[0])
        )

    @property
    def num_points(self) -> int:
        """Number of route points M."""
        return int(self.xy.shape[0])


_TREES: weakref.WeakKeyDictionary[Any, cKDTree] = weakref.WeakKeyDictionary()
"""KD-tree over each LaneSet's centerline samples (derived data, dropped with the LaneSet)."""


@dataclass(frozen=True)
class _Candidates:
    """Lane candidates of all keypoints, flat: keypoint k owns rows [start[k], start[k+1])."""

    start: NDArray[np.int64]  # (N + 1,)
    lane: NDArray[np.int64]  # (C,)
    s_m: NDArray[np.float64]  # (C,)
    dist_m: NDArray[np.float64]  # (C,)


def _keypoint_headings(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Heading of each keypoint (N,): towards the next keypoint (the last one: from the previous);
    NaN where keypoints coincide, so no heading gate applies."""
    d = np.diff(xy, axis=0)
    if d.shape[0] == 0:
        return np.full(xy.shape[0], np.nan)
    d = np.concatenate([d, d[-1:]], axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    return np.where(np.linalg.norm(d, axis=1) > 1e-3, yaw, np.nan)


def _candidates(town: Town, kp_xy: NDArray[np.float64], route_id: str) -> _Candidates:
    """Every lane whose centerline passes within MAX_KEYPOINT_OFFSET_M of each keypoint, with the
    arc length and distance of the foot point (segment projection, vectorised over all pairs)."""
    lanes = town.lanes
    pts = np.asarray(lanes.xy, dtype=np.float64)
    lop = np.asarray(lanes.lane_of_point, dtype=np.int64)
    same_lane = lop[1:] == lop[:-1]
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)[same_lane]
    spacing = float(np.max(steps, initial=1.0))
    radius = MAX_KEYPOINT_OFFSET_M + min(spacing, 5.0)
    tree = _TREES.get(lanes)
    if tree is None:
        tree = _TREES[lanes] = cKDTree(pts)
    hits = tree.query_ball_point(kp_xy, r=radius)
    counts = np.array([len(h) for h in hits], dtype=np.int64)
    kp_idx = np.repeat(np.arange(len(kp_xy)), counts)
    p = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
        if counts.sum()
        else np.zeros(0, np.int64)
    )
    # Segments (p, p+1) and (p-1, p) within the same lane.
    a = np.concatenate([p, p - 1])
    k = np.concatenate([kp_idx, kp_idx])
    ok = (a >= 0) & (a + 1 < len(pts))
    a, k = a[ok], k[ok]
    ok = lop[a] == lop[a + 1]
    a, k = a[ok], k[ok]
    seg = pts[a + 1] - pts[a]
    seg_len2 = np.maximum(np.einsum("ij,ij->i", seg, seg), 1e-12)
    t = np.clip(np.einsum("ij,ij->i", kp_xy[k] - pts[a], seg) / seg_len2, 0.0, 1.0)
    foot = pts[a] + t[:, None] * seg
    dist = np.linalg.norm(kp_xy[k] - foot, axis=1)
    s_pts = np.asarray(lanes.s_m, dtype=np.float64)
    s = s_pts[a] + t * (s_pts[a + 1] - s_pts[a])
    seg_yaw = np.arctan2(seg[:, 1], seg[:, 0])
    lane = lop[a]
    heading = _keypoint_headings(kp_xy)[k]
    facing = np.isnan(heading) | (np.abs(wrap_angle(seg_yaw - heading)) <= HEADING_GATE_RAD)
    keep = dist <= MAX_KEYPOINT_OFFSET_M
    # Prefer lanes facing the keypoint heading; fall back to any lane where none faces it.
    has_facing = np.zeros(len(kp_xy), dtype=bool)
    np.logical_or.at(has_facing, k[keep & facing], True)
    keep &= facing | ~has_facing[k]
    k, lane, s, dist = k[keep], lane[keep], s[keep], dist[keep]
    # Best foot point per (keypoint, lane).
    order = np.lexsort((dist, lane, k))
    k, lane, s, dist = k[order], lane[order], s[order], dist[order]
    first = np.ones(len(k), dtype=bool)
    first[1:] = (k[1:] != k[:-1]) | (lane[1:] != lane[:-1])
    k, lane, s, dist = k[first], lane[first], s[first], dist[first]
    per_kp = np.bincount(k, minlength=len(kp_xy))
    if np.any(per_kp == 0):
        i = int(np.flatnonzero(per_kp == 0)[0])
        proj = lanes.project(kp_xy[i : i + 1])
        raise RoutePlanningError(
            f"route {route_id}: keypoint {i} at ({kp_xy[i, 0]:.1f}, {kp_xy[i, 1]:.1f}) is "
            f"{float(np.asarray(proj.distance_m).reshape(-1)[0]):.1f} m from the nearest driving lane "
            f"(limit {MAX_KEYPOINT_OFFSET_M} m); move it onto a lane or check the town"
        )
    start = np.concatenate([[0], np.cumsum(per_kp)]).astype(np.int64)
    return _Candidates(start, lane.astype(np.int64), s, dist)


class _LaneRouter:
    """A* between lanes with follow edges weighted by the source lane's length, memoised per call."""

    def __init__(self, town: Town) -> None:
        self.g: nx.DiGraph = town.graph.g
        self.length = np.asarray(town.lanes.length_m, dtype=np.float64)
        starts = np.asarray(town.lanes.start, dtype=np.int64)
        self.start_xy = np.asarray(town.lanes.xy, dtype=np.float64)[starts]
        self._memo: dict[tuple[int, int], tuple[float, list[int]]] = {}

    def _weight(self, u: int, v: int, d: dict[str, Any]) -> float:
        return LANE_CHANGE_COST_M if d.get("kind", "follow") != "follow" else float(self.length[u])

    def lane_path(self, a: int, b: int) -> tuple[float, list[int]]:
        """Least cost (start of a -> start of b) and lane sequence; (inf, []) when unreachable.
        For a == b this is a loop (at least one edge), for a keypoint behind on the same lane."""
        key = (a, b)
        if key not in self._memo:
            self._memo[key] = self._search(a, b)
        return self._memo[key]

    def _search(self, a: int, b: int) -> tuple[float, list[int]]:
        if a not in self.g or b not in self.g:
            return math.inf, []
        target = self.start_xy[b]

        def h(u: int, _v: int) -> float:
            return float(np.hypot(*(self.start_xy[u] - target)))

        cutoff = DETOUR_FACTOR * h(a, b) + DETOUR_SLACK_M
        best: tuple[float, list[int]] = (math.inf, [])
        firsts = [(a, [a])] if a != b else [(v, [a, v]) for v in self.g.successors(a)]
        for src, prefix in firsts:
            base = sum(
                self._weight(u, v, self.g.edges[u, v])
                for u, v in zip(prefix, prefix[1:], strict=False)
            )
            try:
                path = nx.astar_path(
                    self.g, src, b, heuristic=h, weight=self._weight, cutoff=cutoff
                )
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                continue
            cost = base + sum(
                self._weight(u, v, self.g.edges[u, v]) for u, v in zip(path, path[1:], strict=False)
            )
            if cost < best[0]:
                best = (cost, prefix[:-1] + path)
        return best

    def leg(self, a: int, s_a: float, b: int, s_b: float) -> tuple[float, list[int]]:
        """Driving cost [m] and lane sequence from (a, s_a) to (b, s_b); (inf, []) if unreachable."""
        if a == b and s_b >= s_a - BACKTRACK_TOL_M:
            return max(s_b - s_a, 0.0), [a]
        _, path = self.lane_path(a, b)
        if not path:
            return math.inf, []
        cost, cur_s = 0.0, s_a
        for u, v in zip(path, path[1:], strict=False):
            if self.g.edges[u, v].get("kind", "follow") == "follow":
                cost += float(self.length[u]) - cur_s
                cur_s = 0.0
            else:
                cost += LANE_CHANGE_COST_M
                cur_s = self.mapped_s(u, v, cur_s)
        return cost + max(s_b - cur_s, 0.0), path

    def mapped_s(self, u: int, v: int, s: float) -> float:
        """Arc length on neighbour lane v beside arc length s on lane u (same relative position)."""
        return s * float(self.length[v]) / max(float(self.length[u]), 1e-6)


def _viterbi(
    cand: _Candidates, router: _LaneRouter, kp_xy: NDArray[np.float64], route_id: str
) -> list[int]:
    """The candidate row per keypoint minimising driven distance + OFFSET_COST x offsets."""
    n = len(cand.start) - 1
    rows = [np.arange(cand.start[i], cand.start[i + 1]) for i in range(n)]
    cost = OFFSET_COST * cand.dist_m[rows[0]]
    back: list[NDArray[np.int64]] = []
    for i in range(1, n):
        prev, cur = rows[i - 1], rows[i]
        trans = np.array(
            [
                [
                    router.leg(
                        int(cand.lane[p]), float(cand.s_m[p]), int(cand.lane[c]), float(cand.s_m[c])
                    )[0]
                    for p in prev
                ]
                for c in cur
            ]
        ).reshape(len(cur), len(prev))
        total = trans + cost[None, :]
        arg = np.argmin(total, axis=1)
        cost = total[np.arange(len(cur)), arg] + OFFSET_COST * cand.dist_m[cur]
        if not np.isfinite(cost).any():
            raise RoutePlanningError(
                f"route {route_id}: no lane path reaches keypoint {i} at ({kp_xy[i, 0]:.1f}, "
                f"{kp_xy[i, 1]:.1f}) from keypoint {i - 1}; check the keypoint order and lane directions"
            )
        back.append(arg)
    choice = [int(np.argmin(cost))]
    for arg in reversed(back):
        choice.append(int(arg[choice[-1]]))
    choice.reverse()
    return [int(rows[i][c]) for i, c in enumerate(choice)]


_Interval = tuple[int, float, float, int]  # (lane, s0 [m], s1 [m], RoadOption entering it or 0)


def _leg_intervals(router: _LaneRouter, a: int, s_a: float, b: int, s_b: float) -> list[_Interval]:
    """Lane intervals driven from (a, s_a) to (b, s_b); lane changes keep the relative position."""
    _, path = router.leg(a, s_a, b, s_b)
    out: list[_Interval] = []
    cur_s, entry = s_a, 0
    for u, v in zip(path, path[1:], strict=False):
        kind = router.g.edges[u, v].get("kind", "follow")
        if kind == "follow":
            out.append((u, cur_s, float(router.length[u]), entry))
            cur_s, entry = 0.0, 0
        else:
            out.append((u, cur_s, cur_s, entry))
            cur_s = router.mapped_s(u, v, cur_s)
            entry = int(RoadOption.CHANGELANELEFT if kind == "left" else RoadOption.CHANGELANERIGHT)
    out.append((path[-1], cur_s, max(s_b, cur_s), entry))
    return out


def _junction_options(town: Town, lane: NDArray[np.int64]) -> NDArray[np.int64]:
    """LANEFOLLOW, or LEFT/RIGHT/STRAIGHT on each run of junction connector points, from the
    heading change between the run's first lane start and last lane end (CARLA frame: a positive
    yaw change turns clockwise seen from above, i.e. RIGHT), threshold TURN_THRESHOLD_RAD."""
    option = np.full(lane.shape, int(RoadOption.LANEFOLLOW), dtype=np.int64)
    in_junction = np.asarray(town.lanes.junction_id)[lane] >= 0
    if not in_junction.any():
        return option
    edges = np.diff(np.concatenate([[0], in_junction.astype(np.int8), [0]]))
    run_start, run_end = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    first, last = lane[run_start], lane[run_end]
    _, yaw_in = town.lanes.position(first, np.zeros(len(first)))
    _, yaw_out = town.lanes.position(last, np.asarray(town.lanes.length_m)[last])
    dyaw = wrap_angle(np.asarray(yaw_out) - np.asarray(yaw_in))
    run_opt = np.where(
        np.abs(dyaw) < TURN_THRESHOLD_RAD,
        int(RoadOption.STRAIGHT),
        np.where(dyaw > 0, int(RoadOption.RIGHT), int(RoadOption.LEFT)),
    )
    lengths = run_end - run_start + 1
    idx = np.concatenate([np.arange(s, e + 1) for s, e in zip(run_start, run_end, strict=True)])
    option[idx] = np.repeat(run_opt, lengths)
    return option


def _lane_z(
    town: Town, lane: NDArray[np.int64], s: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """Road height [m] at (lane, s) from the centerline samples; None when the lanes carry none."""
    lanes = town.lanes
    z_pts = getattr(lanes, "z_m", None)
    if z_pts is None:
        return None
    length = np.asarray(lanes.length_m, dtype=np.float64)
    offset = np.concatenate([[0.0], np.cumsum(length + 1.0)[:-1]])  # strictly increasing lane keys
    lop = np.asarray(lanes.lane_of_point, dtype=np.int64)
    key = np.asarray(lanes.s_m, dtype=np.float64) + offset[lop]
    if np.any(np.diff(key) < 0):
        return None
    return np.interp(
        offset[lane] + np.clip(s, 0.0, length[lane]), key, np.asarray(z_pts, dtype=np.float64)
    )


def plan_route(town: Town, keypoints: NDArray[np.float64], route_id: str = "?") -> PlannedRoute:
    """Connect keypoints (N, 3) [m] along the lane graph into a ~1 m PlannedRoute.

    Raises RoutePlanningError naming the route id and keypoint when a keypoint is off every lane or
    no lane path joins two consecutive keypoints.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    if kp.shape[0] < 2:
        raise RoutePlanningError(f"route {route_id}: needs at least 2 keypoints, has {kp.shape[0]}")
    cand = _candidates(town, kp[:, :2], route_id)
    router = _LaneRouter(town)
    rows = _viterbi(cand, router, kp[:, :2], route_id)
    lanes_k, s_k = cand.lane[rows], cand.s_m[rows]
    intervals: list[_Interval] = [(int(lanes_k[0]), float(s_k[0]), float(s_k[0]), 0)]
    kp_interval = [0]
    for i in range(1, len(rows)):
        for iv in _leg_intervals(
            router, int(lanes_k[i - 1]), float(s_k[i - 1]), int(lanes_k[i]), float(s_k[i])
        ):
            last = intervals[-1]
            if iv[0] == last[0] and iv[3] == 0 and abs(iv[1] - last[2]) < 1e-6:
                intervals[-1] = (last[0], last[1], iv[2], last[3])  # same lane, continuing: merge
            else:
                intervals.append(iv)
        kp_interval.append(len(intervals) - 1)
    iv_lane = np.array([iv[0] for iv in intervals], dtype=np.int64)
    s0 = np.array([iv[1] for iv in intervals])
    s1 = np.array([iv[2] for iv in intervals])
    entry = np.array([iv[3] for iv in intervals], dtype=np.int64)
    nseg = np.where(s1 > s0, np.ceil((s1 - s0) / SAMPLE_SPACING_M - 1e-9), 0).astype(np.int64)
    counts = nseg + 1
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    which = np.repeat(np.arange(len(intervals)), counts)
    r = np.arange(counts.sum()) - offsets[which]
    s = s0[which] + (s1 - s0)[which] * r / np.maximum(nseg[which], 1)
    lane = iv_lane[which]
    xy, yaw = town.lanes.position(lane, s)
    xy, yaw = (
        np.asarray(xy, dtype=np.float64).reshape(-1, 2),
        np.asarray(yaw, dtype=np.float64).reshape(-1),
    )
    # Drop an interval's first point where it repeats the previous point (lane joints, legs).
    keep = np.ones(len(s), dtype=bool)
    firsts = offsets[1:]
    keep[firsts] = np.linalg.norm(xy[firsts] - xy[firsts - 1], axis=1) > 0.05
    new_index = np.cumsum(keep) - 1
    option = _junction_options(town, lane)
    changes = np.flatnonzero(entry != 0)
    option[offsets[changes]] = entry[changes]
    option[np.maximum(offsets[changes] - 1, 0)] = entry[changes]
    xy, yaw, lane, option = xy[keep], yaw[keep], lane[keep], option[keep]
    s_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    # Each keypoint lands on the sample of its (last) interval nearest to its arc length.
    kiv = np.asarray(kp_interval, dtype=np.int64)
    s_end = np.minimum(np.maximum(s_k, s0[kiv]), s1[kiv])
    step = np.where(nseg[kiv] > 0, (s1 - s0)[kiv] / np.maximum(nseg[kiv], 1), 1.0)
    r_kp = np.clip(np.rint((s_end - s0[kiv]) / step), 0, nseg[kiv]).astype(np.int64)
    kp_index = new_index[offsets[kiv] + r_kp].astype(np.int64)
    z = _lane_z(town, lane, s[keep])
    if z is None:  # no road heights in the lane set: interpolate the keypoints' heights
        z = np.interp(s_m, s_m[kp_index], kp[:, 2])
    offset_m = np.asarray(cand.dist_m[rows], dtype=np.float64)
    return PlannedRoute(route_id, xy, z, yaw, lane, option, s_m, kp_index, offset_m)


@dataclass(frozen=True)
class GlobalPlan:
    """The agent's downsampled plan, as the leaderboard hands it to `set_global_plan`.

    index (K,) route points kept; world: [((x, y, z, yaw_deg), RoadOption)];
    gps: [({'lat', 'lon', 'z'}, RoadOption)].
    """

    index: NDArray[np.int64]
    world: list[tuple[tuple[float, float, float, float], RoadOption]]
    gps: list[tuple[dict[str, float], RoadOption]]


def downsample_index(planned: PlannedRoute, spacing_m: float) -> NDArray[np.int64]:
    """The leaderboard's `downsample_route`: keep lane-change points, points where the option
    changes, a point once more than spacing_m was travelled since the last kept one, and the end."""
    lane_change = (int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT))
    step = np.concatenate([[0.0], np.diff(planned.s_m)])
    opts = planned.option.tolist()
    keep: list[int] = []
    prev: int | None = None
    dist = 0.0
    last = len(opts) - 1
    for i, cur in enumerate(opts):
        if (
            cur in lane_change
            or (prev != cur and prev not in lane_change)
            or dist > spacing_m
            or i == last
        ):
            keep.append(i)
            dist = 0.0
        else:
            dist += float(step[i])
        prev = cur
    return np.asarray(keep, dtype=np.int64)


def global_plan(planned: PlannedRoute, town: Town, spacing_m: float = 50.0) -> GlobalPlan:
    """Downsample a planned route (every spacing_m and at option changes; Bench2Drive uses 50 m,
    the leaderboard 200 m) into the world and GPS plans an agent receives."""
    idx = downsample_index(planned, spacing_m)
    xyz = np.column_stack([planned.xy[idx], planned.z[idx]])
    gps = np.asarray(town.geo.to_gps(xyz), dtype=np.float64).reshape(-1, 3)
    yaw_deg = np.degrees(planned.yaw_rad[idx])
    opts = [RoadOption(int(o)) for o in planned.option[idx]]
    world = [
        ((float(x), float(y), float(z), float(w)), o)
        for (x, y, z), w, o in zip(xyz, yaw_deg, opts, strict=True)
    ]
    gps_route = [
        ({"lat": float(la), "lon": float(lo), "z": float(al)}, o)
        for (la, lo, al), o in zip(gps, opts, strict=True)
    ]
    return GlobalPlan(idx, world, gps_route)
