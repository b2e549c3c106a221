"""Readers of a collection folder for the trainers (docs/DRIVEJEPA.md, "Data"): planner samples
(two frames, status, expert future, sampled teachers) and video clips for JEPA pretraining.

Teachers and the expert share one frame and one reference point: the ego's box centre at the
scene's time t, x forward, y right, yaw relative (the vocabulary's frame, ``teachers.vocabulary``;
``drivejepa.status.to_ego_frame``), poses at t + 0.5 .. 4.0 s. A teacher's 8 poses are its
vocabulary entry's poses 4, 9, .., 39 (``vocabulary[:, 4::5]``: t = 0.5, 1.0, .., 4.0 s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from drivejepa.camera import CameraSetup
from drivejepa.data.collect import DATA_FORMAT, DATA_VERSION, MANIFEST_FILE, npz_path
from drivejepa.data.recovery import (
    RecoveryConfig,
    ViewRenderer,
    draw_view,
    ego_is_clear,
    recovery_label,
    view_state,
    view_status,
)
from harness.errors import ConfigError
from teachers.vocabulary import Vocabulary, load_registered

SPLITS = ("train", "val", "all")
TEACHERS_PER_ITEM = 4  # teachers drawn per sample (Drive-JEPA's MTD) [-]
POSE_STRIDE = 5  # vocabulary poses (0.1 s) per planner pose (0.5 s)
TEACHER_STREAM = 0x7EAC  # seeds the teacher draws apart from other streams


def read_manifest(data: Path) -> dict[str, Any]:
    """The collection's manifest, checked for format and version (ConfigError otherwise)."""
    path = data / MANIFEST_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; collect the data with `harness collect`")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); collect the data again") from exc
    if manifest.get("format") != DATA_FORMAT or manifest.get("version") != DATA_VERSION:
        raise ConfigError(
            f"{path} is not a {DATA_FORMAT} v{DATA_VERSION} manifest "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})"
        )
    return manifest


def split_routes(manifest: dict[str, Any], split: str) -> list[str]:
    """Route keys of one split (``all``: every route), in manifest order."""
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    return [str(r["id"]) for r in manifest["routes"] if split == "all" or r["split"] == split]


def teacher_poses(vocab: Vocabulary) -> NDArray[np.float32]:
    """(V, 8, 3) float32 the vocabulary at the planner's poses (t = 0.5 .. 4.0 s)."""
    return np.ascontiguousarray(vocab.trajectories[:, POSE_STRIDE - 1 :: POSE_STRIDE], np.float32)


@dataclass(frozen=True)
class TeacherSampler:
    """Up to ``k`` of a scene's teachers drawn without replacement, from (seed, epoch, item):
    the same draw for the same epoch and item in any worker, a new one each epoch."""

    poses: NDArray[np.float32]  # (V, 8, 3) vocabulary at the planner's poses
    k: int = TEACHERS_PER_ITEM
    seed: int = 0

    def sample(
        self, teachers: NDArray[np.int32], count: int, epoch: int, item: int
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_], NDArray[np.int64]]:
        """(k, 8, 3) poses (zeros where masked), (k,) mask and (k,) vocabulary indices (-1)."""
        rng = np.random.default_rng([TEACHER_STREAM, self.seed, epoch, item])
        n = min(self.k, int(count))
        chosen = np.full(self.k, -1, dtype=np.int64)
        if n:
            chosen[:n] = teachers[rng.choice(int(count), n, replace=False)]
        mask = chosen >= 0
        out = np.zeros((self.k, *self.poses.shape[1:]), dtype=np.float32)
        out[mask] = self.poses[chosen[mask]]
        return out, mask, chosen


def _load_routes(
    data: Path, keys: list[str], names: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, dict[str, Any]]:
    out = {}
    for key in keys:
        path = npz_path(data, key)
        if not path.is_file():
            raise ConfigError(f"{path} is missing; run `harness collect --resume` to finish it")
        with np.load(path) as z:
            out[key] = {n: z[n] for n in names} | {n: z[n] for n in optional if n in z.files}
    return out


