"""Obstacle scenarios on their Bench2Drive routes: the obstacles stand ``distance`` m after the
trigger on the ``direction`` side of the ego's lane and stay; TwoWays variants add an oncoming
flow (after the trigger only) spaced by ``frequency``; side-lane bicycles ride after the trigger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.world.state import ActorKind
from tests.test_scenarios_support import Run, drive

STATIC_CASES = [
    ("24816", "Accident"),
    ("25857", "AccidentTwoWays"),
    ("25318", "ParkedObstacle"),
    ("25896", "ParkedObstacleTwoWays"),
]


def _setup_ids(run: Run) -> list[int]:
    """Actors present at the first tick (the set-up, spawned when the scenario was built)."""
    return sorted(run.actors[0])


@pytest.mark.parametrize(("route_id", "kind"), STATIC_CASES)
def test_obstacle_stands_at_distance_on_direction_side(
    bench2drive_xml: Path, route_id: str, kind: str
) -> None:
    run = drive(bench2drive_xml, route_id, 160)
    assert run.config.type == kind
    params = run.config.params
    distance = float(params["distance"]["value"])
    side = 1.0 if params.get("direction", {"value": "right"})["value"] == "right" else -1.0
    setup = _setup_ids(run)
    assert setup, "the set-up is built before the ego reaches the trigger"
    first = min(setup)
    _, x, y, _, _ = run.actors[0][first]
    s, lat = run.route_frame(x, y)
    assert s == pytest.approx(run.scenario.trigger_s_m + distance, abs=1.5)
    assert side * lat > 0.5 and abs(lat) < 2.0  # displaced towards `direction`, still in the lane
    # what CARLA's CollisionTest calls them: vehicle.* cars (police, crashed, parked) score
    # collisions_vehicle, static.prop.* cones and signs collisions_layout
    expected = ActorKind.STATIC if kind == "ConstructionObstacle" else ActorKind.VEHICLE
    assert all(run.actors[0][aid][0] == expected for aid in setup)
    for aid in setup:  # they never move
        tr = run.track(aid)
        assert np.all(tr[:, 4] == 0.0) and np.ptp(tr[:, 1]) < 1e-6 and np.ptp(tr[:, 2]) < 1e-6
    assert any(run.triggered)


@pytest.mark.parametrize("route_id", ["25857", "25896"])
def test_two_ways_oncoming_flow_after_trigger_spaced_by_frequency(
    bench2drive_xml: Path, route_id: str
) -> None:
    run = drive(bench2drive_xml, route_id, 160)
    lo, hi = (
        float(run.config.params["frequency"]["from"]),
        float(run.config.params["frequency"]["to"]),
    )
    setup = set(_setup_ids(run))
    t0 = run.first_trigger_tick()
    flow = [aid for aid in run.ids_seen() - setup]
    assert flow, "an oncoming flow appears"
    born = [min(t for t, a in enumerate(run.actors) if aid in a) for aid in flow]
    assert min(born) >= t0, "no oncoming vehicle before the trigger"
    snap = run.actors[min(born) + 1]
    pts = []
    for aid in flow:
        if aid in snap:
            kind, x, y, yaw, _ = snap[aid]
            s, lat = run.route_frame(x, y)
            k = int(np.argmin(np.abs(run.ctx.planned.s_m - s)))
            assert kind == ActorKind.VEHICLE and lat < -1.0  # in the lane to the ego's left ...
            assert np.cos(yaw - run.ctx.planned.yaw_rad[k]) < -0.5  # ... driving towards the ego
            pts.append((x, y))
    order = np.array(sorted(pts, key=lambda p: run.route_frame(*p)[0]))
    gaps = np.hypot(*np.diff(order, axis=0).T)
    assert np.all(gaps >= lo - 1.0) and np.all(gaps <= hi + 1.0)


@pytest.mark.parametrize("route_id", ["25300", "25854"])
def test_side_lane_bicycles_ride_at_the_right_edge_after_the_trigger(
    bench2drive_xml: Path, route_id: str
) -> None:
    run = drive(bench2drive_xml, route_id, 200)
    p = run.config.params
    distance, speed = float(p["distance"]["value"]), float(p["bicycle_speed"]["value"]) / 3.6
    t0 = run.first_trigger_tick()
    bikes = [aid for aid, a in run.actors[0].items() if a[0] == ActorKind.BICYCLE]
    assert len(bikes) == 2
    s_first = sorted(run.route_frame(*run.track(aid)[0, 1:3])[0] for aid in bikes)
    assert s_first[1] - s_first[0] == pytest.approx(9.0, abs=0.5), "9 m apart"
    for aid in bikes:
        tr = run.track(aid)
        s, lat = run.route_frame(tr[0, 1], tr[0, 2])
        assert (
            run.scenario.trigger_s_m + distance - 0.5
            <= s
            <= run.scenario.trigger_s_m + distance + 9.0 + 1.0
        )
        # ScenarioRunner: 0.55 x half the lane width to the right
        assert lat == pytest.approx(0.55 * 0.5 * run.scenario.width_m, abs=0.15)
        assert np.all(tr[: t0 + 1, 4] == 0.0), "bicycles wait for the trigger"
        assert tr[-1, 4] == pytest.approx(speed, abs=0.2)
        s_end, lat_end = run.route_frame(tr[-1, 1], tr[-1, 2])
        assert s_end > s + 5.0 and 0.3 < lat_end < 2.0


def test_two_ways_switch_the_wrong_direction_test_off_after_the_trigger(
    bench2drive_xml: Path,
) -> None:
    """As leaderboard 2.0's TwoWays scenarios: the way around is the opposite lane, so the
    wrong-direction check is off once the scenario triggered (and on again when it ends)."""
    run = drive(bench2drive_xml, "25896", 160)
    assert any(run.triggered)
    assert run.ctx.criteria.outside_lanes.wrong_direction_active is False
    for behaviour in run.scenario.closing():  # the scenario's end switches it back on
        behaviour.tick_once()
    assert run.ctx.criteria.outside_lanes.wrong_direction_active is True


def _largest_free_gap(run: Run, ids: list[int], lane_half_m: float) -> float:
    """Widest lateral stretch of the ego's lane [-half, half] that no box of ``ids`` covers."""
    spans = []
    for aid in ids:
        tr = run.track(aid)
        _, lat = run.route_frame(tr[0, 1], tr[0, 2])
        half = 0.5 * float(run.states[0].actors.width[run.states[0].actors.actor_id == aid][0])
        spans.append((lat - half, lat + half))
    edge, gap = -lane_half_m, 0.0
    for lo, hi in sorted(spans):
        gap = max(gap, lo - edge)
        edge = max(edge, hi)
    return max(gap, lane_half_m - edge)


