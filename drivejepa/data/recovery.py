"""Recovery views: a recorded scene seen from a pose beside the one the expert drove, labelled with
the way back to the expert's plan (docs/DRIVEJEPA.md, "Recovery views").

The expert stays centred in its lane, so its drives show almost no lateral error to recover from
(the data's offsets span +-0.4 m on straight roads), and a planner trained on them holds whatever
offset the ego has. A recovery view moves the ego of a scene sideways by ``shift`` [m] (to the
right, in its frame at t) and turns it by ``yaw`` [rad], the *view* (0, shift, yaw) in the
recorded ego frame. Everything the planner reads or is trained on follows the view:

- frames: the embedded camera renders the recorded states at t - 0.5 s and t with the ego moved
  by the view in its own frame at each (the drive's other actors and lights as recorded);
- status: the route target re-expressed in the view's frame (speed, acceleration and command
  are the recorded ones);
- label: the expert's plan (8, 3) with its lateral offset closing along the distance it drives:
  pose k lies ``shift x w(s_k)`` to the side of the plan's pose k, with s_k the distance the plan
  has driven by then and w(s) = (1 + cos(pi s / L)) / 2 up to L, then 0, L = max(RETURN_S x
  speed, MIN_RETURN_M). Headings turn by the change of the path's direction the blend adds.
  Blending by distance, not time, leaves a plan that stops early with the offset it has left:
  a car cannot move sideways at standstill;
- teachers: none (the vocabulary was scored from the recorded pose; MTD skips the scene);
- no score targets: the planner's score head learns from the recorded scenes only. The scene
  moved rigidly by the view (:func:`view_scene`) gives the BEV head its truth.

Measured (agents/drivejepa/MODEL_CARD.md): one-epoch fine-tunes with views, scored or not,
taught the planner to stand still in closed loop; the cause is not known yet.

A scene gets a view with probability ``probability`` when its ego moves at ``min_speed_mps`` or
more and the moved ego box overlaps no other actor at t - 0.5 s or t; the view is drawn from
(seed, epoch, item), so a resumed run draws the same ones. Lateral shifts and recovery labels
follow NVIDIA's side-camera augmentation (Bojarski et al. 2016) and ChauffeurNet's trajectory
perturbations (Bansal et al. 2018), here with the simulator's camera instead of a viewpoint
transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from drivejepa.camera import CameraSetup
from drivejepa.status import TARGET_CLIP_M
from harness.errors import ConfigError
from harness.geometry import to_local, to_world, wrap_angle
from harness.sim.embedded.contacts import overlaps_any
from harness.sim.sensors.camera import CameraRenderer
from harness.world.recording import Recording, load_recording
from harness.world.state import EGO_INDEX, WorldState
from teachers.scene import Scene

RECOVERY_STREAM = 0x2EC0  # seeds the view draws apart from batch order and teacher draws
RETURN_S = 3.0  # [s] the label closes the offset over the distance driven in this time ...
MIN_RETURN_M = 10.0  # [m] ... but never over less than this distance
MIN_HEADING_STEP_M = 0.2  # [m] path steps shorter than this keep the plan's own heading
Float = NDArray[np.float64]


@dataclass(frozen=True)
class RecoveryConfig:
    """How train scenes are shown from beside the recorded pose (see the module docstring)."""

    probability: float = 0.0  # share of the eligible scenes that get a view each epoch
    min_shift_m: float = 0.3  # [m] |shift| is drawn uniformly from [min, max], either side
    max_shift_m: float = 3.0
    max_yaw_rad: float = 0.1  # [rad] yaw drawn uniformly from [-max, max]
    min_speed_mps: float = 3.0  # [m/s] slower scenes keep their recorded view

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ConfigError(f"--recovery must be in [0, 1], got {self.probability}")
        if not 0.0 <= self.min_shift_m <= self.max_shift_m < math.inf:
            raise ConfigError(
                f"--recovery-shift-m must be finite and >= the least shift {self.min_shift_m} m, "
                f"got {self.max_shift_m}"
            )
        if not (0.0 <= self.max_yaw_rad < math.pi / 2 and self.min_speed_mps >= 0.0):
            raise ConfigError("recovery yaw must be in [0, pi/2) rad and its least speed >= 0")

    @property
    def enabled(self) -> bool:
        return self.probability > 0.0


def draw_view(
    cfg: RecoveryConfig, speed_mps: float, seed: int, epoch: int, item: int
) -> NDArray[np.float64] | None:
    """The view (0, shift, yaw) of one scene this epoch, or None (the recorded view)."""
    if not cfg.enabled or speed_mps < cfg.min_speed_mps:
        return None
    rng = np.random.default_rng([RECOVERY_STREAM, seed, epoch, item])
    u = rng.random(3)
    if u[0] >= cfg.probability:
        return None
    shift = cfg.min_shift_m + u[1] * (cfg.max_shift_m - cfg.min_shift_m)
    side = 1.0 if u[2] < 0.5 else -1.0
    yaw = rng.uniform(-cfg.max_yaw_rad, cfg.max_yaw_rad)
    return np.array([0.0, side * shift, yaw])


def view_pose(pose: Float, view: Float) -> Float:
    """The world pose (x, y, yaw) of ``view`` given in the frame of world ``pose``."""
    xy = to_world(np.asarray(view[:2], dtype=np.float64), pose[:2], pose[2])
    return np.array([xy[0], xy[1], wrap_angle(pose[2] + view[2])])


def into_view(local: Float, view: Float) -> Float:
    """Poses (..., 3) in the recorded ego frame -> the same poses in the view's frame."""
    p = np.asarray(local, dtype=np.float64)
    xy = to_local(p[..., :2], view[:2], view[2])
    return np.concatenate([xy, wrap_angle(p[..., 2:3] - view[2])], axis=-1)


