"""RunningRedLightTest and RunningStopTest geometry (ScenarioRunner's atomic_criteria.py) on a
hand-built straight lane along +x (road 1, lane -1, 3.5 m wide), with outcomes worked by hand.

Ego: 4.8 m long (half-length 2.4 m), so its tail segment runs from 1.92 m (0.8 x 2.4) to 3.4 m
(2.4 + 1) behind its centre. A light's stop line at x = 50 spans y in [-2.1, 2.1] (0.6 lane
widths each side), so the tail touches it for centre x in [51.92, 53.4]. A stop sign's trigger
area x in [45, 50], |y| < 1.75 grows 1.2x about (47.5, 0) to x in [44.5, 50.5]; the ego is
affected while its lane point is within 4 m of (47.5, 0) (x in [43.5, 51.5]) and one of its lane
points x .. x + 4 lies in the grown area (x in [40.5, 50.5]): x in [43.5, 50.5].
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pytest
from numpy.typing import NDArray

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import RouteCriteria
from harness.leaderboard.traffic_rules import (
    RunningRedLight,
    RunningStop,
    SignalGeometry,
    segments_intersect,
)
from harness.maps import load_town
from harness.world.state import ActorArrays, ActorKind, ActorRole, LightState, WorldState

LANE_END_M = 200.0  # [m] the lane runs x = 0 .. 200


def _lane_key(x: float, y: float) -> tuple[int, int, float, float]:
    """Lane -1 of road 1 for |y| < 1.75 (heading +x), else lane -2 of road 1."""
    return (1, -1 if abs(y) < 1.75 else -2, x, 0.0)


def _lane_points(x: float, y: float, ahead: float, step: float) -> NDArray[np.float64]:
    s = x + np.arange(0.0, ahead + 1e-9, step)
    s = s[s <= LANE_END_M]
    return np.column_stack([s, np.zeros_like(s)])


def geometry(light_centre: tuple[float, float] = (50.0, 0.0)) -> SignalGeometry:
    """Light 0 with a stop line at x = 50, light 1 with one at x = 120; stop sign 0 with its
    trigger area before x = 50 (the tests use either the lights or the sign)."""
    area = np.array([[45.0, -1.75], [50.0, -1.75], [50.0, 1.75], [45.0, 1.75]])
    centre = area.mean(axis=0)
    return SignalGeometry(
        line_light=np.array([0, 1]),
        line_a=np.array([[50.0, -2.1], [120.0, -2.1]]),
        line_b=np.array([[50.0, 2.1], [120.0, 2.1]]),
        line_road=np.array([1, 1]), line_lane=np.array([-1, -1]), line_yaw=np.zeros(2),
        light_centre=np.array([light_centre, (120.0, 0.0)]),
        light_xy=np.array([[52.0, -4.0], [122.0, -4.0]]),
        stop_sign=np.array([0]), stop_area=(centre + 1.2 * (area - centre))[None],
        stop_centre=centre[None], sign_xy=np.array([[51.0, 4.0]]),
        lane_key=_lane_key, lane_points=_lane_points,
    )  # fmt: skip


def state(frame: int, x: float, speed: float = 5.0, lights: Iterable[int] = (0, 0),
          yaw: float = 0.0, y: float = 0.0) -> WorldState:  # fmt: skip
    a = ActorArrays.empty(1)
    a.actor_id[0], a.kind[0], a.role[0], a.valid[0] = 0, ActorKind.VEHICLE, ActorRole.EGO, True
    a.x[0], a.y[0], a.yaw[0], a.speed[0], a.length[0], a.width[0] = x, y, yaw, speed, 4.8, 2.1
    ls = np.asarray(list(lights), dtype=np.int8)
    return WorldState(frame, frame * 0.05, a, ls, np.zeros(ls.shape))


def run(test: RunningRedLight | RunningStop, xs: Iterable[float], **kw: object) -> list[float]:
    """Feed the ego at each x; returns the x of every tick that added an infraction."""
    out = []
    for f, x in enumerate(xs):
        n = len(test.items)
        test.update(state(f, x, **kw))  # type: ignore[arg-type]
        if len(test.items) > n:
            out.append(x)
    return out


RED = (LightState.RED, LightState.RED)


def test_segments_intersect_touching_crossing_and_apart() -> None:
    p = np.array
    assert segments_intersect(p([0.0, 0.0]), p([2.0, 0.0]), p([1.0, -1.0]), p([1.0, 1.0]))
    assert segments_intersect(p([0.0, 0.0]), p([1.0, 0.0]), p([1.0, -1.0]), p([1.0, 1.0]))
    assert not segments_intersect(p([0.0, 0.0]), p([0.9, 0.0]), p([1.0, -1.0]), p([1.0, 1.0]))
    assert not segments_intersect(p([0.0, 2.0]), p([2.0, 2.0]), p([1.0, -1.0]), p([1.0, 1.0]))


def test_red_light_counts_when_the_tail_reaches_the_line() -> None:
    xs = np.round(np.arange(45.03, 60.0, 0.1), 2)
    test = RunningRedLight(geometry())
    assert run(test, xs, lights=RED) == [51.93]  # the first x >= 51.92
    inf = test.items[0]
    assert inf.key == InfractionKey.RED_LIGHT and inf.other_id == 0
    assert inf.message == "Agent ran a red light 0 at (x=52.0, y=-4.0, z=0.0)"  # the pole


def test_front_over_the_line_is_no_red_light() -> None:
    # the front bumper (x + 2.4) crosses x = 50 at x = 47.6; the ego stops at x = 51.5
    xs = [*np.arange(45.0, 51.5, 0.1), *([51.5] * 40)]
    assert run(RunningRedLight(geometry()), xs, lights=RED) == []


def test_green_far_or_against_the_lane_is_no_red_light() -> None:
    xs = np.arange(45.0, 60.0, 0.1)
    green = (LightState.GREEN, LightState.GREEN)
    assert run(RunningRedLight(geometry()), xs, lights=green) == []
    # trigger centre (50, 16): the ego centre at x ~ 52 is 16.1 m away (> 15 m)
    assert run(RunningRedLight(geometry((50.0, 16.0))), xs, lights=RED) == []
    # heading -x through the line: the tail is ahead of the centre in +x; against the lane
    back = np.arange(45.0, 40.0, -0.1)
    assert run(RunningRedLight(geometry()), back, lights=RED, yaw=math.pi) == []
    # in the neighbour lane (y = 2.5): the tail's lane is not the stop line's
    assert run(RunningRedLight(geometry()), xs, lights=RED, y=2.5) == []


def test_each_light_once_and_the_last_one_not_again() -> None:
    xs = [*np.arange(45.0, 56.0, 0.5), *np.arange(45.0, 56.0, 0.5), *np.arange(115.0, 126.0, 0.5)]
    test = RunningRedLight(geometry())
    assert run(test, xs, lights=RED) == [52.0, 122.0]
    assert [i.other_id for i in test.items] == [0, 1]


def test_a_tail_that_jumps_the_line_in_one_tick_is_not_seen() -> None:
    # x = 51 -> 53.5: tail segments [47.6, 49.08] and [50.1, 51.58] miss x = 50 (as in CARLA)
    assert run(RunningRedLight(geometry()), [49.0, 51.0, 53.5, 56.0], lights=RED) == []


def test_stop_sign_run_through_is_counted_when_the_ego_leaves_the_trigger() -> None:
    xs = np.round(np.arange(30.05, 60.0, 0.1), 2)
    test = RunningStop(geometry())
    assert run(test, xs) == [50.55]  # the first x past 50.5
    assert test.items[0].message == "Agent ran a stop with id=0 at (x=51.0, y=4.0, z=0.0)"
    assert test.items[0].key == InfractionKey.STOP_INFRACTION


def test_stopping_inside_the_trigger_serves_the_stop() -> None:
    test = RunningStop(geometry())
    xs = np.round(np.arange(30.05, 49.0, 0.1), 2)
    run(test, xs)
    test.update(state(1000, 49.0, speed=0.05))  # below 0.1 m/s while affected
    assert run(test, np.round(np.arange(49.05, 60.0, 0.1), 2)) == []


def test_stopping_before_the_trigger_does_not_serve_it() -> None:
    test = RunningStop(geometry())
    run(test, np.round(np.arange(30.05, 42.0, 0.1), 2))
    test.update(state(1000, 42.0, speed=0.0))  # x = 42: more than 4 m from the trigger centre
    assert run(test, np.round(np.arange(42.05, 60.0, 0.1), 2)) == [50.55]


def test_the_stop_failed_last_is_not_counted_again() -> None:
    test = RunningStop(geometry())
    xs = np.round(np.arange(30.05, 60.0, 0.1), 2)
    assert run(test, xs) == [50.55]
    assert run(test, xs) == []  # the same stop again (e.g. a loop)


def test_route_criteria_count_lights_and_stops_with_the_town_geometry() -> None:
    xs = np.arange(0.5, 100.0, 0.5)
    route = RouteGeometry.from_arrays(np.column_stack([np.arange(201.0), np.zeros(201)]))
    crit = RouteCriteria(route, signals=geometry())
    for f, x in enumerate(xs):
        crit.update(state(f, float(x), lights=RED))
    # the stop sign (left at x > 50.5) and light 0 (tail at x >= 51.92); light 1 is beyond 100
    keys = [i.key for i in crit.summary().infractions]
    assert keys == [InfractionKey.STOP_INFRACTION, InfractionKey.RED_LIGHT]
    # without a town's signals nothing is checked
    crit = RouteCriteria(route)
    for f, x in enumerate(xs):
        crit.update(state(f, float(x), lights=RED))
    assert crit.summary().infractions == ()


def test_town_stop_lines_are_1_2_lane_widths_on_their_lane() -> None:
    town = load_town("Harness01")
    g = SignalGeometry.from_town(town)
    sig, lanes = town.signals, town.lanes
    lights = np.flatnonzero(np.asarray(sig.stop_kind) == 0)
    assert g.line_light.size == lights.size > 0
    for k, i in enumerate(lights):
        width = float(np.hypot(*(sig.stop_b[i] - sig.stop_a[i])))
        assert math.dist(g.line_a[k], g.line_b[k]) == pytest.approx(1.2 * width)
        # 1 m before the line, on its lane (at the line itself the junction begins)
        back = 0.5 * (g.line_a[k] + g.line_b[k]) - np.array(
            [math.cos(g.line_yaw[k]), math.sin(g.line_yaw[k])]
        )
        road, lane, _, _ = g.lane_key(float(back[0]), float(back[1]))
        ln = int(sig.stop_lane[i])
        assert (road, lane) == (int(lanes.road_id[ln]), int(lanes.lane_id[ln]))
        assert (g.line_road[k], g.line_lane[k]) == (road, lane)
