"""``harness train head``: refit the planner's scorer head on its own frozen proposals.

Why a second stage: in ``harness train planner`` the head learns while the proposals it ranks
move under it, and the CPU recipe's few thousand steps leave it ranking them poorly and preferring
fast ones (agents/drivejepa/MODEL_CARD.md: the proposal it picks runs 2-4 m/s faster than the
label where the best proposal by its own targets runs 0.5-1 m/s faster). Here everything but the
head (``score_poses``, ``scorer``: :data:`drivejepa.train.planner.SCORE_HEAD`) is frozen, so the
proposals no longer move and their targets can be computed once:

1. **cache** (one pass, the cost of about one planner epoch's forward and scorer work): the
   planner runs over every train and val scene; the head's inputs (final pose tokens max-pooled
   over poses, and the final poses) and the online targets of the final proposals (the same
   scorer and columns as training, :func:`drivejepa.train.planner.online_targets`) go to
   ``OUT/head_cache.pt``, which a rerun on the same checkpoint, data and execution reuses;
   ``execution="held"`` scores each proposal as the agent executes it (its first segment's speed
   held along its path, :func:`drivejepa.planner.targets.held_poses`) instead of as drawn;
2. **fit**: ``epochs`` passes of the head alone over the cached train scenes with the training's
   loss (BCE on the final column + the sub-score columns), Adam, shuffled batches of scenes; an
   epoch costs well under a second;
3. **keep** the epoch whose val scenes' picked proposal scores highest (the target EPDMS of the
   head's argmax; ties keep the earlier epoch): the val split decides, nothing else.

``fit="imitation"`` (``--fit imitation``) leaves the scorer as it is and adds an imitation head
(``PlannerConfig.imitation``, Hydra-MDP's imitation score), trained alone on the same cache with
:func:`drivejepa.planner.losses.imitation_score_term` (its targets come from the cached
proposals and the expert's poses); the epoch with the lowest val KL divergence is kept, then the
selection's weight of the imitation probability is chosen on val from
:data:`IMITATION_WEIGHTS` (the highest picked target EPDMS of argmax(sigmoid(final) + w x
probability); ties keep the smaller weight) and written to the checkpoint's training record as
``imitation_weight``, which the agent uses unless its config says otherwise (and as the last
line of the log).

Per epoch one line of ``OUT/log.jsonl``: train loss, and on val the picked target EPDMS, the
best of the P proposals' (the ceiling), the mean within-scene Spearman correlation of predicted
and target EPDMS, and the speed bias (the picked proposal's mean speed over its first second
minus the label's, m/s); with ``--fit imitation`` also the val KL divergence and how often the
head's argmax is the proposal closest to the expert. Epoch 0 is the checkpoint's own head.
``OUT/model.pt`` is the input checkpoint with the kept head, its training record extended by a ``head_refit`` entry (options,
parent, scene counts, the caching pass's seconds - None when the cache was reused - and the kept
epoch's row).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from drivejepa.planner.losses import (
    SUB_SCORE_WEIGHT,
    imitation_score_term,
    imitation_top1,
    score_terms,
)
from drivejepa.planner.model import DriveJEPAPlanner, ScoreColumn
from drivejepa.planner.targets import EXECUTIONS
from drivejepa.train.planner import (
    IMITATION_HEAD,
    SCORE_HEAD,
    Sample,
    SceneLookup,
    batches,
    check_device,
    online_targets,
    read_manifest_camera,
    scene_lookup,
    seed_everything,
)
from harness.errors import ConfigError
from harness.fingerprint import file_sha256
from harness.io import atomic_output, atomic_write_text

CACHE_NAME = "head_cache.pt"
CACHE_VERSION = 2  # 2: the key names the execution the targets were scored with
LOG_NAME = "log.jsonl"
CHECKPOINT_NAME = "model.pt"
FIRST_SECOND = 1  # index of the pose at +1.0 s (poses are 0.5 s apart from +0.5 s)
FITS = ("scorer", "imitation")  # what `--fit` trains: the scorer head, or a new imitation head
# the selection weights of the imitation probability the val split chooses among
IMITATION_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def check_execution(execution: str) -> None:
    """A ConfigError unless ``execution`` names a rollout of :mod:`drivejepa.planner.targets`."""
    if execution not in EXECUTIONS:
        raise ConfigError(f"--execution must be one of {', '.join(EXECUTIONS)}, got {execution!r}")


def check_fit(fit: str) -> None:
    """A ConfigError unless ``fit`` is one of :data:`FITS`."""
    if fit not in FITS:
        raise ConfigError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")


@dataclass(frozen=True)
class HeadConfig:
    """Options of ``harness train head``."""

    out: Path
    epochs: int = 30
    batch: int = 32  # scenes per step (each P proposals)
    lr: float = 1e-3  # the head's lr in ``harness train planner`` (1e-4 x SCORE_LR_SCALE)
    device: str = "cpu"
    seed: int = 0
    execution: str = "plan"  # how the targets roll a proposal out (drivejepa.planner.targets)
    fit: str = "scorer"  # FITS: refit the scorer head, or add and fit an imitation head

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError(f"--epochs and --batch must be >= 1, got {self.epochs}, {self.batch}")
        check_execution(self.execution)
        check_fit(self.fit)
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        check_device(self.device)


@dataclass(frozen=True)
class HeadSet:
    """The cached head inputs and targets of one split's S scenes: ``pooled`` (S, P, d),
    ``final`` (S, P, K, 3) ego-frame proposals, ``targets`` (S, P, 6), ``expert`` (S, K, 3)."""

    pooled: Tensor
    final: Tensor
    targets: Tensor
    expert: Tensor

    def __len__(self) -> int:
        return int(self.pooled.shape[0])

    def to_dict(self) -> dict[str, Tensor]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}  # no copies


@torch.no_grad()
def cache_split(
    model: DriveJEPAPlanner, data: Sequence[Sample], lookup: SceneLookup, batch: int,
    device: torch.device, progress: Callable[[int, int], None] | None = None,
    execution: str = "plan",
) -> HeadSet:  # fmt: skip
    """Run the frozen planner over ``data`` and score its final proposals (the scorer on a
    thread beside the next batch's forward; ``execution`` as :func:`online_targets`)."""
    model.eval()
    pooled, final, expert, pending = [], [], [], []
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="head-targets") as pool:
        for b in batches(data, batch, None):
            proposals, pool_tokens = model.trunk(b["frames"].to(device), b["status"].to(device))
            last = proposals[-1].cpu()
            pending.append(pool.submit(online_targets, lookup, b, last, execution))
            pooled.append(pool_tokens.cpu())
            final.append(last)
            expert.append(b["expert"])
            done += len(b["key"])
            if progress is not None:
                progress(done, len(data))
        targets = [f.result().float() for f in pending]
    if not pooled:
        raise ConfigError("a split holds no scenes; collect more routes")
    return HeadSet(torch.cat(pooled), torch.cat(final), torch.cat(targets), torch.cat(expert))