def return_weights(plan: Float, speed_mps: float) -> Float:
    """(K,) w(s_k) of the module docstring for a plan (K, 3) from the origin."""
    xy = np.vstack([np.zeros((1, 2)), np.asarray(plan, dtype=np.float64)[:, :2]])
    s = np.cumsum(np.hypot(*np.diff(xy, axis=0).T))
    length = max(RETURN_S * speed_mps, MIN_RETURN_M)
    return np.where(s < length, 0.5 * (1.0 + np.cos(np.pi * np.minimum(s / length, 1.0))), 0.0)


def _directions(xy: Float) -> tuple[Float, NDArray[np.bool_]]:
    """Path direction at each of points 1..K of (K + 1, 2) points (central differences, the
    last one backward) and whether the step is long enough to define it."""
    nxt = np.vstack([xy[2:], xy[-1:]])
    prv = np.vstack([xy[:-2], xy[-2:-1]])
    d = nxt - prv
    return np.arctan2(d[:, 1], d[:, 0]), np.hypot(d[:, 0], d[:, 1]) >= MIN_HEADING_STEP_M


def recovery_label(plan: Float, view: Float, speed_mps: float) -> NDArray[np.float32]:
    """The expert's plan (K, 3) in the recorded ego frame -> the label from ``view``, in the
    view's frame (see the module docstring)."""
    p = np.asarray(plan, dtype=np.float64)
    w = return_weights(p, speed_mps)
    moved = p.copy()
    moved[:, 1] += view[1] * w
    old_dir, ok_old = _directions(np.vstack([np.zeros((1, 2)), p[:, :2]]))
    new_dir, ok_new = _directions(np.vstack([view[None, :2], moved[:, :2]]))
    turn = np.where(ok_old & ok_new, wrap_angle(new_dir - old_dir), 0.0)
    moved[:, 2] = p[:, 2] + turn
    return into_view(moved, view).astype(np.float32)


