"""One route's training arrays from its recorded expert drive (docs/DRIVEJEPA.md, "Data"): the
front-camera frames every FRAME_PERIOD_S rendered from the recording, and per scene the 11-value
ego status, the expert's driven future and the scene's teachers.

- Frames: recorded rows 0, 10, 20, ... (every 0.5 s at 20 Hz); frame k is row FRAME_TICKS * k,
  rendered by the embedded camera (``harness.sim.sensors.camera``) with the planner's
  ``CameraSetup``, BGRA -> RGB.
- Scenes: the teachers pipeline's scene rows (``teachers.episode_scenes.scene_rows``: 1.5 s of
  past and 4 s of future recorded) every 0.5 s; each is a frame row, so scene s uses frames
  k - 1 and k with k = row / FRAME_TICKS.
- Status: the route target tracked over the 50 m global plan at every recorded tick (as the
  agent tracks it every tick), speed and IMU acceleration as the embedded speedometer and IMU
  report them from the recorded state (``harness.sim.sensors.basic``).
- Expert: the recorded ego (box centre) at +0.5 .. 4.0 s in the ego frame at t (x forward,
  y right, yaw relative): the vocabulary's frame and reference point.
- Teachers: the shipped vocabulary scored in the scene exactly as gen-teachers scores it
  (``teachers.per_scene.teachers_for_scene``, ``navsim`` profile): the scene's pool (every
  candidate passing the gates, EPDMS >= 0.95, and the hard checks, at most 256 at random from
  the run seed and the scene id), its vocabulary entries, ascending, -1 padded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from drivejepa.camera import FRAME_PERIOD_S, CameraSetup
from drivejepa.status import STATUS_DIM, RouteTarget, ego_status, to_ego_frame
from harness.maps.town import Town
from harness.routes.interpolate import global_plan
from harness.sim.sensors.basic import imu_reading, speedometer_reading
from harness.sim.sensors.camera import CameraRenderer
from harness.sim.sensors.raster import town_raster
from harness.sim.sensors.spec import SensorSpec, parse_sensor
from harness.world.recording import Recording
from harness.world.state import EGO_INDEX, WorldState
from harness.world.timing import SIM_DT_S
from teachers.episode_scenes import Episode, SceneRecord, extract_scene, scene_rows
from teachers.per_scene import TeacherConfig, teachers_for_scene
from teachers.selection import POOL_CAP
from teachers.vocabulary import Vocabulary

FRAME_TICKS = int(round(FRAME_PERIOD_S / SIM_DT_S))  # recorded rows per frame (10 at 20 Hz)
EXPERT_POSES = 8  # the planner's poses (0.5 .. 4.0 s)
GLOBAL_PLAN_SPACING_M = 50.0  # Bench2Drive's downsampled global plan [m]
TEACHER_SLOTS = POOL_CAP  # teacher columns per scene (256), -1 padded
IMU_SENSOR: dict[str, Any] = {"type": "sensor.other.imu", "id": "imu", "x": 0.0, "y": 0.0,
                              "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
                              "sensor_tick": SIM_DT_S}  # fmt: skip
Float = NDArray[np.float64]
Relabel = Callable[[SceneRecord], SceneRecord]
"""A change to a scene's record before its teachers are scored (aggregation's expert labels)."""


def frame_rows(n_rows: int) -> NDArray[np.int64]:
    """Recorded rows rendered as frames: every FRAME_TICKS rows from the reset state."""
    return np.arange(0, n_rows, FRAME_TICKS, dtype=np.int64)


def camera_renderer(town: Town, camera: CameraSetup) -> CameraRenderer:
    """The embedded camera renderer of ``camera`` on the town (raster cached per process)."""
    return CameraRenderer(town_raster(town), parse_sensor(camera.sensor()), town.signals)


def render_frames(
    rec: Recording, renderer: CameraRenderer, rows: NDArray[np.int64]
) -> NDArray[np.uint8]:
    """(T, H, W, 3) uint8 RGB frames of the recorded rows (the camera's BGRA without alpha)."""
    spec = renderer.spec
    out = np.empty((len(rows), spec.height, spec.width, 3), dtype=np.uint8)
    for j, r in enumerate(rows):
        out[j] = renderer.render(rec.state_at(int(r)))[..., 2::-1]
    return out


def route_target(ep: Episode, town: Town) -> RouteTarget:
    """The status tracker over the route's 50 m global plan (what the agent is given)."""
    planned = ep.planned
    idx = global_plan(planned, town, GLOBAL_PLAN_SPACING_M).index
    return RouteTarget(planned.xy[idx], planned.yaw_rad[idx], planned.option[idx].tolist())


def state_status(state: WorldState, tracker: RouteTarget, imu: SensorSpec) -> NDArray[np.float32]:
    """(11,) status of one state: the tracker's current target (call ``tracker.update`` first)
    in the ego frame, the speedometer's speed and the IMU's (x, y) acceleration."""
    a = state.actors
    pose = (float(a.x[EGO_INDEX]), float(a.y[EGO_INDEX]), float(a.yaw[EGO_INDEX]))
    target, command = tracker.target(pose)
    reading = imu_reading(state, imu)
    speed = speedometer_reading(state)["speed"]
    return ego_status(target, command, speed, (float(reading[0]), float(reading[1])))


def scene_status(ep: Episode, town: Town, rows: NDArray[np.int64]) -> NDArray[np.float32]:
    """(S, 11) status at the scene rows (ascending), the target tracked tick by tick from the
    reset state as the agent tracks it (:func:`state_status`)."""
    rec, a = ep.recording, ep.recording.actors
    imu = parse_sensor(IMU_SENSOR)
    tracker = route_target(ep, town)
    out = np.zeros((len(rows), STATUS_DIM), dtype=np.float32)
    j = 0
    for r in range(int(rows[-1]) + 1 if len(rows) else 0):
        tracker.update((a.x[r, EGO_INDEX], a.y[r, EGO_INDEX]))
        if r == rows[j]:
            out[j] = state_status(rec.state_at(r), tracker, imu)
            j += 1
    return out


def expert_future(rec: Recording, rows: NDArray[np.int64]) -> NDArray[np.float32]:
    """(S, 8, 3) the recorded ego at +0.5 .. 4.0 s after each row, in the ego frame at the row."""
    a = rec.actors
    out = np.zeros((len(rows), EXPERT_POSES, 3), dtype=np.float32)
    steps = FRAME_TICKS * np.arange(1, EXPERT_POSES + 1)
    for j, r in enumerate(rows):
        fut = r + steps
        ego = (a.x[r, EGO_INDEX], a.y[r, EGO_INDEX], a.yaw[r, EGO_INDEX])
        xy = np.column_stack([a.x[fut, EGO_INDEX], a.y[fut, EGO_INDEX]])
        out[j] = to_ego_frame(xy, a.yaw[fut, EGO_INDEX], ego)
    return out


def scene_teachers(
    ep: Episode,
    town: Town,
    vocab: Vocabulary,
    rows: NDArray[np.int64],
    config: TeacherConfig,
    relabel: Relabel | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """(S, 256) int32 vocabulary indices of each scene's pool (ascending, -1 padded) and (S,)
    their counts, scored as gen-teachers scores the scene (``relabel`` changes each scene's
    record first, e.g. its reference future)."""
    idx = np.full((len(rows), TEACHER_SLOTS), -1, dtype=np.int32)
    count = np.zeros(len(rows), dtype=np.int32)
    for j, r in enumerate(rows):
        record = extract_scene(ep, town, int(r))
        if relabel is not None:
            record = relabel(record)
        pool = teachers_for_scene(record, town, vocab, config).vocab_pool
        idx[j, : len(pool)] = pool[:TEACHER_SLOTS]
        count[j] = min(len(pool), TEACHER_SLOTS)
    return idx, count


def route_arrays(
    ep: Episode,
    town: Town,
    vocab: Vocabulary,
    camera: CameraSetup,
    teacher_config: TeacherConfig,
    renderer: CameraRenderer | None = None,
    relabel: Relabel | None = None,
) -> dict[str, NDArray[Any]]:
    """Every array of one route's ``routes/<key>.npz`` (docs/DRIVEJEPA.md); ``relabel`` as in
    :func:`scene_teachers`."""
    rec = ep.recording
    rows = scene_rows(ep, FRAME_PERIOD_S)
    if np.any(rows % FRAME_TICKS):
        raise ValueError("scene rows must fall on frame rows")
    frames_at = frame_rows(len(rec))
    frames = render_frames(rec, renderer or camera_renderer(town, camera), frames_at)
    teachers, count = scene_teachers(ep, town, vocab, rows, teacher_config, relabel)
    return {
        "frames": frames,
        "time_s": rec.time_s[frames_at].astype(np.float64),
        "scene_frame": (rows // FRAME_TICKS).astype(np.int64),
        "status": scene_status(ep, town, rows),
        "expert": expert_future(rec, rows),
        "teachers": teachers,
        "teacher_count": count,
        "recording_row": rows.astype(np.int64),
    }
