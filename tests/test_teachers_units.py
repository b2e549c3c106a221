"""Unit tests of the teacher pipeline's pieces against hand-computed answers: k-means and the
vocabulary artifact, lattice speed profiles and lateral offsets, farthest-point selection and the
dataset tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
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
from teachers.scoring.synthetic import synthetic_scene  # noqa: F401  (import check only)
from teachers.selection import farthest_point, mean_distance
from teachers.vocabulary import (
    Vocabulary,
    build_vocabulary,
    kmeans,
    load_vocabulary,
    save_vocabulary,
)

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
    back = load_vocabulary(path)
    assert np.array_equal(back.trajectories, vocab.trajectories)
    assert back.provenance == vocab.provenance
    with pytest.raises(ConfigError):
        build_vocabulary(futures, size=9000)


def test_vocabulary_in_world_rotates_and_translates() -> None:
    vocab = Vocabulary(trajectories=straight(1.0)[None])
    world = vocab.in_world(np.array([10.0, 20.0, np.pi / 2]))
    # heading +90 deg: forward is +y in the world frame
    assert np.allclose(world[0, -1], [10.0, 24.0, np.pi / 2])


def test_speed_profiles_closed_forms() -> None:
    cfg = LatticeConfig(idm_speeds_mps=(), accels_mps2=(1.0,), stop_distances_m=(10.0,))
    prof = speed_profiles(5.0, cfg)
    assert prof.shape == (2, 40)
    accel = prof[np.argmax(prof[:, -1])]
    assert np.allclose(accel, 5.0 * T + 0.5 * T * T)
    stop = prof[np.argmin(prof[:, -1])]
    assert stop[-1] == pytest.approx(10.0)  # stops exactly at its distance (5 m/s, 1.25 m/s2)
    idm = speed_profiles(
        0.0, LatticeConfig(idm_speeds_mps=(6.0,), accels_mps2=(), stop_distances_m=())
    )
    v_end = (idm[0, -1] - idm[0, -2]) / 0.1
    assert 0.0 < v_end < 6.0 and np.all(np.diff(idm[0]) > 0)


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
        "expert_future": [poses[0]], "n_agents": [0], "n_lights": [0], "n_candidates": [1],
        "n_vocabulary": [0], "n_lattice": [0], "n_expert": [1], "n_passed": [1],
        "n_teachers": [1], "coverage": [1.0], "max_gap_m": [0.0],
    }  # fmt: skip
    teachers = {"scene_id": [sid], "rank": [0], "source": ["expert"], "poses": list(poses),
                "progress_m": [20.0], "reactive": [None]}  # fmt: skip
    for name in ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "c", "hc", "ec", "pdms", "epdms"):
        teachers[name] = [1.0]
    return {"scenes": scenes, "teachers": teachers}


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
    write_json({"format_version": 999}, tmp_path / "manifest.json")
    with pytest.raises(ConfigError):
        load_dataset(tmp_path)


def test_adjust_scores_normalises_progress_among_safe_and_filters_by_expert() -> None:
    from teachers.scoring import Metric, ScoreMatrix
    from teachers.selection import adjust_scores

    v = np.ones((12, 3))
    v[Metric.NC, 2] = 0.0  # candidate 2 collides but drives farthest
    v[Metric.EC] = [0.0, 0.0, 1.0]  # the expert (row 0) fails EC too -> EC filtered to 1
    out = adjust_scores(ScoreMatrix(values=v, progress_m=np.array([10.0, 20.0, 40.0])), 0).values
    assert np.allclose(out[Metric.EP], [0.5, 1.0, 1.0])
    assert np.allclose(out[Metric.EC], 1.0)
    assert out[Metric.EPDMS, 1] == pytest.approx(1.0) and out[Metric.EPDMS, 2] == 0.0
    assert out[Metric.EPDMS, 0] == pytest.approx((5 * 0.5 + 5 + 2 + 2 + 2) / 16)
