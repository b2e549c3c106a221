"""V-JEPA multi-block spatio-temporal masks over a token grid (t, h, w) and the tri-temporal
slice mask.

A mask spec draws ``blocks`` rectangles of ``scale`` x (h*w) tokens each (aspect ratio h/w drawn
uniformly from ``aspect``), anywhere on the spatial grid; their union, repeated over every time
step of the clip, is predicted, the rest is the context. Across a batch every sample keeps and
predicts the same number of tokens: each sample's sets are subsampled (at random, seeded) to the
batch minimum, so the kept and predicted sets stay disjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from harness.errors import ConfigError

ASPECT_RANGE = (0.75, 1.5)  # block height / width in tokens, V-JEPA's range
MIN_KEEP_FRACTION = 0.05  # of the spatial grid: a draw leaving fewer context tokens is redrawn
MAX_DRAWS = 100  # redraws before a spec is declared unsatisfiable


@dataclass(frozen=True)
class BlockSpec:
    """``blocks`` rectangles of spatial ``scale`` (fraction of h*w) each, spanning the clip in time."""

    blocks: int
    scale: float
    aspect: tuple[float, float] = ASPECT_RANGE

    def __post_init__(self) -> None:
        if self.blocks < 1 or not 0.0 < self.scale <= 1.0:
            raise ConfigError(f"mask spec needs blocks >= 1 and 0 < scale <= 1, got {self}")
        if not 0.0 < self.aspect[0] <= self.aspect[1]:
            raise ConfigError(f"mask aspect range must be 0 < low <= high, got {self.aspect}")


DEFAULT_MASKS = (BlockSpec(blocks=8, scale=0.15), BlockSpec(blocks=2, scale=0.7))
"""V-JEPA / Drive-JEPA's pair: 8 short-range blocks at 0.15 and 2 long-range blocks at 0.7."""


@dataclass(frozen=True)
class MaskBatch:
    """Token indices of a batch: ``keep`` (B, n_keep) the context, ``pred`` (B, n_pred) the tokens
    to predict; int64, each row sorted, disjoint per row."""

    keep: torch.Tensor
    pred: torch.Tensor

    def __post_init__(self) -> None:
        if self.keep.ndim != 2 or self.pred.ndim != 2 or self.keep.shape[0] != self.pred.shape[0]:
            raise ValueError(f"keep {tuple(self.keep.shape)} / pred {tuple(self.pred.shape)}")

    def to(self, device: torch.device | str) -> MaskBatch:
        return MaskBatch(self.keep.to(device), self.pred.to(device))


def draw_blocks(
    hw: tuple[int, int], spec: BlockSpec, rng: np.random.Generator
) -> list[tuple[int, int, int, int]]:
    """``spec.blocks`` rectangles (top, left, height, width) on an (h, w) token grid."""
    h, w = hw
    area = spec.scale * h * w
    out = []
    for _ in range(spec.blocks):
        ar = rng.uniform(*spec.aspect)
        bh = int(np.clip(round(math.sqrt(area * ar)), 1, h))
        bw = int(np.clip(round(math.sqrt(area / ar)), 1, w))
        top = int(rng.integers(0, h - bh + 1))
        left = int(rng.integers(0, w - bw + 1))
        out.append((top, left, bh, bw))
    return out


def spatial_mask(hw: tuple[int, int], blocks: list[tuple[int, int, int, int]]) -> np.ndarray:
    """(h, w) bool, True inside the union of ``blocks``."""
    m = np.zeros(hw, dtype=bool)
    for top, left, bh, bw in blocks:
        m[top : top + bh, left : left + bw] = True
    return m


def multiblock_mask(
    grid: tuple[int, int, int], spec: BlockSpec, rng: np.random.Generator
) -> np.ndarray:
    """(t*h*w,) bool, True = predicted: one draw of ``spec`` repeated over time; redrawn while it
    leaves fewer than MIN_KEEP_FRACTION of the spatial grid as context."""
    t, h, w = grid
    min_keep = max(1, math.ceil(MIN_KEEP_FRACTION * h * w))
    for _ in range(MAX_DRAWS):
        m = spatial_mask((h, w), draw_blocks((h, w), spec, rng))
        if (~m).sum() >= min_keep:
            return np.broadcast_to(m, (t, h, w)).reshape(-1).copy()
    raise ConfigError(f"mask spec {spec} leaves no context on a {h}x{w} grid; lower its scale")


def _subsample(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return idx if len(idx) == n else np.sort(rng.choice(idx, n, replace=False))


def sample_masks(
    grid: tuple[int, int, int], batch: int, spec: BlockSpec, rng: np.random.Generator
) -> MaskBatch:
    """One multi-block mask per sample, collated to equal counts across the batch."""
    masks = [multiblock_mask(grid, spec, rng) for _ in range(batch)]
    keeps = [np.flatnonzero(~m) for m in masks]
    preds = [np.flatnonzero(m) for m in masks]
    n_keep = min(len(k) for k in keeps)
    n_pred = min(len(p) for p in preds)
    keep = np.stack([_subsample(k, n_keep, rng) for k in keeps])
    pred = np.stack([_subsample(p, n_pred, rng) for p in preds])
    return MaskBatch(torch.from_numpy(keep), torch.from_numpy(pred))


def slice_masks(
    grid: tuple[int, int, int], batch: int, keep_slots: range, pred_slots: range
) -> MaskBatch:
    """Every token of time slots ``keep_slots`` as context and every token of ``pred_slots`` to
    predict (the tri-temporal SOON forecast: NOW visible, SOON hidden)."""
    t, h, w = grid
    if not keep_slots or not pred_slots or set(keep_slots) & set(pred_slots) or max([*keep_slots, *pred_slots]) >= t:
        raise ConfigError(f"time slots {keep_slots} / {pred_slots} do not fit a grid of {t} slots")
    per = h * w
    keep = torch.cat([torch.arange(s * per, (s + 1) * per) for s in keep_slots])
    pred = torch.cat([torch.arange(s * per, (s + 1) * per) for s in pred_slots])
    return MaskBatch(keep.expand(batch, -1).clone(), pred.expand(batch, -1).clone())
