"""``harness train planner``: the planner trained on a dataset folder with the imitation + MTD
losses and online score targets (REFERENCE.md 1a), the encoder fine-tuned at a fraction of the lr.

Per step: forward; the online targets of the detached final proposals in each sample's scene
(:mod:`drivejepa.planner.targets`, one scorer call per sample) on a scorer thread while the
imitation + MTD loss is back-propagated; then the score BCE's backward and an Adam step. Per
epoch one line of ``OUT/log.jsonl``: train means of every loss term, the scorer's share of the
step time (``target_share``) and the part of it the step waited for (``target_wait_share``), val min-ADE [m] (final layer, closest proposal) and val score-target agreement (mean
|sigmoid(final logit) - target| and the target EPDMS of the proposal the scorer head picks).
With ``imitation_loss_weight`` > 0 (not in Drive-JEPA) the planner has an imitation head whose
KL divergence from the target made of the detached proposals' distances to the expert
(:func:`drivejepa.planner.losses.imitation_score_term`) joins the first backward, logged as
``train_imitation_score``, with ``val_imitation_top1`` (its argmax is the closest proposal).
With ``recovery`` > 0 (not in Drive-JEPA) a share of the moving train scenes is seen from beside
the driven pose and labelled with the way back (:mod:`drivejepa.data.recovery`); those samples
train the imitation and MTD terms only (no score targets); every run also
logs ``val_recovery_lateral_2s_m`` / ``_4s_m``, the picked plan's lateral error against the way
back on val scenes seen 1-3 m beside the driven pose (:meth:`PlannerTrainer.validate_recovery`).
With ``turn_repeat`` n > 1 (not in Drive-JEPA) each turning train scene (:func:`turning_scenes`)
appears n times per epoch. ``init`` starts the run from a planner checkpoint (fine-tuning).
``OUT/model.pt`` (the checkpoint) and ``OUT/train_state.pt`` (optimizer, epoch, rng) are written
atomically after every epoch and at the time limit; ``resume`` continues from them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import read_checkpoint, save_checkpoint
from drivejepa.data.recovery import RecoveryConfig, view_scene
from drivejepa.planner.bev import NUM_BEV, BevChannel, batch_bev_targets, bev_loss
from drivejepa.planner.losses import (
    SUB_SCORE_WEIGHT,
    imitation_score_term,
    imitation_top1,
    planner_loss,
    score_terms,
)
from drivejepa.planner.model import (
    NUM_SCORES,
    DriveJEPAPlanner,
    PlannerConfig,
    ScoreColumn,
    TokenEncoder,
)
from drivejepa.planner.targets import batch_targets
from drivejepa.status import TURN_HEADING_RAD
from harness.errors import ConfigError
from harness.io import atomic_output, atomic_write_text
from teachers.scene import Scene
from teachers.scoring.rasters import ScoringMap

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "model.pt"
STATE_NAME = "train_state.pt"
LOG_NAME = "log.jsonl"
SCENE_CACHE = 2048  # [scenes] rebuilt scorer scenes kept across epochs (~100 kB each)
SCORE_LR_SCALE = 10.0  # the scorer head (``score_poses``, ``scorer``) learns at lr x this
# At the planner's lr the head learned each scene's mean score but not the ranking within it in
# the CPU recipe's few thousand steps (val: within-scene Spearman -0.14 after one epoch); 150
# more steps of the head alone at 10x lifted it to +0.24.
SCORE_HEAD = ("score_poses.", "scorer.")  # parameter name prefixes of the scorer head
IMITATION_HEAD = ("imitation_head.",)  # the imitation head's prefix (learns at the scorer's lr)

Sample = dict[str, Any]
SceneLookup = Callable[[str, int], tuple[Scene, ScoringMap]]
"""(route_key, scene index) -> the scorer's scene and town for online targets."""


# every moving val scene seen 1-3 m beside the driven pose, for the recovery figures
RECOVERY_VAL = RecoveryConfig(probability=1.0, min_shift_m=1.0, max_shift_m=3.0)

