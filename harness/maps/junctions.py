"""Junctions of a town: connector lanes, the lanes that enter them, arm count, kind, signalised.

Built from the LaneSet (connector lanes carry ``junction_id``) and the LaneGraph (incoming lanes are
the predecessors of connectors that lie outside the junction). ``signalised`` is decided here so
``Town.junctions`` is complete on its own: a junction is signalised when the OpenDRIVE has
traffic-light landmarks on its connectors or, in a town with no traffic lights at all, when it
looks signalised (:func:`looks_signalised`); ``harness.maps.signals`` then synthesises its lights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from harness.geometry import wrap_angle
from harness.maps.area import DrivableArea
from harness.maps.graph import LaneGraph
from harness.maps.lanes import LaneSet

log = logging.getLogger(__name__)

TRAFFIC_LIGHT_TYPE = "1000001"  # OpenDRIVE signal type of a traffic light
STOP_SIGN_TYPE = "206"  # OpenDRIVE signal type of a stop sign
CROSSING_MIN_RAD = np.radians(45.0)  # approaches this far from parallel/opposite cross [rad]
SIGNAL_MIN_LANES_PER_DIRECTION = 2  # a 3-arm junction is signalised-looking from this many [-]
RING_MAX_RADIUS_M = 40.0  # lanes curving tighter than this on both sides mark a roundabout [m]
RING_MIN_LANE_M = 1.0  # shorter lanes give no usable curvature [m]
RING_MIN_TURN_RAD = np.radians(3.0)  # smaller heading changes are sampling noise [rad]
ARM_SPLIT_RAD = np.radians(
    30.0
)  # outward directions further apart than this are separate arms [rad]


@dataclass(frozen=True)
class Junction:
    """One OpenDRIVE junction in the CARLA world frame.

    ``polygon``: union of its connector-lane polygons (convex hull when that union is not one
    piece); ``center_xy`` (2,) [m] its centroid; ``connector_lanes`` LaneSet indices inside it;
    ``incoming_lanes`` the lanes outside it that lead into a connector, ``incoming_arm`` the arm
    each belongs to; ``arms`` the number of streets meeting there, found from the outward
    directions of all entering and leaving lanes (:func:`arm_labels`; an exit-only one-way street
    is an arm, and the two one-directional roads Osm2Odr writes per street are one); ``kind``
    'merge' (<= 2 arms), 'T' (3), 'cross' (4), 'multi' (5+); ``signalised`` see module docstring.
    """

    id: int
    polygon: Polygon
    center_xy: NDArray[np.float64]
    connector_lanes: tuple[int, ...]
    incoming_lanes: tuple[int, ...]
    incoming_arm: tuple[int, ...]
    arms: int
    kind: str
    signalised: bool


def junction_kind(arms: int) -> str:
    """Kind name for an arm count: 'merge' (<= 2), 'T' (3), 'cross' (4), 'multi' (5+)."""
    if arms <= 2:
        return "merge"
    return {3: "T", 4: "cross"}.get(arms, "multi")


def lane_end_yaw(lanes: LaneSet, lane_idx: NDArray[np.int64]) -> NDArray[np.float64]:
    """Heading [rad] at the last centerline point of each lane in ``lane_idx`` (K,)."""
    last = lanes.start[lane_idx] + lanes.count[lane_idx] - 1
    return np.asarray(lanes.yaw_rad[last], dtype=np.float64)


def lane_start_yaw(lanes: LaneSet, lane_idx: NDArray[np.int64]) -> NDArray[np.float64]:
    """Heading [rad] at the first centerline point of each lane in ``lane_idx`` (K,)."""
    return np.asarray(lanes.yaw_rad[lanes.start[lane_idx]], dtype=np.float64)


def arm_labels(outward_yaw: NDArray[np.float64]) -> NDArray[np.int64]:
    """Cluster outward directions [rad] (K,) of a junction's boundary lanes into arms.

    Directions are sorted around the circle and cut wherever consecutive ones are more than
    ``ARM_SPLIT_RAD`` apart; returns the arm label (0..arms-1) of each input.
    """
    k = outward_yaw.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    ang = np.mod(outward_yaw, 2.0 * np.pi)
    order = np.argsort(ang, kind="stable")
    a = ang[order]
    gaps = np.diff(np.concatenate([a, a[:1] + 2.0 * np.pi]))  # gap after each sorted direction
    cut = gaps > ARM_SPLIT_RAD
    if not cut.any():
        return np.zeros(k, dtype=np.int64)
    # start the labelling just after the largest gap so no arm straddles the 0/2pi seam
    first = (int(np.argmax(gaps)) + 1) % k
    rolled_cut = np.roll(cut, -first)
    labels_sorted = np.concatenate([[0], np.cumsum(rolled_cut[:-1])])
    labels = np.empty(k, dtype=np.int64)
    labels[np.roll(order, -first)] = labels_sorted
    return labels


def _ring_turns(lanes: LaneSet, lane_idx: NDArray[np.int64]) -> set[int]:
    """Signs (+1/-1) of the turns of lanes curving tighter than ``RING_MAX_RADIUS_M``."""
    if lane_idx.size == 0:
        return set()
    turn = wrap_angle(lane_end_yaw(lanes, lane_idx) - lane_start_yaw(lanes, lane_idx))
    length = lanes.length_m[lane_idx]
    tight = (length >= RING_MIN_LANE_M) & (np.abs(turn) >= RING_MIN_TURN_RAD)
    tight &= np.abs(turn) * RING_MAX_RADIUS_M > length
    return {int(v) for v in np.sign(turn[tight])}


def _past_stubs(
    lanes: LaneSet, graph: LaneGraph, lane_idx: list[int], forward: bool
) -> NDArray[np.int64]:
    """Lanes with stubs shorter than ``RING_MIN_LANE_M`` replaced by their successors (forward)
    or predecessors, so curvature is measured on real lanes."""
    out: set[int] = set()
    for k in lane_idx:
        if lanes.length_m[k] >= RING_MIN_LANE_M:
            out.add(k)
        else:
            nxt = graph.successors(k) if forward else graph.predecessors(k)
            out.update(int(n) for n in nxt if lanes.junction_id[n] < 0)
    return np.array(sorted(out), dtype=np.int64)


def looks_signalised(
    lanes: LaneSet,
    incoming: NDArray[np.int64],
    incoming_arm: NDArray[np.int64],
    arms: int,
    outgoing: NDArray[np.int64] | None = None,
) -> bool:
    """Heuristic for towns without signals: a real crossing of busy roads gets traffic lights.

    True when two approaches cross at 45-135 deg (so motorway merges and bends never qualify),
    the junction is not on a roundabout ring (an entering and a leaving lane both curve the same
    way tighter than ``RING_MAX_RADIUS_M``), and it has >= 4 arms, or 3 arms with an approach of >= 2 lanes.
    """
    if incoming.size < 2 or arms < 3:
        return False
    if outgoing is not None and _ring_turns(lanes, incoming) & _ring_turns(lanes, outgoing):
        return False
    yaw = lane_end_yaw(lanes, incoming)
    diff = np.abs(wrap_angle(yaw[:, None] - yaw[None, :]))
    crossing = bool(np.any((diff > CROSSING_MIN_RAD) & (diff < np.pi - CROSSING_MIN_RAD)))
    if not crossing:
        return False
    if arms >= 4:
        return True
    return int(np.bincount(incoming_arm).max()) >= SIGNAL_MIN_LANES_PER_DIRECTION


def light_connector_roads(cmap: Any) -> set[int]:
    """Road ids that carry a traffic-light landmark in the OpenDRIVE (empty: the town has none)."""
    return {int(lm.road_id) for lm in cmap.get_all_landmarks() if lm.type == TRAFFIC_LIGHT_TYPE}


def _polygon(parts: list[Any]) -> Polygon:
    geoms = [p for p in parts if p is not None and not p.is_empty]
    if not geoms:
        return Polygon()
    union = shapely.union_all(geoms)
    if isinstance(union, Polygon):
        return union
    hull = union.convex_hull
    return hull if isinstance(hull, Polygon) else Polygon()


def build_junctions(
    cmap: Any, lanes: LaneSet, graph: LaneGraph, area: DrivableArea
) -> tuple[Junction, ...]:
    """All junctions of a town, sorted by id (see :class:`Junction` and the module docstring)."""
    light_roads = light_connector_roads(cmap)
    jid_all = np.asarray(lanes.junction_id)
    out: list[Junction] = []
    for jid in np.unique(jid_all[jid_all >= 0]).tolist():
        connectors = np.flatnonzero(jid_all == jid)
        incoming = sorted(
            {p for c in connectors.tolist() for p in graph.predecessors(c) if jid_all[p] != jid}
        )
        outgoing = sorted(
            {s for c in connectors.tolist() for s in graph.successors(c) if jid_all[s] != jid}
        )
        incoming_arr = np.asarray(incoming, dtype=np.int64)
        outward = np.concatenate(
            [
                lane_end_yaw(lanes, incoming_arr) + np.pi,
                lane_start_yaw(lanes, np.asarray(outgoing, dtype=np.int64)),
            ]
        )
        labels = arm_labels(outward)
        arms = int(labels.max()) + 1 if labels.size else 0
        incoming_arm = labels[: incoming_arr.size]
        if light_roads:
            signalised = bool(set(lanes.road_id[connectors].tolist()) & light_roads)
        else:
            signalised = looks_signalised(
                lanes, incoming_arr, incoming_arm, arms, _past_stubs(lanes, graph, outgoing, True)
            )
        poly = _polygon([area.lane_polygons[c] for c in connectors.tolist()])
        if poly.is_empty:
            center = np.asarray(lanes.xy[lanes.start[connectors]], dtype=np.float64).mean(axis=0)
        else:
            center = np.array(poly.centroid.coords[0], dtype=np.float64)
        out.append(
            Junction(
                id=int(jid),
                polygon=poly,
                center_xy=center,
                connector_lanes=tuple(int(c) for c in connectors),
                incoming_lanes=tuple(int(i) for i in incoming),
                incoming_arm=tuple(int(a) for a in incoming_arm),
                arms=arms,
                kind=junction_kind(arms),
                signalised=signalised,
            )
        )
    log.debug("built %d junctions (%d signalised)", len(out), sum(j.signalised for j in out))
    return tuple(out)
