"""Scenario routes made to Bench2Drive's measure: for a scenario type and a town, find places on
the lane graph where the type fits, and write one short Leaderboard 2.0 route per place with the
trigger point and the type's parameters, as Bench2Drive's ``bench2drive220.xml`` builds them.

The rules are facts measured from ``bench2drive220.xml`` (220 routes, 5 per type; on Town01-06
the junction entry was found with our lane graph, elsewhere from the heading of the dense 2 m
waypoints): every route holds one scenario, the trigger sits a few metres after the route start,
and the route ends ~26-40 m past the scenario's junction or obstacle.

================================  ======  =====  ===============================================
types                             L [m]   trig   place (what the town must offer)
================================  ======  =====  ===============================================
obstacle in the ego lane:         100-    10-18  no junction from the route start to trigger +
Accident, ConstructionObstacle,   156            ``distance`` + 25 m; a same-direction lane on
ParkedObstacle, HazardAtSideLane                 the left to pass in
TwoWays: Accident-, Construction- 102-    10-14  as above, but the ego lane is the leftmost and
Obstacle-, ParkedObstacle-,       136            borders an opposite lane (passing against the
HazardAtSideLane-, VehicleOpens-                 oncoming ``frequency`` traffic); InvadingTurn
DoorTwoWays, InvadingTurn                        (100-114 m): oncoming cars cut the corner
road edge: DynamicObjectCrossing, 104-    0-14   the ego lane is the rightmost driving lane
ParkingCrossingPedestrian,        137            (walkers / parked cars at the edge); ParkingExit
ParkingCutIn, ParkingExit                        starts parked there (trigger 0)
neighbour lane: StaticCutIn,      96-139  0-14   a same-direction lane on the ``direction`` side
YieldToEmergencyVehicle,                         (StaticCutIn) / on either side; SequentialLane-
SequentialLaneChange                             Change 117-122 m, trigger 0
ControlLoss, HardBreakRoute       102-146 10-14  a junction-free stretch
turn at a junction: NonSignalized 62-88   0-11   trigger 21-27 m before the junction entry, a
JunctionLeft/RightTurn(EnterFlow)                left / right turn at a junction without / with
SignalizedJunctionLeft/RightTurn                 lights as the name says; OppositeVehicle-
(EnterFlow), BlockedIntersection,                RunningRedLight / -TakingPriority pick
OppositeVehicleRunningRedLight,                  ``direction`` among the approaches that exist;
OppositeVehicleTakingPriority,                   flow_speed / source_dist_interval per type as
VehicleTurningRoute(Pedestrian),                 in Bench2Drive (e.g. left turns 8-11 m/s)
PedestrianCrossing
Vanilla*Turn* (4 types)           49-62   4      trigger 5-9 m before the entry, a left or right
                                                 turn; Stopsign: a stop sign on the approach
T_Junction                        73-155  20-31  a left or right turn at a T junction 1-52 m past
                                                 the trigger
flows: EnterActorFlow, Merger-    75-222  0-8    start_actor_flow 40 m up another approach into
IntoSlowTraffic(V2), Interurban-                 the junction, end_actor_flow 20 m past it on the
AdvancedActorFlow, HighwayCutIn                  flow's exit: 'merge' joins the ego's exit road,
('merge'); InterurbanActorFlow                   'oncoming' comes straight from the opposite
('oncoming'); CrossingBicycle-                   approach, 'cross' from the side, 'parallel'
Flow ('cross', signalised);                      goes on along the ego's road while the ego
HighwayExit ('parallel')                         leaves it; highway types need a ramp (both
                                                 connectors shallow)
================================  ======  =====  ===============================================

Parameter values are drawn (seeded) from the ranges Bench2Drive's routes use (see ``RULES``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.errors import ConfigError
from harness.maps.town import Town
from harness.routes.check import check_route
from harness.routes.model import RouteConfig, ScenarioConfig, Weather
from harness.routes.places import (
    Manoeuvre,
    Piece,
    approaches,
    flow_partners,
    lane_pose,
    manoeuvres,
    pieces_length,
    pieces_points,
    stop_sign_lanes,
    walk_backward,
    walk_forward,
)

log = logging.getLogger(__name__)

KEYPOINT_STEP_M = 10.0  # [m] keypoint spacing of a made route (Bench2Drive writes every 2 m)
MIN_AFTER_M = 30.0  # [m] a junction route goes on this far past the junction (B2D: 31-40 m)
FLOW_UPSTREAM_M = 40.0  # [m] a flow starts this far before the junction on its approach
FLOW_DOWNSTREAM_M = 20.0  # [m] ... and ends this far past the junction on its exit
CUT_IN_UPSTREAM_M = 20.0  # [m] HighwayCutIn's car waits this far up the merging lane
MIN_FLOW_UPSTREAM_M = 15.0  # [m] approaches shorter than this give no flow start
ROAD_START_STEP_M = 15.0  # [m] candidate route starts along each lane
MIN_SEPARATION_M = 30.0  # [m] triggers of two routes of one type and town are at least this apart
END_CLEAR_M = (
    15.0  # [m] a route ends at least this far before the next junction (no red light there)
)
OBSTACLE_TAIL_M = (
    25.0  # [m] junction-free road past an obstacle (the ego passes it and merges back)
)
DEFAULT_WEATHER: dict[str, float] = {
    "cloudiness": 5.0,
    "precipitation": 0.0,
    "precipitation_deposits": 0.0,
    "wetness": 0.0,
    "wind_intensity": 10.0,
    "sun_azimuth_angle": -1.0,
    "sun_altitude_angle": 45.0,
    "fog_density": 2.0,
}
"""A clear day, written as two keyframes (0 % and 100 %) like every Bench2Drive route."""

NEEDS_TEXT = {
    "": "a junction-free stretch of road",
    "left": "a junction-free road with a same-direction lane on the ego's left",
    "right": "a junction-free road with a same-direction lane on the ego's right",
    "side": "a junction-free road with a same-direction lane beside the ego's",
    "opposite": "a junction-free two-way road (the ego's lane borders an opposite lane)",
    "edge": "a junction-free road whose right edge is the ego's lane",
}

ParamSpec = tuple[str, tuple[object, ...]]
"""(tag, values): two ints / floats -> a uniform value; strings -> a choice; two (lo, hi) pairs ->
an interval with 'from' drawn from the first and 'to' from the second."""


@dataclass(frozen=True)
class Rule:
    """Where one scenario type goes (see the module table).

    ``family`` 'road' | 'junction'; ``length_m`` / ``trigger_m`` Bench2Drive's route length and
    trigger arc length ranges [m]; road: ``needs`` (a ``NEEDS_TEXT`` key) and ``clear_m`` the
    junction-free stretch past the trigger besides the ``distance`` parameter [m]; junction:
    ``kinds``, ``signalised`` (None: either), ``stop_sign``, ``turns``, ``ahead_m`` trigger ->
    junction entry [m], ``flow`` ('' or a :func:`flow_partners` relation) written to ``flow_keys``,
    ``flow_up_m``; ``ramp``: the flow's and the ego's connectors are both shallow (straight or
    slight: a highway ramp, not a street corner); ``direction`` picks the ``direction``
    parameter among the junction's approaches.
    """

    family: str
    length_m: tuple[float, float]
    trigger_m: tuple[float, float]
    params: tuple[ParamSpec, ...] = ()
    needs: str = ""
    clear_m: float = 0.0
    kinds: tuple[str, ...] = ("T", "cross", "multi")
    signalised: bool | None = None
    stop_sign: bool = False
    turns: tuple[str, ...] = ("left", "right")
    ahead_m: tuple[float, float] = (21.0, 27.0)
    flow: str = ""
    flow_keys: tuple[str, str] = ("start_actor_flow", "end_actor_flow")
    flow_up_m: float = FLOW_UPSTREAM_M
    direction: tuple[str, ...] = ()
    ramp: bool = False

    def describe(self) -> str:
        """What a town must offer for this rule, in words (for the 'no place' message)."""
        if self.family == "road":
            return NEEDS_TEXT[self.needs]
        sig = {None: "", True: "signalised ", False: "unsignalised "}[self.signalised]
        what = f"a {sig}{'/'.join(self.kinds)} junction with a {' or '.join(self.turns)} manoeuvre"
        if self.stop_sign:
            what += " from an approach with a stop sign"
        if self.flow:
            what += f" and a '{self.flow}' flow lane through it"
        if self.ramp:
            what += " meeting the ego's at a shallow angle (a ramp)"
        if self.direction:
            what += f" and an approach from the {' or '.join(self.direction)}"
        return what + f", reachable by {self.ahead_m[1]:.0f} m of road before it"


def _road(length: tuple[float, float], trig: tuple[float, float], needs: str = "",
          clear: float = OBSTACLE_TAIL_M, *params: ParamSpec) -> Rule:  # fmt: skip
    return Rule("road", length, trig, params, needs=needs, clear_m=clear)


def _jn(length: tuple[float, float], trig: tuple[float, float], *params: ParamSpec,
        **kw: object) -> Rule:  # fmt: skip
    return Rule("junction", length, trig, params, **kw)  # type: ignore[arg-type]


SHALLOW = ("straight", "slight")  # manoeuvres that a ramp's connectors make
RIGHT: ParamSpec = ("direction", ("right",))


def _flow(
    speed: tuple[int, int], first: tuple[int, int], second: tuple[int, int]
) -> tuple[ParamSpec, ParamSpec]:
    """flow_speed [m/s] and source_dist_interval [m] ('from' in ``first``, 'to' in ``second``)."""
    return ("flow_speed", speed), ("source_dist_interval", (first, second))


TWO_WAY = (("frequency", ((31, 70), (90, 200))),)
VANILLA = dict(ahead_m=(5.0, 9.0))
RULES: dict[str, Rule] = {
    # road: obstacle in the ego lane, passed on a same-direction lane
    "Accident": _road((102, 134), (10, 14), "left", OBSTACLE_TAIL_M,
                      ("distance", (40, 44)), RIGHT, ("speed", (53, 57))),
    "ConstructionObstacle": _road((134, 146), (10, 14), "left", OBSTACLE_TAIL_M,
                                  ("distance", (40, 45)), RIGHT, ("speed", (47, 55))),
    "ParkedObstacle": _road((134, 143), (10, 12), "left", OBSTACLE_TAIL_M,
                            ("distance", (40, 43)), RIGHT, ("speed", (40, 59))),
    "HazardAtSideLane": _road((120, 156), (10, 18), "left", OBSTACLE_TAIL_M,
                              ("distance", (41, 45)), ("speed", (32, 59)),
                              ("bicycle_drive_distance", (40, 101)), ("bicycle_speed", (6, 12))),
    # road: passing against oncoming traffic
    "AccidentTwoWays": _road((104, 134), (10, 14), "opposite", OBSTACLE_TAIL_M,
                             ("distance", (40, 44)), *TWO_WAY),
    "ConstructionObstacleTwoWays": _road((108, 134), (10, 14), "opposite", OBSTACLE_TAIL_M,
                                         ("distance", (40, 45)), *TWO_WAY),
    "ParkedObstacleTwoWays": _road((102, 134), (10, 14), "opposite", OBSTACLE_TAIL_M,
                                   ("distance", (40, 44)), *TWO_WAY),
    "HazardAtSideLaneTwoWays": _road((132, 136), (10, 12), "opposite", OBSTACLE_TAIL_M,
                                     ("distance", (41, 45)), ("frequency", (75, 100)),
                                     ("bicycle_drive_distance", (80, 116)),
                                     ("bicycle_speed", (7, 11))),
    "VehicleOpensDoorTwoWays": _road((102, 134), (10, 14), "opposite", OBSTACLE_TAIL_M,
                                     ("distance", (37, 59)), ("frequency", ((30, 40), (89, 98)))),
    "InvadingTurn": _road((100, 114), (10, 14), "opposite", 10.0,
                          ("distance", (50, 60)), ("offset", (0.18, 0.34))),
    # road: the right edge
    "DynamicObjectCrossing": _road((134, 135), (10, 12), "edge", OBSTACLE_TAIL_M,
                                   ("distance", (40, 50)), RIGHT,
                                   ("blocker_model", ("static.prop.advertisement",
                                                      "static.prop.container")),
                                   ("crossing_angle", (0, 11))),
    "ParkingCrossingPedestrian": _road((104, 134), (10, 14), "edge", OBSTACLE_TAIL_M,
                                       ("distance", (36, 45)), RIGHT, ("crossing_angle", (0, 12))),
    "ParkingCutIn": _road((134, 137), (12, 14), "edge", 60.0, RIGHT),
    "ParkingExit": _road((132, 136), (0, 0), "edge", 40.0, RIGHT,
                         ("front_vehicle_distance", (9, 9)), ("behind_vehicle_distance", (9, 9))),
    # road: a neighbour lane
    "StaticCutIn": _road((134, 139), (10, 14), "right", OBSTACLE_TAIL_M,
                         ("distance", (40, 45)), RIGHT),
    "YieldToEmergencyVehicle": _road((96, 105), (10, 10), "side", 60.0, ("distance", (26, 30))),
    "SequentialLaneChange": _road((117, 122), (0, 0), "side", 80.0),
    # road: anywhere
    "ControlLoss": _road((102, 134), (10, 14), "", 60.0),
    "HardBreakRoute": _road((102, 146), (12, 14), "", 50.0),
    # junction: turns
    "NonSignalizedJunctionLeftTurn": _jn(
        (73, 88), (0, 6), *_flow((8, 11), (15, 24), (25, 30)),
        signalised=False, turns=("left",),
    ),
    "NonSignalizedJunctionLeftTurnEnterFlow": _jn(
        (75, 88), (4, 8), *_flow((8, 10), (15, 19), (26, 30)),
        signalised=False, turns=("left",),
    ),
    "NonSignalizedJunctionRightTurn": _jn(
        (68, 88), (0, 6), *_flow((8, 14), (16, 22), (25, 30)),
        signalised=False, turns=("right",),
    ),
    "SignalizedJunctionLeftTurn": _jn(
        (68, 88), (2, 10), *_flow((9, 11), (15, 24), (25, 28)),
        signalised=True, turns=("left",),
    ),
    "SignalizedJunctionLeftTurnEnterFlow": _jn(
        (73, 88), (4, 8), *_flow((8, 10), (16, 24), (25, 30)),
        signalised=True, turns=("left",),
    ),
    "SignalizedJunctionRightTurn": _jn(
        (62, 88), (0, 10), *_flow((10, 14), (19, 24), (26, 38)),
        signalised=True, turns=("right",),
    ),
    "BlockedIntersection": _jn((67, 88), (4, 11)),
    "OppositeVehicleRunningRedLight": _jn((73, 88), (4, 11), signalised=True,
                                          turns=("left", "right", "straight"),
                                          direction=("left", "right", "opposite")),
    "OppositeVehicleTakingPriority": _jn((73, 88), (2, 8), signalised=False,
                                         turns=("left", "right", "straight"),
                                         direction=("left", "right")),
    "VehicleTurningRoute": _jn((63, 88), (2, 8)),
    "VehicleTurningRoutePedestrian": _jn((70, 88), (4, 8)),
    "PedestrianCrossing": _jn((65, 88), (4, 8), turns=("left", "right", "straight")),
    # junction: vanilla turns (trigger right before the junction)
    "VanillaNonSignalizedTurn": _jn((49, 62), (4, 4), signalised=False, **VANILLA),
    "VanillaNonSignalizedTurnEncounterStopsign": _jn((49, 62), (4, 4), signalised=False,
                                                     stop_sign=True, **VANILLA),
    "VanillaSignalizedTurnEncounterGreenLight": _jn((49, 62), (4, 4), signalised=True, **VANILLA),
    "VanillaSignalizedTurnEncounterRedLight": _jn((49, 62), (4, 4), signalised=True, **VANILLA),
    "T_Junction": _jn((73, 155), (20, 31), kinds=("T",), ahead_m=(1.0, 52.0)),
    # junction: a flow through it
    "EnterActorFlow": _jn(
        (75, 120), (4, 6), *_flow((12, 19), (17, 30), (30, 39)),
        turns=("left", "right", "straight"), kinds=("merge", "T", "cross", "multi"), flow="merge",
    ),
    "MergerIntoSlowTraffic": _jn((138, 222), (2, 6), ("flow_speed", (9, 10)),
                                 ("source_dist_interval", ((14, 16), (33, 42))),
                                 turns=SHALLOW, kinds=("merge", "T", "cross", "multi"),
                                 flow="merge",
                                 ahead_m=(20.0, 90.0), ramp=True),
    "MergerIntoSlowTrafficV2": _jn((124, 151), (0, 6), ("flow_speed", (10, 10)),
                                   ("source_dist_interval", ((11, 14), (30, 34))),
                                   turns=("straight", "slight"), flow="merge",
                                   kinds=("merge", "T", "cross", "multi"), ahead_m=(20.0, 40.0),
                                   ramp=True),
    "InterurbanAdvancedActorFlow": _jn((113, 154), (6, 8), RIGHT, ("flow_speed", (16, 18)),
                                       ("source_dist_interval", ((36, 42), (84, 94))),
                                       turns=("right", "slight"), flow="merge",
                                       kinds=("merge", "T", "cross", "multi"),
                                       ahead_m=(20.0, 100.0)),
    "HighwayCutIn": _jn((106, 142), (2, 10), turns=("straight", "slight"), flow="merge",
                        kinds=("merge", "T", "cross", "multi"), ahead_m=(20.0, 60.0), ramp=True,
                        flow_keys=("other_actor_location", "end_location"),
                        flow_up_m=CUT_IN_UPSTREAM_M),
    "InterurbanActorFlow": _jn((106, 159), (4, 8), ("flow_speed", (15, 16)),
                               ("source_dist_interval", ((42, 53), (78, 98))),
                               turns=("left", "slight"), flow="oncoming", ahead_m=(20.0, 100.0)),
    "CrossingBicycleFlow": _jn((76, 88), (6, 8), ("flow_speed", (8, 12)),
                               ("source_dist_interval", ((5, 15), (25, 30))),
                               signalised=True, turns=("left",), flow="cross"),
    "HighwayExit": _jn((100, 166), (0, 4), ("flow_speed", (10, 15)),
                       ("source_dist_interval", ((11, 20), (33, 46))),
                       turns=SHALLOW, flow="parallel",
                       kinds=("merge", "T", "cross", "multi"), ahead_m=(20.0, 120.0), ramp=True),
}  # fmt: skip
"""Scenario type -> placement rule: every Bench2Drive type (44)."""


@dataclass(frozen=True)
class Place:
    """A made route before validation: the lane walk, the trigger's arc length [m] on it, the
    scenario parameters and the key that tells places apart (junction or road)."""

    pieces: list[Piece]
    trigger_s_m: float
    params: dict[str, dict[str, str]]
    key: tuple[str, int]
    must_use: tuple[int, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def _loc(pose: tuple[float, float, float, float]) -> dict[str, str]:
    return {"x": _fmt(pose[0]), "y": _fmt(pose[1]), "z": _fmt(pose[2])}


def draw_params(specs: Sequence[ParamSpec], rng: np.random.Generator) -> dict[str, dict[str, str]]:
    """Parameter elements for a route, drawn from the Bench2Drive value ranges."""
    out: dict[str, dict[str, str]] = {}
    for tag, vals in specs:
        if isinstance(vals[0], str):
            out[tag] = {"value": str(vals[int(rng.integers(len(vals)))])}
        elif isinstance(vals[0], tuple):
            lo_from, hi_from = (int(v) for v in vals[0])
            lo_to, hi_to = (int(v) for v in vals[1])  # type: ignore[attr-defined]
            out[tag] = {"from": str(int(rng.integers(lo_from, hi_from + 1))),
                        "to": str(int(rng.integers(lo_to, hi_to + 1)))}  # fmt: skip
        elif all(isinstance(v, int) for v in vals):
            lo, hi = (int(v) for v in vals)  # type: ignore[call-overload]
            out[tag] = {"value": str(int(rng.integers(lo, hi + 1)))}
        else:
            flo, fhi = (float(v) for v in vals)  # type: ignore[arg-type]
            out[tag] = {"value": f"{rng.uniform(flo, fhi):.2f}"}
    return out


def _uniform(rng: np.random.Generator, rng_m: tuple[float, float]) -> float:
    return float(rng.uniform(*rng_m)) if rng_m[1] > rng_m[0] else float(rng_m[0])


# ---------------------------------------------------------------------- road family
def _lane_need_mask(town: Town, needs: str) -> np.ndarray:
    """(L,) lanes outside junctions that meet a road need (neighbours by lane key, any marking)."""
    lanes = town.lanes
    sign = np.sign(lanes.lane_id)
    left = lanes.lookup(lanes.road_id, lanes.section_id, lanes.lane_id - sign)
    left = np.where(np.sign(lanes.lane_id[np.maximum(left, 0)]) == sign, left, -1)
    right = lanes.lookup(lanes.road_id, lanes.section_id, lanes.lane_id + sign)
    ok = np.asarray(lanes.junction_id) < 0
    if needs == "left":
        ok &= left >= 0
    elif needs == "right":
        ok &= right >= 0
    elif needs == "side":
        ok &= (left >= 0) | (right >= 0)
    elif needs == "opposite":
        ok &= (left < 0) & (np.asarray(town.graph.left_opposite) >= 0)
    elif needs == "edge":
        ok &= right < 0
    return ok


def _road_places(town: Town, rule: Rule, rng: np.random.Generator) -> list[Place]:
    lanes = town.lanes
    need_ok = _lane_need_mask(town, rule.needs)
    free = np.asarray(lanes.junction_id) < 0
    order = rng.permutation(lanes.n_lanes)
    places: list[Place] = []
    for lane in order[need_ok[order]]:
        lane = int(lane)
        starts = np.arange(0.0, float(lanes.length_m[lane]), ROAD_START_STEP_M)
        for s0 in rng.permutation(starts)[:2]:
            params = draw_params(rule.params, rng)
            trig = round(_uniform(rng, rule.trigger_m))
            clear = trig + float(params.get("distance", {}).get("value", 0)) + rule.clear_m
            length = _uniform(rng, rule.length_m)
            pieces = walk_forward(town, lane, float(s0), length)
            if pieces_length(pieces) < length - 0.5:
                continue
            if not _stretch_ok(pieces, 0.0, clear, free) or not _stretch_ok(
                pieces, trig, clear, need_ok
            ):
                continue
            if not _end_clear(town, pieces, free):
                continue
            places.append(Place(pieces, float(trig), params, ("road", int(lanes.road_id[lane]))))
            break
    return places


def _end_clear(town: Town, pieces: list[Piece], free: np.ndarray) -> bool:
    """Whether the walk's last lane and the END_CLEAR_M beyond its end lie outside junctions (a
    route that ends at a junction leaves the ego waiting at its stop line: blocked)."""
    lane, _, s1 = pieces[-1]
    beyond = walk_forward(town, lane, s1, END_CLEAR_M)
    return bool(free[lane]) and all(free[p[0]] for p in beyond)


def _stretch_ok(pieces: list[Piece], s_from: float, s_to: float, ok: np.ndarray) -> bool:
    """Whether every lane the walk uses between arc lengths s_from and s_to is ``ok``."""
    at = 0.0
    for lane, s0, s1 in pieces:
        a, b = at, at + (s1 - s0)
        if b >= s_from and a <= s_to and not ok[lane]:
            return False
        at = b
    return at >= s_to - 0.5


# ---------------------------------------------------------------------- junction family
def _junction_places(town: Town, rule: Rule, rng: np.random.Generator) -> list[Place]:
    lanes = town.lanes
    stops = stop_sign_lanes(town) if rule.stop_sign else set()
    free = np.asarray(lanes.junction_id) < 0
    places: list[Place] = []
    junctions = [
        j for j in town.junctions
        if j.kind in rule.kinds and (rule.signalised is None or j.signalised == rule.signalised)
    ]  # fmt: skip
    for jn in (junctions[int(i)] for i in rng.permutation(len(junctions))):
        all_m = manoeuvres(town, jn)
        ok_m = [
            m for m in all_m
            if m.turn in rule.turns and (not rule.stop_sign or m.incoming in stops)
        ]  # fmt: skip
        for m in (ok_m[int(i)] for i in rng.permutation(len(ok_m))):
            place = _junction_place(town, rule, rng, m, all_m, free)
            if place is not None:
                places.append(place)
    return places


def _junction_place(
    town: Town, rule: Rule, rng: np.random.Generator, m: Manoeuvre, all_m: list[Manoeuvre],
    free: np.ndarray,
) -> Place | None:  # fmt: skip
    lanes = town.lanes
    params = draw_params(rule.params, rng)
    if rule.direction:
        sides = sorted(approaches(town, m, all_m) & set(rule.direction))
        if not sides:
            return None
        params["direction"] = {"value": sides[int(rng.integers(len(sides)))]}
    trig = round(_uniform(rng, rule.trigger_m))
    ahead = round(_uniform(rng, rule.ahead_m))
    before = walk_backward(town, m.incoming, float(lanes.length_m[m.incoming]), trig + ahead)
    if pieces_length(before) < trig + ahead - 0.5 or not all(free[p[0]] for p in before):
        return None
    conn: list[Piece] = [(c, 0.0, float(lanes.length_m[c])) for c in m.connectors]
    length = _uniform(rng, rule.length_m)
    after_m = max(MIN_AFTER_M, length - pieces_length(before) - pieces_length(conn))
    after = walk_forward(town, m.exit, 0.0, after_m)
    if pieces_length(after) < after_m - 0.5 or not _end_clear(town, after, free):
        return None
    pieces = before + conn + after
    exit_s = pieces_length(before) + pieces_length(conn)
    if rule.flow:
        flow = _flow_params(town, rule, rng, m, all_m, pieces, exit_s)
        if flow is None:
            return None
        params.update(flow)
    return Place(pieces, float(trig), params, ("junction", m.junction), m.connectors)


def _flow_params(
    town: Town, rule: Rule, rng: np.random.Generator, m: Manoeuvre, all_m: list[Manoeuvre],
    pieces: list[Piece], exit_s: float,
) -> dict[str, dict[str, str]] | None:  # fmt: skip
    """Start and end of the flow: ``flow_up_m`` up a partner approach and FLOW_DOWNSTREAM_M past
    the junction on the partner's exit (on the ego's route for a 'merge')."""
    lanes = town.lanes
    partners = flow_partners(town, m, rule.flow, all_m)
    if rule.ramp:
        partners = [p for p in partners if p.turn in SHALLOW]
    for k in rng.permutation(len(partners)):
        p = partners[int(k)]
        up = walk_backward(town, p.incoming, float(lanes.length_m[p.incoming]), rule.flow_up_m)
        if pieces_length(up) < MIN_FLOW_UPSTREAM_M:
            continue
        start = lane_pose(town, up[0][0], up[0][1])
        if rule.flow == "merge":
            end = _pose_at(town, pieces, exit_s + min(FLOW_DOWNSTREAM_M, MIN_AFTER_M - 2.0))
        else:
            down = walk_forward(town, p.exit, 0.0, FLOW_DOWNSTREAM_M)
            if pieces_length(down) < FLOW_DOWNSTREAM_M - 0.5:
                continue
            end = lane_pose(town, down[-1][0], down[-1][2])
        return {rule.flow_keys[0]: _loc(start), rule.flow_keys[1]: _loc(end)}
    return None


def _pose_at(town: Town, pieces: list[Piece], s_m: float) -> tuple[float, float, float, float]:
    """Pose (x, y, z, yaw_deg) at arc length s along a walk (clamped)."""
    at = 0.0
    for lane, s0, s1 in pieces:
        if s_m <= at + (s1 - s0):
            return lane_pose(town, lane, s0 + max(0.0, s_m - at))
        at += s1 - s0
    lane, _, s1 = pieces[-1]
    return lane_pose(town, lane, s1)


# ---------------------------------------------------------------------- routes
def _route(town: Town, place: Place, scenario_type: str, route_id: str, name: str,
           weather: Mapping[str, float]) -> RouteConfig:  # fmt: skip
    xy, z, _, _ = pieces_points(town, place.pieces)
    n = xy.shape[0]
    step = int(round(KEYPOINT_STEP_M))
    idx = np.unique(np.append(np.arange(0, n, step), n - 1))
    kp = np.column_stack([np.round(xy[idx], 2), np.round(z[idx], 2)])
    x, y, zz, yaw = _pose_at(town, place.pieces, place.trigger_s_m)
    trigger = (round(x, 2), round(y, 2), round(zz, 2), round(yaw, 1))
    weathers = (Weather(0.0, dict(weather)), Weather(100.0, dict(weather)))
    sc = ScenarioConfig(name=name, type=scenario_type, trigger=trigger, params=place.params)
    return RouteConfig(route_id, town.name, kp, weathers, (sc,))


def _validate(town: Town, route: RouteConfig, place: Place, rule: Rule) -> str:
    """Why a made route is not good ('' when it is): `routes check` problems, a planned length
    outside the rule's range, or a plan that misses the manoeuvre's connectors."""
    planned, problems = check_route(route, town)
    if problems or planned is None:
        return "; ".join(p.message for p in problems) or "unplannable"
    if not rule.length_m[0] - 1.0 <= planned.length_m <= rule.length_m[1] + 1.0:
        return f"planned length {planned.length_m:.0f} m outside {rule.length_m}"
    used = set(planned.lane.tolist())
    if any(c not in used for c in place.must_use):
        return "the plan takes another way through the junction"
    return ""


class NoPlaceError(ConfigError):
    """A town offers no place for a scenario type."""


def rule_for(scenario_type: str) -> Rule:
    """The placement rule of a type; ConfigError listing the known types for an unknown one."""
    try:
        return RULES[scenario_type]
    except KeyError:
        raise ConfigError(
            f"unknown scenario type {scenario_type!r}; choose one of: {', '.join(sorted(RULES))}"
        ) from None


def _stream(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def find_places(
    town: Town, scenario_type: str, count: int, seed: int = 0
) -> list[tuple[Place, RouteConfig]]:
    """Up to ``count`` validated, distinct places (routes with a provisional id) of a type on a
    town, deterministic for a seed: one per junction / road first, then any whose trigger is at
    least MIN_SEPARATION_M from the others."""
    rule = rule_for(scenario_type)
    rng = _stream(seed, scenario_type, town.name)
    finder: Callable[[Town, Rule, np.random.Generator], list[Place]] = (
        _road_places if rule.family == "road" else _junction_places
    )
    chosen: list[tuple[Place, RouteConfig]] = []
    cands = finder(town, rule, rng)
    for distinct in (True, False):
        for place in cands:
            if len(chosen) >= count:
                return chosen
            if any(c[0] is place for c in chosen):
                continue
            if distinct and any(c[0].key == place.key for c in chosen):
                continue
            route = _route(town, place, scenario_type, "0", scenario_type, DEFAULT_WEATHER)
            trig = np.array(route.scenarios[0].trigger[:2])
            if any(
                np.hypot(*(trig - c[1].scenarios[0].trigger_xy)) < MIN_SEPARATION_M for c in chosen
            ):
                continue
            why = _validate(town, route, place, rule)
            if why:
                log.debug("%s on %s: candidate rejected: %s", scenario_type, town.name, why)
                continue
            chosen.append((place, route))
    return chosen


def make_routes(
    town: Town, scenario_type: str, count: int, seed: int = 0,
    weather: Mapping[str, float] | None = None, first_id: int = 0,
) -> list[RouteConfig]:  # fmt: skip
    """``count`` routes of one scenario type on a town (fewer when the town has fewer places, with
    a warning); NoPlaceError naming type, town and need when it has none."""
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    found = find_places(town, scenario_type, count, seed)
    if not found:
        raise NoPlaceError(
            f"town {town.name} has no place for {scenario_type}: it needs "
            f"{rule_for(scenario_type).describe()}; pick another town"
        )
    if len(found) < count:
        log.warning("town %s has only %d distinct places for %s (asked for %d)",
                    town.name, len(found), scenario_type, count)  # fmt: skip
    w = {**DEFAULT_WEATHER, **(weather or {})}
    return [
        _route(town, place, scenario_type, str(first_id + k), f"{scenario_type}_{k + 1}", w)
        for k, (place, _) in enumerate(found)
    ]


@dataclass(frozen=True)
class SuiteResult:
    """``routes`` of a suite (ids 0..N-1) and, per type, the towns that had no place for it."""

    routes: tuple[RouteConfig, ...]
    missing: dict[str, tuple[str, ...]]
    short: dict[str, int]


def make_suite(
    towns: Sequence[Town], types: Sequence[str], per_type: int, seed: int = 0,
    weather: Mapping[str, float] | None = None,
) -> SuiteResult:  # fmt: skip
    """``per_type`` routes of every type over the towns, spread over as many towns as offer a
    place (round robin, starting one town later for each type so every town gets routes), ids
    numbered in type order. ``missing``: towns without
    a place per type; ``short``: types that got fewer than ``per_type`` routes (how many)."""
    routes: list[RouteConfig] = []
    missing: dict[str, tuple[str, ...]] = {}
    short: dict[str, int] = {}
    w = {**DEFAULT_WEATHER, **(weather or {})}
    for n_type, scenario_type in enumerate(types):
        rule_for(scenario_type)
        found = {t.name: find_places(t, scenario_type, per_type, seed) for t in towns}
        none = tuple(name for name, f in found.items() if not f)
        if none:
            missing[scenario_type] = none
        picked: list[tuple[str, Place]] = []
        depth = 0
        order = [towns[(n_type + i) % len(towns)] for i in range(len(towns))]
        while len(picked) < per_type and any(depth < len(f) for f in found.values()):
            for t in order:
                if depth < len(found[t.name]) and len(picked) < per_type:
                    picked.append((t.name, found[t.name][depth][0]))
            depth += 1
        if len(picked) < per_type:
            short[scenario_type] = len(picked)
        by_name = {t.name: t for t in towns}
        for k, (name, place) in enumerate(picked):
            routes.append(
                _route(
                    by_name[name],
                    place,
                    scenario_type,
                    str(len(routes)),
                    f"{scenario_type}_{k + 1}",
                    w,
                )  # fmt: skip
            )
    return SuiteResult(tuple(routes), missing, short)


def parse_weather(text: str) -> dict[str, float]:
    """'cloudiness=40,sun_altitude_angle=15' -> values; ConfigError naming a bad item."""
    out: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"bad --weather item {item!r}; write name=value pairs separated by commas, "
                f"names from: {', '.join(DEFAULT_WEATHER)}"
            ) from None
        if key.strip() not in DEFAULT_WEATHER:
            raise ConfigError(
                f"unknown weather parameter {key.strip()!r}; "
                f"use one of {', '.join(DEFAULT_WEATHER)}"
            )
    return out
