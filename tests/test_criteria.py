"""Route criteria on hand-built WorldState sequences along a straight route (x from 0 m, 1 m
points, heading +x), checked against hand-computed leaderboard outcomes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from harness.leaderboard.criteria import RouteGeometry, town_lane_check
from harness.leaderboard.outcome import FAILURE_SIMULATION, InfractionKey
from harness.leaderboard.route_criteria import CriteriaConfig, ReportKind, RouteCriteria
from harness.leaderboard.statistics import BENCH2DRIVE, route_scores
from harness.world.state import ActorArrays, ActorKind, ActorRole, Event, EventKind, WorldState

DT = 0.05


def straight_route(length_m: int) -> RouteGeometry:
    xs = np.arange(length_m + 1, dtype=np.float64)
    return RouteGeometry.from_arrays(np.column_stack([xs, np.zeros_like(xs)]))


def state(
    frame: int,
    x: float,
    y: float = 0.0,
    speed: float = 5.0,
    events: Iterable[Event] = (),
    others: Iterable[tuple[int, ActorKind, ActorRole, float]] = (),
    time_s: float | None = None,
) -> WorldState:
    """Ego at (x, y) heading +x; ``others`` = (actor_id, kind, role, speed) rows."""
    a = ActorArrays.empty(4)
    rows = [(0, ActorKind.VEHICLE, ActorRole.EGO, speed), *others]
    for r, (aid, kind, role, v) in enumerate(rows):
        a.actor_id[r], a.kind[r], a.role[r], a.valid[r], a.speed[r] = aid, kind, role, True, v
        a.length[r], a.width[r] = 4.8, 2.1
        a.x[r] = x if r == 0 else x + 50.0 + 10.0 * r
    a.y[0] = y
    t = frame * DT if time_s is None else time_s
    return WorldState(frame, t, a, np.zeros(0, np.int8), np.zeros(0), tuple(events))


def event(kind: EventKind, frame: int, x: float, other_id: int = -1, ref: int = -1) -> Event:
    return Event(kind, frame, frame * DT, x, 0.0, other_id=other_id, ref=ref)


def drive(
    crit: RouteCriteria,
    xs: Iterable[float],
    events: dict[int, list[Event]] | None = None,
    **kw: object,
) -> int:
    frame = 0
    for frame, x in enumerate(xs):
        crit.update(state(frame, x, events=(events or {}).get(frame, ()), **kw))  # type: ignore[arg-type]
    return frame


def test_completed_at_99_5_percent_within_10_m_is_perfect() -> None:
    crit = RouteCriteria(straight_route(200))
    drive(crit, np.arange(0.5, 199.3, 1.0).tolist() + [199.2])
    assert crit.done == (True, "completed")
    out = crit.summary()
    assert out.status == "Perfect" and out.route_completion_pct == 100.0 and out.completed


def test_98_percent_is_not_completed() -> None:
    crit = RouteCriteria(straight_route(200))
    drive(crit, np.arange(0.5, 196.6, 1.0))  # last x 196.5 -> point 196 passed = 98.0 %
    assert crit.done == (False, "")
    out = crit.summary()
    assert out.route_completion_pct == 98.0 and out.status == "Failed" and not out.completed


def test_completed_with_an_infraction_is_completed_not_perfect() -> None:
    crit = RouteCriteria(straight_route(100))
    hit = {20: [event(EventKind.COLLISION_STATIC, 20, 20.5, other_id=7)]}
    drive(crit, np.arange(0.5, 101.0, 1.0), hit)
    out = crit.summary()
    assert out.status == "Completed"
    assert len(out.messages()["collisions_layout"]) == 1
    assert route_scores(out).score_penalty == pytest.approx(0.65)


# red lights and stop signs: tests/test_traffic_rules.py (they read the town's stop lines, not
# the simulator's RED_LIGHT / STOP_SIGN events)


def test_deviation_of_31_m_ends_the_route() -> None:
    crit = RouteCriteria(straight_route(100))
    drive(crit, np.arange(0.5, 20.0, 1.0))
    crit.update(state(20, 20.0, y=29.0))
    assert not crit.done[0]
    crit.update(state(21, 20.0, y=31.0))
    assert crit.done == (True, "deviated")
    out = crit.summary()
    assert out.status == "Failed - Agent deviated from the route"
    assert out.messages()["route_dev"] == [
        "Agent deviated from the route at (x=20.0, y=31.0, z=0.0)"
    ]
    assert out.route_completion_pct == 19.0


@pytest.mark.parametrize(("seconds", "blocked"), [(59.0, False), (61.0, True)])
def test_blocked_after_60_s_with_the_bench2drive_setting(seconds: float, blocked: bool) -> None:
    crit = RouteCriteria(straight_route(100), CriteriaConfig.bench2drive())
    ticks = round(seconds / DT) + 1
    for f in range(ticks):
        crit.update(state(f, 10.5, speed=0.0))
    assert crit.done == ((True, "blocked") if blocked else (False, ""))
    if blocked:
        out = crit.summary()
        assert out.status == "Failed - Agent got blocked"
        assert out.messages()["vehicle_blocked"] == ["Agent got blocked at (x=10.5, y=0.0, z=0.0)"]


def test_blocked_test_can_be_paused_by_a_scenario() -> None:
    crit = RouteCriteria(straight_route(100), CriteriaConfig(blocked_time_s=1.0))
    crit.update(state(0, 10.5, speed=0.0))
    crit.set_blocked_test_active(False)
    for f in range(1, 100):
        crit.update(state(f, 10.5, speed=0.0))
    assert not crit.done[0]


def test_collisions_with_one_actor_merge_within_5_s() -> None:
    car = [(7, ActorKind.VEHICLE, ActorRole.BACKGROUND, 3.0)]
    crit = RouteCriteria(straight_route(100))
    hits = {20: [event(EventKind.COLLISION_VEHICLE, 20, 3.0, other_id=7)],
            60: [event(EventKind.COLLISION_VEHICLE, 60, 7.0, other_id=7)]}  # fmt: skip
    for f in range(100):  # 0.1 m per tick: 2 s between hits, ego moves 4 m
        crit.update(state(f, 1.0 + 0.1 * f, events=hits.get(f, ()), others=car))
    assert len(crit.summary().by_key()["collisions_vehicle"]) == 1

    crit = RouteCriteria(straight_route(100))
    hits = {20: [event(EventKind.COLLISION_VEHICLE, 20, 3.0, other_id=7)],
            140: [event(EventKind.COLLISION_VEHICLE, 140, 15.0, other_id=7)]}  # fmt: skip
    for f in range(150):  # 6 s between hits, ego 12 m further on
        crit.update(state(f, 1.0 + 0.1 * f, events=hits.get(f, ()), others=car))
    cols = crit.summary().by_key()["collisions_vehicle"]
    assert len(cols) == 2
    assert (
        cols[0].message
        == "Agent collided against object with type=vehicle and id=7 at (x=3.0, y=0.0, z=0.0)"
    )


def test_collision_rules_by_location_speed_and_kind() -> None:
    crit = RouteCriteria(straight_route(100))
    crit.update(
        state(0, 1.0, speed=0.0, events=[event(EventKind.COLLISION_VEHICLE, 0, 1.0, other_id=5)])
    )
    crit.update(state(1, 1.5, events=[event(EventKind.COLLISION_PEDESTRIAN, 1, 1.5, other_id=9)]))
    crit.update(state(2, 2.0, events=[event(EventKind.COLLISION_STATIC, 2, 2.0)]))  # within 5 m
    crit.update(state(3, 9.0, events=[event(EventKind.COLLISION_STATIC, 3, 9.0)]))
    by = crit.summary().by_key()
    assert len(by["collisions_vehicle"]) == 0  # standing ego: not its fault
    assert len(by["collisions_pedestrian"]) == 1 and len(by["collisions_layout"]) == 1
    assert "type=static.layout and id=-1" in by["collisions_layout"][0].message


def test_outside_route_lanes_share_of_progress() -> None:
    def lane_check(x: float, y: float, yaw: float) -> tuple[bool, bool]:
        return y > 2.0, False

    crit = RouteCriteria(straight_route(100), lane_check=lane_check)
    for k in range(101):
        crit.update(state(k, k + 0.5, y=3.0 if 40 <= k < 50 else 0.0))
    out = crit.summary()
    assert out.outside_lanes_pct == pytest.approx(10.0) and out.outside_lanes_m == pytest.approx(
        10.0
    )
    assert out.messages()["outside_route_lanes"] == [
        "Agent went outside its route lanes for about 10.0 meters (10.0% of the completed route)"
    ]
    assert route_scores(out).score_penalty == pytest.approx(0.9)
    assert out.status == "Completed"


def test_wrong_direction_can_be_switched_off() -> None:
    crit = RouteCriteria(straight_route(100), lane_check=lambda x, y, yaw: (False, True))
    crit.set_wrong_direction_active(False)
    drive(crit, np.arange(0.5, 30.0, 1.0))
    assert crit.summary().outside_lanes_m == 0.0


def test_minimum_speed_checkpoints() -> None:
    """Ego 5 m/s, background 10 m/s: 4 checkpoints of 50 % -> IP 0.85^4 (2.0), 1 (Bench2Drive)."""
    bg = [
        (3, ActorKind.VEHICLE, ActorRole.BACKGROUND, 10.0),
        (4, ActorKind.PEDESTRIAN, ActorRole.PEDESTRIAN, 1.0),
    ]
    crit = RouteCriteria(straight_route(100))
    for k in range(101):
        crit.update(state(k, k + 0.5, speed=5.0, others=bg))
    out = crit.summary()
    assert out.min_speed_checkpoints_pct == (50.0, 50.0, 50.0, 50.0)
    assert (
        out.messages()["min_speed_infractions"][0]
        == "Average speed is 50.0% of the surrounding traffic's one"
    )
    assert route_scores(out).score_penalty == pytest.approx(0.85**4)
    assert route_scores(out, BENCH2DRIVE).score_penalty == 1.0
    assert out.status == "Completed"
    assert crit.summary().num_infractions == 4  # summary is idempotent


def test_route_timeout_grows_with_progress_and_fails() -> None:
    crit = RouteCriteria(
        straight_route(100), CriteriaConfig(speed_limit_mps=10.0, blocked_time_s=1e4)
    )
    drive(crit, np.arange(0.5, 51.0, 1.0))  # point 50 passed: 50 m at 1 m/s credit
    assert crit.timeout.timeout_s == pytest.approx(350.0)
    crit.update(state(51, 50.5, speed=0.0, time_s=350.0))  # the clock started at t = 0
    assert not crit.done[0]
    crit.update(state(52, 50.5, speed=0.0, time_s=350.1))
    assert crit.done == (True, "route_timeout")
    out = crit.summary()
    assert out.status == "Failed - Agent timed out" and out.messages()["route_timeout"] == [
        "Route timeout."
    ]


def test_tick_limit_scenario_reports_and_external_failure() -> None:
    crit = RouteCriteria(straight_route(100), CriteriaConfig(tick_limit=10))
    drive(crit, np.arange(0.5, 9.6, 1.0))
    assert crit.done == (True, "tick_limit")
    crit.report(ReportKind.SCENARIO_TIMEOUT)
    crit.report("yield_emergency_vehicle")
    out = crit.summary()
    assert out.status == "Failed - TickRuntime"
    assert out.messages()["scenario_timeouts"] == ["Agent timed out a scenario"]
    assert out.messages()["yield_emergency_vehicle_infractions"] == [
        "Agent failed to yield to an emergency vehicle"
    ]
    assert route_scores(out).score_penalty == pytest.approx(0.49)

    crit = RouteCriteria(straight_route(100))
    drive(crit, np.arange(0.5, 5.0, 1.0))
    crit.fail(FAILURE_SIMULATION)
    assert crit.done == (True, "failure")
    assert crit.summary().status == "Failed - Simulation crashed"


def test_town_lane_check_on_a_builtin_town() -> None:
    from harness.maps import load_town

    lanes = load_town("Harness01").lanes
    lane = int(np.flatnonzero(lanes.junction_id < 0)[0])
    (x, y), yaw = lanes.position(lane, float(lanes.length_m[lane]) / 2.0)
    check = town_lane_check(load_town("Harness01"))
    assert check(float(x), float(y), float(yaw)) == (False, False)
    assert check(float(x), float(y), float(yaw) + np.pi) == (False, True)
    far = lanes.xy.max(axis=0) + 200.0
    assert check(float(far[0]), float(far[1]), 0.0)[0]


def test_infraction_keys_are_the_leaderboards() -> None:
    assert [k.value for k in InfractionKey] == [
        "collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light",
        "stop_infraction", "outside_route_lanes", "min_speed_infractions",
        "yield_emergency_vehicle_infractions", "scenario_timeouts", "route_dev",
        "vehicle_blocked", "route_timeout",
    ]  # fmt: skip


def test_parking_lanes_are_not_outside_the_route_lanes(shared_maps) -> None:
    """The leaderboard's OutsideRouteLanesTest accepts parking lanes (ParkingExit starts there)."""
    import carla

    from harness.leaderboard.criteria import town_lane_check
    from harness.maps import load_town

    town = load_town("Town03")
    parking = None
    for wp in town.cmap.generate_waypoints(2.0):
        side = wp.get_right_lane()
        if side is not None and side.lane_type == carla.LaneType.Parking and wp.junction_id < 0:
            parking = side
            break
    assert parking is not None
    loc, yaw = parking.transform.location, np.radians(parking.transform.rotation.yaw)
    check = town_lane_check(town)
    assert check(loc.x, loc.y, yaw) == (False, False)
    off = np.array([loc.x, loc.y]) + 25.0 * np.array(
        [-np.sin(yaw), np.cos(yaw)]
    )  # 25 m to its right
    assert check(float(off[0]), float(off[1]), yaw)[0] is True
