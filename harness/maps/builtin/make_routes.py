"""Generate ``scenarios/routes/harness01_routes.xml``: Leaderboard 2.0 routes through Harness01.

Each route is a start point on a street (layout metres), its heading and the turns to take at the
junctions met ('L', 'R', 'S'). The route is walked on the town's lane graph (changing lane before
a junction when the current lane cannot make the turn) and written as keypoints every ~50 m plus
just before and after every junction; scenario triggers sit exactly on a keypoint. Deterministic.
Run as ``python -m harness.maps.builtin.make_routes [OUT.xml]``.
"""

from __future__ import annotations

import logging
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from harness.errors import RoutePlanningError
from harness.geometry import wrap_angle
from harness.io import atomic_write_text
from harness.maps.builtin.harness01 import NAME
from harness.maps.builtin.osm import layout_to_world
from harness.maps.town import Town
from harness.maps.towns import load_town

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "scenarios" / "routes" / "harness01_routes.xml"
STEP_M = 1.0  # dense route sampling [m]
KEYPOINT_SPACING_M = 50.0  # regular keypoint spacing [m]
JUNCTION_MARGIN_M = 5.0  # keypoints this far before / after each junction [m]
KEYPOINT_MIN_GAP_M = 15.0  # regular keypoints closer than this to a mandatory one are dropped [m]
END_BEFORE_JUNCTION_M = 15.0  # a route's tail stops at least this far before the next junction [m]
LANE_CHANGE_BACK_M = 25.0  # lane changes happen this far before the junction entry [m]
STRAIGHT_MAX_RAD = np.radians(30.0)  # connectors turning less than this go straight [rad]
UTURN_MIN_RAD = np.radians(120.0)  # connectors turning more than this are U-turns [rad]
TURN_TARGET_RAD = {"S": 0.0, "R": np.pi / 2, "L": -np.pi / 2, "U": -np.pi}  # ideal turn [rad]
TRIGGER_BEFORE_JUNCTION_M = 20.0  # junction scenarios trigger this far before the entry [m]

# CARLA world headings of the layout directions (layout y is north = CARLA -y)
EAST, WEST, NORTH, SOUTH = 0.0, 180.0, -90.0, 90.0  # [deg]

