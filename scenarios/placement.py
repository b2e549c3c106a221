"""Where scenario actors go: pure helpers over the planned route and the town's lanes (route
poses by arc length, lane polylines forward / backward through the lane graph, lateral offsets,
road extents for crossings, the junction a route enters). CARLA world frame: the right-hand
normal of heading yaw is (-sin yaw, cos yaw)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute

PATH_STEP_M = 1.0  # [m] spacing of generated paths
ROAD_PROBE_STEP_M = 0.25  # [m] probe spacing when measuring the drivable extent across a road
LANE_S_STEP_M = 0.05  # [m] resolution of lane_s_fine
ROAD_PROBE_MAX_M = 30.0  # [m] give up measuring the road extent beyond this

Path = NDArray[np.float64]


def right_normal(yaw_rad: float) -> NDArray[np.float64]:
    """Unit vector to the right of heading yaw (CARLA's left-handed frame)."""
    return np.array([-np.sin(yaw_rad), np.cos(yaw_rad)])


def route_index(
    planned: PlannedRoute, xy: NDArray[np.float64], yaw_rad: float | None = None
) -> int:
    """Index of the route point nearest xy (with a yaw: among points heading within 90 deg)."""
    d = np.hypot(*(planned.xy - np.asarray(xy, dtype=np.float64)[:2]).T)
    if yaw_rad is not None:
        d = d + np.where(np.abs(wrap_angle(planned.yaw_rad - yaw_rad)) > np.pi / 2, 1e3, 0.0)
    return int(np.argmin(d))


def route_pose(planned: PlannedRoute, s_m: float) -> tuple[NDArray[np.float64], float, int]:
    """(xy (2,), yaw [rad], lane) of the route at arc length s (clamped to the route)."""
    s = float(np.clip(s_m, 0.0, planned.length_m))
    i = int(np.clip(np.searchsorted(planned.s_m, s, side="right") - 1, 0, planned.num_points - 1))
    j = min(i + 1, planned.num_points - 1)
    seg = planned.s_m[j] - planned.s_m[i]
    u = 0.0 if seg <= 0 else (s - planned.s_m[i]) / seg
    xy = planned.xy[i] + u * (planned.xy[j] - planned.xy[i])
    return xy, float(planned.yaw_rad[i]), int(planned.lane[i])


def route_slice(planned: PlannedRoute, s0_m: float, s1_m: float) -> Path:
    """Route polyline (N, 2) from s0 to s1 (both clamped), resampled at PATH_STEP_M."""
    s0, s1 = np.clip([s0_m, s1_m], 0.0, planned.length_m)
    s = np.append(np.arange(s0, s1, PATH_STEP_M), s1)
    return np.column_stack(
        [np.interp(s, planned.s_m, planned.xy[:, 0]), np.interp(s, planned.s_m, planned.xy[:, 1])]
    )


def lane_s(town: Town, lane: int, xy: NDArray[np.float64]) -> float:
    """Arc length [m] on ``lane`` of the lane point nearest xy."""
    sl = town.lanes.lane_points(lane)
    d = np.hypot(*(town.lanes.xy[sl] - np.asarray(xy)[:2]).T)
    return float(town.lanes.s_m[sl][int(np.argmin(d))])


def lane_s_fine(town: Town, lane: int, xy: np.ndarray) -> float:
    """Arc length [m] on ``lane`` of the point nearest ``xy``, to LANE_S_STEP_M (lane_s gives
    the nearest lane sample)."""
    s0 = lane_s(town, lane, xy)
    ss = np.clip(s0 + np.arange(-3.0, 3.0 + 1e-9, LANE_S_STEP_M), 0.0, town.lanes.length_m[lane])
    pts = town.lanes.position(np.full(ss.shape, lane), ss)[0]
    return float(ss[int(np.argmin(np.hypot(*(np.asarray(pts) - np.asarray(xy)[:2]).T)))])


def lane_width(town: Town, lane: int, s_m: float) -> float:
    """Lane width [m] at arc length s."""
    sl = town.lanes.lane_points(lane)
    k = int(np.argmin(np.abs(town.lanes.s_m[sl] - s_m)))
    return float(town.lanes.width_m[sl][k])


def straight_successor(town: Town, lane: int) -> int:
    """The successor whose heading at its start changes least from ``lane``'s end (-1: none)."""
    succ = town.graph.successors(lane)
    if not succ:
        return -1
    end_yaw = town.lanes.position(lane, town.lanes.length_m[lane])[1]
    # a connector starts along the lane it leaves; its end heading tells where it goes
    turn = [
        abs(float(wrap_angle(town.lanes.position(v, town.lanes.length_m[v])[1] - end_yaw)))
        for v in succ
    ]
    return int(succ[int(np.argmin(turn))])


def lane_forward(
    town: Town, lane: int, s_m: float, length_m: float, via: list[int] | None = None
) -> Path:
    """Polyline (N, 2) from (lane, s) forward ``length_m`` along the lane graph, taking the lanes
    in ``via`` when they follow, else the straightest successor; stops early at a dead end."""
    lanes = town.lanes
    pts: list[NDArray[np.float64]] = []
    left, cur, s = length_m, lane, s_m
    queue = list(via or [])
    while left > 0 and cur >= 0:
        end = min(float(lanes.length_m[cur]), s + left)
        if end > s:
            ss = np.append(np.arange(s, end, PATH_STEP_M), end)
            pts.append(lanes.position(np.full(ss.shape, cur), ss)[0])
        left -= end - s
        succ = town.graph.successors(cur)
        nxt = -1
        while queue:
            cand = queue.pop(0)
            if cand in succ:
                nxt = cand
                break
        cur, s = (nxt if nxt >= 0 else straight_successor(town, cur)), 0.0
    return _dedupe(np.concatenate(pts) if pts else np.zeros((0, 2)))


def lane_backward(town: Town, lane: int, s_m: float, length_m: float) -> Path:
    """Polyline (N, 2) in driving order that ends at (lane, s) and starts ``length_m`` before it,
    walking predecessors (the straightest one at each step)."""
    lanes = town.lanes
    pieces: list[NDArray[np.float64]] = []
    left, cur, s = length_m, lane, s_m
    while left > 0 and cur >= 0:
        start = max(0.0, s - left)
        ss = np.append(np.arange(start, s, PATH_STEP_M), s)
        pieces.insert(0, lanes.position(np.full(ss.shape, cur), ss)[0])
        left -= s - start
        pred = town.graph.predecessors(cur)
        if not pred or left <= 0:
            break
        start_yaw = lanes.position(cur, 0.0)[1]
        turn = [abs(float(wrap_angle(lanes.position(p, 0.0)[1] - start_yaw))) for p in pred]
        cur = int(pred[int(np.argmin(turn))])
        s = float(lanes.length_m[cur])
    return _dedupe(np.concatenate(pieces) if pieces else np.zeros((0, 2)))


def lane_route(town: Town, a_xy: NDArray[np.float64], b_xy: NDArray[np.float64]) -> Path:
    """Polyline (N, 2) along lanes (follow edges only) from the lane point nearest a to the one
    nearest b; a straight segment when no lane path joins them."""
    proj = town.lanes.project(np.stack([np.asarray(a_xy)[:2], np.asarray(b_xy)[:2]]))
    la, lb = int(proj.lane[0]), int(proj.lane[1])
    sa, sb = float(proj.s_m[0]), float(proj.s_m[1])
    if la == lb and sb >= sa:
        return lane_forward(town, la, sa, sb - sa)
    follow = nx.subgraph_view(
        town.graph.g, filter_edge=lambda u, v: town.graph.g[u][v]["kind"] == "follow"
    )
    try:
        chain = nx.shortest_path(follow, la, lb, weight="weight")
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return np.stack([np.asarray(a_xy)[:2], np.asarray(b_xy)[:2]]).astype(np.float64)
    total = float(sum(town.lanes.length_m[c] for c in chain[:-1])) - sa + sb
    return lane_forward(town, la, sa, total, via=list(chain[1:]))


def offset_path(path: Path, offset_m: float | NDArray[np.float64]) -> Path:
    """The path shifted by ``offset_m`` (scalar or (N,)) to its right."""
    yaw = path_yaw(path)
    n = np.column_stack([-np.sin(yaw), np.cos(yaw)])
    return path + np.asarray(offset_m, dtype=np.float64).reshape(-1, 1) * n


def blend_onto(path: Path, offset0_m: float, hold_m: float, blend_m: float) -> Path:
    """A path that starts ``offset0_m`` to the right of ``path``, keeps that offset for ``hold_m``
    and then eases onto it over ``blend_m`` (smoothstep): a lane change / cut-in."""
    s = path_s(path)
    u = np.clip((s - hold_m) / max(blend_m, 1e-3), 0.0, 1.0)
    w = 1.0 - u * u * (3.0 - 2.0 * u)
    return offset_path(path, offset0_m * w)


def path_s(path: Path) -> NDArray[np.float64]:
    """Cumulative arc length (N,) [m]."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])


def path_yaw(path: Path) -> NDArray[np.float64]:
    """Heading (N,) [rad] of a polyline (forward differences, last repeated)."""
    if len(path) < 2:
        return np.zeros(len(path))
    d = np.diff(path, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    return np.append(yaw, yaw[-1])


def road_extent(town: Town, xy: NDArray[np.float64], yaw_rad: float) -> tuple[float, float]:
    """Distances [m] from xy to the edge of the drivable area to the right and to the left,
    probing across the road (a crossing's length)."""
    steps = np.arange(ROAD_PROBE_STEP_M, ROAD_PROBE_MAX_M, ROAD_PROBE_STEP_M)
    n = right_normal(yaw_rad)
    out = []
    for sign in (1.0, -1.0):
        probe = np.asarray(xy)[:2] + sign * steps[:, None] * n
        inside = town.area.contains(probe)
        off = np.flatnonzero(~inside)
        out.append(float(steps[off[0]]) if off.size else float(steps[-1]))
    return out[0], out[1]


def parked_lateral(
    town: Town, xy: NDArray[np.float64], yaw_rad: float, lane: int, side: float, car_width_m: float
) -> float:
    """Lateral offset [m, positive] from the lane centre of a car parked at the road edge on
    ``side`` (+1 right): inside the drivable area when the road reaches beyond the lane (a
    parking / outer lane), else just outside the lane on the shoulder."""
    right, left = road_extent(town, xy, yaw_rad)
    edge = right if side > 0 else left
    w = lane_width(town, lane, lane_s(town, lane, xy))
    return max(edge - 0.5 * car_width_m - 0.1, 0.5 * w + 0.5 * car_width_m + 0.2)


def junction_on_route(planned: PlannedRoute, town: Town, s_from_m: float) -> tuple[int, int] | None:
    """(first, last) route indices of the first junction the route enters at or after s_from."""
    jid = town.lanes.junction_id[planned.lane]
    i0 = int(np.searchsorted(planned.s_m, s_from_m))
    inside = np.flatnonzero(jid[i0:] >= 0)
    if inside.size == 0:
        return None
    first = i0 + int(inside[0])
    j = int(jid[first])
    last = first
    while last + 1 < planned.num_points and jid[last + 1] == j:
        last += 1
    return first, last


def route_ahead_until_junction(
    planned: PlannedRoute, town: Town, s0_m: float, distance_m: float
) -> float:
    """Route arc length ``distance_m`` after ``s0_m``, or that of the last point before the route
    next enters a junction when that comes first (ScenarioRunner's _move_waypoint_forward)."""
    i0 = int(np.searchsorted(planned.s_m, s0_m))
    i1 = int(np.searchsorted(planned.s_m, s0_m + distance_m))
    inside = np.flatnonzero(town.lanes.junction_id[planned.lane[i0:i1]] >= 0)
    if inside.size and inside[0] > 0:
        return float(planned.s_m[i0 + int(inside[0]) - 1])
    return float(min(s0_m + distance_m, planned.length_m))


def _dedupe(path: Path) -> Path:
    """Drop consecutive duplicate points (lane joins repeat their shared end point)."""
    if len(path) < 2:
        return path
    keep = np.concatenate([[True], np.hypot(*np.diff(path, axis=0).T) > 1e-3])
    return path[keep]
