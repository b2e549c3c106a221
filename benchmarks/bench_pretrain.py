"""Benchmark: JEPA pretraining steps on the CPU (one JSON line per objective): steps/s, clips/s
and target tokens/s of the default encoder (``small``, 128x256, 8-frame clips) through the real
training step, with the ``tiny`` preset at the same image size measured in the same run as the
reference."""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import sys
import time

import torch

from drivejepa.model import ENCODER_PRESETS, JEPA, JEPAConfig, TriTemporalConfig
from drivejepa.model.jepa import OBJECTIVES
from drivejepa.train.pretrain import (
    CLIP_FRAMES,
    PretrainConfig,
    batch_masks,
    param_groups,
    train_step,
)

logger = logging.getLogger(__name__)


def time_steps(size: str, objective: str, batch: int, steps: int, seed: int) -> dict[str, float]:
    """Time ``steps`` training steps (after one warm-up step) of preset ``size``."""
    torch.manual_seed(seed)
    tri = TriTemporalConfig() if objective == "tritemporal" else None
    cfg = PretrainConfig(model=JEPAConfig(encoder=ENCODER_PRESETS[size], tritemporal=tri), batch=batch)
    model = JEPA(cfg.model)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr)
    enc = cfg.model.encoder
    clip = torch.rand(batch, CLIP_FRAMES, 3, enc.image_h, enc.image_w)
    times = []
    for i in range(steps + 1):
        masks, soon = batch_masks(cfg.model, CLIP_FRAMES, batch, seed, 0, i)
        t0 = time.perf_counter()
        train_step(model, opt, clip, masks, soon, cfg.lr, 0.996, cfg.grad_clip)
        times.append(time.perf_counter() - t0)
    step_s = sum(times[1:]) / steps
    tokens = math.prod(enc.grid(CLIP_FRAMES))
    return {
        "params_encoder_m": round(sum(p.numel() for p in model.context.parameters()) / 1e6, 3),
        "step_s": round(step_s, 4),
        "steps_per_s": round(1.0 / step_s, 3),
        "clips_per_s": round(batch / step_s, 2),
        "tokens_per_s": round(batch * tokens / step_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    parser.add_argument("--objective", choices=OBJECTIVES, action="append")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    for objective in args.objective or OBJECTIVES:
        logger.info("timing %s: %d steps of batch %d", objective, args.steps, args.batch)
        default = time_steps("small", objective, args.batch, args.steps, args.seed)
        reference = time_steps("tiny", objective, args.batch, args.steps, args.seed)
        result = {
            "bench": "pretrain",
            "objective": objective,
            "batch": args.batch,
            "frames": CLIP_FRAMES,
            "image": [ENCODER_PRESETS["small"].image_w, ENCODER_PRESETS["small"].image_h],
            "threads": torch.get_num_threads(),
            "default_small": default,
            "reference_tiny": reference,
            "default_vs_tiny_step_time": round(default["step_s"] / reference["step_s"], 2),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
        sys.stdout.write(json.dumps(result) + "\n")  # output contract: one JSON line on stdout


if __name__ == "__main__":
    main()