# options a resumed run must keep (its loss, data and optimizer); the rest (epochs, time limit,
# device) may change between sessions
RESUME_KEYS = ("mtd", "kinematic_weight", "wait_keep", "bev_weight", "imitation_loss_weight",
               "turn_repeat", "recovery", "recovery_shift_m", "lr", "encoder_lr_scale", "batch",
               "seed")
WAIT_SPEED_MPS = 0.5  # [m/s] a scene whose ego is slower than this is at standstill ...
WAIT_MOVE_M = 1.0  # [m] ... and waits when its target moves less than this in the next 1.0 s


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``harness train planner``."""

    out: Path
    epochs: int = 10
    max_minutes: float | None = None
    batch: int = 8
    lr: float = 1e-4
    encoder_lr_scale: float = 0.1
    mtd: bool = True
    kinematic_weight: float = 0.0
    wait_keep: float = 1.0
    bev_weight: float = 0.0
    imitation_loss_weight: float = 0.0
    turn_repeat: int = 1  # each turning train scene appears this many times per epoch
    recovery: float = 0.0  # share of moving train scenes shown from a recovery view
    recovery_shift_m: float = RecoveryConfig.max_shift_m  # [m] their largest lateral shift
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    planner: PlannerConfig = field(default_factory=PlannerConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1:
            raise ConfigError(f"--epochs and --batch must be >= 1, got {self.epochs}, {self.batch}")
        if not (self.lr > 0 and self.encoder_lr_scale >= 0):
            raise ConfigError("--lr must be > 0 and --encoder-lr-scale >= 0")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"--max-minutes must be > 0, got {self.max_minutes}")
        if not (0.0 <= self.kinematic_weight < float("inf")):
            raise ConfigError(f"--kinematic-weight must be finite and >= 0, got {self.kinematic_weight}")
        if self.turn_repeat < 1:
            raise ConfigError(f"--turn-repeat must be >= 1, got {self.turn_repeat}")
        if not (0.0 < self.wait_keep <= 1.0):
            raise ConfigError(f"--wait-keep must be in (0, 1], got {self.wait_keep}")
        if not (0.0 <= self.bev_weight < float("inf")):
            raise ConfigError(f"--bev-weight must be finite and >= 0, got {self.bev_weight}")
        if not (0.0 <= self.imitation_loss_weight < float("inf")):
            raise ConfigError(
                f"--imitation-loss-weight must be finite and >= 0, got {self.imitation_loss_weight}"
            )
        RecoveryConfig(self.recovery, max_shift_m=self.recovery_shift_m)  # refuses bad values
        # the auxiliary heads exist exactly when they are trained
        if (self.bev_weight > 0) != self.planner.bev:
            object.__setattr__(self, "planner", replace(self.planner, bev=self.bev_weight > 0))
        if (self.imitation_loss_weight > 0) != self.planner.imitation:
            object.__setattr__(self, "planner",
                               replace(self.planner, imitation=self.imitation_loss_weight > 0))  # fmt: skip
        check_device(self.device)

    @property
    def recovery_config(self) -> RecoveryConfig:
        """The train split's recovery views (:mod:`drivejepa.data.recovery`)."""
        return RecoveryConfig(probability=self.recovery, max_shift_m=self.recovery_shift_m)


def check_device(device: str) -> None:
    """A ``--device`` that is cpu, or cuda with a GPU torch can see; else a ConfigError."""
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible to torch; use --device cpu")


def collate(samples: Sequence[Sample]) -> dict[str, Any]:
    """Stack the tensors of ``PlannerSamples`` items; ``key`` stays a list of (route, index)."""
    out: dict[str, Any] = {"key": [(str(s["key"][0]), int(s["key"][1])) for s in samples]}
    for k in ("frames", "status", "expert", "teachers", "teacher_mask"):
        out[k] = torch.stack([torch.as_tensor(s[k]) for s in samples]).float()
    out["view"] = torch.stack([torch.as_tensor(s.get("view", torch.zeros(3))) for s in samples])
    return out


