"""Manoeuvre modes and the class-first teacher choice on hand-built trajectories, the pool's
seeded cap, and the dataset reader's refusal of older formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.maps import load_town
from teachers.dataset import FORMAT_VERSION, load_dataset
from teachers.modes import (
    LaneMode,
    SpeedMode,
    lane_modes,
    mode_id,
    mode_parts,
    speed_modes,
)
from teachers.selection import diverse_by_mode, mean_distance, pool_indices


def _line(speeds_mps: list[float] | np.ndarray, lateral_m: float = 0.0) -> np.ndarray:
    """40 poses at 0.1 s along +x from the origin with the given speed per step, shifted
    ``lateral_m`` along +y (CARLA: right of a +x heading)."""
    v = np.broadcast_to(np.asarray(speeds_mps, float), (40,))
    x = np.cumsum(v * 0.1)
    return np.column_stack([x, np.full(40, lateral_m), np.zeros(40)])


def test_speed_modes_from_the_last_step() -> None:
    go = _line([10.0] * 40)
    stop = _line(np.r_[np.linspace(10, 0, 20), np.zeros(20)])
    slow = _line(np.linspace(10, 8.5, 40))  # ends 1.5 m/s below the ego's 10 m/s
    gentle = _line(np.linspace(10, 9.5, 40))  # 0.5 m/s below: still go
    launch = _line(np.linspace(0.1, 3.0, 40))
    got = speed_modes(10.0, np.stack([go, stop, slow, gentle]))
    assert got.tolist() == [SpeedMode.GO, SpeedMode.STOP, SpeedMode.SLOW, SpeedMode.GO]
    assert speed_modes(0.0, launch[None]).tolist() == [SpeedMode.GO]


def test_mode_ids_round_trip() -> None:
    lane = np.array([0, 1, 2, 3, 3])
    speed = np.array([2, 0, 1, 2, 0])
    assert mode_parts(mode_id(lane, speed))[0].tolist() == lane.tolist()
    assert mode_parts(mode_id(lane, speed))[1].tolist() == speed.tolist()
    assert len(set(mode_id(lane, speed).tolist())) == 5


def _two_lane_road(town) -> tuple[int, int]:  # noqa: ANN001
    """A lane (outside junctions) with a same-direction neighbour of the same section."""
    lanes = town.lanes
    for i in range(lanes.n_lanes):
        if lanes.junction_id[i] >= 0 or lanes.length_m[i] < 40:
            continue
        s = int(np.sign(lanes.lane_id[i]))
        j = int(lanes.lookup(lanes.road_id[i], lanes.section_id[i], lanes.lane_id[i] + s))
        if j >= 0:
            return i, j
    pytest.skip("no two-lane road section in this town")


def test_lane_modes_keep_and_neighbour_from_the_lane_graph() -> None:
    town = load_town("Harness01")
    inner, outer = _two_lane_road(town)  # outer: |lane_id| + 1, the right neighbour
    lanes = town.lanes
    pts = lanes.lane_points(inner)
    xy, yaw = lanes.xy[pts], lanes.yaw_rad[pts]
    route_xy = xy
    # along the inner lane's own centreline: keep
    traj = np.column_stack([xy[:40], yaw[:40]])
    opts = lanes.lane_points(outer)
    oxy, oyaw = lanes.xy[opts], lanes.yaw_rad[opts]
    on_outer = np.column_stack([oxy[:40], oyaw[:40]])
    got = lane_modes(town, np.array([inner]), route_xy, np.stack([traj, on_outer]))
    assert got.tolist() == [LaneMode.KEEP, LaneMode.RIGHT]
    # seen from the outer lane as the route, the inner one is on the left
    got = lane_modes(town, np.array([outer]), oxy, traj[None])
    assert got.tolist() == [LaneMode.LEFT]
    # heading back against the route: another branch
    back = traj.copy()
    back[:, 2] += np.pi
    far = back.copy()
    far[:, :2] += 200.0
    assert lane_modes(town, np.array([inner]), route_xy, far[None]).tolist() == [LaneMode.BRANCH]


def test_diverse_by_mode_fills_modes_first_then_farthest_within() -> None:
    base = _line([8.0] * 40)
    # mode 0: five near-identical speed variants (0.05 m apart) and one 3 m to the side
    m0 = [base + [0, 0.05 * i, 0] for i in range(5)] + [base + [0, 3.0, 0]]
    # mode 1: a stop; mode 2: a lane change to the left
    stop = _line(np.r_[np.linspace(8, 0, 30), np.zeros(10)])
    left = _line([8.0] * 40, lateral_m=-3.5)
    poses = np.stack([*m0, stop, left])
    modes = np.array([0, 0, 0, 0, 0, 0, 1, 2])
    order = np.arange(8)  # candidate 0 is the best
    got = diverse_by_mode(poses, modes, order, k=4, min_separation_m=1.0)
    assert got[0] == 0  # the best first
    assert set(got[:3].tolist()) == {0, 6, 7}  # one per mode before a second of any mode
    assert got[3] == 5  # then the farthest of mode 0, not a near-duplicate speed variant
    d = mean_distance(poses[got][:, None], poses[got][None])
    assert (d[~np.eye(len(got), dtype=bool)] >= 1.0).all()
    # with k = 8 the near-duplicates (< 1 m from a chosen one) are never taken
    more = diverse_by_mode(poses, modes, order, k=8, min_separation_m=1.0)
    assert sorted(more.tolist()) == [0, 5, 6, 7]


def test_a_new_mode_needs_only_the_mode_separation() -> None:
    go = _line([8.0] * 40)
    close_other_mode = go + [0, 0.5, 0]  # 0.5 m away but another mode
    same_mode_close = go + [0, -0.5, 0]
    poses = np.stack([go, close_other_mode, same_mode_close])
    modes = np.array([0, 1, 0])
    got = diverse_by_mode(poses, modes, np.arange(3), 3, 1.0, mode_separation_m=0.3)
    assert got.tolist() == [0, 1]  # the other mode's best is kept, the same-mode one is not
    assert diverse_by_mode(poses, modes, np.arange(3), 3, 1.0).tolist() == [0]


def test_pool_cap_is_seeded_and_a_subset() -> None:
    passed = np.arange(0, 1000, 3)
    a = pool_indices(passed, 256, np.random.default_rng([0, 7]))
    b = pool_indices(passed, 256, np.random.default_rng([0, 7]))
    c = pool_indices(passed, 256, np.random.default_rng([1, 7]))
    assert len(a) == 256 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.isin(a, passed).all() and (np.diff(a) > 0).all()
    assert pool_indices(passed[:10], 256, np.random.default_rng(0)).tolist() == passed[:10].tolist()


def test_older_dataset_is_refused_naming_the_command(tmp_path: Path) -> None:
    assert FORMAT_VERSION == 2
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps(
        {"format_version": 1, "town": "Town05", "routes": {"file": "r.xml"}}))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_dataset(old)
    msg = str(err.value)
    assert "format 1" in msg and "harness gen-teachers --town Town05 --routes r.xml" in msg
    assert "\n" not in msg
