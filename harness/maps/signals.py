"""Traffic lights and stop signs with their stop lines, read from OpenDRIVE or synthesised.

Real signals come from ``carla.Map.get_all_landmarks()`` (type '1000001' light, '206' stop sign).
CARLA towns reference one physical light from every junction connector it controls, so all
landmarks sharing an OpenDRIVE signal id are merged into one light whose controlled lanes are the
union of those connectors. Each connector's entry is the end of an incoming lane (its predecessor
outside the junction); the stop line lies across that incoming lane at its end, one per
(light, incoming lane). A landmark on an ordinary road instead puts its stop line at its own s.

Towns whose OpenDRIVE has no traffic light at all get one light per approach (arm) at each junction
that ``harness.maps.junctions`` judged signalised, stop lines at the junction entry, flagged
``synthesised``. Phases follow CARLA's default group behaviour: the lights of a junction turn
green one at a time (no shared phases, so no unprotected turns), in the clockwise order of their
approaches around the junction centre, each green, yellow then red for the times below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon

from harness.maps.area import DrivableArea
from harness.maps.graph import LaneGraph
from harness.maps.junctions import STOP_SIGN_TYPE, TRAFFIC_LIGHT_TYPE, Junction
from harness.maps.lanes import LaneSet

log = logging.getLogger(__name__)

GREEN_TIME_S = 10.0  # CARLA default traffic-light green time [s]
YELLOW_TIME_S = 3.0  # CARLA default yellow time [s]
RED_TIME_S = 2.0  # CARLA default all-red clearance at the end of a light's turn [s]
STOP_AREA_LENGTH_M = 5.0  # length of the lane strip before a stop line that is its stop area [m]
STOP_AREA_SAMPLES = 6  # centerline samples along a stop area (1 m apart for 5 m) [-]
LIGHT_CURB_OFFSET_M = 1.0  # synthesised light pole distance right of the rightmost lane edge [m]
MAX_LANES_PER_SIDE = 8  # lane ids probed for a landmark whose validity says "all lanes" [-]
STOP_LIGHT, STOP_SIGN = 0, 1  # values of SignalSet.stop_kind


def _right_normal(yaw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit vectors to the driver's right in CARLA's left-handed frame, (..., 2)."""
    return np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1)