def batches(
    dataset: Sequence[Sample], size: int, rng: random.Random | None
) -> Iterator[dict[str, Any]]:
    """Shuffled (``rng``) or ordered batches of a map-style dataset."""
    order = list(range(len(dataset)))
    if rng is not None:
        rng.shuffle(order)
    for i in range(0, len(order), size):
        yield collate([dataset[j] for j in order[i : i + size]])


def waiting_scenes(data: Sequence[Sample]) -> np.ndarray:
    """(N,) whether each scene waits: the ego below WAIT_SPEED_MPS and its imitation target less
    than WAIT_MOVE_M from it at +1.0 s. Reads the arrays of a :class:`PlannerSamples` directly
    (``speeds_and_moves``), else each item's ``status`` and ``expert``."""
    if hasattr(data, "speeds_and_moves"):
        speed, moved = data.speeds_and_moves()
    else:
        items = [data[i] for i in range(len(data))]  # each item read once
        speed = np.array([float(it["status"][3]) for it in items])
        moved = np.array([float(torch.linalg.vector_norm(it["expert"][1, :2])) for it in items])
    return np.asarray((speed < WAIT_SPEED_MPS) & (moved < WAIT_MOVE_M), dtype=bool)


def select(batch: dict[str, Any], keep: Tensor) -> dict[str, Any]:
    """The samples of a collated batch where ``keep`` (B,) bool is set."""
    rows = keep.tolist()
    return {k: ([x for x, r in zip(v, rows, strict=True) if r] if isinstance(v, list) else v[keep])
            for k, v in batch.items()}  # fmt: skip


def turning_scenes(data: Sequence[Sample]) -> np.ndarray:
    """(N,) whether each scene turns: the ego moves (WAIT_SPEED_MPS or faster) and its route
    target's heading lies beyond TURN_HEADING_RAD. Reads a :class:`PlannerSamples`' statuses
    directly (``statuses``), else each item's ``status``."""
    if hasattr(data, "statuses"):
        status = np.asarray(data.statuses(), dtype=np.float64)
    else:
        status = np.array([np.asarray(data[i]["status"], dtype=np.float64) for i in range(len(data))])
    status = status.reshape(-1, 11)
    return np.asarray(
        (np.abs(status[:, 2]) > TURN_HEADING_RAD) & (status[:, 3] >= WAIT_SPEED_MPS), dtype=bool
    )


def batch_scenes(lookup: SceneLookup, batch: dict[str, Any]) -> list[tuple[Scene, ScoringMap]]:
    """The scorer scenes and towns of a batch's samples (the lookup caches them), each seen
    from its sample's recovery view where it has one (:func:`drivejepa.data.recovery.view_scene`)."""
    views = batch.get("view")
    out = []
    for b, (route, i) in enumerate(batch["key"]):
        scene, town = lookup(route, i)
        if views is not None and bool(views[b].any()):
            scene = view_scene(scene, views[b].double().numpy())
        out.append((scene, town))
    return out


def online_targets(
    lookup: SceneLookup, batch: dict[str, Any], final: Tensor, execution: str = "plan"
) -> Tensor:
    """(B, P, 6) targets of the detached final proposals (B, P, K, 3); ``execution`` as
    :func:`drivejepa.planner.targets.scene_targets`."""
    if final.shape[0] == 0:
        return torch.zeros((0, final.shape[1], NUM_SCORES))
    scenes = batch_scenes(lookup, batch)
    proposals = final.detach().double().cpu().numpy()
    expert = batch["expert"].double().numpy()
    return torch.from_numpy(batch_targets(scenes, proposals, expert, execution))


def timed_targets(
    lookup: SceneLookup, batch: dict[str, Any], final: Tensor
) -> tuple[Tensor, float]:
    """:func:`online_targets` and its duration [s] (run on the trainer's scorer thread)."""
    t0 = time.perf_counter()
    targets = online_targets(lookup, batch, final)
    return targets, time.perf_counter() - t0


def min_ade(final: Tensor, expert: Tensor) -> Tensor:
    """(B,) min over proposals of the mean displacement error [m] over poses."""
    err = torch.linalg.vector_norm(final[..., :2] - expert[:, None, :, :2], dim=-1)  # (B, P, K)
    return err.mean(dim=-1).amin(dim=-1)


