"""Unit tests of the teacher pipeline's pieces against hand-computed answers: k-means and the
vocabulary artifact, lattice speed profiles and lateral offsets, farthest-point selection and the
dataset tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from harness.errors import ConfigError
from teachers.dataset import (
    FORMAT_VERSION,
    TABLES,
    empty_table,
    load_dataset,
    merge_parts,
    poses_array,
    table_from_columns,
    write_json,
    write_part,
)
from teachers.lattice import LatticeConfig, path_candidates, speed_profiles
from teachers.selection import farthest_point, mean_distance
from teachers.vocabulary import (
    Vocabulary,
    build_vocabulary,
    kmeans,
    load_vocabulary,
    save_vocabulary,
)
from tests.oracles.synthetic import synthetic_scene  # noqa: F401  (import check only)

T = np.arange(1, 41) * 0.1


def straight(speed: float, lateral: float = 0.0) -> np.ndarray:
    """A (40, 3) local trajectory at constant speed along x, offset laterally."""
    return np.column_stack([speed * T, np.full(40, lateral), np.zeros(40)])


def test_kmeans_recovers_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + 0.1 * rng.standard_normal((50, 2)) for c in centres])
    found, labels = kmeans(x, 3, seed=1)
    order = np.argsort(found[:, 0] * 100 + found[:, 1])
    assert np.allclose(found[order], centres[[0, 2, 1]], atol=0.1)
    assert len(np.unique(labels)) == 3


def test_vocabulary_caps_size_and_round_trips(tmp_path) -> None:
    futures = np.stack([straight(v) for v in (2.0, 2.0, 5.0, 5.0, 8.0)])
    vocab = build_vocabulary(futures, size=16, seed=0, provenance={"town": "X"})
    assert vocab.size == 3 and vocab.provenance["requested_size"] == 16
    assert sorted(np.round(vocab.trajectories[:, -1, 0], 6)) == [8.0, 20.0, 32.0]
    path = save_vocabulary(vocab, tmp_path / "v.npz")
    back = load_vocabulary(path)  # stored as float32 (format 2)
    assert np.array_equal(back.trajectories, vocab.trajectories.astype(np.float32))
    assert back.provenance == vocab.provenance and back.sha256 == vocab.sha256
    with pytest.raises(ConfigError):
        build_vocabulary(futures, size=9000)


def test_vocabulary_in_world_rotates_and_translates() -> None:
    vocab = Vocabulary(trajectories=straight(1.0)[None])
    world = vocab.in_world(np.array([10.0, 20.0, np.pi / 2]))
    # heading +90 deg: forward is +y in the world frame
    assert np.allclose(world[0, -1], [10.0, 24.0, np.pi / 2])


def test_speed_profiles_closed_forms() -> None:
    # with the ego already at the profile's acceleration the jerk limit never acts: constant
    # accel and the constant-deceleration stop are exact closed forms
    cfg = LatticeConfig(idm_speeds_mps=(), accels_mps2=(1.0,), stop_distances_m=())
    accel = speed_profiles(5.0, cfg, a0_mps2=1.0)
    assert accel.shape == (1, 40) and np.allclose(accel[0], 5.0 * T + 0.5 * T * T)
    cfg = LatticeConfig(idm_speeds_mps=(), accels_mps2=(), stop_distances_m=(10.0,))
    stop = speed_profiles(5.0, cfg, a0_mps2=-1.25)[0]  # 5 m/s, 1.25 m/s2: 10 m in 4 s
    assert np.allclose(stop, 5.0 * T - 0.625 * T * T, atol=0.01)  # last steps: 5 cm floor
    assert stop[-1] == pytest.approx(10.0)  # and never past it
    idm = speed_profiles(
        0.0, LatticeConfig(idm_speeds_mps=(6.0,), accels_mps2=(), stop_distances_m=())
    )
    v_end = (idm[0, -1] - idm[0, -2]) / 0.1
    assert 0.0 < v_end < 6.0 and np.all(np.diff(idm[0]) > 0)


def test_speed_profiles_start_from_the_current_acceleration() -> None:
    # ego at 8 m/s accelerating at +1 m/s2; the -3 m/s2 profile ramps down at 2 m/s3 (0.2 m/s2
    # per 0.1 s step): step accelerations 0.8, 0.6, ..., reaching -3 after 20 steps
    cfg = LatticeConfig(idm_speeds_mps=(), accels_mps2=(-3.0,), stop_distances_m=())
    prof = speed_profiles(8.0, cfg, a0_mps2=1.0)[0]
    a = np.maximum(1.0 - 0.2 * np.arange(1, 41), -3.0)
    v = np.maximum(8.0 + np.cumsum(a * 0.1), 0.0)  # stops in the last step
    expected = np.cumsum(0.5 * (np.concatenate([[8.0], v[:-1]]) + v) * 0.1)
    assert np.allclose(prof, expected)
    # launching from rest (IDM towards 6 m/s): the first step's acceleration is 0.2 m/s2
    launch = speed_profiles(
        0.0, LatticeConfig(idm_speeds_mps=(6.0,), accels_mps2=(), stop_distances_m=())
    )[0]
    assert launch[0] == pytest.approx(0.5 * 0.02 * 0.1)
    speed = np.diff(np.concatenate([[0.0], launch])) / 0.1
    assert np.all(np.abs(np.diff(np.diff(speed) / 0.1)) <= 2.0 * 0.1 + 1e-9)


class _Ego:
    """The one Scene field path_candidates reads."""

    def __init__(self, pose: np.ndarray) -> None:
        self.ego_pose = pose


def test_path_candidates_reach_lateral_offset() -> None:
    path = np.column_stack([np.linspace(0.0, 100.0, 101), np.zeros(101)])
    prof = (5.0 * T)[None]
    ego: Any = _Ego(np.array([0.0, 0.4, 0.0]))
    poses = path_candidates(ego, path, np.asarray(prof, dtype=np.float64), np.array([0.0, 1.0]))
    assert poses.shape == (2, 40, 3)
    assert np.allclose(poses[:, -1, 0], 20.0)
    assert np.allclose(poses[:, -1, 1], [0.0, 1.0])  # CARLA right = +y for heading 0
    assert poses[0, 10, 1] < 0.4 and poses[1, 10, 1] > 0.4


def test_farthest_point_picks_extremes_and_stops_at_separation() -> None:
    trajs = np.stack([straight(5.0, lat) for lat in (0.0, 0.1, 1.0, 3.0, 3.05)])
    idx = farthest_point(trajs, first=0, k=8, min_separation_m=0.3)
    assert idx.tolist() == [0, 4, 2]  # 4 is farthest from 0, then 2; the rest are < 0.3 m away
    d = mean_distance(trajs[idx][:, None], trajs[idx][None])
    assert np.all(d[~np.eye(len(idx), dtype=bool)] >= 0.3)


def _scene_columns(sid: str) -> dict[str, dict[str, object]]:
    poses = np.arange(120, dtype=float).reshape(1, 40, 3)
    scenes = {
        "scene_id": [sid], "town": ["T"], "route_id": ["0"], "frame": [30], "time_s": [1.5],
        "ego_x": [1.0], "ego_y": [2.0], "ego_yaw": [0.1], "ego_speed": [3.0], "ego_accel": [0.0],
        "ego_yaw_rate": [0.0], "command": [4], "command_name": ["lanefollow"],
        "past_poses": [np.zeros((16, 3))], "past_speed": [np.zeros(16)],
        "expert_future": [poses[0]], "scenario_type": [""], "scenario_name": [""],
        "scenario_triggered": [False], "n_agents": [0], "n_scenario_agents": [0],
        "n_lights": [0], "n_candidates": [1],
        "n_vocabulary": [0], "n_lattice": [0], "n_expert": [1], "n_passed": [1],
        "n_teachers": [1], "n_pool": [1], "n_modes_available": [1], "n_modes_kept": [1],
        "coverage": [1.0], "max_gap_m": [0.0],
    }  # fmt: skip
    teachers = {"scene_id": [sid], "rank": [0], "source": ["expert"], "poses": list(poses),
                "lane_mode": ["keep"], "speed_mode": ["go"],
                "progress_m": [20.0], "reactive": [None]}  # fmt: skip
    for name in ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "c", "hc", "ec", "pdms", "epdms"):
        teachers[name] = [1.0]
    pool = {"scene_id": [sid, sid], "source": ["vocabulary", "expert"], "vocab_index": [7, -1],
            "poses": [None, poses[0]], "lane_mode": ["keep", "keep"], "speed_mode": ["go", "go"],
            "epdms": [1.0, 1.0], "progress_m": [20.0, 20.0]}  # fmt: skip
    return {"scenes": scenes, "teachers": teachers, "pool": pool}


def test_dataset_parts_merge_and_load(tmp_path) -> None:
    for part, sid in (("a", "r-000030"), ("b", "r-000040")):
        cols = _scene_columns(sid)
        tables = {
            t: table_from_columns(t, cols[t]) if t in cols else empty_table(t) for t in TABLES
        }
        write_part(tmp_path, part, tables, {"scenes": 1})
    merge_parts(tmp_path, ["b", "a"], {"town": "T"})
    ds = load_dataset(tmp_path)
    assert ds.manifest["format_version"] == FORMAT_VERSION
    assert ds.scenes.scene_id.tolist() == ["r-000040", "r-000030"]
    poses = poses_array(ds.teachers.poses)
    assert poses.shape == (2, 40, 3) and poses[0, 1, 2] == 5.0  # row-major [x, y, yaw]
    assert pd.isna(ds.teachers.reactive).all()
    assert ds.pool.vocab_index.tolist() == [7, -1, 7, -1] and ds.pool.poses.isna().tolist() == [
        True, False, True, False]  # vocabulary entries are their index, extras their poses
    assert poses_array(ds.pool.poses.iloc[[1]])[0, 1, 2] == 5.0
    assert ds.scenes.vocab_pool.tolist() == [[7], [7]]  # derived from pool.parquet, not stored
    assert "vocab_pool" not in pq.read_schema(tmp_path / "scenes.parquet").names
    write_json({"format_version": 999}, tmp_path / "manifest.json")
    with pytest.raises(ConfigError):
        load_dataset(tmp_path)


def test_vocab_pools_are_the_pool_vocabulary_entries_ascending() -> None:
    from teachers.dataset import vocab_pools

    pool = pd.DataFrame({"scene_id": ["a", "a", "b", "a", "b"], "vocab_index": [9, -1, -1, 2, 4]})
    got = vocab_pools(pd.Series(["b", "c", "a"]), pool)
    assert got == [[4], [], [2, 9]]


def test_adjust_scores_normalises_progress_against_the_expert_and_filters() -> None:
    from teachers.scoring import Metric, ScoreMatrix
    from teachers.selection import adjust_scores

    # NAVSIM pairs every candidate with the reference planner (here the expert, row 0, 20 m):
    # EP = progress / max(reference, own progress if safe). Candidate 1 (10 m) -> 0.5;
    # candidate 2 (40 m, safe) -> 1; candidate 3 (60 m) collides, so its own progress does not
    # raise its bar -> min(60 / 20, 1) = 1 (its EPDMS is 0 anyway).
    v = np.ones((12, 4))
    v[Metric.NC, 3] = 0.0
    v[Metric.EC] = [0.0, 0.0, 1.0, 1.0]  # the expert fails EC too -> EC filtered to 1 (harness
    # profile; NAVSIM never filters EC: tests/test_navsim_conformance.py)
    progress = np.array([20.0, 10.0, 40.0, 60.0])
    out = adjust_scores(ScoreMatrix(values=v, progress_m=progress), 0, profile="harness").values
    assert np.allclose(out[Metric.EP], [1.0, 0.5, 1.0, 1.0])
    assert np.allclose(out[Metric.EC], 1.0)
    assert out[Metric.EPDMS, 2] == pytest.approx(1.0) and out[Metric.EPDMS, 3] == 0.0
    assert out[Metric.EPDMS, 1] == pytest.approx((5 * 0.5 + 5 + 2 + 2 + 2) / 16)


def test_adjust_scores_stopped_expert_gives_full_progress() -> None:
    from teachers.scoring import Metric, ScoreMatrix
    from teachers.selection import adjust_scores

    # the expert queues (0.5 m in 4 s): a candidate creeping 3 m has a bar of max(0.5, 3) <= 5 m
    # -> EP 1 (NAVSIM's 5 m rule); one driving 12 m safely sets its own bar -> EP 1
    v = np.ones((12, 3))
    out = adjust_scores(ScoreMatrix(values=v, progress_m=np.array([0.5, 3.0, 12.0])), 0).values
    assert np.allclose(out[Metric.EP], 1.0)
    # an unsafe expert (DAC 0) is no reference: each safe candidate is judged on its own
    v[Metric.DAC, 0] = 0.0
    out = adjust_scores(
        ScoreMatrix(values=v, progress_m=np.array([30.0, 3.0, 12.0])), 0, reference_rows=[0]
    ).values
    assert np.allclose(out[Metric.EP, 1:], 1.0)
    # with the plan (row 2, 12 m, safe) as a second reference row, row 1 gets 3 / 12
    v[Metric.DAC, 0] = 1.0
    out = adjust_scores(
        ScoreMatrix(values=v, progress_m=np.array([8.0, 3.0, 12.0])), 0, reference_rows=[0, 2]
    ).values
    assert out[Metric.EP, 1] == pytest.approx(0.25)


def test_path_starting_ahead_of_the_ego_keeps_the_profile_speed() -> None:
    # the path's first sample lies 0.3 m ahead of the ego (the nearest route point): at 5 m/s
    # the first pose must be 0.5 m ahead of the ego, not 0.8 m (which read as 8 m/s to the tracker)
    path = np.column_stack([np.linspace(0.3, 100.3, 101), np.zeros(101)])
    ego: Any = _Ego(np.array([0.0, 0.0, 0.0]))
    poses = path_candidates(ego, path, np.asarray((5.0 * T)[None], dtype=np.float64), np.zeros(1))
    assert np.allclose(poses[0, :, 0], 5.0 * T) and np.allclose(poses[0, :, 1], 0.0)


def test_teacher_gate_on_pdms_leaves_out_ec_but_keeps_the_v2_gates() -> None:
    from teachers.scoring import Metric
    from teachers.scoring.aggregate import ScoreMatrix, with_aggregates
    from teachers.selection import gates

    # four candidates, every sub-score 1 but: (1) EC 0 (the expert's own plan at most junction
    # turns): PDMS 1, EPDMS (5 + 5 + 2 + 2 + 0) / 16 = 0.875; (2) DDC 0.5: a v2 gate;
    # (3) TTC 0: PDMS (5 + 0 + 2) / 12 = 0.583
    v = np.ones((12, 4))
    v[Metric.EC, 1] = 0.0
    v[Metric.DDC, 2] = 0.5
    v[Metric.TTC, 3] = 0.0
    s = ScoreMatrix(values=with_aggregates(v), progress_m=np.full(4, 20.0))
    assert s.values[Metric.EPDMS, 1] == pytest.approx(0.875)
    assert s.values[Metric.PDMS, 1] == pytest.approx(1.0)
    assert gates(s, 0.95).tolist() == [True, False, False, False]
    assert gates(s, 0.95, "EPDMS").tolist() == [True, False, False, False]
    assert gates(s, 0.95, "PDMS").tolist() == [True, True, False, False]
    assert gates(s, 0.85, "EPDMS").tolist() == [True, True, False, False]
    with pytest.raises(ConfigError, match="PDMS"):
        gates(s, 0.95, "EC")