@dataclass(frozen=True)
class SignalSet:
    """All traffic lights (T), stop lines (S) and stop signs (G) of a town, CARLA world frame.

    Lights: ``light_id`` (T,) OpenDRIVE signal id (``synth-<junction>-<arm>`` when synthesised);
    ``light_junction`` (T,) junction id or -1; ``light_xy`` (T, 2) [m] pole position;
    ``light_yaw`` (T,) [rad] heading of the traffic it controls; ``light_synthesised`` (T,);
    ``light_lanes`` (T, C) controlled connector lanes (LaneSet indices, -1 padded) with
    ``light_lanes_valid`` (T, C); ``light_phase`` (T,) the light's turn in its junction's cycle.
    Stop lines: ``stop_owner`` (S,) index into lights or signs per ``stop_kind`` (S,) (0 light,
    1 stop sign); ``stop_lane`` (S,) incoming LaneSet lane; ``stop_s_m`` (S,) [m] along it;
    ``stop_a``/``stop_b`` (S, 2) [m] the line's left/right ends across the lane;
    ``stop_area_xy`` (S, 2K, 2) [m] ring of the stop area (see :meth:`stop_area`).
    Signs: ``sign_id`` (G,), ``sign_junction`` (G,), ``sign_xy`` (G, 2), ``sign_yaw`` (G,).
    ``groups``: junction id -> light indices in phase order. ``synthesised``: lights were made up.
    """

    light_id: NDArray[np.str_]
    light_junction: NDArray[np.int64]
    light_xy: NDArray[np.float64]
    light_yaw: NDArray[np.float64]
    light_synthesised: NDArray[np.bool_]
    light_lanes: NDArray[np.int64]
    light_lanes_valid: NDArray[np.bool_]
    light_phase: NDArray[np.int64]
    stop_owner: NDArray[np.int64]
    stop_kind: NDArray[np.int64]
    stop_lane: NDArray[np.int64]
    stop_s_m: NDArray[np.float64]
    stop_a: NDArray[np.float64]
    stop_b: NDArray[np.float64]
    stop_area_xy: NDArray[np.float64]
    sign_id: NDArray[np.str_]
    sign_junction: NDArray[np.int64]
    sign_xy: NDArray[np.float64]
    sign_yaw: NDArray[np.float64]
    groups: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    synthesised: bool = False

    def __post_init__(self) -> None:
        t, s, g = self.light_id.shape[0], self.stop_lane.shape[0], self.sign_id.shape[0]
        checks = {
            "light_junction": (self.light_junction, (t,)),
            "light_xy": (self.light_xy, (t, 2)),
            "light_yaw": (self.light_yaw, (t,)),
            "light_synthesised": (self.light_synthesised, (t,)),
            "light_lanes_valid": (self.light_lanes_valid, self.light_lanes.shape),
            "light_phase": (self.light_phase, (t,)),
            "stop_owner": (self.stop_owner, (s,)),
            "stop_kind": (self.stop_kind, (s,)),
            "stop_s_m": (self.stop_s_m, (s,)),
            "stop_a": (self.stop_a, (s, 2)),
            "stop_b": (self.stop_b, (s, 2)),
            "sign_junction": (self.sign_junction, (g,)),
            "sign_xy": (self.sign_xy, (g, 2)),
            "sign_yaw": (self.sign_yaw, (g,)),
        }
        for name, (arr, shape) in checks.items():
            if arr.shape != shape:
                raise ValueError(f"SignalSet.{name} has shape {arr.shape}, expected {shape}")
        if self.light_lanes.shape[0] != t or self.stop_area_xy.shape[0] != s:
            raise ValueError(
                "SignalSet light_lanes / stop_area_xy do not match the light/stop count"
            )

    @property
    def lights_count(self) -> int:
        """Number of traffic lights T."""
        return int(self.light_id.shape[0])

    @property
    def stop_signs_count(self) -> int:
        """Number of stop signs G."""
        return int(self.sign_id.shape[0])

    @property
    def stops_count(self) -> int:
        """Number of stop lines S (lights and signs)."""
        return int(self.stop_lane.shape[0])

    def light_stops(self, light: int) -> NDArray[np.int64]:
        """Indices of the stop lines belonging to traffic light ``light``."""
        return np.flatnonzero((self.stop_kind == STOP_LIGHT) & (self.stop_owner == light))

    def controlled_lanes(self, light: int) -> NDArray[np.int64]:
        """Connector lanes controlled by traffic light ``light``."""
        return self.light_lanes[light][self.light_lanes_valid[light]]

    def stop_area(self, i: int) -> Polygon:
        """The stop area of stop line ``i``: the strip of its incoming lane (stop-line width) from
        ``STOP_AREA_LENGTH_M`` before the line up to the line, continued into the preceding lane
        when the incoming lane is shorter. A vehicle waiting at the line stands in it."""
        return Polygon(self.stop_area_xy[i])


# --------------------------------------------------------------------------------------------
# building


@dataclass
class _Light:
    key: str
    xy: NDArray[np.float64]
    synthesised: bool
    connectors: set[int] = field(default_factory=set)
    stops: dict[int, float] = field(default_factory=dict)  # incoming lane -> stop s [m]


def _lane_of_waypoint(lanes: LaneSet, wp: Any) -> int:
    """LaneSet index of a carla.Waypoint: by (road, section, lane), else by projection (< 1 m)."""
    try:
        k = int(lanes.index(int(wp.road_id), int(wp.section_id), int(wp.lane_id)))
    except (KeyError, ValueError, IndexError):
        k = -1
    if k >= 0:
        return k
    loc, yaw = wp.transform.location, np.radians(wp.transform.rotation.yaw)
    proj = lanes.project(np.array([[loc.x, loc.y]]), np.array([yaw]))
    if float(np.asarray(proj.distance_m)[0]) < 1.0:
        return int(np.asarray(proj.lane)[0])
    return -1


