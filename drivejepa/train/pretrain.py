"""The pretraining loop (``harness train pretrain``): AdamW with warm-up + cosine learning rate,
the EMA momentum schedule, per-epoch log records and checkpoints that ``resume`` continues from
exactly where a run stopped (after an epoch, or mid-epoch at ``max_minutes``).

Deterministic for a seed: the clip order of epoch e is a permutation drawn from (seed, e), the
masks of batch b of epoch e from (seed, e, b), so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
import zipfile
from collections.abc import Callable, Mapping, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from drivejepa.model.encoder_io import save_encoder
from drivejepa.model.jepa import JEPA, OBJECTIVES, JEPAConfig, ema_momentum
from drivejepa.model.masks import MaskBatch, sample_masks, slice_masks
from harness.errors import ConfigError, HarnessError
from harness.io import atomic_output, atomic_write_text

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "drivejepa-pretrain-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
ENCODER_FILE = "encoder.pt"
LOG_FILE = "log.jsonl"
CLIP_FRAMES = 8  # frames per pretraining clip (2 Hz: 4 s), Drive-JEPA's clip length
RUNTIME_FIELDS = ("device", "threads", "max_minutes")  # options a resumed run may change


class ClipDataset(Protocol):
    """What pretraining reads: ``len`` and clip ``i`` as (T, 3, H, W) in [0, 1] (float) or
    0..255 (uint8), or a mapping holding it under ``"frames"``."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Any: ...


@dataclass(frozen=True)
class PretrainConfig:
    """A pretraining run. ``lr`` [1/step] is the peak after ``warmup`` (fraction of all steps);
    ``ema`` the target momentum from start to end of the run."""

    model: JEPAConfig = field(default_factory=JEPAConfig)
    epochs: int = 10
    batch: int = 8
    lr: float = 5e-4
    min_lr: float = 1e-6
    warmup: float = 0.1
    weight_decay: float = 0.04
    ema: tuple[float, float] = (0.996, 1.0)
    grad_clip: float = 1.0  # max gradient norm
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None  # torch.set_num_threads; None = torch's default
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time [min]

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError(f"epochs and batch must be >= 1 (got {self.epochs}, {self.batch})")
        if self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ConfigError(f"lr must be > 0 and warmup in [0, 1) (got {self.lr}, {self.warmup})")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"--max-minutes must be > 0, got {self.max_minutes}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device {self.device!r}: use cpu or cuda")

    @property
    def objective(self) -> str:
        return OBJECTIVES[1] if self.model.tritemporal is not None else OBJECTIVES[0]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"model": self.model.to_json(), "objective": self.objective}


@dataclass(frozen=True)
class PretrainResult:
    """Where a run stands: epochs completed of ``epochs``, global steps, and the log records."""

    epochs_done: int
    steps: int
    finished: bool
    log: list[dict[str, Any]]
    encoder: Path | None


