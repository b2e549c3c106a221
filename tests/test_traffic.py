"""Background traffic on real CARLA towns: following, red lights, long collision-free runs,
determinism. Uses load_town on the shared maps (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Polygon

from harness.boxes import boxes_overlap
from harness.dynamics.idm import IDMParams
from harness.maps import load_town
from harness.sim.embedded.lights import LightSchedule
from harness.sim.embedded.traffic import (
    STOP_SIGN,
    STOPPED_MPS,
    TrafficModel,
    TrafficParams,
    conflict_matrix,
)
from harness.world.state import LightState

DT = 0.05  # [s]
SAME_LEVEL_M = 2.0  # [m] boxes further apart in height are on a bridge above one another


def _model(town_name: str, seed: int = 0) -> TrafficModel:
    return TrafficModel(load_town(town_name), TrafficParams(), np.random.default_rng(seed))


def _long_free_lane(tm: TrafficModel, min_len: float) -> int:
    """A long lane outside junctions with no stop line on it."""
    t = tm.tables
    ok = (t.length_m > min_len) & ~t.in_junction & np.isnan(t.stop_s_m) & t.ok
    return int(np.flatnonzero(ok)[0])


def test_conflict_matrix_hand_built() -> None:
    polys = [
        Polygon([(0, -1), (20, -1), (20, 1), (0, 1)]),  # west-east
        Polygon([(9, -10), (11, -10), (11, 10), (9, 10)]),  # crosses lane 0
        Polygon([(12, 1), (20, 1), (20, 3), (12, 3)]),  # beside lane 0: touching only
        Polygon([(9, -10), (11, -10), (11, 10), (9, 10)]),  # same place, other junction
    ]
    jid = np.array([5, 5, 5, 6])
    c = conflict_matrix(polys, jid, np.arange(4))
    expected = np.zeros((4, 4), bool)
    expected[0, 1] = expected[1, 0] = True
    np.testing.assert_array_equal(c, expected)


def test_follower_stops_behind_stopped_obstacle(shared_maps: Path) -> None:
    tm = _model("Town01")
    lane = _long_free_lane(tm, 150.0)
    tm.add_vehicle(lane, 10.0, speed_mps=8.0, desired_mps=10.0)
    (xy, yaw) = tm.town.lanes.position(lane, 120.0)
    obstacle = np.array([[xy[0], xy[1], yaw, 4.0, 2.0]])
    min_gap = np.inf
    for _ in range(int(40 / DT)):
        tm.step(DT, obstacle, np.zeros(1))
        gap = (120.0 - 2.0) - (tm.s[0] + 0.5 * tm.length[0])
        min_gap = min(min_gap, gap)
        assert tm.lane[0] == lane
    assert abs(gap - IDMParams().s0_m) <= 0.3
    assert min_gap > 0.0
    assert tm.speed[0] < 0.05


def test_queue_stops_at_red_line_and_goes_on_green(shared_maps: Path) -> None:
    tm = _model("Town01")
    t = tm.tables
    lights = np.flatnonzero(
        (t.stop_kind == 0) & (t.stop_s_m > 60.0) & (t.length_m - t.stop_s_m < 5.0)
    )
    lane = int(lights[0])
    line = float(t.stop_s_m[lane])
    tm.add_vehicle(lane, line - 50.0, speed_mps=8.0)
    tm.add_vehicle(lane, line - 62.0, speed_mps=8.0)
    state = np.full(tm.town.signals.lights_count, LightState.RED, dtype=np.int8)
    for _ in range(int(30 / DT)):
        tm.step(DT, light_state=state)
        assert tm.s[0] + 0.5 * tm.length[0] <= line  # never past the line on red
    front = tm.s[0] + 0.5 * tm.length[0]
    assert line - 1.5 <= front <= line
    assert tm.speed.max() < 0.05
    follower_gap = (tm.s[0] - 0.5 * tm.length[0]) - (tm.s[1] + 0.5 * tm.length[1])
    assert abs(follower_gap - IDMParams().s0_m) <= 0.3
    state[:] = LightState.GREEN
    first = int(tm.ids[0])
    for _ in range(int(15 / DT)):
        tm.step(DT, light_state=state)
    assert int(tm.ids[0]) == first
    assert tm.lane[0] != lane and tm.speed[0] > 2.0  # went through the junction


def test_stop_sign_full_stop_then_proceeds(shared_maps: Path) -> None:
    tm = _model("Town01")
    t = tm.tables
    lane = int(np.flatnonzero((t.stop_kind == 0) & (t.stop_s_m > 60.0))[0])
    t.stop_kind[lane], t.stop_light[lane] = STOP_SIGN, -1  # turn this light's line into a stop sign
    line = float(t.stop_s_m[lane])
    tm.add_vehicle(lane, line - 40.0, speed_mps=8.0)
    held, left = 0.0, False
    for _ in range(int(25 / DT)):
        tm.step(DT)
        if tm.lane[0] == lane:
            front = tm.s[0] + 0.5 * tm.length[0]
            if tm.speed[0] < STOPPED_MPS:
                assert line - 1.5 <= front <= line
                held += DT
        else:
            left = True
    assert held >= TrafficParams().stop_sign_hold_s - 1e-9
    assert left


def _run(town_name: str, n: int, ticks: int, seed: int = 0) -> tuple[TrafficModel, float, float]:
    tm = _model(town_name, seed)
    tm.spawn(n)
    assert tm.n >= 40
    sched = LightSchedule(tm.town.signals)
    speeds, stopped_all = [], np.ones(tm.n, dtype=bool)
    for k in range(ticks):
        state, _ = sched.states_at(k * DT)
        tm.step(DT, light_state=state)
        b = tm.boxes
        hit = boxes_overlap(b[:, None], b[None, :]) & (
            np.abs(tm.z[:, None] - tm.z[None, :]) < SAME_LEVEL_M
        )
        np.fill_diagonal(hit, False)
        assert not hit.any(), f"overlap at tick {k}: {np.argwhere(hit)[:2].tolist()}"
        speeds.append(float(tm.speed.mean()))
        if k >= ticks - int(60 / DT):
            stopped_all &= tm.speed < 0.1
    return tm, float(np.mean(speeds)), float(stopped_all.mean())


@pytest.mark.slow
@pytest.mark.parametrize("town_name", ["Town05", "Town03"])
def test_two_minutes_of_traffic_without_overlap(shared_maps: Path, town_name: str) -> None:
    _, mean_speed, stuck = _run(town_name, 45, 2400)
    assert mean_speed > 2.0
    assert stuck < 0.2


def test_same_seed_same_traffic(shared_maps: Path) -> None:
    a, _, _ = _run("Town05", 40, 200, seed=3)
    b, _, _ = _run("Town05", 40, 200, seed=3)
    c, _, _ = _run("Town05", 40, 200, seed=4)
    for name in ("ids", "lane", "s", "x", "y", "yaw", "speed", "accel"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x, c.x)