def test_construction_closes_the_whole_lane(bench2drive_xml: Path) -> None:
    """ScenarioRunner's set-up: a warning board across the lane 5 m before the construction
    point, cones 2 m apart along the lane's left edge for 8 m and then 1 m apart across it: at
    the board and at the cone row across the lane no gap is as wide as the ego (2.1 m)."""
    run = drive(bench2drive_xml, "24785", 20)
    assert run.config.type == "ConstructionObstacle"
    scn = run.scenario
    at = scn.trigger_s_m + float(run.config.params["distance"]["value"])
    half = 0.5 * scn.width_m
    rows: dict[int, list[int]] = {}
    for aid in _setup_ids(run):
        s, _ = run.route_frame(*run.track(aid)[0, 1:3])
        rows.setdefault(round(s - at), []).append(aid)
    assert sorted(rows) == [-5, 2, 4, 6, 8]
    assert _largest_free_gap(run, rows[-5], half) < 2.1, "the board blocks the lane"
    assert _largest_free_gap(run, rows[8], half) < 2.1, "the cone row closes the lane"
    for k in (2, 4, 6):  # the cones along the edge away from ``direction`` (right: the left edge)
        (cone,) = rows[k]
        _, lat = run.route_frame(*run.track(cone)[0, 1:3])
        assert lat == pytest.approx(-0.85 * half, abs=0.1)
