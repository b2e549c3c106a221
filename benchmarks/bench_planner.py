"""Benchmark: the Drive-JEPA planner on one CPU thread.

1. ``latency``: one planning step of :class:`drivejepa.runtime.PlannerRuntime` (frame buffer,
   status, encoder + refiner + scorer forward, momentum selection against the previous plan) at
   the default camera, median and 90th percentile over ``--steps`` steps; in the same run the
   model forward alone and the same step at Drive-JEPA's own width (dim 256, 8 heads) as the
   reference. The encoder is ``drivejepa.model.VideoEncoder`` at its default config when that
   package is importable; otherwise a tubelet patch embedding of the same token grid stands in
   (the line says which).
2. ``target_share``: the trainer's own training step at ``--batch`` samples (forward, online
   score targets of the 32 final proposals per sample in a synthetic scene on a real town on the
   scorer thread beside the imitation + MTD backward, the score backward, Adam): the scorer's
   time as a share of the step, and the share the step waited for it.
Prints one JSON line per configuration."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages and tests.oracles
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from drivejepa.camera import CameraSetup  # noqa: E402
from drivejepa.checkpoint import Checkpoint  # noqa: E402
from drivejepa.planner.model import DriveJEPAPlanner, PlannerConfig  # noqa: E402
from drivejepa.runtime import PlannerRuntime  # noqa: E402
from drivejepa.train.planner import PlannerTrainer, TrainConfig  # noqa: E402
from harness.errors import UnknownTownError  # noqa: E402
from harness.maps import load_town  # noqa: E402
from tests.oracles.synthetic import synthetic_scene  # noqa: E402

DRIVE_JEPA_WIDTH = PlannerConfig(dim=256, heads=8)  # the reference's planner width


@dataclass(frozen=True)
class StandInConfig:
    image_h: int = 128
    image_w: int = 256
    dim: int = 192


class StandInEncoder(nn.Module):
    """Tubelet-2, patch-16 embedding of the VideoEncoder's token grid (no transformer)."""

    def __init__(self, cfg: StandInConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv2d(6, cfg.dim, 16, stride=16)

    def forward(self, clip: Tensor, keep: Tensor | None = None) -> Tensor:
        b, t, c, h, w = clip.shape
        return self.embed(clip.reshape(b, t * c, h, w)).flatten(2).transpose(1, 2)


def make_encoder(camera: CameraSetup) -> tuple[nn.Module, str]:
    try:
        from drivejepa.model import EncoderConfig, VideoEncoder
    except ImportError:
        return StandInEncoder(StandInConfig(camera.height, camera.width)), "patch-embed stand-in"
    enc: nn.Module = VideoEncoder(EncoderConfig(image_h=camera.height, image_w=camera.width))
    return enc, "VideoEncoder default"


def timed(fn: Any, steps: int) -> tuple[float, float, float]:
    """(median, p90, min) [ms] of ``fn()`` over ``steps`` calls after 3 warm-up calls."""
    for _ in range(3):
        fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(ts)), float(np.percentile(ts, 90)), float(np.min(ts))


def latency(cfg: PlannerConfig, steps: int, camera: CameraSetup) -> dict[str, Any]:
    torch.manual_seed(0)
    encoder, kind = make_encoder(camera)
    planner = DriveJEPAPlanner(encoder, cfg).eval()
    runtime = PlannerRuntime(Checkpoint(Path("bench"), planner, camera, {}), lambda_=0.1)
    xy = np.column_stack([np.linspace(0, 500, 11), np.zeros(11)])
    runtime.set_route(xy, np.zeros(11), [4] * 11)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(8, camera.height, camera.width, 4), dtype=np.uint8)
    state = {"t": 0.0}

    def step() -> None:
        t = state["t"]
        runtime.add_frame(frames[int(round(t / 0.05)) % 8], t)
        runtime.plan(t, (8.0 * t, 0.0, 0.0), 8.0, (0.0, 0.0))
        state["t"] = t + 0.1

    clip, status = torch.rand(1, 2, 3, camera.height, camera.width), torch.zeros(1, 11)

    def forward() -> None:
        with torch.no_grad():
            planner(clip, status)

    def encode() -> None:
        with torch.no_grad():
            encoder(clip, None)

    med, p90, low = timed(step, steps)
    fwd, _, fwd_low = timed(forward, steps)
    enc, _, _ = timed(encode, steps)
    return {"step_ms": round(med, 2), "step_p90_ms": round(p90, 2), "step_min_ms": round(low, 2),
            "forward_ms": round(fwd, 2), "forward_min_ms": round(fwd_low, 2),
            "encoder_ms": round(enc, 2), "encoder": kind,
            "load_average_1min": round(os.getloadavg()[0], 2)}  # fmt: skip


def target_share(batch: int, repeats: int, camera: CameraSetup) -> dict[str, Any]:
    """The trainer's own step (``PlannerTrainer.train_epoch`` over one batch), ``repeats`` times."""
    try:
        town = load_town("Town05")
    except UnknownTownError:
        town = load_town("Harness01")
    scenes = [synthetic_scene(town, n_agents=30, seed=s) for s in range(batch)]
    t = 0.5 * np.arange(1, 9)
    expert = torch.from_numpy(np.column_stack([8.0 * t, 0 * t, 0 * t])).float()
    status = torch.zeros(11)
    status[3] = 8.0
    samples = [
        {"frames": torch.rand(2, 3, camera.height, camera.width), "status": status,
         "expert": expert, "teachers": expert.expand(4, 8, 3), "teacher_mask": torch.ones(4),
         "key": ("bench", i)}
        for i in range(batch)
    ]  # fmt: skip
    torch.manual_seed(0)
    encoder, kind = make_encoder(camera)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = PlannerTrainer(TrainConfig(out=Path(tmp), batch=batch), encoder, camera,
                                 lambda route, i: (scenes[i], town))  # fmt: skip
        rows = [trainer.train_epoch(samples, None) for _ in range(repeats + 1)][1:]  # 1 warm-up
    best = min(rows, key=lambda r: r["step_s"])
    return {"batch": batch, "town": town.name, "step_s": round(best["step_s"], 3),
            "target_share": round(best["target_share"], 3),
            "target_wait_share": round(best["target_wait_share"], 3), "encoder": kind,
            "load_average_1min": round(os.getloadavg()[0], 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=50, help="timed planning steps")
    ap.add_argument("--batch", type=int, default=8, help="training batch of the share figure")
    ap.add_argument("--repeats", type=int, default=3, help="training steps timed (best kept)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (latency only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    camera = CameraSetup()
    base = {"benchmark": "planner", "threads": torch.get_num_threads(),
            "machine": platform.machine(), "torch": torch.__version__}  # fmt: skip
    lat = latency(PlannerConfig(), args.steps, camera)
    ref = latency(DRIVE_JEPA_WIDTH, args.steps, camera)
    print(json.dumps({**base, "config": "latency", "planner": PlannerConfig().to_json(), **lat,
                      "reference": "Drive-JEPA width (dim 256, 8 heads)",
                      "reference_step_ms": ref["step_ms"], "target_ms": 20.0}))  # fmt: skip
    print(json.dumps({**base, "config": "target_share",
                      **target_share(args.batch, args.repeats, camera)}))  # fmt: skip


if __name__ == "__main__":
    main()
