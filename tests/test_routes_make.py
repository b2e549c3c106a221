"""`harness routes make` / `make-suite`: made routes checked against the lane graph and against the
Bench2Drive route file's own measures (route length per family), independently of the placement
code: trigger on the planned route, the junction turn read off the planned route's headings, flow
locations on lanes that lead into the route's junction, determinism, distinct places, exit 2."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from harness.geometry import wrap_angle
from harness.maps import Town, load_town
from harness.routes import check_route_file, plan_route, read_route_file, read_routes, write_routes
from harness.routes.make import RULES, make_routes, make_suite

FAMILIES: dict[str, tuple[str, ...]] = {
    "junction": (
        "NonSignalizedJunctionLeftTurn", "NonSignalizedJunctionLeftTurnEnterFlow",
        "NonSignalizedJunctionRightTurn", "SignalizedJunctionLeftTurn",
        "SignalizedJunctionLeftTurnEnterFlow", "SignalizedJunctionRightTurn",
        "BlockedIntersection", "OppositeVehicleRunningRedLight", "OppositeVehicleTakingPriority",
        "VehicleTurningRoute", "VehicleTurningRoutePedestrian", "PedestrianCrossing",
    ),
    "road": (
        "Accident", "AccidentTwoWays", "ConstructionObstacle", "ConstructionObstacleTwoWays",
        "ParkedObstacle", "ParkedObstacleTwoWays", "HazardAtSideLane", "HazardAtSideLaneTwoWays",
        "VehicleOpensDoorTwoWays", "InvadingTurn", "DynamicObjectCrossing",
        "ParkingCrossingPedestrian", "ParkingCutIn", "ParkingExit", "StaticCutIn",
        "YieldToEmergencyVehicle", "SequentialLaneChange", "ControlLoss", "HardBreakRoute",
    ),
    "flow": (
        "EnterActorFlow", "MergerIntoSlowTraffic", "MergerIntoSlowTrafficV2",
        "InterurbanAdvancedActorFlow", "HighwayCutIn", "InterurbanActorFlow",
        "CrossingBicycleFlow", "HighwayExit",
    ),
}  # fmt: skip
"""Types sharing one Bench2Drive length range (the module table of harness.routes.make)."""
TURN_RAD = np.radians(45.0)  # a heading change beyond this through a junction is a turn


@pytest.fixture(scope="module")
def b2d_lengths(bench2drive_xml: Path) -> dict[str, tuple[float, float]]:
    """Per family: min / max keypoint-polyline length [m] of Bench2Drive's routes of its types."""
    out: dict[str, list[float]] = {k: [] for k in FAMILIES}
    for r in read_routes(bench2drive_xml):
        ty = r.scenarios[0].type
        fam = next((f for f, types in FAMILIES.items() if ty in types), None)
        if fam:
            out[fam].append(float(np.hypot(*np.diff(r.keypoints[:, :2], axis=0).T).sum()))
    return {k: (min(v), max(v)) for k, v in out.items()}


def _polyline_m(kp: np.ndarray) -> float:
    return float(np.hypot(*np.diff(kp[:, :2], axis=0).T).sum())


def _junction_run(town: Town, lanes: np.ndarray) -> tuple[int, int, int]:
    """(junction id, first, last route index) of the first stretch of the route inside a junction."""
    jid = town.lanes.junction_id[lanes]
    inside = np.flatnonzero(jid >= 0)
    assert inside.size, "the route never enters a junction"
    k = int(inside[0])
    e = k
    while e + 1 < len(jid) and jid[e + 1] == jid[k]:
        e += 1
    return int(jid[k]), k, e


def _reaches(town: Town, lane: int, targets: set[int], max_m: float, forward: bool) -> bool:
    """Whether follow edges from ``lane`` reach a lane in ``targets`` within ``max_m`` of lanes."""
    seen, todo = {lane}, deque([(lane, 0.0)])
    while todo:
        cur, d = todo.popleft()
        if cur in targets:
            return True
        if d > max_m:
            continue
        nxt = town.graph.successors(cur) if forward else town.graph.predecessors(cur)
        for v in nxt:
            if v not in seen:
                seen.add(v)
                todo.append((v, d + float(town.lanes.length_m[v])))
    return False


