"""Closed-loop aggregation (``harness train aggregate``, drivejepa.train.aggregate): one round on a
tiny built-in collection with a tiny random checkpoint adds scenes whose targets are the
privileged expert's plan (checked against the expert queried directly on the recorded states),
the manifest grows, a finished round is skipped on resume; the emergency label brakes along the
plan by hand."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from drivejepa import checkpoint as ckpt_mod
from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import save_checkpoint
from drivejepa.data.collect import npz_path, recording_path
from drivejepa.data.labels import braking_poses
from drivejepa.data.store import PlannerSamples
from drivejepa.planner.model import DriveJEPAPlanner
from drivejepa.train import aggregate as agg
from drivejepa.train.aggregate import AggregateConfig, aggregate
from harness.errors import ConfigError
from harness.maps import load_town
from harness.planning import ExpertPlanner
from harness.world.recording import load_recording
from teachers.episode_scenes import load_episode
from tests.test_drivejepa_planner import TINY, TinyConfig, TinyEncoder

W, H = 64, 32  # tiny camera


@pytest.fixture(scope="module")
def tiny_builders() -> object:
    """Checkpoints may name the TinyEncoder architecture (module scope, restored after)."""
    before = dict(ckpt_mod.ENCODER_BUILDERS)
    ckpt_mod.ENCODER_BUILDERS["TinyEncoder"] = lambda cfg: TinyEncoder(TinyConfig(**cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield None
    torch.set_num_threads(threads)
    ckpt_mod.ENCODER_BUILDERS.clear()
    ckpt_mod.ENCODER_BUILDERS.update(before)


@pytest.fixture(scope="module")
def rounds(
    tmp_path_factory: pytest.TempPathFactory, tiny_builders: object, drivejepa_collection: Path
) -> dict[str, object]:
    """A copy of the session's tiny collection (two short expert drives on Harness01: one train,
    one val route), a tiny random checkpoint, and one aggregation round (a 8 s planner drive of
    the train route)."""
    root = tmp_path_factory.mktemp("aggregate")
    data = root / "DATA"
    shutil.copytree(drivejepa_collection, data)
    before = json.loads((data / "manifest.json").read_text())
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "tiny.pt", DriveJEPAPlanner(TinyEncoder(), TINY),
                           CameraSetup(width=W, height=H), {"note": "random init"})  # fmt: skip
    cfg = AggregateConfig(data=data, checkpoint=ckpt, out=root / "AGG", rounds=1,
                          routes_per_round=1, epochs_per_round=1, batch=4, max_drive_s=8.0,
                          blocked_time_s=2.0, seed=1, command_line=("test",))  # fmt: skip
    rows = aggregate(cfg)
    return {"data": data, "before": before, "cfg": cfg, "rows": rows}


def _to_ego(poses: np.ndarray, ego: np.ndarray) -> np.ndarray:
    """World poses (K, 3) in the ego frame of ``ego`` (x forward, y right: CARLA's y already
    points right of x), by hand."""
    c, s = math.cos(ego[2]), math.sin(ego[2])
    dx, dy = poses[:, 0] - ego[0], poses[:, 1] - ego[1]
    yaw = (poses[:, 2] - ego[2] + np.pi) % (2 * np.pi) - np.pi
    return np.column_stack([c * dx + s * dy, -s * dx + c * dy, yaw])


def test_round_adds_the_expert_labelled_scenes(rounds: dict[str, object]) -> None:
    data = Path(str(rounds["data"]))
    rows = rounds["rows"]
    assert isinstance(rows, list) and [r["round"] for r in rows] == [0, 1]
    (key,) = rows[1]["routes"]
    entry = next(r for r in json.loads((data / "manifest.json").read_text())["routes"]
                 if r["id"] == key)  # fmt: skip
    assert entry["source"] == "aggregate-1" and entry["split"] == "train"
    assert entry["driver"] == "DriveJEPAAgent"  # the planner drove, not the expert
    with np.load(npz_path(data, key)) as z:
        expert, rec_rows = z["expert"], z["recording_row"]
        emergency, frames = z["expert_emergency"], z["frames"]
    assert rows[1]["scenes_added"] == len(expert) > 0 and frames.shape[1:] == (H, W, 3)
    # the expert queried on the recorded states, at its 10 Hz planning ticks, independently
    rec = load_recording(recording_path(data, key))
    town = load_town("Harness01")
    ep = load_episode(recording_path(data, key), town)
    expert_planner = ExpertPlanner(town, ep.planned)
    direct = {}
    for r in range(0, int(rec_rows[-1]) + 1, 2):
        plan = expert_planner.plan(rec.state_at(r))
        direct[r] = (plan.poses[4:40:5], plan.emergency)
    a = rec.actors
    checked = 0
    for i, r in enumerate(rec_rows):
        poses, emerg = direct[int(r)]
        assert bool(emergency[i]) == emerg
        if emerg:
            continue
        want = _to_ego(poses, np.array([a.x[r, 0], a.y[r, 0], a.yaw[r, 0]]))
        np.testing.assert_allclose(expert[i], want, atol=1e-4)
        driven = _to_ego(np.column_stack([a.x[r + 10 : r + 81 : 10, 0], a.y[r + 10 : r + 81 : 10, 0],
                                          a.yaw[r + 10 : r + 81 : 10, 0]]),
                         np.array([a.x[r, 0], a.y[r, 0], a.yaw[r, 0]]))  # fmt: skip
        assert np.abs(expert[i] - driven).max() > 0.1  # the label is not the planner's own future
        checked += 1
    assert checked > 0


def test_manifest_grows_and_the_trainer_reads_the_new_scenes(rounds: dict[str, object]) -> None:
    data = Path(str(rounds["data"]))
    before = rounds["before"]
    assert isinstance(before, dict)
    after = json.loads((data / "manifest.json").read_text())
    assert len(after["routes"]) == len(before["routes"]) + 1
    assert after["routes"][: len(before["routes"])] == before["routes"]  # collected ones kept
    added = int(rounds["rows"][1]["scenes_added"])  # type: ignore[index]
    s0, s1 = before["summary"]["scenes_by_split"], after["summary"]["scenes_by_split"]
    assert s1 == {"train": s0["train"] + added, "val": s0["val"]}
    assert len(PlannerSamples(data, "train")) == s0["train"] + added


def test_rounds_log_and_resume(
    rounds: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = rounds["cfg"]
    assert isinstance(cfg, AggregateConfig)
    lines = [json.loads(s) for s in (cfg.out / "rounds.jsonl").read_text().splitlines()]
    assert lines == rounds["rows"]
    for row in lines:
        assert set(row["val"]) == {"ds", "sr", "rc", "routes"} and row["val"]["routes"] == 1
        assert 0.0 <= row["val"]["ds"] <= 100.0 and 0.0 <= row["val"]["sr"] <= 1.0
    assert math.isfinite(lines[1]["train_loss"])
    assert Path(lines[1]["checkpoint"]).is_file() and lines[0]["checkpoint"] == str(cfg.checkpoint)
    best = json.loads((cfg.out / "best.json").read_text())
    assert best["round"] == agg.best_round(lines)["round"]
    assert (cfg.out / "best.pt").read_bytes() == Path(best["checkpoint"]).read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        aggregate(cfg)

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("a finished round ran again")

    monkeypatch.setattr(agg.RoundDriver, "run", boom)
    monkeypatch.setattr(agg, "fine_tune", boom)
    monkeypatch.setattr(agg, "val_metrics", boom)
    assert aggregate(replace(cfg, resume=True)) == lines
    with pytest.raises(ConfigError, match="other settings.*routes_per_round"):
        aggregate(replace(cfg, resume=True, routes_per_round=2))


def test_best_round_is_the_highest_val_ds_then_rc_then_the_earlier() -> None:
    def row(r: int, ds: float, rc: float) -> dict[str, object]:
        return {"round": r, "val": {"ds": ds, "rc": rc, "sr": 0.0, "routes": 1}}

    assert agg.best_round([row(0, 4.9, 14.2), row(1, 1.5, 26.4)])["round"] == 0
    assert agg.best_round([row(0, 4.9, 14.2), row(1, 4.9, 26.4), row(2, 3.0, 90.0)])["round"] == 1
    assert agg.best_round([row(0, 5.0, 10.0), row(1, 5.0, 10.0)])["round"] == 0


def test_a_round_keeps_the_parent_loss_recipe() -> None:
    """A planner trained without MTD (or with the kinematic term, fewer waits) is fine-tuned the
    same way; a record without the keys (an older checkpoint) takes the trainer's defaults."""
    from drivejepa.train.planner import TrainConfig

    parent = {"mtd": False, "kinematic_weight": 1.0, "wait_keep": 0.25, "lr": 3e-4, "seed": 5}
    assert agg.inherited_losses(parent) == {"mtd": False, "kinematic_weight": 1.0, "wait_keep": 0.25}
    cfg = TrainConfig(out=Path("x"), **agg.inherited_losses(parent))
    assert (cfg.mtd, cfg.kinematic_weight, cfg.wait_keep, cfg.lr) == (False, 1.0, 0.25, 1e-4)
    assert agg.inherited_losses({"encoder": "enc.pt"}) == {}