def first_second_speed(poses: Tensor) -> Tensor:
    """(..., K, 3) ego-frame poses from the ego at t = 0 -> (...) mean speed over the first
    second [m/s] (straight-line distance to the pose at +1.0 s)."""
    return torch.linalg.vector_norm(poses[..., FIRST_SECOND, :2], dim=-1) / 1.0


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """(S, P), (S, P) -> (S,) rank correlation per row (ties ranked by order; constant rows 0)."""
    ra = a.argsort(dim=1).argsort(dim=1).float()
    rb = b.argsort(dim=1).argsort(dim=1).float()
    ra = ra - ra.mean(dim=1, keepdim=True)
    rb = rb - rb.mean(dim=1, keepdim=True)
    den = (ra.square().sum(dim=1) * rb.square().sum(dim=1)).sqrt()
    constant = (b.amax(dim=1) - b.amin(dim=1)) <= 0
    return torch.where(constant | (den == 0), torch.zeros_like(den), (ra * rb).sum(dim=1) / den)


@torch.no_grad()
def evaluate_head(model: DriveJEPAPlanner, data: HeadSet) -> dict[str, float]:
    """Ranking figures of the head on cached scenes (see the module docstring)."""
    model.eval()
    device = next(model.parameters()).device
    logits = model.score(data.pooled.to(device), data.final.to(device)).cpu()
    pred = logits[..., ScoreColumn.FINAL]
    target = data.targets[..., ScoreColumn.FINAL]
    row = {
        **picked_figures(data, pred),
        "best_epdms": float(target.amax(dim=1).mean()),
        "spearman": float(spearman(pred, target).mean()),
    }
    im = model.imitation(data.pooled.to(device), data.final.to(device))
    if im is not None:
        im = im.cpu()
        row["imitation_kl"] = float(imitation_score_term(im, data.final, data.expert))
        row["imitation_top1"] = float(imitation_top1(im, data.final, data.expert).float().mean())
    return row


