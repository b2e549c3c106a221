"""The pretrained encoder file (``encoder.pt``): the EMA target encoder's weights and its
``EncoderConfig``, written atomically; :func:`load_encoder` refuses a missing, corrupt or
incompatible file with a message naming the file and what differs."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from drivejepa.model.encoder import EncoderConfig, VideoEncoder
from harness.errors import ConfigError, HarnessError
from harness.io import atomic_output

ENCODER_FORMAT = "drivejepa-encoder"
ENCODER_VERSION = 1


class EncoderFileError(HarnessError):
    """An encoder file that is missing, unreadable, of another format/version or another shape."""


def save_encoder(path: Path, encoder: VideoEncoder, info: dict[str, Any] | None = None) -> Path:
    """Write ``encoder`` (weights + config) and the JSON-able ``info`` (how it was trained) to
    ``path`` atomically."""
    obj = {
        "format": ENCODER_FORMAT,
        "version": ENCODER_VERSION,
        "encoder_cfg": encoder.cfg.to_json(),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "pretrain": info or {},
    }
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
    return path


def read_encoder_file(path: Path) -> dict[str, Any]:
    """The checked contents of an encoder file (format, version, config keys)."""
    if not path.is_file():
        raise EncoderFileError(
            f"encoder file {path} does not exist; make one with 'harness train pretrain DATA --out DIR'"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
        raise EncoderFileError(
            f"encoder file {path} is not a readable torch file ({' '.join(str(exc).split())[:200]}); "
            "re-run 'harness train pretrain'"
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != ENCODER_FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise EncoderFileError(
            f"{path} is not a drivejepa encoder file (format {found!r}, expected {ENCODER_FORMAT!r})"
        )
    if obj.get("version") != ENCODER_VERSION:
        raise EncoderFileError(
            f"encoder file {path} has format version {obj.get('version')!r}; this harness reads "
            f"version {ENCODER_VERSION}: re-run 'harness train pretrain'"
        )
    return obj


def load_encoder(path: str | Path, expect: EncoderConfig | None = None) -> VideoEncoder:
    """The encoder stored at ``path`` (on the CPU, eval mode). With ``expect``, a file whose
    config differs in any field (architecture, image size, tubelet, patch) is refused, naming
    the fields."""
    path = Path(path)
    obj = read_encoder_file(path)
    try:
        cfg = EncoderConfig.from_json(obj["encoder_cfg"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise EncoderFileError(f"encoder file {path} has no valid encoder config ({exc})") from exc
    if expect is not None and cfg != expect:
        diff = ", ".join(
            f"{k} {v} (expected {getattr(expect, k)})"
            for k, v in cfg.to_json().items()
            if v != getattr(expect, k)
        )
        raise EncoderFileError(f"encoder file {path} is incompatible: {diff}")
    encoder = VideoEncoder(cfg)
    try:
        encoder.load_state_dict(obj["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise EncoderFileError(
            f"encoder file {path}: its weights do not match its config ({' '.join(str(exc).split())[:300]})"
        ) from exc
    return encoder.eval()
