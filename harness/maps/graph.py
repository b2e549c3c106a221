"""Lane graph: which lane follows which, and where lane changes are allowed.

Nodes are lane indices of a LaneSet. Follow edges come from CARLA's topology (segment end ->
next segment start); lane-change edges join same-direction neighbours of one lane section where
the lane markings permit crossing, as CARLA's GlobalRoutePlanner does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from harness.maps.lanes import LANE_CHANGE_LEFT, LANE_CHANGE_RIGHT, LaneSet

LANE_CHANGE_COST_M = (
    5.0  # [m] edge weight of a lane change: a small detour so routes prefer staying
)
MAX_LANES_PER_SIDE = 8  # OpenDRIVE lanes searched on each side of the reference line
ALONGSIDE_FRACTIONS = (0.25, 0.5, 0.75)  # lane samples probed for an oncoming lane of another road
ALONGSIDE_MAX_GAP_M = 0.3  # the other road's lane centre this close to where it would be [m]
ALONGSIDE_MAX_HEADING_RAD = 0.3  # ... running this close to the opposite heading [rad]
ALONGSIDE_MIN_LENGTH_M = 5.0  # shorter lanes (OpenDRIVE slivers) get no such neighbour [m]


@dataclass(frozen=True, eq=False)
class LaneGraph:
    """networkx DiGraph over lane indices plus neighbour arrays (L,) (-1 where there is none).

    `g` edges carry `kind` ('follow' | 'left' | 'right') and `weight` [m]: a follow edge u -> v
    weighs the length of u (metres driven to reach v), a lane change LANE_CHANGE_COST_M.
    `left` / `right`: same-direction neighbour reachable by a permitted lane change;
    `left_opposite`: nearest opposite-direction driving lane on the left (the oncoming lane): in
    the same lane section, else (a two-way street written as one road per direction, as
    ``carla.Osm2Odr`` does) the lane of another road running right alongside the other way.
    """

    g: nx.DiGraph
    left: NDArray[np.int64]
    right: NDArray[np.int64]
    left_opposite: NDArray[np.int64]

    def successors(self, lane: int) -> list[int]:
        """Lanes that directly follow `lane` (follow edges only)."""
        return [v for v, attrs in self.g.succ[lane].items() if attrs["kind"] == "follow"]

    def predecessors(self, lane: int) -> list[int]:
        """Lanes that `lane` directly follows (follow edges only)."""
        return [u for u, attrs in self.g.pred[lane].items() if attrs["kind"] == "follow"]


def _neighbour_arrays(
    lanes: LaneSet,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Left / right same-direction neighbours and the nearest opposite lane on the left, by key.

    In right-hand traffic both lane-id signs have their left towards the reference line, so the
    left neighbour of lane id i is i - sign(i) and the right one i + sign(i), in the same section.
    """
    sign = np.sign(lanes.lane_id)
    left = lanes.lookup(lanes.road_id, lanes.section_id, lanes.lane_id - sign)
    right = lanes.lookup(lanes.road_id, lanes.section_id, lanes.lane_id + sign)
    left = np.where(np.sign(lanes.lane_id[np.maximum(left, 0)]) == sign, left, -1)
    opposite = np.full(lanes.n_lanes, -1, dtype=np.int64)
    for k in range(
        1, MAX_LANES_PER_SIDE + 1
    ):  # nearest first: opposite ids -sign * 1, -sign * 2, ...
        cand = lanes.lookup(lanes.road_id, lanes.section_id, -sign * k)
        opposite = np.where(opposite < 0, cand, opposite)
    return left, right, _alongside_opposite(lanes, opposite)


def _alongside_opposite(lanes: LaneSet, opposite: NDArray[np.int64]) -> NDArray[np.int64]:
    """``opposite`` with -1 filled, for lanes outside junctions, by the lane of another road whose
    centreline lies one lane width to the left, running the other way, at each of
    ALONGSIDE_FRACTIONS of the lane (one and the same lane at all of them)."""
    todo = np.flatnonzero(
        (opposite < 0) & (lanes.junction_id < 0) & (lanes.length_m >= ALONGSIDE_MIN_LENGTH_M)
    )
    if todo.size == 0:
        return opposite
    frac = np.asarray(ALONGSIDE_FRACTIONS)
    idx = lanes.start[todo, None] + np.round(frac * (lanes.count[todo, None] - 1)).astype(np.int64)
    yaw, width = lanes.yaw_rad[idx], lanes.width_m[idx]  # (C, F)
    left = np.stack([np.sin(yaw), -np.cos(yaw)], axis=-1)  # CARLA frame: left of the heading
    probe = lanes.xy[idx] + left * width[..., None]
    proj = lanes.project(probe.reshape(-1, 2), (yaw + np.pi).reshape(-1))
    other = np.asarray(proj.lane).reshape(idx.shape)
    near = np.asarray(proj.distance_m).reshape(idx.shape) < ALONGSIDE_MAX_GAP_M
    facing = (
        np.abs(np.asarray(proj.heading_error_rad)).reshape(idx.shape) < ALONGSIDE_MAX_HEADING_RAD
    )
    ok = near & facing & (other != todo[:, None]) & (lanes.junction_id[np.maximum(other, 0)] < 0)
    same = np.all(ok, axis=1) & np.all(other == other[:, :1], axis=1)
    out = opposite.copy()
    out[todo[same]] = other[same, 0]
    return out


def build_graph(cmap: Any, lanes: LaneSet) -> LaneGraph:
    """Follow edges from `cmap.get_topology()`, lane-change edges from the lanes' markings."""
    pairs = [
        (a.road_id, a.section_id, a.lane_id, b.road_id, b.section_id, b.lane_id)
        for a, b in cmap.get_topology()
    ]
    keys = np.array(pairs, dtype=np.int64).reshape(-1, 6)
    u = lanes.lookup(keys[:, 0], keys[:, 1], keys[:, 2])
    v = lanes.lookup(keys[:, 3], keys[:, 4], keys[:, 5])
    keep = (u >= 0) & (v >= 0)
    follow = np.unique(np.stack([u[keep], v[keep]], axis=1), axis=0)

    left_n, right_n, opposite = _neighbour_arrays(lanes)
    # a lane change is allowed when any sample of the lane permits it (CARLA's route planner rule)
    bits = lanes.lane_change.astype(np.int64)
    any_left = np.bitwise_or.reduceat(bits & LANE_CHANGE_LEFT, lanes.start) > 0
    any_right = np.bitwise_or.reduceat(bits & LANE_CHANGE_RIGHT, lanes.start) > 0
    outside = lanes.junction_id < 0
    left = np.where(any_left & outside & (left_n >= 0), left_n, -1)
    right = np.where(any_right & outside & (right_n >= 0), right_n, -1)

    g = nx.DiGraph()
    g.add_nodes_from(range(lanes.n_lanes))
    g.add_edges_from(
        (int(a), int(b), {"kind": "follow", "weight": float(lanes.length_m[a])}) for a, b in follow
    )
    for kind, arr in (("left", left), ("right", right)):
        src = np.flatnonzero(arr >= 0)
        g.add_edges_from(
            (int(a), int(arr[a]), {"kind": kind, "weight": LANE_CHANGE_COST_M}) for a in src
        )
    return LaneGraph(g=g, left=left, right=right, left_opposite=opposite)
