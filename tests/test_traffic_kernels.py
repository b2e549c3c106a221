"""The compiled kernels of the traffic step against the array versions they replaced, kept as test
oracles in ``tests/oracles/traffic_numpy.py`` (leaders, obstacle matching, junction grants, stop
gaps), and the pose kernel against LaneSet.position, on a real town mid-run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from harness.maps import load_town
from harness.sim.embedded.leaders import obstacle_leaders_kernel, vehicle_leaders_kernel
from harness.sim.embedded.lights import LightSchedule
from harness.sim.embedded.right_of_way import OFF, junction_control_kernel, stop_gaps_kernel
from harness.sim.embedded.traffic import TrafficModel, TrafficParams
from tests.oracles.traffic_numpy import (
    junction_control,
    match_kdtree,
    obstacle_leaders,
    stop_gaps,
    vehicle_leaders,
)

DT = 0.05  # [s]


@pytest.fixture(scope="module")
def busy(shared_maps: Path) -> tuple[TrafficModel, np.ndarray]:
    """Town05 with 60 vehicles after 30 s of lights and traffic, and the current light state."""
    tm = TrafficModel(load_town("Town05"), TrafficParams(), np.random.default_rng(7))
    tm.spawn(60)
    sched = LightSchedule(tm.town.signals)
    for k in range(600):
        tm.step(DT, light_state=sched.states_at(k * DT)[0])
    return tm, sched.states_at(600 * DT)[0]


def _stop_arrays(tm: TrafficModel, light_state: np.ndarray) -> tuple[np.ndarray, ...]:
    """end_d, line_d, state (N, K) as the array step computed them."""
    t = tm.tables
    lights = np.append(light_state, OFF)
    rel = tm.seq_off - (tm.s + 0.5 * tm.length)[:, None]
    return rel + t.length_m[tm.seq], rel + t.stop_s_m[tm.seq], lights[t.stop_light[tm.seq]]


def test_vehicle_leaders_kernel_equals_arrays(busy: tuple[TrafficModel, np.ndarray]) -> None:
    tm, _ = busy
    args = (tm.lane, tm.prev_lane, tm.s, tm.length, tm.speed, tm.seq, tm.seq_off)
    gap, v = vehicle_leaders(*args, tm.tables.length_m)
    gk, vk = np.empty(tm.n), np.empty(tm.n)
    scratch = np.full(tm.tables.length_m.shape[0], -1, dtype=np.int64)
    vehicle_leaders_kernel(*args, tm.tables.length_m, gk, vk, scratch)
    assert np.isfinite(gap).sum() > 10
    np.testing.assert_allclose(gk, gap, rtol=0, atol=1e-9)
    np.testing.assert_allclose(vk, v, rtol=0, atol=1e-12)
    assert (scratch == -1).all()


def test_obstacle_matching_and_leaders_equal_arrays(busy: tuple[TrafficModel, np.ndarray]) -> None:
    tm, _ = busy
    rng = np.random.default_rng(0)
    boxes = tm.boxes[rng.choice(tm.n, 12, replace=False)].copy()
    boxes[:, :2] += rng.normal(0.0, 0.7, (12, 2))  # obstacles near (not on) traffic
    speed = rng.uniform(0.0, 10.0, 12)
    m = tm._matcher
    got, ref = m.match(boxes, None), match_kdtree(tm.town.lanes, boxes, None)
    assert got is not None and ref is not None
    rows = {(int(o), int(ln)): k for k, (o, ln) in enumerate(zip(got[0], got[1], strict=True))}
    for k, (o, ln) in enumerate(zip(ref[0], ref[1], strict=True)):  # every KD-tree row is found
        j = rows[(int(o), int(ln))]
        for a, b in zip(got[2:], ref[2:], strict=True):
            assert a[j] == pytest.approx(b[k], abs=1e-9)
    gap, v = obstacle_leaders(got, speed, tm.s, tm.length, tm.seq, tm.seq_off)
    gk, vk = np.empty(tm.n), np.empty(tm.n)
    o, ln, s_o, half, cos = got
    obstacle_leaders_kernel(
        o, ln, s_o, half, cos, speed, tm.s, tm.length, tm.seq, tm.seq_off, gk, vk
    )
    np.testing.assert_allclose(gk, gap, rtol=0, atol=1e-9)
    np.testing.assert_allclose(vk, v, rtol=0, atol=1e-12)


def test_rules_kernels_equal_arrays(busy: tuple[TrafficModel, np.ndarray]) -> None:
    tm0, light_state = busy
    end_d, line_d, state = _stop_arrays(tm0, light_state)
    gap_v, v_v = vehicle_leaders(
        tm0.lane, tm0.prev_lane, tm0.s, tm0.length, tm0.speed, tm0.seq, tm0.seq_off,
        tm0.tables.length_m,
    )  # fmt: skip
    ref, got = copy.copy(tm0), copy.copy(tm0)
    for name in ("granted_entry", "req_since", "stop_done_lane", "stop_timer"):
        setattr(ref, name, getattr(tm0, name).copy())
        setattr(got, name, getattr(tm0, name).copy())
    junction_control(ref, end_d, line_d, state, gap_v, v_v, DT)
    gap_s = stop_gaps(ref, end_d, line_d, state, DT)
    t, p = got.tables, got.params
    junction_control_kernel(
        got.seq, got.seq_off, got.s, got.length, got.speed, got.prev_lane, got.ids, end_d, line_d,
        state, gap_v, v_v, got.granted_entry, got.req_since, got.stop_done_lane,
        float(got.tick_count), DT, t.is_entry, t.in_junction, t.conn, t.stop_kind, t.conflict,
        p.commit_brake_mps2, p.request_m, p.yellow_brake_mps2, p.exit_free_speed_mps,
    )  # fmt: skip
    gk = np.empty(got.n)
    stop_gaps_kernel(
        got.seq, got.speed, end_d, line_d, state, got.granted_entry, got.stop_done_lane,
        got.stop_timer, DT, t.stop_kind, t.is_entry, t.dead_end, p.yellow_brake_mps2,
        p.stop_sign_hold_s, p.idm.s0_m - p.stop_margin_m, gk,
    )  # fmt: skip
    assert (ref.granted_entry >= 0).any()
    for name in ("granted_entry", "req_since", "stop_done_lane", "stop_timer"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    np.testing.assert_allclose(gk, gap_s, rtol=0, atol=1e-9)


def test_pose_kernel_equals_lane_position(busy: tuple[TrafficModel, np.ndarray]) -> None:
    tm, _ = busy
    xy, yaw = tm.town.lanes.position(tm.lane, tm.s)
    np.testing.assert_allclose(np.stack([tm.x, tm.y], -1), xy, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.angle(np.exp(1j * (tm.yaw - yaw))), 0.0, atol=1e-9)