def _landmark_waypoints(cmap: Any, lm: Any) -> list[Any]:
    """Driving-lane waypoints a landmark applies to: its validity lanes, or every lane on its
    orientation's side when the validity is only lane 0 (OpenDRIVE's "whole road")."""
    import carla  # local import: the maps layer loads the CARLA wheel only when building a town

    lane_ids = {lid for lo, hi in lm.get_lane_validities() for lid in range(lo, hi + 1) if lid != 0}
    if not lane_ids:
        side = {
            carla.LandmarkOrientation.Positive: (-1,),
            carla.LandmarkOrientation.Negative: (1,),
        }.get(lm.orientation, (-1, 1))
        lane_ids = {sign * k for sign in side for k in range(1, MAX_LANES_PER_SIDE + 1)}
    wps = []
    for lid in sorted(lane_ids):
        wp = cmap.get_waypoint_xodr(int(lm.road_id), lid, float(lm.s))
        if wp is not None and wp.lane_type == carla.LaneType.Driving:
            wps.append(wp)
    return wps


def _s_on_lane(lanes: LaneSet, lane: int, xy: NDArray[np.float64]) -> float:
    """Arc length [m] of the centerline point of ``lane`` nearest to ``xy``."""
    a, n = int(lanes.start[lane]), int(lanes.count[lane])
    d = np.linalg.norm(lanes.xy[a : a + n] - xy, axis=-1)
    return float(np.argmin(d) / max(n - 1, 1) * lanes.length_m[lane])


def _attach(
    light: _Light, lanes: LaneSet, graph: LaneGraph, lane: int, wp_xy: NDArray[np.float64]
) -> None:
    """Record what one landmark lane contributes: its connector and stop line(s)."""
    jid = lanes.junction_id
    if jid[lane] >= 0:
        light.connectors.add(lane)
        for p in graph.predecessors(lane):
            if jid[p] != jid[lane]:
                light.stops[int(p)] = float(lanes.length_m[p])
    else:
        light.stops[lane] = _s_on_lane(lanes, lane, wp_xy)
        light.connectors.update(int(c) for c in graph.successors(lane) if jid[c] >= 0)


def _real_signals(cmap: Any, lanes: LaneSet, graph: LaneGraph, kind: str) -> list[_Light]:
    """Lights (or stop signs) from the landmarks of one OpenDRIVE type, merged by signal id."""
    found: dict[str, _Light] = {}
    for lm in cmap.get_all_landmarks():
        if lm.type != kind:
            continue
        loc = lm.transform.location
        rec = found.setdefault(
            str(lm.id), _Light(str(lm.id), np.array([loc.x, loc.y]), synthesised=False)
        )
        for wp in _landmark_waypoints(cmap, lm):
            lane = _lane_of_waypoint(lanes, wp)
            if lane >= 0:
                wl = wp.transform.location
                _attach(rec, lanes, graph, lane, np.array([wl.x, wl.y]))
    return [rec for _, rec in sorted(found.items()) if rec.stops]


def _synthesised_lights(
    lanes: LaneSet, graph: LaneGraph, junctions: tuple[Junction, ...]
) -> list[_Light]:
    """One light per arm (approach) at each signalised junction, stop lines at the entry."""
    out: list[_Light] = []
    for j in junctions:
        if not j.signalised:
            continue
        incoming = np.asarray(j.incoming_lanes, dtype=np.int64)
        arm_of = np.asarray(j.incoming_arm, dtype=np.int64)
        connectors = set(j.connector_lanes)
        for arm in np.unique(arm_of).tolist():
            mine = incoming[arm_of == arm]
            stop_s = lanes.length_m[mine]
            xy, yaw = lanes.position(mine, stop_s)
            xy, yaw = np.asarray(xy, dtype=np.float64), np.asarray(yaw, dtype=np.float64)
            width = lanes.width_m[lanes.start[mine] + lanes.count[mine] - 1]
            normal = _right_normal(yaw)
            right_ends = xy + (0.5 * width)[:, None] * normal
            outer = int(np.argmax(np.einsum("ij,ij->i", right_ends - xy.mean(0), normal)))
            pole = right_ends[outer] + LIGHT_CURB_OFFSET_M * normal[outer]
            rec = _Light(f"synth-{j.id}-{arm}", pole, synthesised=True)
            rec.stops = {int(k): float(s) for k, s in zip(mine, stop_s, strict=True)}
            rec.connectors = {
                int(c) for k in mine for c in graph.successors(int(k)) if c in connectors
            }
            out.append(rec)
    return out


