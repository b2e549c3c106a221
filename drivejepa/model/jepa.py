"""Joint-embedding predictive pretraining of the video encoder (V-JEPA), with the project's
tri-temporal extension (NOW / SOON / EVENTUALLY, the design note in ``shared/seeds``).

The context encoder sees the visible tokens of a clip; the EMA target encoder sees the whole clip
(no gradient); a narrow predictor, given the context tokens plus a learned mask token at every
hidden position (with its position), regresses the layer-normalised target features of the
hidden tokens under an L1 loss. ``tritemporal`` adds the SOON forecast (NOW visible, SOON hidden)
and an EVENTUALLY outcome embedding of the pooled NOW context aligned by InfoNCE with the pooled
target features of the EVENTUALLY slice.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from drivejepa.model.encoder import (
    Block,
    EncoderConfig,
    VideoEncoder,
    gather_tokens,
    init_weights,
    sincos_3d,
)
from drivejepa.model.masks import DEFAULT_MASKS, BlockSpec, MaskBatch
from harness.errors import ConfigError

OBJECTIVES = ("jepa", "tritemporal")


@dataclass(frozen=True)
class PredictorConfig:
    """The narrow predictor transformer."""

    dim: int = 96
    depth: int = 4
    heads: int = 3
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.dim % self.heads or min(self.dim, self.depth, self.heads) < 1:
            raise ConfigError(f"predictor dim must be a positive multiple of heads: {self}")


@dataclass(frozen=True)
class TriTemporalConfig:
    """NOW / SOON / EVENTUALLY split of a clip [frames, in order] and the extra loss terms."""

    now_frames: int = 2
    soon_frames: int = 2
    eventually_frames: int = 4
    proj_dim: int = 128  # outcome embedding size
    temperature: float = 0.1  # InfoNCE temperature
    soon_weight: float = 1.0
    event_weight: float = 0.5

    @property
    def frames(self) -> int:
        return self.now_frames + self.soon_frames + self.eventually_frames

    def slots(self, tubelet: int) -> tuple[range, range, range]:
        """Token time slots of NOW, SOON and EVENTUALLY for tubelets of ``tubelet`` frames."""
        parts = (self.now_frames, self.soon_frames, self.eventually_frames)
        if any(p < tubelet or p % tubelet for p in parts):
            raise ConfigError(
                f"NOW/SOON/EVENTUALLY frames {parts} must each be a positive multiple of the "
                f"tubelet ({tubelet} frames)"
            )
        a, b, c = (p // tubelet for p in parts)
        return range(0, a), range(a, a + b), range(a + b, a + b + c)


@dataclass(frozen=True)
class JEPAConfig:
    """Everything that shapes the pretraining model and its loss."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    masks: tuple[BlockSpec, ...] = DEFAULT_MASKS
    tritemporal: TriTemporalConfig | None = None
    jepa_weight: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> JEPAConfig:
        tri = obj.get("tritemporal")
        return cls(
            encoder=EncoderConfig.from_json(obj["encoder"]),
            predictor=PredictorConfig(**obj["predictor"]),
            masks=tuple(
                BlockSpec(m["blocks"], m["scale"], tuple(m["aspect"])) for m in obj["masks"]
            ),
            tritemporal=TriTemporalConfig(**tri) if tri is not None else None,
            jepa_weight=obj["jepa_weight"],
        )


