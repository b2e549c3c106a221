"""End to end: gen-teachers on the built-in Harness01 town (one short generated route driven by the
RouteFollower, two scenes, a small vocabulary), then the dataset's guarantees checked with
independent geometry (shapely polygons, not the scorer's SAT or rasters), resume, and the PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from harness.maps import load_town
from teachers.dataset import load_dataset, poses_array
from teachers.generate import GenerateConfig, generate
from teachers.scoring.comfort import (
    MAX_ABS_JERK_MPS3,
    MAX_ABS_YAW_RATE_RADPS,
    MAX_LON_ACCEL_MPS2,
    MIN_LON_ACCEL_MPS2,
)
from teachers.selection import SelectionConfig


def _rect(x: float, y: float, yaw: float, length: float, width: float) -> shapely.Polygon:
    c, s = np.cos(yaw), np.sin(yaw)
    pts = [(x + c * dx - s * dy, y + s * dx + c * dy)
           for dx, dy in ((length / 2, width / 2), (length / 2, -width / 2),
                          (-length / 2, -width / 2), (-length / 2, width / 2))]  # fmt: skip
    return shapely.Polygon(pts)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teachers")
    cfg = GenerateConfig(
        town="Harness01", out=out, max_scenes=None, max_routes=1, every_s=3.0, vocabulary_size=32, vocabulary_id=None,
        agent="route_follower", generated_route_m=120.0, selection=SelectionConfig(k=4),
        command_line=("test",),
    )  # fmt: skip
    summary = generate(cfg)
    assert summary["scenes"] >= 3
    return out


def test_manifest_and_tables(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    m = ds.manifest
    town = load_town("Harness01")
    assert m["town"] == "Harness01" and m["map_sha256"] == town.sha256
    assert (m["dt_s"], m["horizon_s"], m["k"], m["threshold"]) == (0.1, 4.0, 4, 0.95)
    assert m["ego_length"] > m["ego_width"] > 0 and m["ego_wheelbase"] > 0
    assert m["driver"] == "RouteFollower" and m["command_line"] == ["test"]
    assert len(ds.scenes) == m["summary"]["scenes"] >= 3
    counts = ds.teachers.groupby("scene_id").size().reindex(ds.scenes.scene_id, fill_value=0)
    assert counts.tolist() == ds.scenes.n_teachers.tolist()
    assert (ds.scenes.n_teachers <= 4).all() and (ds.scenes.n_teachers > 0).any()
    assert set(ds.teachers.source) <= {"vocabulary", "lattice", "expert"}
    assert ds.agents.t_index.between(0, 40).all() and ds.lights.t_index.between(0, 40).all()
    assert set(ds.agents.kind) <= {"vehicle", "pedestrian", "bicycle", "static"}
    t = ds.teachers
    assert (t.nc == 1).all() and (t.dac == 1).all() and (t.ddc == 1).all() and (t.tlc == 1).all()
    assert (t.c == 1).all() and (t.epdms >= 0.95).all()


def _pool_poses(dataset_dir: Path, ds: object) -> dict[str, np.ndarray]:
    """Each scene's pool as world poses: vocabulary entries placed at the ego by hand (local x
    along the heading, y to its right in CARLA's frame), the extras as stored."""
    with np.load(dataset_dir / "vocabulary.npz") as z:
        vocab = np.asarray(z["trajectories"])
    out = {}
    for sid, group in ds.pool.groupby("scene_id"):  # type: ignore[attr-defined]
        sc = ds.scenes[ds.scenes.scene_id == sid].iloc[0]  # type: ignore[attr-defined]
        c, s = np.cos(sc.ego_yaw), np.sin(sc.ego_yaw)
        rows = []
        for r in group.itertuples():
            if r.vocab_index >= 0:
                v = vocab[r.vocab_index]
                rows.append(np.column_stack([sc.ego_x + c * v[:, 0] - s * v[:, 1],
                                             sc.ego_y + s * v[:, 0] + c * v[:, 1],
                                             v[:, 2] + sc.ego_yaw]))  # fmt: skip
            else:
                rows.append(np.asarray(r.poses, float).reshape(40, 3))
        out[str(sid)] = np.stack(rows)
    return out


@pytest.mark.parametrize("table", ["teachers", "pool"])
def test_teacher_guarantees_independently(dataset_dir: Path, table: str) -> None:
    ds = load_dataset(dataset_dir)
    town = load_town("Harness01")
    drivable = town.area.drivable
    L, W = ds.manifest["ego_length"], ds.manifest["ego_width"]
    if table == "pool":
        assert len(ds.pool) > 0
        assert (ds.pool.epdms >= 0.95).all()
        assert (ds.pool.groupby("scene_id").size() <= 256).all()
        vocab_rows = ds.pool[ds.pool.source == "vocabulary"]
        assert (vocab_rows.vocab_index >= 0).all() and vocab_rows.poses.isna().all()
        groups = _pool_poses(dataset_dir, ds).items()
    else:
        groups = ((str(sid), poses_array(g.poses)) for sid, g in ds.teachers.groupby("scene_id"))
    for sid, poses in groups:
        agents = ds.agents[ds.agents.scene_id == sid]
        sc = ds.scenes[ds.scenes.scene_id == sid].iloc[0]
        for traj in poses:
            for k, (x, y, yaw) in enumerate(traj, start=1):
                ego = _rect(x, y, yaw, L, W)
                corners = shapely.MultiPoint(list(ego.exterior.coords)[:4])
                assert drivable.contains(corners)  # every corner on a driving lane
                for a in agents[agents.t_index == k].itertuples():
                    assert not ego.intersects(_rect(a.x, a.y, a.yaw, a.length, a.width))
            full = np.vstack([[sc.ego_x, sc.ego_y, sc.ego_yaw], traj])
            step = np.diff(full[:, :2], axis=0)
            speed = np.hypot(step[:, 0], step[:, 1]) / 0.1
            accel = np.diff(speed) / 0.1
            yaw_rate = np.diff(np.unwrap(full[:, 2])) / 0.1
            # raw finite differences are noisier than NAVSIM's filtered signals: generous margins
            assert speed.max() < 30.0
            assert accel.min() > MIN_LON_ACCEL_MPS2 - 1.0 and accel.max() < MAX_LON_ACCEL_MPS2 + 1.0
            assert np.abs(np.diff(accel) / 0.1).max() < 3 * MAX_ABS_JERK_MPS3
            assert np.abs(yaw_rate).max() < MAX_ABS_YAW_RATE_RADPS + 0.1
        if table == "teachers":  # pairwise distinct: 0.3 m across modes, 1 m within one
            group = ds.teachers[ds.teachers.scene_id == sid]
            mode = list(zip(group.lane_mode, group.speed_mode, strict=True))
            for i in range(len(poses)):
                for j in range(i + 1, len(poses)):
                    d = np.hypot(*(poses[i, :, :2] - poses[j, :, :2]).T).mean()
                    assert d >= (1.0 if mode[i] == mode[j] else 0.3)