def picked_lateral_error(picked: Tensor, expert: Tensor, status: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) |lateral error| [m] of the picked plans (B, K, 3) against the expert's (B, K, 3) at
    the last pose, and (B,) bool whether the scene's route target turns (its heading in the
    status beyond TURN_HEADING_RAD): on straight roads a planner can be right to within a lane
    and still fail every turn (agents/drivejepa/MODEL_CARD.md)."""
    return (picked[:, -1, 1] - expert[:, -1, 1]).abs(), status[:, 2].abs() > TURN_HEADING_RAD


class PlannerTrainer:
    """One training run (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, encoder: TokenEncoder, camera: CameraSetup,
                 lookup: SceneLookup, record: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.rng = random.Random(cfg.seed)
        self.device = torch.device(cfg.device)
        self.model = DriveJEPAPlanner(encoder, cfg.planner).to(self.device)
        self.camera = camera
        self.lookup = lookup
        self.record = dict(record or {})
        enc = [p for p in self.model.encoder.parameters()]
        enc_ids = {id(p) for p in enc}
        head = [p for n, p in self.model.named_parameters()
                if n.startswith(SCORE_HEAD + IMITATION_HEAD)]  # fmt: skip
        head_ids = {id(p) for p in head}
        rest = [p for p in self.model.parameters() if id(p) not in enc_ids | head_ids]
        groups = [{"params": rest, "lr": cfg.lr},
                  {"params": head, "lr": cfg.lr * SCORE_LR_SCALE}]  # fmt: skip
        if cfg.encoder_lr_scale > 0:
            groups.append({"params": enc, "lr": cfg.lr * cfg.encoder_lr_scale})
        else:
            for p in enc:
                p.requires_grad_(False)
        self.opt = torch.optim.Adam(groups)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="online-targets")
        self.epoch = 0
        self.step = 0
        self.train_s = 0.0

    # --- persistence -------------------------------------------------------------------------
    def save(self, history: list[dict[str, Any]]) -> Path:
        out = self.cfg.out
        train = {**self.record, "epochs": self.epoch, "steps": self.step,
                 "train_s": round(self.train_s, 1), "seed": self.cfg.seed, "mtd": self.cfg.mtd,
                 "kinematic_weight": self.cfg.kinematic_weight, "wait_keep": self.cfg.wait_keep,
                 "bev_weight": self.cfg.bev_weight,
                 "imitation_loss_weight": self.cfg.imitation_loss_weight,
                 "lr": self.cfg.lr, "encoder_lr_scale": self.cfg.encoder_lr_scale,
                 "score_lr_scale": SCORE_LR_SCALE,
                 "batch": self.cfg.batch, "last": history[-1] if history else None}  # fmt: skip
        path = save_checkpoint(out / CHECKPOINT_NAME, self.model, self.camera, train)
        state = {"epoch": self.epoch, "step": self.step, "train_s": self.train_s,
                 "optimizer": self.opt.state_dict(), "rng": self.rng.getstate(),
                 "torch_rng": torch.get_rng_state()}  # fmt: skip
        with atomic_output(out / STATE_NAME) as tmp:
            torch.save(state, tmp)
        atomic_write_text(out / LOG_NAME, "".join(json.dumps(h) + "\n" for h in history))
        return path

    def restore(self) -> list[dict[str, Any]]:
        """Weights, optimizer and counters of an earlier run in ``out``; returns its log."""
        out = self.cfg.out
        ckpt = out / CHECKPOINT_NAME
        obj = read_checkpoint(ckpt)
        try:
            self.model.load_state_dict(obj["state_dict"])
        except RuntimeError as exc:
            raise ConfigError(
                f"--resume: {ckpt} was trained with another architecture ({exc}); start a new "
                "--out folder"
            ) from exc
        if not (out / STATE_NAME).is_file():
            raise ConfigError(f"--resume: no {out / STATE_NAME}; start without --resume")
        self._check_same_recipe(dict(obj.get("train", {})), ckpt)
        trained = PlannerConfig.from_json(dict(obj.get("planner_cfg", {})))
        changed = [f"{f.name} {getattr(trained, f.name)!r} -> {getattr(self.cfg.planner, f.name)!r}"
                   for f in fields(PlannerConfig)
                   if getattr(trained, f.name) != getattr(self.cfg.planner, f.name)]  # fmt: skip
        if changed:
            raise ConfigError(
                f"--resume: {ckpt} was trained with another planner configuration "
                f"({'; '.join(changed)}); resume with the run's own options or start a new --out "
                "folder"
            )
        state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=False)
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.train_s = state["epoch"], state["step"], state["train_s"]
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        lines = (out / LOG_NAME).read_text().splitlines() if (out / LOG_NAME).is_file() else []
        return [json.loads(s) for s in lines if s.strip()]

    def _check_same_recipe(self, train: dict[str, Any], ckpt: Path) -> None:
        """A resumed run keeps the options that define its loss and its optimizer: a ConfigError
        naming each one that differs from the record in ``ckpt`` (a record from before an
        option existed holds its default)."""
        defaults = {f.name: f.default for f in fields(TrainConfig)}
        differ = [
            f"{name} {train.get(name, defaults.get(name))!r} -> {getattr(self.cfg, name)!r}"
            for name in RESUME_KEYS
            if train.get(name, defaults.get(name)) != getattr(self.cfg, name)
        ]
        if differ:
            raise ConfigError(
                f"--resume: {ckpt} was trained with other options ({'; '.join(differ)}); resume "
                "with the run's own options or start a new --out folder"
            )

    # --- loop --------------------------------------------------------------------------------
    def train_epoch(self, data: Sequence[Sample], deadline: float | None) -> dict[str, float]:
        """One pass over ``data``; stops early at ``deadline`` (time.monotonic)."""
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        target_s = wait_s = step_s = 0.0
        for batch in batches(data, self.cfg.batch, self.rng):
            t0 = time.perf_counter()
            frames = batch["frames"].to(self.device)
            out = self.model(frames, batch["status"].to(self.device), bev=True)
            # the scorer runs beside the imitation + MTD backward (torch releases the GIL)
            # recovery views train the trajectory terms only (no score targets from a moved pose)
            scored = ~batch["view"].abs().sum(dim=1).gt(0)
            future = self.pool.submit(timed_targets, self.lookup, select(batch, scored),
                                      out.final.detach().cpu()[scored])  # fmt: skip
            traj = planner_loss(
                out.proposals, out.score_logits, batch["expert"].to(self.device),
                batch["teachers"].to(self.device), batch["teacher_mask"].to(self.device),
                None, mtd=self.cfg.mtd, kinematic_weight=self.cfg.kinematic_weight,
            )  # fmt: skip
            early = traj.total
            if out.imitation_logits is not None:  # its targets are the proposals' distances
                im = imitation_score_term(out.imitation_logits, out.final,
                                          batch["expert"].to(self.device))  # fmt: skip
                early = early + self.cfg.imitation_loss_weight * im
                sums["imitation_score"] = sums.get("imitation_score", 0.0) + float(im.detach())
            self.opt.zero_grad(set_to_none=True)
            early.backward(retain_graph=True)
            t1 = time.perf_counter()
            targets, scorer_s = future.result()
            t2 = time.perf_counter()
            if bool(scored.any()):
                score, sub = score_terms(out.score_logits[scored.to(self.device)],
                                         targets.to(self.device))  # fmt: skip
            else:  # a batch of recovery views only
                score = sub = out.score_logits.sum() * 0.0
            late = score + SUB_SCORE_WEIGHT * sub
            if out.bev_logits is not None:  # its targets come from the scenes the scorer just read
                truth = batch_bev_targets(batch_scenes(self.lookup, batch)).to(self.device)
                bev = bev_loss(out.bev_logits, truth)
                late = late + self.cfg.bev_weight * bev
                sums["bev"] = sums.get("bev", 0.0) + float(bev.detach())
            late.backward()
            self.opt.step()
            t3 = time.perf_counter()
            terms = replace(traj, score=score, sub_scores=sub,
                            total=traj.total + score + SUB_SCORE_WEIGHT * sub)  # fmt: skip
            target_s += scorer_s
            wait_s += t2 - t1
            step_s += t3 - t0
            for k, v in terms.as_floats().items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            self.step += 1
            if deadline is not None and time.monotonic() > deadline:
                break
        self.train_s += step_s
        out_terms = {f"train_{k}": v / max(n, 1) for k, v in sums.items()}
        out_terms["target_share"] = target_s / step_s if step_s > 0 else 0.0
        out_terms["target_wait_share"] = wait_s / step_s if step_s > 0 else 0.0
        out_terms["steps"] = float(n)
        out_terms["step_s"] = step_s / max(n, 1)
        return out_terms

    @torch.no_grad()
    def validate(self, data: Sequence[Sample]) -> dict[str, float]:
        """Val min-ADE [m], score-target agreement, the picked plan's lateral error at 4 s on
        straight and turning routes (:func:`picked_lateral_error`; a band without scenes is
        left out) and, with the BEV head, its IoU per channel
        (see the module docstring)."""
        self.model.eval()
        ade, mae, chosen, top1, lateral, turning = [], [], [], [], [], []
        bev_hits = torch.zeros(NUM_BEV, 2)  # (intersection, union) per channel
        for batch in batches(data, self.cfg.batch, None):
            out = self.model(batch["frames"].to(self.device), batch["status"].to(self.device),
                             bev=True)  # fmt: skip
            if out.bev_logits is not None:
                seen = out.bev_logits.cpu() > 0.0
                truth = batch_bev_targets(batch_scenes(self.lookup, batch)) > 0.5
                bev_hits[:, 0] += (seen & truth).sum(dim=(0, 2, 3))
                bev_hits[:, 1] += (seen | truth).sum(dim=(0, 2, 3))
            final = out.final.cpu()
            ade.append(min_ade(final, batch["expert"]))
            targets = online_targets(self.lookup, batch, final)[..., ScoreColumn.FINAL]
            pred = torch.sigmoid(out.score_logits.cpu()[..., ScoreColumn.FINAL])
            mae.append((pred - targets).abs().mean(dim=1))
            pick = pred.argmax(dim=1)
            chosen.append(targets.gather(1, pick[:, None])[:, 0])
            err, turns = picked_lateral_error(final[torch.arange(len(pick)), pick],
                                              batch["expert"], batch["status"])  # fmt: skip
            lateral.append(err)
            turning.append(turns)
            if out.imitation_logits is not None:
                top1.append(imitation_top1(out.imitation_logits.cpu(), final, batch["expert"]))
        if not ade:
            return {}
        row = {
            "val_min_ade_m": float(torch.cat(ade).mean()),
            "val_score_mae": float(torch.cat(mae).mean()),
            "val_chosen_target": float(torch.cat(chosen).mean()),
        }
        err, turns = torch.cat(lateral), torch.cat(turning)
        for name, band in (("straight", ~turns), ("turn", turns)):
            if bool(band.any()):  # the picked plan's |lateral error| at 4 s, by route heading
                row[f"val_lateral_4s_{name}_m"] = float(err[band].mean())
        if top1:  # how often the imitation head's argmax is the proposal closest to the expert
            row["val_imitation_top1"] = float(torch.cat(top1).float().mean())
        if self.model.bev_head is not None:
            for c in BevChannel:
                iou = bev_hits[c, 0] / bev_hits[c, 1].clamp(min=1)
                row[f"val_bev_iou_{c.name.lower()}"] = float(iou)
        return row

    def epoch_scenes(
        self, train: Sequence[Sample], waits: np.ndarray | None = None,
        turns: np.ndarray | None = None,
    ) -> Sequence[Sample]:  # fmt: skip
        """This epoch's train scenes: all of them, or with ``wait_keep`` < 1 every scene but the
        waits (``waits``, :func:`waiting_scenes` of ``train`` when None) and a fraction
        ``wait_keep`` of those, drawn anew each epoch from (seed, epoch), so a resumed run draws
        what it would have; with ``turn_repeat`` n > 1 each kept turning scene (``turns``,
        :func:`turning_scenes` when None) n times."""
        if self.cfg.wait_keep >= 1.0 and self.cfg.turn_repeat == 1:
            return train
        keep = np.arange(len(train))
        if self.cfg.wait_keep < 1.0:
            if waits is None:
                waits = waiting_scenes(train)
            rng = np.random.default_rng([self.cfg.seed, self.epoch])
            keep = np.flatnonzero(~waits | (rng.random(len(waits)) < self.cfg.wait_keep))
        if self.cfg.turn_repeat > 1:
            if turns is None:
                turns = turning_scenes(train)
            keep = np.concatenate([keep] + [keep[turns[keep]]] * (self.cfg.turn_repeat - 1))
        subset = Subset(cast(Dataset[Sample], train), keep.tolist())
        return cast(Sequence[Sample], subset)  # map-style: len and integer items, as batches() reads

    @torch.no_grad()
    def validate_recovery(self, data: Sequence[Sample]) -> dict[str, float]:
        """Mean |lateral error| [m] at 2 s and 4 s of the picked plan against the way back, on
        val scenes seen from recovery views (:data:`RECOVERY_VAL`): whether the planner steers
        back to where the expert drove. Items without a view (too slow, blocked) are left out."""
        self.model.eval()
        errs = []
        for batch in batches(data, self.cfg.batch, None):
            moved = batch["view"].abs().sum(dim=1) > 0
            if not bool(moved.any()):
                continue
            out = self.model(batch["frames"][moved].to(self.device),
                             batch["status"][moved].to(self.device))  # fmt: skip
            pick = out.score_logits[..., ScoreColumn.FINAL].argmax(dim=1).cpu()
            picked = out.final.cpu()[torch.arange(len(pick)), pick]
            errs.append((picked[:, [3, 7], 1] - batch["expert"][moved][:, [3, 7], 1]).abs())
        if not errs:
            return {}
        err = torch.cat(errs)
        return {"val_recovery_lateral_2s_m": float(err[:, 0].mean()),
                "val_recovery_lateral_4s_m": float(err[:, 1].mean())}  # fmt: skip

    def fit(
        self, train: Sequence[Sample], val: Sequence[Sample],
        recovery_val: Sequence[Sample] | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Train up to ``cfg.epochs`` (or ``max_minutes``), checkpointing every epoch; with
        ``recovery_val`` also :meth:`validate_recovery`."""
        if len(train) == 0:
            raise ConfigError("the training split holds no samples; collect more routes")
        history = self.restore() if self.cfg.resume else []
        start = time.monotonic()
        deadline = None if self.cfg.max_minutes is None else start + 60.0 * self.cfg.max_minutes
        # the waits are fixed by the status and the label: found once, thinned anew each epoch
        waits = waiting_scenes(train) if self.cfg.wait_keep < 1.0 else None
        turns = turning_scenes(train) if self.cfg.turn_repeat > 1 else None
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            if hasattr(train, "set_epoch"):  # new teacher draws each epoch (PlannerSamples)
                train.set_epoch(self.epoch)
            data = self.epoch_scenes(train, waits, turns)
            row: dict[str, Any] = {"epoch": self.epoch + 1, "train_scenes": len(data),
                                   **self.train_epoch(data, deadline)}  # fmt: skip
            row.update(self.validate(val))
            if recovery_val is not None:
                row.update(self.validate_recovery(recovery_val))
            row["epoch_s"] = round(time.perf_counter() - t0, 2)
            self.epoch += 1
            history.append(row)
            log.info("epoch %d: %s", self.epoch, row)
            self.save(history)
            if deadline is not None and time.monotonic() > deadline:
                break
        if not history or history[-1].get("epoch") != self.epoch:
            self.save(history)
        return history


def summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last epoch's figures (for the CLI's closing line)."""
    return {k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else v)
            for k, v in (history[-1] if history else {}).items()}  # fmt: skip


