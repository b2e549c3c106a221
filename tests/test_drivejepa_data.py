"""Drive-JEPA training data (``harness collect``, ``drivejepa.data``): the arrays of a collected
route, the status of a hand-made state, the expert future against the recording transformed by
hand, teachers re-scored by the teachers scorer, resume and the split, the perturbation
schedule, the readers, the 46 evaluation routes never collected, and bad options."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from drivejepa.camera import CameraSetup
from drivejepa.data import collect as collect_mod
from drivejepa.data.build import IMU_SENSOR, state_status
from drivejepa.data.collect import CollectConfig, collect, npz_path, recording_path
from drivejepa.data.perturb import (
    BurstKind,
    BurstSchedule,
    PerturbationConfig,
    PerturbationHook,
    perturbed,
)
from drivejepa.data.routes import assign_splits, file_routes
from drivejepa.data.scenes import SceneSource
from drivejepa.data.store import PlannerSamples, TeacherSampler, VideoClips, teacher_poses
from drivejepa.status import COMMAND_LEFT, RouteTarget
from harness.cli.main import run as cli_run
from harness.errors import ConfigError
from harness.maps import load_town
from harness.routes.generate import generate_routes
from harness.routes.interpolate import RoadOption
from harness.routes.xml_io import read_route_file, write_routes
from harness.runner.subset import BENCH2DRIVE_EVAL_46
from harness.sim.sensors.spec import parse_sensor
from harness.world.control import VehicleControl
from harness.world.recording import load_recording
from harness.world.state import ActorArrays, WorldState
from teachers.episode_scenes import load_episode
from teachers.per_scene import score_trajectories
from teachers.scoring import Metric
from teachers.vocabulary import load_registered

W, H = 64, 32  # tiny camera
B2D = Path(__file__).resolve().parents[2] / "shared" / "data" / "routes" / "bench2drive"
B2D_FILE = B2D / "bench2drive220.xml"
ARRAYS = {
    "frames": np.uint8, "time_s": np.float64, "scene_frame": np.int64, "status": np.float32,
    "expert": np.float32, "teachers": np.int32, "teacher_count": np.int32,
    "recording_row": np.int64, "perturb_start_s": np.float64, "perturb_end_s": np.float64,
    "perturb_kind": np.int64, "perturb_value": np.float64, "future_perturbed": np.bool_,
    "expert_plan": np.float32, "expert_emergency": np.bool_,
}  # fmt: skip


def _config(out: Path, **kw: object) -> CollectConfig:
    cfg = CollectConfig(
        out=out, towns=("Harness01",), routes_per_town=2, route_m=45.0,
        camera=CameraSetup(width=W, height=H), seed=3,
        perturbation=PerturbationConfig(first_burst_s=2.0, gap_s=(2.0, 3.0)),
        command_line=("test",),
    )  # fmt: skip
    return replace(cfg, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data(drivejepa_collection: Path) -> Path:
    """Two short perturbed expert drives on the built-in town (one train, one val route; the
    session's collection, shared with the aggregation tests)."""
    return drivejepa_collection


def _manifest(data: Path) -> dict[str, object]:
    m: dict[str, object] = json.loads((data / "manifest.json").read_text())
    return m


def _routes(data: Path) -> list[dict[str, object]]:
    r = _manifest(data)["routes"]
    assert isinstance(r, list)
    return r


def test_arrays_have_the_contract_shapes_and_dtypes(data: Path) -> None:
    for route in _routes(data):
        with np.load(data / str(route["file"])) as z:
            assert set(z.files) == set(ARRAYS)
            for name, dtype in ARRAYS.items():
                assert z[name].dtype == dtype, name
            T, S = len(z["time_s"]), len(z["status"])
            assert S >= 3 and route["scenes"] == S and route["frames"] == T
            assert z["frames"].shape == (T, H, W, 3)
            assert z["status"].shape == (S, 11)
            assert z["expert"].shape == (S, 8, 3)
            assert z["teachers"].shape == (S, 256)
            assert z["teacher_count"].shape == z["scene_frame"].shape == (S,)
            assert z["future_perturbed"].shape == (S,)
            assert z["expert_plan"].shape == (S, 8, 3) and z["expert_emergency"].shape == (S,)
            rec = load_recording(data / str(route["recording"]))
            # frame k is recorded row 10 k; scene s uses frames k-1, k at its recorded row
            assert np.array_equal(z["time_s"], rec.time_s[::10])
            assert np.array_equal(z["scene_frame"] * 10, z["recording_row"])
            assert z["scene_frame"].min() >= 1 and z["scene_frame"].max() < T
            # 4 s of future were driven after every scene
            assert z["recording_row"].max() + 80 < len(rec)
            for t, n in zip(z["teachers"], z["teacher_count"], strict=True):
                assert np.all(t[n:] == -1) and np.all(np.diff(t[:n]) > 0)
                assert n == 0 or (t[0] >= 0 and t[n - 1] < 8192)
            # one-hot command
            assert np.all(z["status"][:, 7:].sum(1) == 1.0)


def test_status_of_a_hand_made_state() -> None:
    """Ego at (10, 5) heading +y (yaw pi/2), 3 m/s, 1.5 m/s2, yaw rate 0.2 rad/s; the target
    waypoint at (13, 25) with yaw pi/2 + 0.1 and a LEFT option. In the ego frame (x forward = +y
    world, y right = -x world): (20, -3, 0.1); IMU x = 1.5, y = speed x yaw rate = 0.6."""
    a = ActorArrays.empty(1)
    a.valid[0], a.actor_id[0] = True, 0
    a.x[0], a.y[0], a.yaw[0] = 10.0, 5.0, np.pi / 2
    a.speed[0], a.accel[0], a.yaw_rate[0] = 3.0, 1.5, 0.2
    a.length[0], a.width[0], a.height[0] = 4.9, 2.1, 1.5
    state = WorldState(5, 0.25, a, np.zeros(0, np.int8), np.zeros(0))
    tracker = RouteTarget(
        np.array([[10.0, 8.0], [13.0, 25.0]]), np.array([np.pi / 2, np.pi / 2 + 0.1]),
        [int(RoadOption.STRAIGHT), int(RoadOption.LEFT)],
    )  # fmt: skip
    tracker.update((10.0, 5.0))  # the first waypoint (3 m away) is reached and popped
    got = state_status(state, tracker, parse_sensor(IMU_SENSOR))
    want = np.zeros(11, np.float32)
    want[:7] = 20.0, -3.0, 0.1, 3.0, 0.0, 1.5, 0.6
    want[7 + COMMAND_LEFT] = 1.0
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_expert_future_is_the_recorded_pose_in_the_ego_frame(data: Path) -> None:
    route = _routes(data)[0]
    rec = load_recording(data / str(route["recording"]))
    a = rec.actors
    with np.load(data / str(route["file"])) as z:
        rows, expert = z["recording_row"], z["expert"]
    for s in (0, len(rows) - 1):
        r = int(rows[s])
        x0, y0, h0 = a.x[r, 0], a.y[r, 0], a.yaw[r, 0]
        x1, y1, h1 = a.x[r + 10, 0], a.y[r + 10, 0], a.yaw[r + 10, 0]  # +0.5 s
        dx, dy = x1 - x0, y1 - y0
        fwd = np.cos(h0) * dx + np.sin(h0) * dy
        right = -np.sin(h0) * dx + np.cos(h0) * dy
        dyaw = (h1 - h0 + np.pi) % (2 * np.pi) - np.pi
        np.testing.assert_allclose(expert[s, 0], [fwd, right, dyaw], atol=1e-4)
        x8, y8 = a.x[r + 80, 0], a.y[r + 80, 0]  # +4 s: the same transform
        np.testing.assert_allclose(
            expert[s, 7, 0], np.cos(h0) * (x8 - x0) + np.sin(h0) * (y8 - y0), atol=1e-4
        )


def test_labels_are_the_plans_the_live_expert_made(data: Path) -> None:
    """The replayed expert reproduces the plans the expert recorded while it drove (the drive's
    ``.plans.parquet``) at every non-emergency scene, at poses 4, 9, .., 39 in the ego frame."""
    town = load_town("Harness01")
    checked = 0
    for route in _routes(data):
        ep = load_episode(data / str(route["recording"]), town)
        assert ep.plans is not None and ep.plan_frames is not None
        a = ep.recording.actors
        with np.load(data / str(route["file"])) as z:
            rows, labels, emergency = z["recording_row"], z["expert_plan"], z["expert_emergency"]
        for s, r in enumerate(rows):
            if emergency[s]:
                continue
            j = int(np.flatnonzero(ep.plan_frames == ep.recording.frames[r])[0])
            plan = ep.plans[j][4::5]
            x0, y0, h0 = a.x[r, 0], a.y[r, 0], a.yaw[r, 0]
            dx, dy = plan[:, 0] - x0, plan[:, 1] - y0
            fwd = np.cos(h0) * dx + np.sin(h0) * dy
            right = -np.sin(h0) * dx + np.cos(h0) * dy
            dyaw = (plan[:, 2] - h0 + np.pi) % (2 * np.pi) - np.pi
            np.testing.assert_allclose(labels[s], np.column_stack([fwd, right, dyaw]), atol=1e-3)
            checked += 1
    assert checked >= 5


def test_resume_adds_labels_to_routes_collected_without_them(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "DATA"
    shutil.copytree(data, out)
    key = str(_routes(data)[0]["id"])
    with np.load(npz_path(out, key)) as z:
        old = {k: z[k] for k in z.files if k not in ("expert_plan", "expert_emergency")}
    collect_mod.write_arrays(npz_path(out, key), old)
    assert not collect_mod.has_labels(npz_path(out, key))
    collect(_config(out, resume=True))
    with np.load(npz_path(out, key)) as z, np.load(npz_path(data, key)) as ref:
        assert set(z.files) == set(ref.files)
        for k in ref.files:
            np.testing.assert_array_equal(z[k], ref[k], err_msg=k)


def test_teachers_pass_when_rescored_by_the_scorer(data: Path) -> None:
    source = SceneSource(data)
    vocab = load_registered("carla-8192-v1")
    route = _routes(data)[0]
    key = str(route["id"])
    with np.load(data / str(route["file"])) as z:
        teachers, count = z["teachers"], z["teacher_count"]
    s = int(np.argmax(count > 0))
    assert count[s] > 0
    rec = source.record(key, s)
    assert rec.scene is not None and source.scene(key, s).ego_pose.shape == (3,)
    entries = teachers[s, : count[s]][:16]
    poses = vocab.in_world(rec.scene.ego_pose)[entries]
    scored = score_trajectories(rec, load_town("Harness01"), poses, profile="navsim")
    v = scored.scores.values
    # the pools' default gate: EPDMS >= 0.95 with the v2 gates and comfort
    assert _manifest(data)["teacher_gate"] == "EPDMS"
    assert np.all(v[Metric.EPDMS] >= 0.95)
    for m in (Metric.NC, Metric.DAC, Metric.DDC, Metric.TLC, Metric.C):
        assert np.all(v[m] == 1.0)


def test_scene_source_rebuilds_the_recorded_ego(data: Path) -> None:
    route = _routes(data)[1]
    key = str(route["id"])
    rec = load_recording(recording_path(data, key))
    with np.load(npz_path(data, key)) as z:
        r = int(z["recording_row"][2])
    scene = SceneSource(data).scene(key, 2)
    np.testing.assert_allclose(scene.ego_pose, [rec.actors.x[r, 0], rec.actors.y[r, 0],
                                                rec.actors.yaw[r, 0]])  # fmt: skip
    with pytest.raises(ConfigError, match="not in"):
        SceneSource(data).scene("no-such-route", 0)


def test_drives_are_perturbed_and_the_expert_recovers(data: Path) -> None:
    for route in _routes(data):
        assert route["ended"] in ("completed", "arrived")
        assert float(str(route["completion"])) >= 0.8  # "arrived": stopped within 10 m of the end
        assert route["collisions"] == 0
        assert int(str(route["bursts"])) >= 1
        with np.load(data / str(route["file"])) as z:
            assert z["future_perturbed"].any()  # bursts fall within scenes' futures
    m = _manifest(data)
    assert m["summary"]["routes_completed"] == 2  # type: ignore[index]
    cfg = PerturbationConfig(first_burst_s=2.0, gap_s=(2.0, 3.0))
    assert m["perturbation"] == json.loads(json.dumps(cfg.to_json()))


def test_manifest_lists_the_split(data: Path) -> None:
    m = _manifest(data)
    assert m["format"] == "drivejepa-data" and m["version"] == 1
    assert m["camera"] == CameraSetup(width=W, height=H).to_json()
    assert m["profile"] == "navsim" and m["frame_period_s"] == 0.5
    assert m["vocabulary"]["id"] == "carla-8192-v1"  # type: ignore[index]
    splits = sorted(str(r["split"]) for r in _routes(data))
    assert splits == ["train", "val"]
    assert {str(r["source"]) for r in _routes(data)} == {"builtin"}
    assert m["excluded_routes"] == []


def test_resume_skips_finished_routes(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "DATA"
    shutil.copytree(data, out)
    keys = [str(r["id"]) for r in _routes(data)]
    npz_path(out, keys[1]).unlink()
    ran: list[str] = []

    def fake_run(self: object, task: collect_mod.CollectRoute) -> dict[str, object]:
        ran.append(task.key)
        shutil.copy(npz_path(data, task.key), npz_path(out, task.key))
        return json.loads((data / "routes" / f"{task.key}.json").read_text())  # type: ignore[no-any-return]

    monkeypatch.setattr(collect_mod.RouteWorker, "__init__", lambda self, config: None)
    monkeypatch.setattr(collect_mod.RouteWorker, "run", fake_run)
    with pytest.raises(ConfigError, match="--resume"):
        collect(_config(out))
    with pytest.raises(ConfigError, match="seed"):
        collect(_config(out, seed=4, resume=True))
    m = collect(_config(out, resume=True))
    assert ran == [keys[1]]
    assert [r["id"] for r in m["routes"]] == keys
    assert [r["split"] for r in m["routes"]] == [r["split"] for r in _routes(data)]
    collect(_config(out, resume=True))
    assert ran == [keys[1]]  # nothing left to do
    # the teacher gate is a setting: resuming with the other one is refused, naming it
    with pytest.raises(ConfigError, match="teacher_gate"):
        collect(_config(out, resume=True, teacher_gate="PDMS"))


def test_the_pdms_gate_is_a_setting_of_the_collection(data: Path, tmp_path: Path) -> None:
    """Settings name the gate only when it is PDMS (collections made before the option, EPDMS,
    resume unchanged); a PDMS collection resumes only with PDMS."""
    assert "teacher_gate" not in json.loads((data / "settings.json").read_text())
    out = tmp_path / "DATA"
    shutil.copytree(data, out)
    settings = json.loads((out / "settings.json").read_text())
    (out / "settings.json").write_text(json.dumps({**settings, "teacher_gate": "PDMS"}))
    with pytest.raises(ConfigError, match="teacher_gate"):
        collect(_config(out, resume=True))
    m = collect(_config(out, resume=True, teacher_gate="PDMS"))
    assert m["teacher_gate"] == "PDMS"


def test_readers(data: Path) -> None:
    train = PlannerSamples(data, "train")
    val = PlannerSamples(data, "val")
    routes = {str(r["split"]): r for r in _routes(data)}
    assert len(train) == routes["train"]["scenes"] and len(val) == routes["val"]["scenes"]
    item = train[1]
    assert item["frames"].shape == (2, 3, H, W) and item["frames"].dtype == torch.float32
    assert float(item["frames"].min()) >= 0.0 and float(item["frames"].max()) <= 1.0
    assert item["status"].shape == (11,) and item["expert"].shape == (8, 3)
    assert item["teachers"].shape == (4, 8, 3) and item["teacher_mask"].shape == (4,)
    key, i = item["key"]
    with np.load(npz_path(data, key)) as z:
        k = int(z["scene_frame"][i])
        frames = z["frames"][k - 1 : k + 1]
        pool = set(z["teachers"][i, : z["teacher_count"][i]].tolist())
        # the imitation target is the expert's intended plan, not the (perturbed) driven future
        np.testing.assert_array_equal(item["expert"].numpy(), z["expert_plan"][i])
    np.testing.assert_allclose(
        item["frames"].numpy(), frames.transpose(0, 3, 1, 2) / 255.0, atol=1e-6
    )
    chosen = item["teacher_index"].numpy()[item["teacher_mask"].numpy()]
    assert len(chosen) == min(4, len(pool)) and set(chosen.tolist()) <= pool
    assert len(set(chosen.tolist())) == len(chosen)
    vocab = load_registered("carla-8192-v1")
    np.testing.assert_allclose(
        item["teachers"].numpy()[: len(chosen)], vocab.trajectories[chosen][:, 4::5], atol=1e-6
    )
    # the array shortcut for --wait-keep reads what the items hold
    speed, moved = train.speeds_and_moves()
    items = [train[j] for j in range(len(train))]
    np.testing.assert_allclose(speed, [float(it["status"][3]) for it in items], atol=1e-6)
    np.testing.assert_allclose(
        moved, [float(np.hypot(*it["expert"][1, :2].numpy())) for it in items], atol=1e-5
    )
    clips = VideoClips(data, "train", frames=8)
    assert len(clips) == routes["train"]["frames"] - 7  # type: ignore[operator]
    assert clips[0].shape == (8, 3, H, W) and clips[0].dtype == torch.float32
    with pytest.raises(ConfigError, match="split"):
        PlannerSamples(data, "test")


def test_teacher_sampler_is_seeded_per_epoch() -> None:
    poses = np.arange(10 * 8 * 3, dtype=np.float32).reshape(10, 8, 3)
    s = TeacherSampler(poses, k=4, seed=0)
    row = np.array([1, 3, 5, 7, 9, 2] + [-1] * 4, np.int32)
    a, mask, idx = s.sample(row, 6, epoch=0, item=5)
    assert mask.all() and len(set(idx.tolist())) == 4 and set(idx.tolist()) <= set(row[:6].tolist())
    np.testing.assert_array_equal(a, poses[idx])
    assert np.array_equal(s.sample(row, 6, 0, 5)[2], idx)
    draws = {tuple(s.sample(row, 6, e, 5)[2].tolist()) for e in range(8)}
    assert len(draws) > 1  # other epochs, other draws
    few, mask2, idx2 = s.sample(row, 2, 0, 0)
    assert mask2.tolist() == [True, True, False, False] and set(idx2[:2].tolist()) == {1, 3}
    assert np.all(few[2:] == 0) and np.all(idx2[2:] == -1)
    assert teacher_poses(load_registered("carla-8192-v1")).shape == (8192, 8, 3)


def test_perturbation_schedule_and_hook() -> None:
    cfg = PerturbationConfig()
    s = cfg.schedule(7, horizon_s=300.0)
    assert np.array_equal(s.start_s, cfg.schedule(7, horizon_s=300.0).start_s)
    assert not np.array_equal(s.start_s[:3], cfg.schedule(8, horizon_s=300.0).start_s[:3])
    dur = s.end_s - s.start_s
    assert s.start_s[0] == cfg.first_burst_s
    assert np.all((dur >= 0.5) & (dur <= 1.5))
    gaps = s.start_s[1:] - s.end_s[:-1]
    assert np.all((gaps >= 4.0) & (gaps <= 8.0))
    steer = s.kind == BurstKind.STEER
    assert np.all((np.abs(s.value[steer]) >= 0.10) & (np.abs(s.value[steer]) <= 0.25))
    assert len(PerturbationConfig(enabled=False).schedule(7).start_s) == 0
    one = BurstSchedule(np.array([1.0]), np.array([1.5]), np.array([BurstKind.STEER]),
                        np.array([0.2]))  # fmt: skip
    got = one.overlaps(np.array([0.0, 1.5, 0.9, 1.2]), np.array([1.0, 5.5, 4.9, 1.3]))
    assert got.tolist() == [False, False, True, True]  # intervals [t0, t1) against [1.0, 1.5)
    hook = PerturbationHook(one)
    hook.setup()
    c = VehicleControl(throttle=0.4, steer=-0.1)
    seen = []
    for _ in range(40):  # ticks at 0.0 .. 1.95 s
        seen.append(hook.perturb(c).steer)
        hook.tick(None)  # type: ignore[arg-type]
    steer_at = np.asarray(seen)
    assert np.allclose(steer_at[20:30], 0.1) and np.allclose(steer_at[:20], -0.1)
    assert np.allclose(steer_at[30:], -0.1) and hook.applied == 10
    braking = VehicleControl(throttle=0.0, brake=0.5)
    assert perturbed(braking, BurstKind.THROTTLE, 0.8) == braking
    assert perturbed(VehicleControl(throttle=0.3), BurstKind.BRAKE, 0.6) == VehicleControl(
        brake=0.6
    )


def test_split_is_stable_per_route() -> None:
    keys = [f"r{i}" for i in range(40)]
    split = assign_splits(keys, 0, 0.1)
    val = [k for k in keys if split[k] == "val"]
    assert 1 <= len(val) <= 10
    some = [val[0], *keys[:10]]  # another route set holding a val route: the same splits
    assert assign_splits(some, 0, 0.1) == {k: split[k] for k in some}
    assert assign_splits(keys, 1, 0.1) != split  # another seed, another split
    assert list(assign_splits(["a", "b"], 0, 0.1).values()).count("val") == 1


def test_evaluation_routes_are_never_collected(tmp_path: Path) -> None:
    """A file named bench2drive220.xml loses its indices 145, 146, ... whatever they hold."""
    town = load_town("Harness01")
    routes = generate_routes(town, 148, 40.0, seed=0)
    path = tmp_path / "bench2drive220.xml"
    write_routes([replace(r, id=str(i)) for i, r in enumerate(routes)], path)
    got, excluded = file_routes(path, "143-147", None)
    assert [i for *_, i in got] == [143, 144]
    assert excluded == sorted(BENCH2DRIVE_EVAL_46)
    got_all, _ = file_routes(path, None, None)
    assert not {i for *_, i in got_all} & set(BENCH2DRIVE_EVAL_46)
    assert len(got_all) == 148 - sum(1 for i in BENCH2DRIVE_EVAL_46 if i < 148)
    assert cli_run(["collect", "--out", str(tmp_path / "D"), "--routes", str(path),
                    "--routes-subset", "145-146"]) == 2  # fmt: skip


@pytest.mark.skipif(not B2D_FILE.is_file(), reason="shared Bench2Drive routes not present")
def test_eval_46_are_the_town01_06_routes_of_bench2drive220() -> None:
    routes = read_route_file(B2D_FILE)
    towns = {f"Town0{i}" for i in range(1, 7)}
    assert sorted(i for i, r in enumerate(routes) if r.town in towns) == sorted(BENCH2DRIVE_EVAL_46)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--width", "100"], "--width"),
        (["--height", "0"], "--height"),
        (["--val-fraction", "2"], "--val-fraction"),
        (["--route-m", "nan"], "--route-m"),
        (["--routes-subset", "1"], "--routes-subset needs --routes"),
        (["--routes", "no-such.xml"], "does not exist"),
        (["--town", "NoSuchTown"], "NoSuchTown"),
        (["--teacher-gate", "EC"], "--teacher-gate"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    args: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_run(["collect", "--out", str(tmp_path / "D"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


def test_used_folder_needs_resume(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_run(["collect", "--out", str(data), "--town", "Harness01"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err