def picked_figures(data: HeadSet, value: Tensor) -> dict[str, float]:
    """Of the proposal with the highest ``value`` (S, P) in each cached scene: the mean target
    EPDMS (``picked_epdms``) and the mean speed bias over the first second against the label
    (``speed_bias_mps``, m/s)."""
    pick = value.argmax(dim=1, keepdim=True)
    picked = data.final.gather(1, pick[..., None, None].expand(-1, -1, *data.final.shape[2:]))[:, 0]
    bias = first_second_speed(picked) - first_second_speed(data.expert)
    target = data.targets[..., ScoreColumn.FINAL].gather(1, pick)[:, 0]
    return {"picked_epdms": float(target.mean()), "speed_bias_mps": float(bias.mean())}


@torch.no_grad()
def selection_figures(model: DriveJEPAPlanner, data: HeadSet, weight: float) -> dict[str, float]:
    """On cached scenes, the proposal picked by argmax(sigmoid(final) + ``weight`` x imitation
    probability): its mean target EPDMS and its speed bias over the first second [m/s]."""
    device = next(model.parameters()).device
    pooled, final = data.pooled.to(device), data.final.to(device)
    value = torch.sigmoid(model.score(pooled, final)[..., ScoreColumn.FINAL]).cpu()
    im = model.imitation(pooled, final)
    if im is not None and weight > 0.0:
        value = value + weight * torch.softmax(im.cpu(), dim=1)
    return {"weight": weight, **picked_figures(data, value)}


def choose_imitation_weight(
    model: DriveJEPAPlanner, val: HeadSet
) -> tuple[float, list[dict[str, float]]]:
    """The weight of :data:`IMITATION_WEIGHTS` whose val pick scores the highest target EPDMS
    (ties: the smaller weight), and the figures of every weight."""
    rows = [selection_figures(model, val, w) for w in IMITATION_WEIGHTS]
    best = max(rows, key=lambda r: (r["picked_epdms"], -r["weight"]))
    return best["weight"], rows


def fit_head(
    model: DriveJEPAPlanner, train: HeadSet, val: HeadSet, cfg: HeadConfig,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:  # fmt: skip
    """Fit the head (``cfg.fit``) on ``train``; returns (the log rows, epoch 0 included, and the
    kept head's state dict: the best val ``picked_epdms``, or with ``fit="imitation"`` the
    lowest val ``imitation_kl``)."""
    device = next(model.parameters()).device
    imitation = cfg.fit == "imitation"
    prefix = IMITATION_HEAD if imitation else SCORE_HEAD
    head = [p for n, p in model.named_parameters() if n.startswith(prefix)]
    if not head:
        raise ConfigError(f"the planner has no {cfg.fit} head to fit")
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head:
        p.requires_grad_(True)
    opt = torch.optim.Adam(head, lr=cfg.lr)
    rng = random.Random(cfg.seed)

    def head_state() -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()
                if k.startswith(prefix)}  # fmt: skip

    def merit(row: dict[str, Any]) -> float:  # higher is better
        return -row["val_imitation_kl"] if imitation else row["val_picked_epdms"]

    rows = [{"epoch": 0, **{f"val_{k}": v for k, v in evaluate_head(model, val).items()}}]
    best, best_state = merit(rows[0]), head_state()
    rows[0]["kept"] = True
    if on_epoch is not None:
        on_epoch(rows[0])
    order = list(range(len(train)))
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        rng.shuffle(order)
        total, steps = 0.0, 0
        for i in range(0, len(order), cfg.batch):
            idx = torch.tensor(order[i : i + cfg.batch])
            pooled, final = train.pooled[idx].to(device), train.final[idx].to(device)
            if imitation:
                logits = model.imitation(pooled, final)
                assert logits is not None
                loss = imitation_score_term(logits, final, train.expert[idx].to(device))
            else:
                score, sub = score_terms(model.score(pooled, final), train.targets[idx].to(device))
                loss = score + SUB_SCORE_WEIGHT * sub
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        row: dict[str, Any] = {"epoch": epoch, "train_loss": total / max(steps, 1),
                               **{f"val_{k}": v for k, v in evaluate_head(model, val).items()}}  # fmt: skip
        row["kept"] = merit(row) > best
        if row["kept"]:
            best, best_state = merit(row), head_state()
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return rows, best_state