@pytest.mark.parametrize(
    ("town_name", "scenario", "kind", "signalised", "turn"),
    [
        ("Town01", "SignalizedJunctionRightTurn", "T", True, "right"),
        ("Town03", "NonSignalizedJunctionLeftTurn", None, False, "left"),
        ("Town05", "SignalizedJunctionLeftTurn", None, True, "left"),
        ("Harness01", "NonSignalizedJunctionRightTurn", None, False, "right"),
        ("Town02", "T_Junction", "T", None, None),
    ],
)
def test_junction_routes_turn_where_the_type_says(
    town_name: str, scenario: str, kind: str | None, signalised: bool | None, turn: str | None,
    shared_maps: Path, b2d_lengths: dict[str, tuple[float, float]],
) -> None:  # fmt: skip
    town = load_town(town_name)
    routes = make_routes(town, scenario, 2, seed=1)
    assert len(routes) == 2
    for r in routes:
        planned = plan_route(town, r.keypoints, r.id)
        sc = r.scenarios[0]
        # the trigger lies on the route: < 2 m and < 10 deg from a route point (leaderboard rule)
        d = np.hypot(*(planned.xy - sc.trigger_xy).T)
        near = d < 2.0
        dyaw = np.abs(wrap_angle(np.radians(sc.trigger[3]) - planned.yaw_rad))
        assert (near & (dyaw < np.radians(10.0))).any()
        jid, k, e = _junction_run(town, planned.lane)
        junction = next(j for j in town.junctions if j.id == jid)
        assert town.lanes.junction_id[planned.lane[-1]] < 0  # ends on a road, not at a junction
        if kind:
            assert junction.kind == kind
        else:
            assert junction.kind != "merge"
        if signalised is not None:
            assert junction.signalised == signalised
        # the lanes at the junction's entry and exit are joined by follow edges of the lane graph
        for a, b in zip(planned.lane[k - 1 : e + 1], planned.lane[k : e + 2], strict=True):
            assert a == b or town.graph.g[int(a)][int(b)]["kind"] == "follow"
        dy = float(wrap_angle(planned.yaw_rad[min(e + 3, planned.num_points - 1)]
                              - planned.yaw_rad[max(k - 3, 0)]))  # fmt: skip
        got = "right" if dy > TURN_RAD else "left" if dy < -TURN_RAD else "straight"
        if turn:
            assert got == turn
        else:
            assert got in ("left", "right")
        # the trigger comes before the junction (Bench2Drive: 21-27 m, T_Junction up to 52 m)
        s_trig = planned.s_m[int(np.argmin(d))]
        assert 0.0 < planned.s_m[k] - s_trig < 60.0
        fam = "junction" if scenario in FAMILIES["junction"] else None
        if fam:
            lo, hi = b2d_lengths[fam]
            assert lo <= _polyline_m(r.keypoints) <= hi + 1.0


@pytest.mark.parametrize(
    ("town_name", "scenario", "relation"),
    [
        ("Town03", "EnterActorFlow", "merge"),
        ("Town04", "MergerIntoSlowTrafficV2", "merge"),
        ("Town05", "InterurbanActorFlow", "oncoming"),
        ("Harness01", "EnterActorFlow", "merge"),
    ],
)
def test_flow_locations_lie_on_lanes_into_the_route_junction(
    town_name: str, scenario: str, relation: str, shared_maps: Path,
    b2d_lengths: dict[str, tuple[float, float]],
) -> None:  # fmt: skip
    town = load_town(town_name)
    for r in make_routes(town, scenario, 2, seed=3):
        planned = plan_route(town, r.keypoints, r.id)
        jid, _, e = _junction_run(town, planned.lane)
        connectors = {int(c) for c in np.flatnonzero(town.lanes.junction_id == jid)}
        params = r.scenarios[0].params
        start = np.array([float(params["start_actor_flow"][k]) for k in "xy"])
        end = np.array([float(params["end_actor_flow"][k]) for k in "xy"])
        proj = town.lanes.project(np.stack([start, end]))
        assert (proj.distance_m < 0.2).all()  # on a lane centerline (written to 0.1 m)
        s_lane, e_lane = int(proj.lane[0]), int(proj.lane[1])
        assert s_lane not in set(planned.lane.tolist())  # the flow comes from another approach
        assert _reaches(town, s_lane, connectors, 80.0, forward=True)
        assert _reaches(town, e_lane, connectors, 40.0, forward=False)
        if relation == "merge":  # ... and joins the ego's exit road after the junction
            assert np.hypot(*(planned.xy[e:] - end).T).min() < 0.5
        lo, hi = b2d_lengths["flow"]
        assert lo <= _polyline_m(r.keypoints) <= hi + 1.0