def test_modes_and_scenario_columns(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    t, sc = ds.teachers, ds.scenes
    assert set(t.lane_mode) <= {"keep", "left", "right", "branch"}
    assert set(t.speed_mode) <= {"stop", "slow", "go"}
    kept = t.groupby("scene_id").apply(lambda g: len(set(zip(g.lane_mode, g.speed_mode, strict=True))))
    kept = kept.reindex(sc.scene_id, fill_value=0)
    assert kept.tolist() == sc.n_modes_kept.tolist()
    assert (sc.n_modes_kept <= sc.n_modes_available).all()
    summary = ds.manifest["summary"]
    assert summary["multimodal_fraction"] == pytest.approx(float((sc.n_modes_kept >= 2).mean()))
    # a generated route has no scenarios: every scene is counted under "none"
    assert (sc.scenario_type == "").all() and not ds.agents.scenario.any()
    assert summary["by_scenario_type"]["none"]["scenes"] == len(sc)
    assert summary["by_scenario_type"]["none"]["teachers"] == len(t)


def test_same_dataset_whatever_the_workers(
    dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # same drive and vocabulary; one scene per part, scored by two forked workers
    import shutil

    import teachers.generate as gen

    out = tmp_path / "workers"
    out.mkdir()
    shutil.copytree(dataset_dir / "episodes", out / "episodes")
    shutil.copy(dataset_dir / "vocabulary.npz", out / "vocabulary.npz")
    monkeypatch.setattr(gen, "SCENES_PER_PART", 1)
    cfg = GenerateConfig(
        town="Harness01", out=out, max_routes=1, every_s=3.0, vocabulary_size=32,
        vocabulary_id=None, agent="route_follower", generated_route_m=120.0,
        selection=SelectionConfig(k=4), workers=2, command_line=("test",),
    )  # fmt: skip
    generate(cfg)
    assert len(list((out / "parts").glob("*.done.json"))) >= 2
    a, b = load_dataset(dataset_dir), load_dataset(out)
    for table in ("scenes", "teachers", "pool", "agents", "lights"):
        assert getattr(a, table).equals(getattr(b, table)), table


def test_resume_skips_finished_parts(dataset_dir: Path) -> None:
    markers = sorted((dataset_dir / "parts").glob("*.done.json"))
    before = {p: p.stat().st_mtime_ns for p in markers}
    before_ds = load_dataset(dataset_dir)
    teachers_before = before_ds.teachers
    cfg = GenerateConfig(
        town="Harness01", out=dataset_dir, max_scenes=None, max_routes=1, every_s=3.0,
        vocabulary_size=32, vocabulary_id=None, agent="route_follower", generated_route_m=120.0,
        selection=SelectionConfig(k=4), command_line=("test",),
    )  # fmt: skip
    generate(cfg)
    assert {p: p.stat().st_mtime_ns for p in markers} == before
    after = load_dataset(dataset_dir).teachers
    assert np.array_equal(poses_array(after.poses), poses_array(teachers_before.poses))
    scenes = json.loads((dataset_dir / "manifest.json").read_text())["summary"]["scenes"]
    assert scenes == len(before_ds.scenes)


def test_show_writes_png(dataset_dir: Path, tmp_path: Path) -> None:
    from teachers.show import draw_scene

    sid = load_dataset(dataset_dir).scenes.scene_id.iloc[0]
    png = draw_scene(dataset_dir, sid, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reactive_option_fills_the_column(dataset_dir: Path, tmp_path: Path) -> None:
    # same recorded drive and vocabulary, scored again with the reactive check on
    import shutil

    out = tmp_path / "reactive"
    out.mkdir()
    shutil.copytree(dataset_dir / "episodes", out / "episodes")
    shutil.copy(dataset_dir / "vocabulary.npz", out / "vocabulary.npz")
    cfg = GenerateConfig(
        town="Harness01", out=out, max_routes=1, every_s=3.0, vocabulary_size=32, vocabulary_id=None,
        agent="route_follower", generated_route_m=120.0, selection=SelectionConfig(k=4),
        reactive=True, command_line=("test",),
    )  # fmt: skip
    summary = generate(cfg)
    ds = load_dataset(out)
    assert ds.manifest["reactive_checked"] is True
    assert ds.teachers.reactive.notna().all() and len(ds.teachers) == summary["teachers"]
    assert summary["reactive_collision_free"] == int(ds.teachers.reactive.sum())
    assert load_dataset(dataset_dir).manifest["reactive_checked"] is False
