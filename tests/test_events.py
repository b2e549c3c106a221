"""Ego events on hand-built situations: a tiny straight-road town double (duck-typed area, signals,
lanes) and a few checks on a real CARLA town."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import shapely
from numpy.typing import NDArray

from harness.maps import load_town
from harness.sim.events import EventConfig, EventDetector
from harness.world.state import (
    ActorArrays,
    ActorKind,
    ActorRole,
    Event,
    EventKind,
    LightState,
    WorldState,
)

DT = 0.05
EGO_L, EGO_W = 4.0, 2.0
LANE_Y = 2.0  # centre of the +x lane; the road spans y in [-4, 4]
LIGHT_X = 50.0  # stop line of light 0 across the +x lane
SIGN_X = 120.0  # stop line of stop sign 0 across the +x lane; stop area x in [110, 120]


@dataclass(frozen=True)
class _Area:
    drivable: shapely.Geometry

    def contains(self, xy: NDArray[np.float64]) -> NDArray[np.bool_]:
        xy = np.asarray(xy)
        return np.asarray(shapely.contains_xy(self.drivable, xy[..., 0], xy[..., 1]))


@dataclass(frozen=True)
class _Signals:
    stop_a: NDArray[np.float64]
    stop_b: NDArray[np.float64]
    stop_owner: NDArray[np.int64]
    stop_kind: NDArray[np.int64]
    stop_lane: NDArray[np.int64]
    areas: tuple[shapely.Geometry, ...]

    def stop_area(self, i: int) -> shapely.Geometry:
        return self.areas[i]


@dataclass(frozen=True)
class _Lanes:
    start: NDArray[np.int64]
    count: NDArray[np.int64]
    xy: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]


@dataclass(frozen=True)
class _Town:
    area: _Area
    signals: _Signals
    lanes: _Lanes = field(repr=False)


def _straight_town() -> _Town:
    """Road x in [-100, 200], y in [-4, 4]; lane 0 drives +x at y=2, lane 1 drives -x at y=-2."""
    xs = np.arange(-100.0, 201.0)
    xy = np.concatenate(
        [
            np.stack([xs, np.full_like(xs, LANE_Y)], 1),
            np.stack([xs[::-1], np.full_like(xs, -LANE_Y)], 1),
        ]
    )
    yaw = np.concatenate([np.zeros(xs.size), np.full(xs.size, np.pi)])
    lanes = _Lanes(np.array([0, xs.size]), np.array([xs.size, xs.size]), xy, yaw)
    signals = _Signals(
        stop_a=np.array(
            [[LIGHT_X, 4.0], [SIGN_X, 4.0]]
        ),  # written b -> a against the lane on purpose
        stop_b=np.array([[LIGHT_X, 0.0], [SIGN_X, 0.0]]),
        stop_owner=np.array([0, 0]),
        stop_kind=np.array([0, 1]),
        stop_lane=np.array([0, 0]),
        areas=(shapely.box(LIGHT_X - 10, 0, LIGHT_X, 4), shapely.box(SIGN_X - 10, 0, SIGN_X, 4)),
    )
    return _Town(area=_Area(shapely.box(-100, -4, 200, 4)), signals=signals, lanes=lanes)


@dataclass(frozen=True)
class _Other:
    actor_id: int
    kind: ActorKind
    x: float
    y: float
    yaw: float = 0.0
    length: float = 4.0
    width: float = 2.0


def _state(
    frame: int,
    ego: tuple[float, float, float, float],
    others: tuple[_Other, ...] = (),
    light: LightState = LightState.GREEN,
) -> WorldState:
    """Ego (x, y, yaw, speed) plus others in a capacity-8 padded state with one light."""
    a = ActorArrays.empty(8)
    rows = [(0, ActorKind.VEHICLE, ego[0], ego[1], ego[2], EGO_L, EGO_W, ego[3])]
    rows += [(o.actor_id, o.kind, o.x, o.y, o.yaw, o.length, o.width, 0.0) for o in others]
    for r, (aid, kind, x, y, yaw, length, width, speed) in enumerate(rows):
        a.actor_id[r], a.kind[r], a.valid[r] = aid, kind, True
        a.role[r] = ActorRole.EGO if r == 0 else ActorRole.SCENARIO
        a.x[r], a.y[r], a.yaw[r], a.speed[r] = x, y, yaw, speed
        a.length[r], a.width[r], a.height[r] = length, width, 1.5
    return WorldState(frame, frame * DT, a, np.array([light], np.int8), np.zeros(1))


def _run(det: EventDetector, states: list[WorldState]) -> list[Event]:
    out: list[Event] = []
    prev = None
    for s in states:
        out += det.detect(prev, s)
        prev = s
    return out


def _kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


@pytest.fixture()
def town() -> _Town:
    return _straight_town()


def test_head_on_collision_is_one_event(town: _Town) -> None:
    # ego east at 5 m/s from x=0, oncoming car west at 5 m/s from x=30: boxes overlap for ~16 frames
    states = [
        _state(
            f,
            (0.25 * f, LANE_Y, 0.0, 5.0),
            (_Other(7, ActorKind.VEHICLE, 30.0 - 0.25 * f, LANE_Y, np.pi),),
        )
        for f in range(100)
    ]
    events = _run(EventDetector(town, None), states)
    assert _kinds(events) == [EventKind.COLLISION_VEHICLE]
    e = events[0]
    assert e.other_id == 7
    # front bumpers meet when the centres are 4 m apart: 30 - 0.5 f = 4 -> f = 52
    assert e.frame == 52 and e.x == pytest.approx(13.0)


def test_events_attached_to_the_state_between_ticks_change_nothing(town: _Town) -> None:
    # the simulator re-creates each state with its events before the next tick
    det = EventDetector(town, None)
    prev: WorldState | None = None
    events: list[Event] = []
    for f in range(100):
        car = _Other(7, ActorKind.VEHICLE, 30.0 - 0.25 * f, LANE_Y, np.pi)
        cur = _state(f, (0.25 * f, LANE_Y, 0.0, 5.0), (car,))
        new = det.detect(prev, cur)
        events += new
        prev = replace(cur, events=new) if new else cur
    assert _kinds(events) == [EventKind.COLLISION_VEHICLE]


def test_side_swipe_is_one_event(town: _Town) -> None:
    # a car 1.9 m to the side (0.1 m lateral overlap) overtakes at +0.5 m/tick relative speed
    states = [
        _state(
            f,
            (0.25 * f, LANE_Y, 0.0, 5.0),
            (_Other(3, ActorKind.VEHICLE, -10.0 + 0.75 * f, LANE_Y - 1.9),),
        )
        for f in range(80)
    ]
    events = _run(EventDetector(town, None), states)
    assert _kinds(events) == [EventKind.COLLISION_VEHICLE]
    assert events[0].other_id == 3


def test_near_miss_parallel_gives_no_collision(town: _Town) -> None:
    states = [
        _state(
            f,
            (0.25 * f, LANE_Y, 0.0, 5.0),
            (_Other(3, ActorKind.VEHICLE, -10.0 + 0.75 * f, LANE_Y - 2.2),),
        )
        for f in range(80)
    ]
    assert _run(EventDetector(town, None), states) == []


def test_near_miss_rotated_45_deg_gives_no_collision(town: _Town) -> None:
    # a 2x2 box turned 45 deg, its face 0.2 m from the ego's front-left corner (2, 1) along the
    # diagonal: its axis-aligned bounding box overlaps the ego's, the boxes do not
    cx, cy = 2.0 + 1.2 / np.sqrt(2.0), LANE_Y + 1.0 + 1.2 / np.sqrt(2.0)
    prop = _Other(9, ActorKind.STATIC, cx, cy, np.pi / 4, 2.0, 2.0)
    assert cx - np.sqrt(2.0) < 2.0 and cy - np.sqrt(2.0) < LANE_Y + 1.0  # the AABBs overlap
    states = [_state(f, (0.0, LANE_Y, 0.0, 0.0), (prop,)) for f in range(5)]
    assert _run(EventDetector(town, None), states) == []
    # 0.3 m closer along the diagonal they overlap: one static collision
    shift = 0.3 / np.sqrt(2.0)
    hit = _Other(9, ActorKind.STATIC, cx - shift, cy - shift, np.pi / 4, 2.0, 2.0)
    states = [_state(f, (0.0, LANE_Y, 0.0, 0.0), (hit,)) for f in range(5)]
    assert _kinds(_run(EventDetector(town, None), states)) == [EventKind.COLLISION_STATIC]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ActorKind.PEDESTRIAN, EventKind.COLLISION_PEDESTRIAN),
        (ActorKind.STATIC, EventKind.COLLISION_STATIC),
        (ActorKind.BICYCLE, EventKind.COLLISION_VEHICLE),
        (ActorKind.EMERGENCY, EventKind.COLLISION_VEHICLE),
    ],
)
def test_collision_kind_follows_the_other_actor(
    town: _Town, kind: ActorKind, expected: EventKind
) -> None:
    other = _Other(11, kind, 2.0, LANE_Y, 0.0, 0.6, 0.6)  # 0.3 m into the ego's front
    states = [_state(0, (0.0, LANE_Y, 0.0, 0.0)), _state(1, (0.0, LANE_Y, 0.0, 0.0), (other,))]
    events = _run(EventDetector(town, None), states)
    assert _kinds(events) == [expected] and events[0].other_id == 11


def test_two_actors_hit_in_one_tick_give_two_events(town: _Town) -> None:
    ped = _Other(4, ActorKind.PEDESTRIAN, 2.2, LANE_Y, 0.0, 0.6, 0.6)
    cone = _Other(5, ActorKind.STATIC, -2.2, LANE_Y, 0.0, 0.6, 0.6)
    events = EventDetector(town, None).detect(None, _state(0, (0.0, LANE_Y, 0.0, 0.0), (ped, cone)))
    assert sorted((e.kind, e.other_id) for e in events) == [
        (EventKind.COLLISION_PEDESTRIAN, 4),
        (EventKind.COLLISION_STATIC, 5),
    ]


def _drive(
    x0: float, x1: float, speed: float, light: LightState, yaw: float = 0.0
) -> list[WorldState]:
    """Ego along the +x lane from x0 to x1 at constant speed [m/s]."""
    step = np.sign(x1 - x0) * speed * DT
    xs = np.arange(x0, x1, step)
    return [_state(f, (x, LANE_Y, yaw, speed), light=light) for f, x in enumerate(xs)]


def test_red_light_run_gives_one_event(town: _Town) -> None:
    events = _run(EventDetector(town, None), _drive(30.0, 70.0, 5.0, LightState.RED))
    assert _kinds(events) == [EventKind.RED_LIGHT]
    assert events[0].ref == 0
    # the front bumper (centre + 2 m) reaches the line at x = 50 when the centre passes 48
    assert 48.0 <= events[0].x < 48.0 + 0.25 + 1e-9


def test_crossing_on_green_or_backwards_on_red_gives_none(town: _Town) -> None:
    assert _run(EventDetector(town, None), _drive(30.0, 70.0, 5.0, LightState.GREEN)) == []
    # reversing (heading west) over the line on red: travelling against the lane's direction
    assert _run(EventDetector(town, None), _drive(70.0, 30.0, 5.0, LightState.RED, yaw=np.pi)) == []


def test_stop_sign_roll_gives_stop_sign(town: _Town) -> None:
    # a green light is passed at x=50 on the way; the stop sign at x=120 is rolled at 3 m/s
    events = _run(EventDetector(town, None), _drive(90.0, 140.0, 3.0, LightState.GREEN))
    assert _kinds(events) == [EventKind.STOP_SIGN]
    assert events[0].ref == 1


def test_stop_sign_full_stop_then_go_gives_none(town: _Town) -> None:
    states: list[WorldState] = []
    x, v, f = 110.0, 5.0, 0
    while v > 0.0:  # brake at 3 m/s2 to a stop with the bumper short of the line
        states.append(_state(f, (x, LANE_Y, 0.0, v)))
        x, v, f = x + v * DT, max(v - 3.0 * DT, 0.0), f + 1
    assert SIGN_X - 10.0 < x + EGO_L / 2 < SIGN_X  # stopped inside the stop area
    for _ in range(20):
        states.append(_state(f, (x, LANE_Y, 0.0, 0.0)))
        f += 1
    while x < SIGN_X + 10.0:  # go
        v = min(v + 2.0 * DT, 5.0)
        x += v * DT
        states.append(_state(f, (x, LANE_Y, 0.0, v)))
        f += 1
    assert _run(EventDetector(town, None), states) == []


def test_route_deviation_threshold(town: _Town) -> None:
    route = np.stack([np.arange(0.0, 101.0), np.full(101, LANE_Y)], 1)
    far = [_state(f, (50.0, LANE_Y + 31.0, 0.0, 0.0)) for f in range(5)]
    near = [_state(f, (50.0, LANE_Y - 29.0, 0.0, 0.0)) for f in range(5)]
    devs = [e for e in _run(EventDetector(town, route), far) if e.kind == EventKind.ROUTE_DEVIATION]
    assert len(devs) == 1 and "31.0 m" in devs[0].detail
    assert not [
        e for e in _run(EventDetector(town, route), near) if e.kind == EventKind.ROUTE_DEVIATION
    ]
    # past the route's end the distance is to the last point: 31 m beyond it along x
    tail = [_state(0, (131.0, LANE_Y, 0.0, 0.0))]
    assert _kinds(_run(EventDetector(town, route, EventConfig(route_deviation_m=30.0)), tail)) == [
        EventKind.ROUTE_DEVIATION
    ]


def test_leaving_the_road_is_one_off_drivable(town: _Town) -> None:
    # drift sideways 0.1 m per tick: the left corners (y + 1) pass y = 4 (the road edge) at centre y 3.05
    states = [_state(f, (20.0, LANE_Y + 0.05 + 0.1 * f, 0.0, 2.0)) for f in range(40)]
    events = _run(EventDetector(town, None), states)
    assert _kinds(events) == [EventKind.OFF_DRIVABLE]
    assert events[0].y == pytest.approx(3.05)
    assert "front_left" in events[0].detail or "front_right" in events[0].detail


def test_real_town_red_light_and_off_road(shared_maps: object) -> None:
    town = load_town("Town01")
    sig = town.signals
    lights = np.flatnonzero(np.asarray(sig.stop_kind) == 0)
    assert lights.size > 0
    det = EventDetector(town, None)
    s = int(lights[0])
    owner = int(sig.stop_owner[s])
    mid = 0.5 * (np.asarray(sig.stop_a[s]) + np.asarray(sig.stop_b[s]))
    n = det.stop_normal[s]
    yaw = float(np.arctan2(n[1], n[0]))
    n_lights = int(np.max(np.asarray(sig.stop_owner)[lights])) + 1
    red = np.zeros(n_lights, np.int8)  # LightState.RED everywhere

    def at(frame: int, d: float) -> WorldState:
        a = ActorArrays.empty(2)
        c = mid + (d - EGO_L / 2) * n  # front bumper d metres past the line
        a.actor_id[0], a.valid[0], a.x[0], a.y[0], a.yaw[0] = 0, True, c[0], c[1], yaw
        a.length[0], a.width[0], a.speed[0] = EGO_L, EGO_W, 5.0
        return WorldState(frame, frame * DT, a, red, np.zeros(n_lights))

    states = [at(f, -3.0 + 0.25 * f) for f in range(24)]
    events = _run(det, states)
    assert [e for e in events if e.kind == EventKind.RED_LIGHT][0].ref == owner
    assert sum(e.kind == EventKind.RED_LIGHT for e in events) == 1
    # a box far outside the town's roads
    lo = np.min(town.lanes.xy, axis=0)
    a = ActorArrays.empty(1)
    a.valid[0], a.x[0], a.y[0], a.length[0], a.width[0] = (
        True,
        lo[0] - 200.0,
        lo[1] - 200.0,
        EGO_L,
        EGO_W,
    )
    off = EventDetector(town, None).detect(None, WorldState(0, 0.0, a, red, np.zeros(n_lights)))
    assert _kinds(list(off)) == [EventKind.OFF_DRIVABLE]