def _stop_area_pieces(
    lanes: LaneSet, graph: LaneGraph, lane: int, stop_s: float
) -> list[tuple[int, float, float]]:
    """(lane, s_from, s_to) pieces covering ``STOP_AREA_LENGTH_M`` before a stop line, walking
    back into the first non-junction predecessor when the incoming lane is shorter than that."""
    pieces = [(lane, max(stop_s - STOP_AREA_LENGTH_M, 0.0), stop_s)]
    left = STOP_AREA_LENGTH_M - stop_s
    seen = {lane}
    while left > 0.0:
        preds = sorted(p for p in graph.predecessors(pieces[-1][0]) if lanes.junction_id[p] < 0)
        preds = [p for p in preds if p not in seen]
        if not preds:
            break
        p = preds[0]
        seen.add(p)
        length = float(lanes.length_m[p])
        pieces.append((p, max(length - left, 0.0), length))
        left -= length
    return pieces[::-1]


def _stop_geometry(
    lanes: LaneSet,
    graph: LaneGraph,
    stop_lane: NDArray[np.int64],
    stop_s: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Stop-line ends (S, 2) x 2, lane heading at the line (S,), stop-area rings (S, 2K, 2)."""
    s_count, k = stop_lane.shape[0], STOP_AREA_SAMPLES
    if s_count == 0:
        z = np.zeros((0, 2))
        return z, z, np.zeros(0), np.zeros((0, 2 * k, 2))
    xy, yaw = lanes.position(stop_lane, stop_s)
    xy, yaw = np.asarray(xy, dtype=np.float64), np.asarray(yaw, dtype=np.float64)
    last = lanes.start[stop_lane] + lanes.count[stop_lane] - 1
    frac = np.clip(stop_s / np.maximum(lanes.length_m[stop_lane], 1e-9), 0.0, 1.0)
    point = lanes.start[stop_lane] + np.round(frac * (last - lanes.start[stop_lane])).astype(int)
    half = 0.5 * np.asarray(lanes.width_m[point], dtype=np.float64)
    normal = _right_normal(yaw)
    a, b = xy - half[:, None] * normal, xy + half[:, None] * normal
    # stop-area centerline samples: K points spread over the pieces in proportion to distance
    sample_lane = np.empty((s_count, k), dtype=np.int64)
    sample_s = np.empty((s_count, k), dtype=np.float64)
    for i in range(s_count):
        pieces = _stop_area_pieces(lanes, graph, int(stop_lane[i]), float(stop_s[i]))
        spans = np.array([hi - lo for _, lo, hi in pieces])
        ends = np.cumsum(spans)
        d = np.linspace(0.0, max(float(ends[-1]), 1e-6), k)
        which = np.minimum(np.searchsorted(ends, d, side="left"), len(pieces) - 1)
        lo = np.array([p[1] for p in pieces])[which]
        sample_lane[i] = np.array([p[0] for p in pieces])[which]
        sample_s[i] = lo + d - (ends - spans)[which]
    cxy, cyaw = lanes.position(sample_lane.reshape(-1), sample_s.reshape(-1))
    cxy = np.asarray(cxy, dtype=np.float64).reshape(s_count, k, 2)
    cn = _right_normal(np.asarray(cyaw, dtype=np.float64)).reshape(s_count, k, 2)
    left = cxy - half[:, None, None] * cn
    right = cxy + half[:, None, None] * cn
    ring = np.concatenate([left, right[:, ::-1]], axis=1)
    return a, b, yaw, ring


def _junction_of(lanes: LaneSet, lanes_idx: list[int]) -> int:
    ids = lanes.junction_id[np.asarray(lanes_idx, dtype=np.int64)] if lanes_idx else np.zeros(0)
    ids = ids[ids >= 0]
    if ids.size == 0:
        return -1
    vals, counts = np.unique(ids, return_counts=True)
    return int(vals[np.argmax(counts)])


def _groups(
    light_junction: NDArray[np.int64],
    light_stop_xy: NDArray[np.float64],
    centers: dict[int, NDArray[np.float64]],
) -> tuple[dict[int, tuple[int, ...]], NDArray[np.int64]]:
    """Junction -> lights ordered clockwise (increasing atan2 in CARLA's frame) around the centre."""
    groups: dict[int, tuple[int, ...]] = {}
    phase = np.zeros(light_junction.shape[0], dtype=np.int64)
    for jid in np.unique(light_junction[light_junction >= 0]).tolist():
        members = np.flatnonzero(light_junction == jid)
        rel = light_stop_xy[members] - centers.get(jid, light_stop_xy[members].mean(0))
        order = members[np.lexsort((members, np.arctan2(rel[:, 1], rel[:, 0])))]
        groups[int(jid)] = tuple(int(i) for i in order)
        phase[order] = np.arange(order.size)
    return groups, phase


def build_signals(
    cmap: Any,
    lanes: LaneSet,
    graph: LaneGraph,
    junctions: tuple[Junction, ...],
    area: DrivableArea | None = None,
) -> SignalSet:
    """The town's signals (module docstring): real landmarks, else synthesised lights."""
    del area  # the stop geometry comes from the lane centerlines and widths
    lights = _real_signals(cmap, lanes, graph, TRAFFIC_LIGHT_TYPE)
    signs = _real_signals(cmap, lanes, graph, STOP_SIGN_TYPE)
    synthesised = not lights
    if synthesised:
        lights = _synthesised_lights(lanes, graph, junctions)
        log.info("town has no traffic lights in its OpenDRIVE; synthesised %d", len(lights))

    stops = [
        (owner, kind, lane, s)
        for kind, recs in ((STOP_LIGHT, lights), (STOP_SIGN, signs))
        for owner, rec in enumerate(recs)
        for lane, s in sorted(rec.stops.items())
    ]
    stop_owner = np.array([x[0] for x in stops], dtype=np.int64)
    stop_kind = np.array([x[1] for x in stops], dtype=np.int64)
    stop_lane = np.array([x[2] for x in stops], dtype=np.int64)
    stop_s = np.array([x[3] for x in stops], dtype=np.float64)
    stop_a, stop_b, stop_yaw, rings = _stop_geometry(lanes, graph, stop_lane, stop_s)
    stop_mid = 0.5 * (stop_a + stop_b)

    def per_owner(kind: int, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean stop-line midpoint (n, 2) and circular-mean heading (n,) of each owner."""
        sel = stop_kind == kind
        own = stop_owner[sel]
        cnt = np.maximum(np.bincount(own, minlength=n), 1)[:, None]
        mid = np.stack([np.bincount(own, stop_mid[sel, d], minlength=n) for d in (0, 1)], -1) / cnt
        c = np.bincount(own, np.cos(stop_yaw[sel]), minlength=n)
        s = np.bincount(own, np.sin(stop_yaw[sel]), minlength=n)
        return mid, np.arctan2(s, c)

    t, g = len(lights), len(signs)
    light_mid, light_yaw = per_owner(STOP_LIGHT, t)
    _, sign_yaw = per_owner(STOP_SIGN, g)
    light_junction = np.array(
        [_junction_of(lanes, sorted(r.connectors)) for r in lights], dtype=np.int64
    )
    width = max((len(r.connectors) for r in lights), default=0)
    light_lanes = np.full((t, width), -1, dtype=np.int64)
    for i, r in enumerate(lights):
        light_lanes[i, : len(r.connectors)] = sorted(r.connectors)
    centers = {j.id: j.center_xy for j in junctions}
    groups, phase = _groups(light_junction, light_mid.reshape(t, 2), centers)
    return SignalSet(
        light_id=np.array([r.key for r in lights], dtype=np.str_),
        light_junction=light_junction,
        light_xy=np.array([r.xy for r in lights], dtype=np.float64).reshape(t, 2),
        light_yaw=light_yaw,
        light_synthesised=np.array([r.synthesised for r in lights], dtype=bool),
        light_lanes=light_lanes,
        light_lanes_valid=light_lanes >= 0,
        light_phase=phase,
        stop_owner=stop_owner,
        stop_kind=stop_kind,
        stop_lane=stop_lane,
        stop_s_m=stop_s,
        stop_a=stop_a,
        stop_b=stop_b,
        stop_area_xy=rings,
        sign_id=np.array([r.key for r in signs], dtype=np.str_),
        sign_junction=np.array(
            [_junction_of(lanes, sorted(r.connectors)) for r in signs], dtype=np.int64
        ),
        sign_xy=np.array([r.xy for r in signs], dtype=np.float64).reshape(g, 2),
        sign_yaw=sign_yaw,
        groups=groups,
        synthesised=synthesised,
    )