def with_imitation_head(planner: DriveJEPAPlanner) -> DriveJEPAPlanner:
    """``planner`` with a new (freshly initialised) imitation head and all its other weights;
    ``planner`` itself when it has one already (trained with ``harness train planner
    --imitation-loss-weight``: the fit goes on from it, epoch 0 being its own)."""
    if planner.imitation_head is not None:
        return planner
    new = DriveJEPAPlanner(planner.encoder, dataclasses.replace(planner.cfg, imitation=True))
    missing, unexpected = new.load_state_dict(planner.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(IMITATION_HEAD) for k in missing), missing
    return new.eval()


def load_cache(path: Path, key: dict[str, Any]) -> tuple[HeadSet, HeadSet] | None:
    """The cached (train, val) sets when ``path`` was written for ``key``, else None."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
        return None
    if not isinstance(obj, dict) or obj.get("key") != key:
        return None
    return HeadSet(**obj["train"]), HeadSet(**obj["val"])


def refit_head(
    data: Path, checkpoint: Path, cfg: HeadConfig, command: str = "",
    say: Callable[[str], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """``harness train head``: cache, fit, keep (the module docstring); returns the log rows.
    ``progress(split, scenes done, scenes)`` follows the caching pass."""
    from drivejepa.checkpoint import load_checkpoint, save_checkpoint
    from drivejepa.data.store import PlannerSamples

    camera = read_manifest_camera(data)
    ck = load_checkpoint(checkpoint, camera)
    seed_everything(cfg.seed)
    device = torch.device(cfg.device)
    model = (with_imitation_head(ck.planner) if cfg.fit == "imitation" else ck.planner).to(device)
    cfg.out.mkdir(parents=True, exist_ok=True)
    manifest = data / "manifest.json"
    key = {"version": CACHE_VERSION, "checkpoint_sha256": file_sha256(checkpoint),
           "manifest_sha256": file_sha256(manifest), "execution": cfg.execution}  # fmt: skip
    cache_path = cfg.out / CACHE_NAME
    cached = load_cache(cache_path, key)
    cache_s = None
    if cached is None:
        t0 = time.perf_counter()
        lookup = scene_lookup(data)
        sets = []
        for split in ("train", "val"):
            samples = cast(Sequence[Sample], PlannerSamples(data, split))
            if say is not None:
                say(f"caching the head's inputs and targets of {len(samples)} {split} scenes")
            tick = None if progress is None else functools.partial(progress, split)
            sets.append(cache_split(model, samples, lookup, 8, device, tick, cfg.execution))
        train, val = sets
        with atomic_output(cache_path) as tmp:
            torch.save({"key": key, "train": train.to_dict(), "val": val.to_dict()}, tmp)
        cache_s = round(time.perf_counter() - t0, 1)
        if say is not None:
            say(f"cached in {cache_s:.0f} s: {cache_path}")
    else:
        train, val = cached
        if say is not None:
            say(f"reusing {cache_path} ({len(train)} train, {len(val)} val scenes)")
    rows, state = fit_head(model, train, val, cfg, on_epoch)
    model.load_state_dict(state, strict=False)
    kept = max((r for r in rows if r["kept"]), key=lambda r: r["epoch"])
    refit: dict[str, Any] = {
        **{k: v for k, v in asdict(cfg).items() if k != "out"}, "out": str(cfg.out),
        "data": str(data), "parent_checkpoint": str(checkpoint), "command": command,
        "train_scenes": len(train), "val_scenes": len(val), "cache_s": cache_s,
        "kept": kept}  # fmt: skip
    record = {**ck.train, "head_refit": refit}
    if cfg.fit == "imitation":
        weight, weights = choose_imitation_weight(model, val)
        refit["imitation_weights"] = weights
        record["imitation_weight"] = weight
        rows.append({"imitation_weight": weight, "val_by_weight": weights})
        if on_epoch is not None:
            on_epoch(rows[-1])
    save_checkpoint(cfg.out / CHECKPOINT_NAME, model.cpu(), ck.camera, record)
    atomic_write_text(cfg.out / LOG_NAME, "".join(json.dumps(r) + "\n" for r in rows))
    return rows