WEATHERS: tuple[tuple[dict[str, float], dict[str, float]], ...] = (
    (  # clear noon to afternoon
        dict(
            cloudiness=5.0,
            precipitation=0.0,
            precipitation_deposits=0.0,
            wetness=0.0,
            wind_intensity=10.0,
            sun_azimuth_angle=-1.0,
            sun_altitude_angle=90.0,
            fog_density=2.0,
        ),
        dict(
            cloudiness=5.0,
            precipitation=0.0,
            precipitation_deposits=0.0,
            wetness=0.0,
            wind_intensity=10.0,
            sun_azimuth_angle=-1.0,
            sun_altitude_angle=45.0,
            fog_density=2.0,
        ),
    ),
    (  # overcast, drizzle setting in
        dict(
            cloudiness=60.0,
            precipitation=0.0,
            precipitation_deposits=10.0,
            wetness=10.0,
            wind_intensity=20.0,
            sun_azimuth_angle=90.0,
            sun_altitude_angle=30.0,
            fog_density=5.0,
        ),
        dict(
            cloudiness=80.0,
            precipitation=20.0,
            precipitation_deposits=30.0,
            wetness=40.0,
            wind_intensity=30.0,
            sun_azimuth_angle=90.0,
            sun_altitude_angle=20.0,
            fog_density=10.0,
        ),
    ),
    (  # clear sunset
        dict(
            cloudiness=10.0,
            precipitation=0.0,
            precipitation_deposits=0.0,
            wetness=0.0,
            wind_intensity=5.0,
            sun_azimuth_angle=270.0,
            sun_altitude_angle=15.0,
            fog_density=3.0,
        ),
        dict(
            cloudiness=10.0,
            precipitation=0.0,
            precipitation_deposits=0.0,
            wetness=0.0,
            wind_intensity=5.0,
            sun_azimuth_angle=270.0,
            sun_altitude_angle=5.0,
            fog_density=3.0,
        ),
    ),
)


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario placed on a route: trigger ``before_junction`` (0-based index of the junction
    on the route) by TRIGGER_BEFORE_JUNCTION_M, or ``at_m`` metres from the start."""

    type: str
    params: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    before_junction: int = -1
    at_m: float = 0.0


@dataclass(frozen=True)
class RouteSpec:
    """Start (layout metres, x east / y north), heading [deg, CARLA frame], turns, tail [m]."""

    start: tuple[float, float]
    heading_deg: float
    turns: str
    tail_m: float
    scenarios: tuple[ScenarioSpec, ...] = ()


def _flow(speed: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return (
        ("flow_speed", (("value", speed),)),
        ("source_dist_interval", (("from", "25"), ("to", "50"))),
    )


PARKED = (
    ("distance", (("value", "40"),)),
    ("direction", (("value", "right"),)),
    ("speed", (("value", "40"),)),
)

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec((20.0, 0.0), EAST, "SLSR", 60.0),
    RouteSpec(
        (0.0, 190.0),
        SOUTH,
        "LSL",
        70.0,
        (ScenarioSpec("SignalizedJunctionLeftTurn", _flow("10"), before_junction=2),),
    ),
    RouteSpec(
        (130.0, 30.0),
        NORTH,
        "SLL",
        60.0,
        (ScenarioSpec("NonSignalizedJunctionLeftTurn", _flow("8"), before_junction=1),),
    ),
    RouteSpec(
        (370.0, 110.0), WEST, "SRSR", 70.0, (ScenarioSpec("ParkedObstacle", PARKED, at_m=170.0),)
    ),
    RouteSpec((390.0, 300.0), SOUTH, "SRSS", 60.0),
    RouteSpec(
        (20.0, 220.0),
        EAST,
        "SRSR",
        80.0,
        (ScenarioSpec("SignalizedJunctionRightTurn", _flow("10"), before_junction=1),),
    ),
    RouteSpec((370.0, 330.0), WEST, "LSLL", 70.0),
    RouteSpec(
        (370.0, 0.0), WEST, "SSR", 80.0, (ScenarioSpec("ParkedObstacle", PARKED, at_m=60.0),)
    ),
)


def turn_angle(town: Town, lane: int) -> float:
    """Total heading change [rad] along a lane (CARLA frame: positive turns right)."""
    a, n = int(town.lanes.start[lane]), int(town.lanes.count[lane])
    return float(np.sum(wrap_angle(np.diff(town.lanes.yaw_rad[a : a + n]))))


def turn_class(town: Town, connector: int) -> str:
    """'L', 'R', 'S' or 'U' (U-turn) for a junction connector lane from its heading change (CARLA
    frame: a positive yaw change turns clockwise seen from above, i.e. right)."""
    turn = turn_angle(town, connector)
    if abs(turn) < STRAIGHT_MAX_RAD:
        return "S"
    if abs(turn) > UTURN_MIN_RAD:
        return "U"
    return "R" if turn > 0 else "L"


def _neighbours(town: Town, lane: int) -> list[int]:
    """Same-direction lanes reachable by lane changes, nearest first (left before right)."""
    out: list[int] = []
    for arr in (town.graph.left, town.graph.right):
        k = int(arr[lane])
        while k >= 0 and k not in out:
            out.append(k)
            k = int(arr[k])
    return sorted(
        out, key=lambda k: abs(int(town.lanes.lane_id[k]) - int(town.lanes.lane_id[lane]))
    )


def walk(town: Town, spec: RouteSpec, route_id: int) -> list[tuple[int, float, float]]:
    """(lane, s_from, s_to) pieces of the route; RoutePlanningError when a turn is impossible."""
    lanes, graph = town.lanes, town.graph
    xy = layout_to_world(np.array([spec.start]), town.xodr)
    proj = lanes.project(xy, np.radians([spec.heading_deg]))
    lane, s0 = int(proj.lane[0]), float(proj.s_m[0])
    pieces: list[tuple[int, float, float]] = []
    turns = list(spec.turns)
    while True:
        succ = sorted(graph.successors(lane))
        in_junction = [c for c in succ if lanes.junction_id[c] >= 0]
        if not turns and in_junction:  # tail: stop before the next junction
            end = max(s0, float(lanes.length_m[lane]) - END_BEFORE_JUNCTION_M)
            pieces.append((lane, s0, min(end, s0 + spec.tail_m)))
            return pieces
        if not in_junction:
            if not turns and float(lanes.length_m[lane]) - s0 >= spec.tail_m:
                pieces.append((lane, s0, s0 + spec.tail_m))
                return pieces
            if not succ:
                raise RoutePlanningError(f"route {route_id}: dead end on lane {lane}")
            pieces.append((lane, s0, float(lanes.length_m[lane])))
            lane, s0 = succ[0], 0.0
            continue
        want = turns.pop(0)
        options = [c for c in in_junction if turn_class(town, c) == want]
        if not options:
            for k in _neighbours(town, lane):
                alt = [c for c in sorted(graph.successors(k)) if lanes.junction_id[c] >= 0]
                options = [c for c in alt if turn_class(town, c) == want]
                if options:
                    change = max(s0, float(lanes.length_m[lane]) - LANE_CHANGE_BACK_M)
                    pieces.append((lane, s0, change))
                    lane, s0 = k, min(change, float(lanes.length_m[k]))
                    break
        if not options:
            raise RoutePlanningError(f"route {route_id}: no '{want}' turn from lane {lane}")
        pieces.append((lane, s0, float(lanes.length_m[lane])))
        connector = min(options, key=lambda c: abs(turn_angle(town, c) - TURN_TARGET_RAD[want]))
        pieces.append((connector, 0.0, float(lanes.length_m[connector])))
        nxt = sorted(graph.successors(connector))
        if not nxt:
            raise RoutePlanningError(f"route {route_id}: junction exit without a lane")
        lane, s0 = nxt[0], 0.0


@dataclass(frozen=True)
class DensePath:
    """Route sampled every ~1 m: xy (N, 2), z (N,), yaw_rad (N,), dist_m (N,) along the route,
    junction (N,) id or -1."""

    xy: NDArray[np.float64]
    z: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]
    dist_m: NDArray[np.float64]
    junction: NDArray[np.int64]


def densify(town: Town, pieces: list[tuple[int, float, float]]) -> DensePath:
    """Sample the pieces at about STEP_M, keeping each piece's end."""
    lanes = town.lanes
    lane_list, s_list = [], []
    for lane, a, b in pieces:
        n = max(2, int(np.ceil((b - a) / STEP_M)) + 1)
        lane_list.append(np.full(n, lane))
        s_list.append(np.linspace(a, b, n))
    lane_arr, s_arr = np.concatenate(lane_list), np.concatenate(s_list)
    xy, yaw = lanes.position(lane_arr, s_arr)
    xy = np.asarray(xy, dtype=np.float64)
    # z from the nearest centerline sample of the lane
    frac = np.clip(s_arr / np.maximum(lanes.length_m[lane_arr], 1e-9), 0.0, 1.0)
    point = lanes.start[lane_arr] + np.round(frac * (lanes.count[lane_arr] - 1)).astype(np.int64)
    step = np.concatenate([[0.0], np.hypot(*np.diff(xy, axis=0).T)])
    return DensePath(
        xy=xy,
        z=np.asarray(lanes.z_m[point], dtype=np.float64),
        yaw_rad=np.asarray(yaw, dtype=np.float64),
        dist_m=np.cumsum(step),
        junction=np.asarray(lanes.junction_id[lane_arr], dtype=np.int64),
    )


