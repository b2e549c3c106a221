"""Episode recording round trip, bad files, and the top-down replay on a real town."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from harness.maps import Town, load_town
from harness.world.recording import EpisodeRecorder, RecordingError, load_recording
from harness.world.state import ActorArrays, ActorKind, ActorRole, Event, EventKind, WorldState

DT = 0.05


def _states(
    n_frames: int = 6, capacity: int = 5, n_lights: int = 3, x0: float = 0.0, y0: float = 0.0
) -> list[WorldState]:
    """Hand-built ticks: ego + a car + a pedestrian; a third actor appears at frame 3 in slot 4,
    the pedestrian (slot 2) leaves at frame 4; lights cycle; two events."""
    out = []
    for f in range(n_frames):
        a = ActorArrays.empty(capacity)
        rows = [
            (0, 0, ActorKind.VEHICLE, ActorRole.EGO, 4.9, 2.1),
            (1, 12, ActorKind.VEHICLE, ActorRole.BACKGROUND, 4.5, 1.9),
        ]
        if f < 4:
            rows.append((2, 40, ActorKind.PEDESTRIAN, ActorRole.PEDESTRIAN, 0.5, 0.5))
        if f >= 3:
            rows.append((4, 77, ActorKind.STATIC, ActorRole.SCENARIO, 1.0, 1.0))
        for slot, aid, kind, role, length, width in rows:
            a.valid[slot], a.actor_id[slot], a.kind[slot], a.role[slot] = True, aid, kind, role
            a.x[slot], a.y[slot], a.z[slot] = x0 + 0.5 * f + 3 * slot, y0 + 0.1 * slot, 0.2 * slot
            a.yaw[slot], a.speed[slot], a.accel[slot] = 0.01 * f, 10.0 + slot, -0.5 * slot
            a.yaw_rate[slot], a.length[slot], a.width[slot], a.height[slot] = (
                0.02 * slot,
                length,
                width,
                1.5,
            )
        events: tuple[Event, ...] = ()
        if f == 2:
            events = (
                Event(
                    EventKind.COLLISION_PEDESTRIAN,
                    f,
                    f * DT,
                    x0 + 1.0,
                    y0,
                    other_id=40,
                    detail="collision with pedestrian 40",
                ),
                Event(EventKind.RED_LIGHT, f, f * DT, x0 + 1.0, y0, ref=1, detail="crossed on red"),
            )
        lights = np.array([(f + k) % 4 for k in range(n_lights)], np.int8)
        out.append(
            WorldState(100 + f, f * DT, a, lights, np.full(n_lights, 0.05 * f + 0.25), events)
        )
    return out


def _assert_state_equal(a: WorldState, b: WorldState) -> None:
    assert (a.frame, a.time_s) == (b.frame, b.time_s)
    for name in ActorArrays.__dataclass_fields__:
        x, y = getattr(a.actors, name), getattr(b.actors, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_array_equal(a.light_state, b.light_state)
    assert a.light_state.dtype == b.light_state.dtype
    np.testing.assert_array_equal(a.light_elapsed_s, b.light_elapsed_s)
    assert a.events == b.events


def test_round_trip_is_exact(tmp_path: Path) -> None:
    states = _states()
    rec = EpisodeRecorder(
        {"town": "Town01", "seed": 7, "route": np.array([[1.0, 2.0], [3.0, 4.0]])}
    )
    for s in states:
        rec.append(s)
    path = rec.write(tmp_path / "ep" / "episode.parquet")
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    loaded = load_recording(path)
    assert len(loaded) == len(states) and loaded.town == "Town01"
    assert loaded.meta["seed"] == 7 and loaded.meta["route"] == [[1.0, 2.0], [3.0, 4.0]]
    assert "version" in loaded.meta
    for want, got in zip(states, loaded.states(), strict=True):
        _assert_state_equal(want, got)
    _assert_state_equal(states[2], loaded.state(102))
    assert loaded.events == states[2].events
    with pytest.raises(RecordingError):
        loaded.state(99)


def test_file_is_long_format(tmp_path: Path) -> None:
    rec = EpisodeRecorder({"town": "Town01"})
    states = _states()
    for s in states:
        rec.append(s)
    table = pq.read_table(rec.write(tmp_path / "e.parquet")).to_pandas()
    actors = table[table["table"] == "actor"]
    lights = table[table["table"] == "light"]
    assert len(actors) == sum(int(s.actors.valid.sum()) for s in states)  # 3+3+3+4+3+3 = 19
    assert len(actors) == 19 and len(lights) == 6 * 3
    assert sorted(actors[actors["frame"] == 103]["actor_id"]) == [0, 12, 40, 77]
    row = actors[(actors["frame"] == 105) & (actors["actor_id"] == 12)].iloc[0]
    assert row["x"] == 2.5 + 3 and row["speed"] == 11.0 and row["kind"] == ActorKind.VEHICLE


def test_recorder_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="town"):
        EpisodeRecorder({})
    rec = EpisodeRecorder({"town": "Town01"})
    with pytest.raises(ValueError, match="nothing recorded"):
        rec.write(tmp_path / "x.parquet")
    s = _states()
    rec.append(s[1])
    with pytest.raises(ValueError, match="in order"):
        rec.append(s[0])
    other = _states()[2]
    with pytest.raises(ValueError, match="lights"):  # a town's lights are fixed for an episode
        rec.append(WorldState(other.frame, other.time_s, other.actors,
                              np.zeros(other.light_state.shape[0] + 1, np.int8),
                              np.zeros(other.light_state.shape[0] + 1)))  # fmt: skip
    assert not (tmp_path / "x.parquet").exists()


def test_many_ticks_span_buffer_chunks(tmp_path: Path) -> None:
    rec = EpisodeRecorder({"town": "Town01"})
    base = _states(n_frames=1)[0]
    for f in range(1200):
        a = base.actors
        moved = ActorArrays(**{k: getattr(a, k).copy() for k in a.__dataclass_fields__})
        moved.x[0] = float(f)
        rec.append(WorldState(f, f * DT, moved, base.light_state, base.light_elapsed_s))
    loaded = load_recording(rec.write(tmp_path / "long.parquet"))
    np.testing.assert_array_equal(loaded.actors.x[:, 0], np.arange(1200.0))
    np.testing.assert_array_equal(loaded.frames, np.arange(1200))


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        load_recording(tmp_path / "nope.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(RecordingError, match="not a readable Parquet"):
        load_recording(junk)
    import pyarrow as pa

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), other)
    with pytest.raises(RecordingError, match="not a harness episode recording"):
        load_recording(other)


def _real_town_recording(tmp_path: Path, n_frames: int) -> tuple[Path, Town]:
    town = load_town("Town01")
    lanes = town.lanes
    x0, y0 = (float(v) for v in lanes.xy[int(lanes.start[0])])
    n_lights = town.signals.lights_count
    rec = EpisodeRecorder({"town": "Town01", "seed": 0})
    for s in _states(n_frames=n_frames, n_lights=n_lights, x0=x0, y0=y0):
        rec.append(s)
    return rec.write(tmp_path / "episode.parquet"), town


def test_replay_gif_and_png_frames(tmp_path: Path, shared_maps: Path) -> None:
    from harness.sim.replay import panel_height, render_topdown

    path, town = _real_town_recording(tmp_path, n_frames=6)
    recording = load_recording(path)
    gif = render_topdown(recording, town, tmp_path / "out.gif", fps=10, every=2, size_px=160)
    with Image.open(gif) as im:
        assert im.size == (160, 160 + panel_height(10))  # map, then the info panel
        assert getattr(im, "n_frames", 1) == 3  # frames 0, 2, 4 of 6
    frames_dir = render_topdown(recording, town, tmp_path / "frames", every=1, size_px=128)
    pngs = sorted(frames_dir.glob("*.png"))
    assert len(pngs) == 6
    with Image.open(pngs[0]) as im:
        assert im.size == (128, 128 + panel_height(10)) and im.mode == "RGB"
    assert not list(tmp_path.glob("*.tmp"))


def test_replay_mp4_and_bad_outputs(tmp_path: Path, shared_maps: Path) -> None:
    from harness.errors import ConfigError
    from harness.sim.replay import panel_height, render_topdown

    path, town = _real_town_recording(tmp_path, n_frames=4)
    recording = load_recording(path)
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        render_topdown(recording, town, tmp_path / "out.webm")
    pytest.importorskip("imageio_ffmpeg")
    with pytest.raises(ConfigError, match="even"):
        render_topdown(recording, town, tmp_path / "out.mp4", size_px=101)
    mp4 = render_topdown(recording, town, tmp_path / "out.mp4", every=1, size_px=64)
    import imageio.v3 as iio

    frames = iio.imread(mp4, plugin="FFMPEG", index=None)
    assert frames.shape[:3] == (4, 64 + panel_height(10), 64)


def test_cli_replay(
    tmp_path: Path,
    shared_maps: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.cli.main import main
    from harness.sim.replay import panel_height

    path, _ = _real_town_recording(tmp_path, n_frames=4)
    out = tmp_path / "cli.gif"
    monkeypatch.setattr(
        "sys.argv",
        ["harness", "replay", str(path), "--out", str(out), "--every", "1", "--size", "96"],
    )
    main()  # returns normally on success
    with Image.open(out) as im:
        assert im.size == (96, 96 + panel_height(10)) and getattr(im, "n_frames", 1) == 4
    missing = tmp_path / "missing.parquet"
    monkeypatch.setattr("sys.argv", ["harness", "replay", str(missing), "--out", str(out)])
    with pytest.raises(SystemExit) as failed:
        main()
    assert failed.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def _tick(frame: int, n: int) -> WorldState:
    """A tick with n actors (ego + n - 1) at distinct, frame-dependent poses."""
    k = np.arange(n, dtype=np.float64)
    a = ActorArrays(
        actor_id=np.arange(n, dtype=np.int64) * 10, kind=np.zeros(n, np.int8),
        role=np.minimum(np.arange(n), 1).astype(np.int8), valid=np.ones(n, np.bool_),
        x=k + frame, y=2 * k, z=np.zeros(n), yaw=0.1 * k, speed=k, accel=np.zeros(n),
        yaw_rate=np.zeros(n), length=np.full(n, 4.5), width=np.full(n, 2.0), height=np.full(n, 1.5),
    )  # fmt: skip
    return WorldState(frame=frame, time_s=0.05 * frame, actors=a, light_state=np.zeros(2, np.int8),
                      light_elapsed_s=np.zeros(2))  # fmt: skip


def test_actor_count_may_grow_and_shrink_during_an_episode(tmp_path: Path) -> None:
    """Scenarios spawn and destroy actors mid-episode: every tick round-trips exactly, the rows
    beyond a tick's own actors load back as invalid padding."""
    counts = [3, 3, 7, 12, 5, 12, 2]
    rec = EpisodeRecorder({"town": "Harness01"})
    for f, n in enumerate(counts):
        rec.append(_tick(f, n))
    loaded = load_recording(rec.write(tmp_path / "ep.parquet"))
    for f, n in enumerate(counts):
        got, want = loaded.state(f).actors, _tick(f, n).actors
        assert int(got.valid.sum()) == n and not got.valid[n:].any()
        for name in ("actor_id", "x", "y", "yaw", "speed", "length"):
            np.testing.assert_array_equal(getattr(got, name)[:n], getattr(want, name), err_msg=name)