class Predictor(nn.Module):
    """Context tokens (B, n_keep, E) at ``keep`` -> predictions (B, n_pred, E) at ``pred``."""

    def __init__(self, enc_dim: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Linear(enc_dim, cfg.dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.proj = nn.Linear(cfg.dim, enc_dim)
        init_weights(self)  # the mask token starts at zero, as V-JEPA 2's

    def forward(
        self, ctx: torch.Tensor, keep: torch.Tensor, pred: torch.Tensor,
        grid: tuple[int, int, int],
    ) -> torch.Tensor:  # fmt: skip
        pos = sincos_3d(self.cfg.dim, grid).to(ctx.device)
        x = self.embed(ctx) + pos[keep]
        m = self.mask_token.expand(pred.shape[0], pred.shape[1], -1) + pos[pred]
        z = torch.cat([x, m], dim=1)
        for blk in self.blocks:
            z = blk(z)
        return self.proj(self.norm(z[:, x.shape[1] :]))


def projection_head(in_dim: int, out_dim: int) -> nn.Sequential:
    """Two-layer MLP head of the outcome embedding."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))


def masked_l1(pred: torch.Tensor, target: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target[index]|: predictions (B, n, D) against layer-normalised target tokens
    (B, N, D) at ``index`` (B, n)."""
    return (pred - gather_tokens(target, index)).abs().mean()


def info_nce(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE over a batch: row i of ``query`` (B, P) should match row i of ``key`` (B, P) among
    all rows; cosine similarities / ``temperature``, mean cross-entropy."""
    logits = F.normalize(query, dim=-1) @ F.normalize(key, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(query), device=query.device))


def feature_std(features: torch.Tensor, pooled: bool = False) -> tuple[float, float]:
    """Collapse check: the per-dimension population std of the features (B, N, D) over every
    token of the batch (``pooled``: over the batch of clip means), as (mean over dimensions,
    min over dimensions); near 0 = every input maps to the same features."""
    x = features.mean(dim=1) if pooled else features.reshape(-1, features.shape[-1])
    std = x.std(dim=0, unbiased=False)
    return float(std.mean()), float(std.min())


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum x target + (1 - momentum) x online, parameter by parameter."""
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.mul_(momentum).add_(po.detach(), alpha=1.0 - momentum)


def ema_momentum(step: int, total: int, start: float, end: float) -> float:
    """Linear EMA momentum schedule from ``start`` at step 0 to ``end`` at step ``total``."""
    return start + (end - start) * min(step, total) / max(total, 1)


@dataclass(frozen=True)
class JEPAOutput:
    """One training step's total loss (with graph) and its logged terms (floats)."""

    loss: torch.Tensor
    terms: dict[str, float]


class JEPA(nn.Module):
    """Context encoder, EMA target encoder, predictor and (tri-temporal) outcome heads."""

    def __init__(self, cfg: JEPAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.context = VideoEncoder(cfg.encoder)
        self.target = copy.deepcopy(self.context)
        self.target.requires_grad_(False)
        self.predictor = Predictor(cfg.encoder.dim, cfg.predictor)
        self.outcome_now: nn.Module | None = None
        self.outcome_eventually: nn.Module | None = None
        if cfg.tritemporal is not None:
            cfg.tritemporal.slots(cfg.encoder.tubelet)  # checks the split
            self.outcome_now = projection_head(cfg.encoder.dim, cfg.tritemporal.proj_dim)
            self.outcome_eventually = projection_head(cfg.encoder.dim, cfg.tritemporal.proj_dim)

    def online_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimiser trains (everything but the EMA target)."""
        return [p for n, p in self.named_parameters() if not n.startswith("target.")]

    def update_target(self, momentum: float) -> None:
        ema_update(self.target, self.context, momentum)

    def _predict(
        self, clip: torch.Tensor, masks: MaskBatch, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(L1 loss on the hidden tokens, the context tokens) for one mask."""
        grid = self.cfg.encoder.grid(clip.shape[1])
        ctx = self.context(clip, masks.keep)
        pred = self.predictor(ctx, masks.keep, masks.pred, grid)
        return masked_l1(pred, target, masks.pred), ctx

    def forward(
        self, clip: torch.Tensor, masks: list[MaskBatch], soon: MaskBatch | None = None
    ) -> JEPAOutput:
        """Loss of a batch of clips (B, T, 3, H, W) under the multi-block ``masks`` and, for the
        tri-temporal objective, the SOON slice mask ``soon`` (NOW kept, SOON predicted)."""
        with torch.no_grad():
            feats = self.target(clip)
            target = F.layer_norm(feats, (feats.shape[-1],))
        std_mean, std_min = feature_std(feats)
        clip_std, _ = feature_std(feats, pooled=True)
        jepa = torch.stack([self._predict(clip, m, target)[0] for m in masks]).mean()
        loss = self.cfg.jepa_weight * jepa
        terms = {"loss_jepa": float(jepa.detach()), "target_std": std_mean, "target_std_min": std_min,
                 "target_clip_std": clip_std}  # fmt: skip
        tri = self.cfg.tritemporal
        if tri is not None:
            if soon is None or self.outcome_now is None or self.outcome_eventually is None:
                raise ValueError("the tri-temporal objective needs the SOON mask")
            soon_loss, ctx_now = self._predict(clip, soon, target)
            _, _, eventually = tri.slots(self.cfg.encoder.tubelet)
            per = feats.shape[1] // self.cfg.encoder.grid(clip.shape[1])[0]
            far = feats[:, eventually.start * per : eventually.stop * per].mean(dim=1)
            event = info_nce(
                self.outcome_now(ctx_now.mean(dim=1)), self.outcome_eventually(far), tri.temperature
            )
            loss = loss + tri.soon_weight * soon_loss + tri.event_weight * event
            terms |= {"loss_soon": float(soon_loss.detach()), "loss_event": float(event.detach())}
        return JEPAOutput(loss, {"loss": float(loss.detach()), **terms})