@pytest.mark.parametrize(
    ("town_name", "scenario"),
    [("Town03", "Accident"), ("Town01", "ParkedObstacleTwoWays"), ("Harness01", "StaticCutIn"),
     ("Town04", "DynamicObjectCrossing")],
)  # fmt: skip
def test_road_routes_keep_clear_of_junctions_with_the_needed_lane(
    town_name: str, scenario: str, shared_maps: Path, b2d_lengths: dict[str, tuple[float, float]]
) -> None:
    town = load_town(town_name)
    lanes = town.lanes
    for r in make_routes(town, scenario, 3, seed=0):
        planned = plan_route(town, r.keypoints, r.id)
        sc = r.scenarios[0]
        i = int(np.argmin(np.hypot(*(planned.xy - sc.trigger_xy).T)))
        dist = float(sc.params["distance"]["value"])
        stretch = (planned.s_m >= planned.s_m[i]) & (planned.s_m <= planned.s_m[i] + dist)
        ln = planned.lane[stretch]
        assert (lanes.junction_id[ln] < 0).all()
        sign = np.sign(lanes.lane_id[ln])
        left = lanes.lookup(lanes.road_id[ln], lanes.section_id[ln], lanes.lane_id[ln] - sign)
        right = lanes.lookup(lanes.road_id[ln], lanes.section_id[ln], lanes.lane_id[ln] + sign)
        if scenario == "Accident":  # passed on a same-direction lane to the left
            assert (left >= 0).all() and (np.sign(lanes.lane_id[left]) == sign).all()
        elif scenario.endswith("TwoWays"):  # passed on the oncoming lane, which borders the ego's
            opp = town.graph.left_opposite[ln]
            assert (opp >= 0).all() and (np.sign(lanes.lane_id[opp]) == -sign).all()
        elif scenario == "StaticCutIn":
            assert (right >= 0).all()
        else:
            assert (right < 0).all()  # the right road edge
        lo, hi = b2d_lengths["road"]
        assert lo <= _polyline_m(r.keypoints) <= hi + 1.0


def test_seeded_distinct_and_checked(shared_maps: Path, tmp_path: Path) -> None:
    town = load_town("Town03")
    a = make_routes(town, "VehicleTurningRoute", 5, seed=7)
    b = make_routes(town, "VehicleTurningRoute", 5, seed=7)
    c = make_routes(town, "VehicleTurningRoute", 5, seed=8)
    assert a == b
    assert a != c
    trig = np.array([r.scenarios[0].trigger[:2] for r in a])
    gap = np.hypot(*(trig[:, None] - trig[None]).transpose(2, 0, 1))
    assert gap[~np.eye(len(a), dtype=bool)].min() >= 30.0
    junctions = set()
    for r in a:
        planned = plan_route(town, r.keypoints, r.id)
        junctions.add(_junction_run(town, planned.lane)[0])
    assert len(junctions) == 5  # Town03 has more than 5 junctions: one route each
    f = tmp_path / "made.xml"
    write_routes(a + [*make_routes(town, "ControlLoss", 2, seed=7, first_id=5)], f)
    report = check_route_file(f)
    assert report.ok and len(report.runnable) == 7


def test_suite_spreads_types_over_towns(shared_maps: Path) -> None:
    towns = [load_town("Town01"), load_town("Town03"), load_town("Harness01")]
    res = make_suite(towns, ["Accident", "SignalizedJunctionRightTurn", "HighwayExit"], 3, seed=0)
    types = [r.scenarios[0].type for r in res.routes]
    assert [r.id for r in res.routes] == [str(k) for k in range(len(res.routes))]
    assert types.count("SignalizedJunctionRightTurn") == 3
    # three towns offer a signalised right turn: one route on each
    assert {r.town for r in res.routes if r.scenarios[0].type == "SignalizedJunctionRightTurn"} == {
        "Town01", "Town03", "Harness01",
    }  # fmt: skip
    # Town01 has one lane per direction: no place to pass an accident on a same-direction lane
    assert "Town01" in res.missing["Accident"]
    assert types.count("Accident") == 3
    # no highway exit ramp on these towns (Town04 / Town06 have them): reported, no route
    assert set(res.missing["HighwayExit"]) == {"Town01", "Town03", "Harness01"}
    assert res.short["HighwayExit"] == 0 and "HighwayExit" not in types


