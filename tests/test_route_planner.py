"""Route planner on real CARLA towns: Bench2Drive and Leaderboard 1.0 routes, RoadOptions, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.errors import RoutePlanningError
from harness.maps import Town, load_town
from harness.routes import (
    RoadOption,
    RouteConfig,
    attach_scenarios,
    check_route,
    global_plan,
    load_scenarios_json,
    plan_route,
    read_routes,
    read_routes_v1,
)
from harness.routes.interpolate import downsample_index

REAL = {f"Town0{i}" for i in range(1, 7)}


def _town(name: str) -> Town:
    return load_town(name)


@pytest.fixture(scope="module")
def b2d_real(bench2drive_xml: Path, shared_maps: Path) -> list[RouteConfig]:
    return [r for r in read_routes(bench2drive_xml) if r.town in REAL]


@pytest.fixture
def town01(shared_maps: Path) -> Town:
    """Town01 (function scope so $HARNESS_MAPS is set; load_town caches it per process)."""
    return _town("Town01")


def test_all_bench2drive_routes_on_town01_06_plan_and_pass_check(
    b2d_real: list[RouteConfig],
) -> None:
    assert len(b2d_real) == 46
    for route in b2d_real:
        planned, problems = check_route(route, _town(route.town))
        assert problems == [], problems
        assert planned is not None
        chord = np.linalg.norm(np.diff(route.keypoints[:, :2], axis=0), axis=1).sum()
        # The lane path is at least the keypoint polyline and only a little longer (curves in
        # junctions between sparse keypoints, lane-change offsets).
        assert chord - 0.5 <= planned.length_m <= 1.15 * chord + 5.0
        steps = np.diff(planned.s_m)
        assert steps.min() > 0.0 and np.median(steps) == pytest.approx(1.0, abs=0.05)
        assert np.all(np.diff(planned.keypoint_index) >= 0)
        # Keypoints sit on lane centerlines (README: within ~0.3 m), and so does every route point.
        assert planned.keypoint_offset_m.max() < 0.3
        proj = _town(route.town).lanes.project(planned.xy, planned.yaw_rad)
        assert float(np.max(proj.distance_m)) < 0.05


def test_lane_change_routes_get_change_options(b2d_real: list[RouteConfig]) -> None:
    lc = {int(RoadOption.CHANGELANELEFT), int(RoadOption.CHANGELANERIGHT)}
    changes = [
        r.id
        for r in b2d_real
        if lc & set(plan_route(_town(r.town), r.keypoints, r.id).option.tolist())
    ]
    # Bench2Drive's lane-change routes on Town06 (26394, 26401, 26408) move one lane to the left.
    assert {"26394", "26401", "26408"} <= set(changes)
    p = plan_route(_town("Town06"), next(r for r in b2d_real if r.id == "26394").keypoints, "26394")
    i = np.flatnonzero(p.option == RoadOption.CHANGELANELEFT)
    assert len(i) >= 2
    # Moving left in CARLA's left-handed frame: the new lane is on the heading's -90 deg side.
    j = int(i[0])
    left_normal = np.array([np.sin(p.yaw_rad[j]), -np.cos(p.yaw_rad[j])])
    k = int(i[i > j][0]) if np.any(i > j) else j + 1
    assert float((p.xy[k] - p.xy[j]) @ left_normal) > 2.5


def test_leaderboard_v1_testing_routes_plan(leaderboard_dir: Path, shared_maps: Path) -> None:
    routes = read_routes_v1(leaderboard_dir / "v1.0" / "routes_testing.xml")
    cands = load_scenarios_json(
        leaderboard_dir / "v1.0" / "all_towns_traffic_scenarios_public.json"
    )
    assert {r.town for r in routes} == {"Town02", "Town04", "Town05"}
    for route in routes:
        planned = plan_route(_town(route.town), route.keypoints, route.id)
        chord = np.linalg.norm(np.diff(route.keypoints[:, :2], axis=0), axis=1).sum()
        assert planned.length_m >= chord - 1.0
        landed = np.linalg.norm(route.keypoints[:, :2] - planned.xy[planned.keypoint_index], axis=1)
        assert landed.max() < 1.5
        with_sc = attach_scenarios(route, planned, cands)
        assert len(with_sc.scenarios) > 0
        assert all(sc in cands[route.town] for sc in with_sc.scenarios)
    # The one-call form plans and attaches the same scenarios.
    json_path = leaderboard_dir / "v1.0" / "all_towns_traffic_scenarios_public.json"
    first = read_routes_v1(leaderboard_dir / "v1.0" / "routes_testing.xml", json_path)[0]
    planned = plan_route(_town(first.town), first.keypoints, first.id)
    assert first == attach_scenarios(routes[0], planned, cands)


# Hand-picked Town01 junction (the one around x 80..113, y -2..21). Entry and exit points lie on the
# lane centerlines 10 m before / after the junction connectors.
RIGHT_TURN = np.array([[92.37, 21.24, 0.0], [112.69, 1.95, 0.0]])  # heading -y (north) -> +x (east)
LEFT_TURN = np.array([[112.69, -2.05, 0.0], [88.37, 21.24, 0.0]])  # heading -x (west) -> +y (south)


@pytest.mark.parametrize(
    ("keypoints", "expected"), [(RIGHT_TURN, RoadOption.RIGHT), (LEFT_TURN, RoadOption.LEFT)]
)
def test_junction_turn_option_matches_geometry(
    town01: Town, keypoints: np.ndarray, expected: RoadOption
) -> None:
    p = plan_route(town01, keypoints, "turn")
    in_junction = np.asarray(town01.lanes.junction_id)[p.lane] >= 0
    assert in_junction.any() and not in_junction[0] and not in_junction[-1]
    assert set(p.option[in_junction].tolist()) == {int(expected)}
    assert set(p.option[~in_junction].tolist()) == {int(RoadOption.LANEFOLLOW)}
    # Independent check: heading before vs after the junction. CARLA's frame is left-handed (+y is
    # south when x is east), so a positive cross product z (a clockwise turn from above) is RIGHT.
    d_in = p.xy[1] - p.xy[0]
    d_out = p.xy[-1] - p.xy[-2]
    cross = d_in[0] * d_out[1] - d_in[1] * d_out[0]
    assert (cross > 0) == (expected == RoadOption.RIGHT)
    assert abs(cross) / (np.linalg.norm(d_in) * np.linalg.norm(d_out)) > 0.95  # a ~90 deg turn
    # Longer than the straight line between the keypoints, shorter than the L-shaped path.
    d = np.abs(keypoints[1, :2] - keypoints[0, :2])
    assert np.hypot(*d) < p.length_m < d.sum()


def test_same_lane_backwards_loops_round_the_block(town01: Town) -> None:
    # Two points on the straight from RIGHT_TURN's exit, the second one behind the first.
    kp = np.array([[122.69, 1.95, 0.0], [112.69, 1.95, 0.0]])
    p = plan_route(town01, kp, "loop")
    assert p.length_m > 100.0
    route = RouteConfig("loop", "Town01", kp)
    _, problems = check_route(route, town01)
    assert [pr.kind for pr in problems] == ["detour"]


def test_unplannable_keypoint_names_route_and_index(town01: Town) -> None:
    kp = np.array([[92.37, 21.24, 0.0], [112.69, 1.95, 0.0], [-500.0, -500.0, 0.0]])
    with pytest.raises(
        RoutePlanningError, match=r"route R7: keypoint 2 at \(-500\.0, -500\.0\) is \d+"
    ):
        plan_route(town01, kp, "R7")
    with pytest.raises(RoutePlanningError, match="route R8: needs at least 2 keypoints"):
        plan_route(town01, kp[:1], "R8")


def test_global_plan_downsampling(town01: Town) -> None:
    kp = np.array(
        [[92.37, 80.0, 0.0], [92.37, 21.24, 0.0], [112.69, 1.95, 0.0], [300.0, 1.95, 0.0]]
    )
    p = plan_route(town01, kp, "gp")
    gp = global_plan(p, town01, spacing_m=50.0)
    idx = gp.index
    assert idx[0] == 0 and idx[-1] == p.num_points - 1
    # Kept wherever the option changes.
    changes = np.flatnonzero(np.diff(p.option) != 0) + 1
    assert set(changes.tolist()) <= set(idx.tolist())
    # Between kept points of one option, at most one spacing (+ one step) of travel.
    gaps = np.diff(p.s_m[idx])
    assert gaps.max() <= 50.0 + 2.0
    assert len(downsample_index(p, 1e9)) < len(idx)
    assert [o for _, o in gp.world] == [RoadOption(int(o)) for o in p.option[idx]]
    x, y, z, yaw = gp.world[0][0]
    assert (x, y) == pytest.approx(tuple(p.xy[0])) and yaw == pytest.approx(
        np.degrees(p.yaw_rad[0])
    )
    gps = np.array([[g["lat"], g["lon"], g["z"]] for g, _ in gp.gps])
    back = town01.geo.from_gps(gps)
    np.testing.assert_allclose(back[:, :2], p.xy[idx], atol=1e-3)