def config_record(cfg: TrainConfig, **extra: Any) -> dict[str, Any]:
    """The training options as JSON for the checkpoint's ``train`` record."""
    d = asdict(cfg)
    d["out"] = str(cfg.out)
    return {**d, **extra}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_manifest_camera(data: Path) -> CameraSetup:
    """The camera of a dataset folder (``manifest.json``)."""
    path = data / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: not a readable dataset manifest ({exc}); collect data with `harness collect`"
        ) from exc
    if manifest.get("format") != "drivejepa-data":
        raise ConfigError(
            f"{path} is not a drivejepa-data manifest; collect with `harness collect`"
        )
    return CameraSetup.from_json(dict(manifest["camera"]))


def build_encoder(encoder: Path | None, camera: CameraSetup) -> TokenEncoder:
    """The pretrained encoder (``harness train pretrain``'s ``encoder.pt``) or, with None, a
    randomly initialised one for the camera (``--scratch``)."""
    if encoder is None:
        from drivejepa.model import EncoderConfig, VideoEncoder

        return VideoEncoder(EncoderConfig(image_h=camera.height, image_w=camera.width))
    from drivejepa.model.encoder_io import load_encoder

    enc = load_encoder(encoder)
    size = (int(enc.cfg.image_h), int(enc.cfg.image_w))
    if size != (camera.height, camera.width):
        raise ConfigError(
            f"encoder {encoder} was pretrained on {size[1]}x{size[0]} images, the dataset's camera "
            f"is {camera.width}x{camera.height}; pretrain on this dataset"
        )
    return enc