def junction_spans(path: DensePath) -> list[tuple[int, int]]:
    """(first, last) dense indices of each junction crossed, in route order."""
    inside = path.junction >= 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _at_dist(path: DensePath, d: float) -> int:
    return int(np.clip(np.searchsorted(path.dist_m, d), 0, path.dist_m.size - 1))


def keypoint_indices(path: DensePath, mandatory: list[int]) -> NDArray[np.int64]:
    """Start, end, points around junctions, ``mandatory`` ones, and regular ones every ~50 m."""
    keep = {0, path.dist_m.size - 1, *mandatory}
    for a, b in junction_spans(path):
        keep.add(_at_dist(path, max(path.dist_m[a] - JUNCTION_MARGIN_M, 0.0)))
        keep.add(_at_dist(path, path.dist_m[b] + JUNCTION_MARGIN_M))
    fixed = np.array(sorted(keep))
    regular = [
        _at_dist(path, d)
        for d in np.arange(KEYPOINT_SPACING_M, path.dist_m[-1], KEYPOINT_SPACING_M)
    ]
    extra = [
        i
        for i in regular
        if np.min(np.abs(path.dist_m[fixed] - path.dist_m[i])) >= KEYPOINT_MIN_GAP_M
        and path.junction[i] < 0
    ]
    return np.array(sorted(set(fixed.tolist()) | set(extra)), dtype=np.int64)


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def route_element(town: Town, spec: RouteSpec, route_id: int) -> ET.Element:
    """The <route> element of one route spec."""
    path = densify(town, walk(town, spec, route_id))
    spans = junction_spans(path)
    triggers: list[tuple[ScenarioSpec, int]] = []
    for sc in spec.scenarios:
        if sc.before_junction >= 0:
            entry = path.dist_m[spans[sc.before_junction][0]]
            triggers.append((sc, _at_dist(path, entry - TRIGGER_BEFORE_JUNCTION_M)))
        else:
            triggers.append((sc, _at_dist(path, sc.at_m)))
    keys = keypoint_indices(path, [i for _, i in triggers])
    route = ET.Element("route", id=str(route_id), town=town.name)
    weathers = ET.SubElement(route, "weathers")
    for pct, values in zip(("0", "100"), WEATHERS[route_id % len(WEATHERS)], strict=True):
        ET.SubElement(
            weathers,
            "weather",
            {"route_percentage": pct, **{k: f"{v:.1f}" for k, v in values.items()}},
        )
    wps = ET.SubElement(route, "waypoints")
    for i in keys.tolist():
        ET.SubElement(
            wps, "position", x=_fmt(path.xy[i, 0]), y=_fmt(path.xy[i, 1]), z=_fmt(path.z[i])
        )
    scen = ET.SubElement(route, "scenarios")
    for n, (sc, i) in enumerate(triggers, start=1):
        el = ET.SubElement(scen, "scenario", name=f"{sc.type}_{n}", type=sc.type)
        yaw_deg = round(float(np.degrees(path.yaw_rad[i])), 1) % 360.0  # [0, 360) as in CARLA files
        ET.SubElement(
            el,
            "trigger_point",
            x=_fmt(path.xy[i, 0]),
            y=_fmt(path.xy[i, 1]),
            z=_fmt(path.z[i]),
            yaw=f"{yaw_deg:.1f}",
        )
        for tag, attrs in sc.params:
            ET.SubElement(el, tag, dict(attrs))
    log.info(
        "route %d: %.0f m, %d keypoints, %d junctions",
        route_id,
        path.dist_m[-1],
        keys.size,
        len(spans),
    )
    return route


def routes_xml(town: Town, specs: tuple[RouteSpec, ...] = ROUTES) -> str:
    """The whole Leaderboard 2.0 route file as text."""
    root = ET.Element("routes")
    for rid, spec in enumerate(specs):
        root.append(route_element(town, spec, rid))
    ET.indent(root, space="   ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_atomic(text: str, out: Path) -> None:
    """Write ``text`` to ``out`` through a temporary file in the same folder and a rename."""
    atomic_write_text(out, text)


def main(argv: list[str] | None = None) -> None:
    """Regenerate the Harness01 route file (default ``scenarios/routes/harness01_routes.xml``)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else DEFAULT_OUT
    write_atomic(routes_xml(load_town(NAME)), out)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
