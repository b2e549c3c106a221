"""The planner checkpoint: one ``.pt`` file (docs/DRIVEJEPA.md) holding
``{"format": "drivejepa-checkpoint", "version": 1, "encoder_arch", "encoder_cfg", "planner_cfg",
"camera", "state_dict", "train"}``, written atomically, read with ``torch.load(weights_only=True)``.

:func:`load_checkpoint` refuses, with a :class:`CheckpointError` naming the file and what differs,
a missing file, bytes that are not a checkpoint, another format or version, a camera other than
the expected one, and weights that do not fit the architecture the configs describe.

The encoder is built from ``encoder_arch`` through :data:`ENCODER_BUILDERS` (an explicit registry:
``VideoEncoder`` -> ``drivejepa.model``, imported only when a checkpoint needs it).
"""

from __future__ import annotations

import dataclasses
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from drivejepa.camera import CameraSetup
from drivejepa.planner.model import DriveJEPAPlanner, PlannerConfig
from harness.errors import HarnessError
from harness.io import atomic_output

CHECKPOINT_FORMAT = "drivejepa-checkpoint"
CHECKPOINT_VERSION = 1
DEFAULT_ENCODER_ARCH = "VideoEncoder"
TRAIN_HINT = "train one with `harness train planner DATA --encoder ENC.pt --out DIR`"


class CheckpointError(HarnessError):
    """A planner checkpoint that is missing, unreadable or does not fit; says which and why."""


def _video_encoder(cfg: dict[str, Any]) -> nn.Module:
    from drivejepa.model import EncoderConfig, VideoEncoder

    return VideoEncoder(EncoderConfig(**cfg))


ENCODER_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    DEFAULT_ENCODER_ARCH: _video_encoder,
}
"""encoder_arch -> builder from the stored encoder config (a dict)."""


def encoder_config_json(encoder: Any) -> dict[str, Any]:
    """The encoder's ``cfg`` (a dataclass) as a JSON-able dict."""
    cfg = getattr(encoder, "cfg", None)
    if cfg is None or not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError("the planner's encoder must carry its config as a dataclass `cfg`")
    return dataclasses.asdict(cfg)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the planner (eval mode, on the CPU), its camera and training record."""

    path: Path
    planner: DriveJEPAPlanner
    camera: CameraSetup
    train: dict[str, Any]


def checkpoint_dict(
    planner: DriveJEPAPlanner, camera: CameraSetup, train: dict[str, Any]
) -> dict[str, Any]:
    """The serialisable dict of a planner (weights moved to the CPU)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "encoder_arch": type(planner.encoder).__name__,
        "encoder_cfg": encoder_config_json(planner.encoder),
        "planner_cfg": planner.cfg.to_json(),
        "camera": camera.to_json(),
        "state_dict": {k: v.detach().cpu() for k, v in planner.state_dict().items()},
        "train": train,
    }


def save_checkpoint(
    path: Path, planner: DriveJEPAPlanner, camera: CameraSetup, train: dict[str, Any]
) -> Path:
    """Write the checkpoint atomically; returns ``path``."""
    with atomic_output(Path(path)) as tmp:
        torch.save(checkpoint_dict(planner, camera, train), tmp)
    return Path(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict after the file, format and version checks."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; {TRAIN_HINT}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile,
            OSError) as exc:  # fmt: skip
        raise CheckpointError(
            f"checkpoint {path} is not a readable torch file ({type(exc).__name__}); it is "
            f"corrupt or truncated: {TRAIN_HINT}"
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a Drive-JEPA planner checkpoint (format {found!r}, expected "
            f"{CHECKPOINT_FORMAT!r}); pass a file written by `harness train planner`"
        )
    if obj.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {obj.get('version')!r}, this code reads "
            f"version {CHECKPOINT_VERSION}; {TRAIN_HINT}"
        )
    missing = [k for k in ("encoder_cfg", "planner_cfg", "camera", "state_dict") if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}; {TRAIN_HINT}")
    return obj


def _camera_difference(found: CameraSetup, expected: CameraSetup) -> str:
    diffs = [
        f"{f} {getattr(found, f)} (expected {getattr(expected, f)})"
        for f in CameraSetup.__dataclass_fields__
        if getattr(found, f) != getattr(expected, f)
    ]
    return ", ".join(diffs)


def build_planner(obj: dict[str, Any], path: Path) -> DriveJEPAPlanner:
    """The planner the checkpoint's configs describe, with its weights loaded."""
    arch = str(obj.get("encoder_arch", DEFAULT_ENCODER_ARCH))
    builder = ENCODER_BUILDERS.get(arch)
    if builder is None:
        raise CheckpointError(
            f"checkpoint {path} has encoder architecture {arch!r}; this code builds "
            f"{sorted(ENCODER_BUILDERS)}"
        )
    try:
        planner = DriveJEPAPlanner(builder(dict(obj["encoder_cfg"])),
                                   PlannerConfig.from_json(dict(obj["planner_cfg"])))  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} has a configuration this code cannot build ({exc}); {TRAIN_HINT}"
        ) from exc
    own = planner.state_dict()
    state = obj["state_dict"]
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} (this architecture {tuple(v.shape)})"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or extra or shapes:
        parts = (
            ([f"missing {len(missing)} weights (first {missing[0]})"] if missing else [])
            + ([f"{len(extra)} unknown weights (first {extra[0]})"] if extra else [])
            + ([f"{len(shapes)} weights of another shape (first {shapes[0]})"] if shapes else [])
        )
        raise CheckpointError(
            f"checkpoint {path} does not fit the architecture its configs describe: "
            f"{'; '.join(parts)}; {TRAIN_HINT}"
        )
    planner.load_state_dict(state)
    return planner.eval()


def load_checkpoint(path: Path | str, camera: CameraSetup | None = None) -> Checkpoint:
    """Load and check a checkpoint; ``camera`` the setup it must have been trained for (None:
    any). Raises :class:`CheckpointError` naming the file and what differs."""
    path = Path(path)
    obj = read_checkpoint(path)
    found = CameraSetup.from_json(dict(obj["camera"]))
    if camera is not None and found != camera:
        raise CheckpointError(
            f"checkpoint {path} was trained for another camera: "
            f"{_camera_difference(found, camera)}; use a checkpoint trained on data of this "
            "camera, or set the agent config's camera to the checkpoint's"
        )
    planner = build_planner(obj, path)
    return Checkpoint(path, planner, found, dict(obj.get("train", {})))