def scene_lookup(data: Path) -> SceneLookup:
    """The online targets' (route, scene index) -> (scorer scene, town) of dataset ``data``, the
    last :data:`SCENE_CACHE` scenes cached (rebuilding one reads its route's recording)."""
    from drivejepa.data.scenes import SceneSource
    from harness.maps.towns import load_town

    source = SceneSource(data)

    @functools.lru_cache(maxsize=SCENE_CACHE)
    def lookup(route: str, index: int) -> tuple[Scene, ScoringMap]:
        scene = source.scene(route, index)
        return scene, load_town(scene.town_name)

    return lookup


def train_from_data(
    data: Path, encoder: Path | None, cfg: TrainConfig, command: str = "", init: Path | None = None
) -> list[dict[str, Any]]:
    """``harness train planner``: train on ``DATA``'s train split (with recovery views where
    ``cfg.recovery`` > 0), validate on its val split (recorded views only). ``init``: a planner
    checkpoint whose weights the run starts from (its architecture, encoder included, replaces
    ``cfg.planner`` and ``encoder``), for fine-tuning."""
    from drivejepa.data.store import PlannerSamples

    camera = read_manifest_camera(data)
    seed_everything(cfg.seed)
    lookup = scene_lookup(data)
    if init is None:
        start_encoder = build_encoder(encoder, camera)
    else:
        from drivejepa.checkpoint import load_checkpoint

        start = load_checkpoint(init, camera)
        cfg = replace(cfg, planner=start.planner.cfg)
        start_encoder = start.planner.encoder
    record = config_record(cfg, data=str(data), encoder=None if encoder is None else str(encoder),
                           init=None if init is None else str(init), command=command)  # fmt: skip
    trainer = PlannerTrainer(cfg, start_encoder, camera, lookup, record)
    if init is not None:
        try:
            trainer.model.load_state_dict(start.planner.state_dict())
        except RuntimeError as exc:
            raise ConfigError(
                f"--init {init} has other heads than this run asks for (--bev-weight, "
                f"--imitation-loss-weight): {str(exc).splitlines()[0]}; match the checkpoint's"
            ) from exc
    train = PlannerSamples(data, "train", recovery=cfg.recovery_config)  # a map-style Dataset
    val = PlannerSamples(data, "val")
    views = PlannerSamples(data, "val", recovery=RECOVERY_VAL)  # the same views every epoch
    return trainer.fit(cast(Sequence[Sample], train), cast(Sequence[Sample], val),
                       cast(Sequence[Sample], views))  # fmt: skip