def lr_at(step: int, total: int, cfg: PretrainConfig) -> float:
    """Linear warm-up from 0 to ``cfg.lr`` over ``warmup x total`` steps, then cosine to min_lr."""
    warm = max(1, int(cfg.warmup * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def param_groups(model: JEPA, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and kernels only (not on biases, norms, the mask token)."""
    decay = [p for p in model.online_parameters() if p.ndim >= 2 and p.shape[:2] != (1, 1)]
    ids = {id(p) for p in decay}
    rest = [p for p in model.online_parameters() if id(p) not in ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def as_clip(item: Any) -> torch.Tensor:
    """A dataset item as a float (T, 3, H, W) clip in [0, 1]."""
    clip = item["frames"] if isinstance(item, Mapping) else item
    clip = torch.as_tensor(clip)
    return clip.float() / 255.0 if clip.dtype == torch.uint8 else clip.float()


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The clip order of ``epoch``: a permutation of ``n`` drawn from (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def batch_masks(
    cfg: JEPAConfig, frames: int, batch: int, seed: int, epoch: int, index: int
) -> tuple[list[MaskBatch], MaskBatch | None]:
    """The multi-block masks (one per spec) and the SOON mask of batch ``index`` of ``epoch``."""
    grid = cfg.encoder.grid(frames)
    rng = np.random.default_rng([seed, epoch, index])
    masks = [sample_masks(grid, batch, spec, rng) for spec in cfg.masks]
    soon = None
    if cfg.tritemporal is not None:
        if cfg.tritemporal.frames != frames:
            raise ConfigError(
                f"tri-temporal split {cfg.tritemporal.frames} frames, clips have {frames}"
            )
        now, soon_slots, _ = cfg.tritemporal.slots(cfg.encoder.tubelet)
        soon = slice_masks(grid, batch, now, soon_slots)
    return masks, soon


def train_step(
    model: JEPA, opt: torch.optim.Optimizer, clip: torch.Tensor, masks: list[MaskBatch],
    soon: MaskBatch | None, lr: float, momentum: float, grad_clip: float,
) -> dict[str, float]:  # fmt: skip
    """One optimiser step at learning rate ``lr`` on the batch ``clip`` (on the model's device),
    then the EMA update of the target at ``momentum``; the step's logged terms."""
    device = clip.device
    for g in opt.param_groups:
        g["lr"] = lr
    res = model(clip, [m.to(device) for m in masks], soon.to(device) if soon else None)
    opt.zero_grad(set_to_none=True)
    res.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.online_parameters(), grad_clip)
    opt.step()
    model.update_target(momentum)
    return res.terms


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu")
    return torch.device(name)


def _write_log(out: Path, log: list[dict[str, Any]]) -> None:
    atomic_write_text(out / LOG_FILE, "".join(json.dumps(r) + "\n" for r in log))


def _load_checkpoint(path: Path, cfg: PretrainConfig) -> dict[str, Any]:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
        raise HarnessError(f"checkpoint {path} is unreadable ({exc}); remove it to start over") from exc
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise HarnessError(f"{path} is not a pretraining checkpoint; pick another --out")
    if ck.get("version") != CHECKPOINT_VERSION:
        raise HarnessError(f"checkpoint {path} has version {ck.get('version')}, expected "
                           f"{CHECKPOINT_VERSION}; start a new run in another --out")  # fmt: skip
    old, new = json.loads(ck["config"]), json.loads(json.dumps(cfg.to_json()))
    diff = [k for k in new if k not in RUNTIME_FIELDS and old.get(k) != new[k]]
    if diff:
        raise HarnessError(
            f"checkpoint {path} was made with other settings ({', '.join(diff)} differ); resume "
            "with the same options or pick another --out"
        )
    return ck


class _Totals:
    """Per-epoch sums of the logged terms."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        s = state or {}
        self.sums: dict[str, float] = dict(s.get("sums", {}))
        self.steps = int(s.get("steps", 0))
        self.clips = int(s.get("clips", 0))
        self.seconds = float(s.get("seconds", 0.0))

    def add(self, terms: dict[str, float], clips: int, seconds: float) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1
        self.clips += clips
        self.seconds += seconds

    def state(self) -> dict[str, Any]:
        return {"sums": self.sums, "steps": self.steps, "clips": self.clips, "seconds": self.seconds}


def pretrain(
    dataset: ClipDataset,
    out: Path,
    cfg: PretrainConfig,
    *,
    resume: bool = False,
    info: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> PretrainResult:
    """Pretrain on ``dataset`` into ``out`` (``encoder.pt``, ``log.jsonl``, ``checkpoint.pt``).
    ``info`` (JSON-able, e.g. the data folder) goes into the encoder file; ``on_epoch`` gets
    every epoch's log record."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    n = len(dataset) if isinstance(dataset, Sized) else 0
    steps_per_epoch = n // cfg.batch
    if steps_per_epoch < 1:
        raise ConfigError(f"the data holds {n} clips, fewer than one batch of {cfg.batch}; "
                          "collect more data or lower --batch")  # fmt: skip
    frames = as_clip(dataset[0]).shape[0]
    cfg.model.encoder.grid(frames)
    total = cfg.epochs * steps_per_epoch

    torch.manual_seed(cfg.seed)
    model = JEPA(cfg.model).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    ck_path = out / CHECKPOINT_FILE
    epoch, start_batch, step, log, partial = 0, 0, 0, [], None
    if ck_path.exists() and not resume:
        raise HarnessError(f"{out} already holds a pretraining run ({ck_path.name}); pass "
                           "--resume to continue it or pick another --out")  # fmt: skip
    if ck_path.exists():
        ck = _load_checkpoint(ck_path, cfg)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        epoch, start_batch, step = ck["epoch"], ck["batch"], ck["step"]
        log, partial = json.loads(ck["log"]), json.loads(ck["partial"])
        logger.info("resuming %s at epoch %d batch %d", out, epoch, start_batch)
    out.mkdir(parents=True, exist_ok=True)

    def save(batch_index: int, totals: _Totals) -> None:
        state = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "config": json.dumps(cfg.to_json()), "model": model.state_dict(),
            "optimizer": opt.state_dict(), "epoch": epoch, "batch": batch_index, "step": step,
            "log": json.dumps(log), "partial": json.dumps(totals.state()),
        }  # fmt: skip
        with atomic_output(ck_path) as tmp:
            torch.save(state, tmp)

    t_start = time.perf_counter()
    encoder_path = out / ENCODER_FILE
    model.train()
    while epoch < cfg.epochs:
        totals = _Totals(partial)
        partial = None
        order = epoch_order(n, cfg.seed, epoch)
        lr = mom = 0.0
        for b in range(start_batch, steps_per_epoch):
            t0 = time.perf_counter()
            idx = order[b * cfg.batch : (b + 1) * cfg.batch].tolist()
            clip = torch.stack([as_clip(dataset[i]) for i in idx]).to(device)
            masks, soon = batch_masks(cfg.model, frames, cfg.batch, cfg.seed, epoch, b)
            lr = lr_at(step, total, cfg)
            mom = ema_momentum(step + 1, total, *cfg.ema)
            terms = train_step(model, opt, clip, masks, soon, lr, mom, cfg.grad_clip)
            step += 1
            totals.add(terms, len(idx), time.perf_counter() - t0)
            over = cfg.max_minutes is not None and time.perf_counter() - t_start > 60 * cfg.max_minutes
            if over and b + 1 < steps_per_epoch:
                save(b + 1, totals)
                # a time-boxed run still leaves a usable encoder (the EMA target so far)
                save_encoder(encoder_path, model.target, {
                    "objective": cfg.objective, "epochs": epoch, "steps": step, "seed": cfg.seed,
                    "config": cfg.to_json(), "stopped_in_epoch": epoch + 1, **(info or {}),
                })  # fmt: skip
                logger.info("stopped at --max-minutes in epoch %d after batch %d", epoch + 1, b + 1)
                return PretrainResult(epoch, step, False, log, encoder_path)
        start_batch = 0
        tokens = math.prod(cfg.model.encoder.grid(frames))
        record = {
            "epoch": epoch + 1, "step": step,
            **{k: v / totals.steps for k, v in totals.sums.items()},
            "lr": lr, "momentum": mom, "clips": totals.clips, "seconds": round(totals.seconds, 3),
            "clips_per_s": totals.clips / max(totals.seconds, 1e-9),
            "tokens_per_s": tokens * totals.clips / max(totals.seconds, 1e-9),
        }  # fmt: skip
        log.append(record)
        epoch += 1
        save(0, _Totals())
        save_encoder(encoder_path, model.target, {
            "objective": cfg.objective, "epochs": epoch, "steps": step, "seed": cfg.seed,
            "config": cfg.to_json(), "final": record, **(info or {}),
        })  # fmt: skip
        _write_log(out, log)
        if on_epoch is not None:
            on_epoch(record)
        if cfg.max_minutes is not None and time.perf_counter() - t_start > 60 * cfg.max_minutes:
            break
    done = epoch >= cfg.epochs
    return PretrainResult(epoch, step, done, log, encoder_path if encoder_path.exists() else None)