def _chw(frames: NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


class PlannerSamples(Dataset[dict[str, Any]]):
    """Scenes of one split. Item: ``frames`` float32 (2, 3, H, W) in [0, 1] (t - 0.5 s, t),
    ``status`` (11,), ``expert`` (8, 3) the imitation target (the expert's intended plan,
    ``expert_plan``, where the route has it - :mod:`drivejepa.data.labels` - else the driven
    future of an older collection), ``teachers`` (4, 8, 3) up to 4 teachers drawn
    (:class:`TeacherSampler`, :meth:`set_epoch`), ``teacher_mask`` (4,) bool, ``teacher_index``
    (4,) vocabulary entries (-1 where masked), ``view`` (3,) the recovery view the item is seen
    from (zeros: the recorded one; ``recovery``, :mod:`drivejepa.data.recovery`), ``key`` (route
    key, scene index)."""

    def __init__(
        self, data: str | Path, split: str, teachers: int = TEACHERS_PER_ITEM, seed: int = 0,
        recovery: RecoveryConfig | None = None,
    ) -> None:  # fmt: skip
        self.data = Path(data)
        self.manifest = read_manifest(self.data)
        self.routes = _load_routes(
            self.data, split_routes(self.manifest, split),
            ("frames", "scene_frame", "status", "expert", "teachers", "teacher_count"),
            ("expert_plan",),
        )  # fmt: skip
        for r in self.routes.values():
            if "expert_plan" in r:
                r["expert"] = r.pop("expert_plan")
        vocab = load_registered(str(self.manifest["vocabulary"]["id"]))
        if vocab.sha256 != self.manifest["vocabulary"]["sha256"]:
            raise ConfigError(
                f"{self.data} was scored with another vocabulary {self.manifest['vocabulary']['id']}"
                " than the one installed; collect the data again"
            )
        self.sampler = TeacherSampler(teacher_poses(vocab), teachers, seed)
        self.index = [(k, i) for k, r in self.routes.items() for i in range(len(r["status"]))]
        self.epoch = 0
        self.seed = seed
        self.recovery = recovery or RecoveryConfig()
        self.views = None
        if self.recovery.enabled:
            camera = CameraSetup.from_json(dict(self.manifest["camera"]))
            self.views = ViewRenderer(self.data, camera)

    def set_epoch(self, epoch: int) -> None:
        """New teacher draws for this epoch (call before iterating it)."""
        self.epoch = int(epoch)

    def speeds_and_moves(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) ego speed [m/s] from the status and (N,) distance [m] of the imitation target's
        pose at +1.0 s, per item, without reading any frame."""
        speed = self.statuses()[:, 3].astype(np.float64)
        moved = np.array(
            [np.hypot(*self.routes[k]["expert"][i][1, :2]) for k, i in self.index], dtype=np.float64
        )
        return speed, moved

    def statuses(self) -> NDArray[np.float32]:
        """(N, 11) the recorded status of every item, without reading any frame."""
        return np.stack([self.routes[k]["status"][i] for k, i in self.index])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, Any]:
        key, i = self.index[item]
        r = self.routes[key]
        k = int(r["scene_frame"][i])
        recovered = self._recovery_view(item, key, i, k)
        if recovered is not None:
            return recovered
        poses, mask, chosen = self.sampler.sample(
            r["teachers"][i], int(r["teacher_count"][i]), self.epoch, item
        )
        return {
            "frames": _chw(r["frames"][k - 1 : k + 1]),
            "status": torch.from_numpy(r["status"][i].copy()),
            "expert": torch.from_numpy(r["expert"][i].copy()),
            "teachers": torch.from_numpy(poses),
            "teacher_mask": torch.from_numpy(mask),
            "teacher_index": torch.from_numpy(chosen),
            "view": torch.zeros(3),
            "key": (key, i),
        }

    def _recovery_view(self, item: int, key: str, i: int, k: int) -> dict[str, Any] | None:
        """The item seen from a recovery view (:mod:`drivejepa.data.recovery`) when this epoch
        draws one for it and the moved ego is clear of every other actor, else None."""
        if self.views is None:
            return None
        r = self.routes[key]
        speed = float(r["status"][i][3])
        view = draw_view(self.recovery, speed, self.seed, self.epoch, item)
        if view is None:
            return None
        moved = [view_state(s, view) for s in self.views.states(key, k)]
        if not ego_is_clear(moved):
            return None
        slots = self.sampler.k
        return {
            "frames": _chw(self.views.render(key, moved)),
            "status": torch.from_numpy(view_status(r["status"][i], view)),
            "expert": torch.from_numpy(recovery_label(r["expert"][i], view, speed)),
            "teachers": torch.zeros((slots, *self.sampler.poses.shape[1:])),
            "teacher_mask": torch.zeros(slots, dtype=torch.bool),
            "teacher_index": torch.full((slots,), -1, dtype=torch.int64),
            "view": torch.from_numpy(view.astype(np.float32)),
            "key": (key, i),
        }


class VideoClips(Dataset[torch.Tensor]):
    """Clips of ``frames`` consecutive frames (2 Hz) of one route, starting every ``stride``
    frames: float32 (frames, 3, H, W) in [0, 1]."""

    def __init__(self, data: str | Path, split: str, frames: int = 8, stride: int = 1) -> None:
        if frames < 1 or stride < 1:
            raise ConfigError(f"clips need frames >= 1 and stride >= 1, got {frames}, {stride}")
        self.data = Path(data)
        self.manifest = read_manifest(self.data)
        self.frames = frames
        self.routes = _load_routes(self.data, split_routes(self.manifest, split), ("frames",))
        self.index = [
            (key, s) for key, r in self.routes.items()
            for s in range(0, len(r["frames"]) - frames + 1, stride)
        ]  # fmt: skip

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> torch.Tensor:
        key, s = self.index[item]
        return _chw(self.routes[key]["frames"][s : s + self.frames])