def test_emergency_label_brakes_along_the_plan() -> None:
    from harness.world.state import ActorArrays, WorldState

    class _Plan:  # the part of harness.planning.Plan that braking_poses reads
        poses = np.column_stack([10.0 + np.arange(1, 41) * 1.0, np.zeros(40), np.zeros(40)])

    actors = ActorArrays.empty(1)
    actors = replace(actors, x=np.array([10.0]), y=np.array([0.0]), yaw=np.array([0.0]),
                     speed=np.array([8.0]))  # fmt: skip
    state = WorldState(frame=0, time_s=0.0, actors=actors, light_state=np.zeros(0, np.int8),
                       light_elapsed_s=np.zeros(0))
    out = braking_poses(state, _Plan(), 8.0)  # type: ignore[arg-type]
    # 8 m/s braking at 8 m/s2: 1 s to stop, 4 m travelled; at 0.5 s: 4 - 1 = 3 m
    assert out[4, 0] == pytest.approx(13.0) and out[9:, 0] == pytest.approx(14.0)
    assert np.all(out[:, 1] == 0.0)


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--rounds"):
        AggregateConfig(data=tmp_path, checkpoint=tmp_path / "m.pt", out=tmp_path, rounds=0)
    with pytest.raises(ConfigError, match="--max-drive-s"):
        AggregateConfig(data=tmp_path, checkpoint=tmp_path / "m.pt", out=tmp_path, rounds=1,
                        max_drive_s=0.0)  # fmt: skip


def test_a_resumed_collection_keeps_the_aggregated_routes(rounds: dict[str, object]) -> None:
    from drivejepa.data.collect import collect
    from tests.test_drivejepa_data import _config

    data = Path(str(rounds["data"]))
    (key,) = rounds["rows"][1]["routes"]  # type: ignore[index]
    manifest = collect(_config(data, resume=True))  # every collected route is done: no drive
    assert key in [r["id"] for r in manifest["routes"]]
    assert manifest["summary"]["routes"] == len(manifest["routes"])