def view_status(status: NDArray[np.float32], view: Float) -> NDArray[np.float32]:
    """The 11-value status with its route target (x, y, yaw) re-expressed in the view's frame."""
    out = np.array(status, dtype=np.float32, copy=True)
    target = into_view(np.asarray(status[:3], dtype=np.float64), view)
    out[:2] = np.clip(target[:2], -TARGET_CLIP_M, TARGET_CLIP_M)
    out[2] = target[2]
    return out


def view_state(state: WorldState, view: Float) -> WorldState:
    """The state with its ego moved by ``view`` in the ego's own frame (the rest as recorded)."""
    a = state.actors
    e = EGO_INDEX
    moved = view_pose(np.array([a.x[e], a.y[e], a.yaw[e]]), view)
    x, y, yaw = a.x.copy(), a.y.copy(), a.yaw.copy()
    x[e], y[e], yaw[e] = moved
    return replace(state, actors=replace(a, x=x, y=y, yaw=yaw))


def ego_is_clear(states: list[WorldState]) -> bool:
    """Whether the ego box overlaps no other valid actor in any of the states (states moved by
    a view: :func:`view_state`)."""
    for state in states:
        a = state.actors
        e = EGO_INDEX
        others = a.valid.copy()
        others[e] = False
        boxes = np.column_stack([a.x, a.y, a.yaw, a.length, a.width])[others]
        ego = np.array([a.x[e], a.y[e], a.yaw[e], a.length[e], a.width[e]])
        if boxes.shape[0] and overlaps_any(ego, boxes):
            return False
    return True


def _move_rigidly(poses: Float, origin: Float, view: Float) -> Float:
    """World poses (..., >= 3) moved by the rigid motion taking ``origin`` to its view pose."""
    out = np.array(poses, dtype=np.float64, copy=True)
    local = to_local(out[..., :2], origin[:2], origin[2])
    new = view_pose(origin, view)
    out[..., :2] = to_world(local, new[:2], new[2])
    out[..., 2] = wrap_angle(out[..., 2] + view[2])
    return out


def view_scene(scene: Scene, view: Float) -> Scene:
    """The scorer's scene with the ego's pose, past states and previous plan moved rigidly by
    ``view`` (the agents, lights and route as recorded)."""
    origin = np.asarray(scene.ego_pose, dtype=np.float64)
    past = _move_rigidly(scene.ego_past, origin, view)
    previous = None if scene.previous_plan is None else _move_rigidly(
        scene.previous_plan, origin, view
    )
    return replace(scene, ego_pose=view_pose(origin, view), ego_past=past, previous_plan=previous)


class ViewRenderer:
    """Renders recovery views of a dataset's scenes: each route's recording is loaded once and
    kept (a few MB each), each town's camera once."""

    def __init__(self, data: str | Path, camera: CameraSetup) -> None:
        from drivejepa.data.store import read_manifest

        self.data = Path(data)
        self.camera = camera
        manifest = read_manifest(self.data)
        self.towns_of = {str(r["id"]): str(r["town"]) for r in manifest["routes"]}
        self._recordings: dict[str, Recording] = {}
        self._renderers: dict[str, CameraRenderer] = {}

    def states(self, key: str, frame: int) -> list[WorldState]:
        """The recorded states of frames ``frame - 1`` and ``frame`` of route ``key``."""
        from drivejepa.data.build import FRAME_TICKS
        from drivejepa.data.collect import recording_path

        if key not in self._recordings:
            self._recordings[key] = load_recording(recording_path(self.data, key))
        rec = self._recordings[key]
        return [rec.state_at(FRAME_TICKS * f) for f in (frame - 1, frame)]

    def render(self, key: str, states: list[WorldState]) -> NDArray[np.uint8]:
        """(T, H, W, 3) uint8 RGB frames of route ``key``'s ``states`` (moved by a view, say)."""
        from drivejepa.data.build import camera_renderer
        from harness.maps import load_town

        town = self.towns_of[key]
        if town not in self._renderers:
            self._renderers[town] = camera_renderer(load_town(town), self.camera)
        r = self._renderers[town]
        return np.stack([r.render(s)[..., 2::-1] for s in states])