def test_every_bench2drive_type_has_a_rule(bench2drive_xml: Path) -> None:
    types = {sc.type for r in read_route_file(bench2drive_xml) for sc in r.scenarios}
    assert types <= set(RULES)
    from scenarios.registry import SCENARIO_CLASSES

    assert set(SCENARIO_CLASSES) <= set(RULES)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `harness routes ARGS` in this process, inside the CLI's error boundary: (status, stderr)."""
    from harness.cli.main import run

    capsys.readouterr()
    rc = run(["routes", *args])
    return rc, capsys.readouterr().err


def test_cli_make_writes_checked_routes_and_refuses_impossible_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "h.xml"
    rc, err = _cli(capsys, "make", "--town", "Harness01", "--scenario", "StaticCutIn", "--count",
                   "2", "--out", str(out), "--weather", "cloudiness=40")  # fmt: skip
    assert rc == 0, err
    routes = read_route_file(out)
    assert len(routes) == 2 and routes[0].weathers[0].values["cloudiness"] == 40.0
    assert check_route_file(out).ok
    # Harness01 is an urban grid: no ramp where a flow joins at a shallow angle
    rc, err = _cli(capsys, "make", "--town", "Harness01", "--scenario", "HighwayExit", "--out",
                   str(tmp_path / "x.xml"))  # fmt: skip
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "HighwayExit" in lines[0] and "Harness01" in lines[0]
    assert "ramp" in lines[0]
    assert not (tmp_path / "x.xml").exists()
    rc, err = _cli(capsys, "make", "--town", "Harness01", "--scenario", "Nope", "--out", str(out))
    assert rc == 2 and "unknown scenario type" in err


def test_per_type_scores_count_unrun_routes_as_zero() -> None:
    """DS / SR per scenario type, by hand: Accident routes 0 (DS 80, success) and 1 (DS 40,
    collision); ControlLoss route 2 has no record -> DS 0, SR 0; routes without a scenario: 'none'."""
    from harness.leaderboard.bench2drive import bench2drive_metrics, per_type
    from harness.report.inputs import metrics_from_json
    from harness.routes import RouteConfig, ScenarioConfig

    def route(rid: str, ty: str | None) -> RouteConfig:
        sc = () if ty is None else (ScenarioConfig(f"{ty}_1", ty, (0.0, 0.0, 0.0, 0.0)),)
        return RouteConfig(rid, "Town01", np.zeros((2, 3)), scenarios=sc)

    def record(rid: str, ds: float, status: str, **inf: list[str]) -> dict[str, object]:
        return {"route_id": f"RouteScenario_{rid}_rep0", "status": status, "infractions": inf,
                "scores": {"score_route": 100.0, "score_penalty": 1.0, "score_composed": ds},
                "save_name": f"s{rid}"}  # fmt: skip

    routes = [route("0", "Accident"), route("1", "Accident"), route("2", "ControlLoss"),
              route("3", None)]  # fmt: skip
    records = [record("0", 80.0, "Completed"), record("1", 40.0, "Completed",
               collisions_vehicle=["hit"]), record("3", 100.0, "Perfect")]  # fmt: skip
    got = per_type(routes, records)
    assert list(got) == ["Accident", "ControlLoss", "none"]
    assert (got["Accident"].driving_score, got["Accident"].success_rate) == (60.0, 0.5)
    assert (got["ControlLoss"].routes, got["ControlLoss"].records) == (1, 0)
    assert got["ControlLoss"].driving_score == 0.0 and got["none"].success_rate == 1.0
    m = bench2drive_metrics(routes, records, {})
    assert metrics_from_json(m.to_json()).scenario_types == m.scenario_types
