"""The auxiliary bird's-eye-view (BEV) target and head: what the planner is asked to see.

The planner's only supervision is trajectory-level (imitation, MTD, the scorer's sub-scores), so
nothing asks its image tokens where the other road users are; with ``harness train planner
--bev-weight W`` a small head decodes a BEV grid around the ego from the image tokens, trained
with BCE against the scene's own ground truth (the TransFuser / NAVSIM-baseline practice of an
auxiliary perception loss; Chitta et al., PAMI 2022). The head is used in training only.

Grid (ego frame at t, x forward, y right; :data:`BEV_X_M`, :data:`BEV_Y_M`, :data:`BEV_CELL_M`):
24 x 16 cells of 2 m from 8 m behind to 40 m ahead and 16 m either side. Channels
(:class:`BevChannel`): every agent and object box at t (vehicles, pedestrians, bicycles, props),
the same at t + 1 s (where they go: the recorded future), and the town's drivable area. A cell is
occupied when the box reaches within half a cell of its centre (so a 0.5 m pedestrian still marks
its cell); the drivable channel is the drivable area at the cell centre.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from harness.dynamics.lqr import PDM_DT_S
from harness.geometry import to_world
from teachers.scene import Scene
from teachers.scoring.rasters import ScoringMap

BEV_X_M = (-8.0, 40.0)  # [m] ego frame, forward extent of the grid
BEV_Y_M = (-16.0, 16.0)  # [m] ego frame, lateral extent (y right)
BEV_CELL_M = 2.0  # [m]
BEV_NX = int(round((BEV_X_M[1] - BEV_X_M[0]) / BEV_CELL_M))  # 24 rows, back to front
BEV_NY = int(round((BEV_Y_M[1] - BEV_Y_M[0]) / BEV_CELL_M))  # 16 columns, left to right
BEV_FUTURE_STEP = int(round(1.0 / PDM_DT_S))  # the scene's index of t + 1 s (0.1 s steps)


class BevChannel(IntEnum):
    """The target's channels."""

    OCCUPIED = 0  # any agent or object box at t
    OCCUPIED_1S = 1  # the same boxes at t + 1 s
    DRIVABLE = 2  # the town's drivable area


NUM_BEV = len(BevChannel)
# positives' weight in the BCE per channel: boxes fill ~2 % of the cells (the default collection's
# val scenes), so unweighted the head learns "empty everywhere"; with 8 a missed box cell costs
# what 8 falsely filled ones do. The drivable area (~28 % of the cells) is left unweighted.
BEV_POS_WEIGHT = (8.0, 8.0, 1.0)


def cell_centres() -> NDArray[np.float64]:
    """(NX, NY, 2) ego-frame centres [x fwd, y right] of the grid's cells."""
    x = BEV_X_M[0] + BEV_CELL_M * (np.arange(BEV_NX) + 0.5)
    y = BEV_Y_M[0] + BEV_CELL_M * (np.arange(BEV_NY) + 0.5)
    return np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)


def box_cells(world: NDArray[np.float64], boxes: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Cells (world centres (..., 2)) reached by any of the boxes (A, 5) [x, y, yaw, length,
    width]: the box grown by half a cell on each side contains the centre."""
    if len(boxes) == 0:
        return np.zeros(world.shape[:-1], dtype=bool)
    d = world[None] - boxes[:, None, None, :2]  # (A, NX, NY, 2)
    c = np.cos(boxes[:, 2])[:, None, None]
    s = np.sin(boxes[:, 2])[:, None, None]
    along = c * d[..., 0] + s * d[..., 1]
    across = -s * d[..., 0] + c * d[..., 1]
    half = 0.5 * BEV_CELL_M
    inside = (np.abs(along) <= 0.5 * boxes[:, 3, None, None] + half) & (
        np.abs(across) <= 0.5 * boxes[:, 4, None, None] + half
    )
    return np.asarray(inside.any(axis=0), dtype=bool)


def bev_target(scene: Scene, town: ScoringMap) -> NDArray[np.float32]:
    """(NUM_BEV, NX, NY) the scene's BEV target (module docstring), 1 = occupied / drivable."""
    pose = np.asarray(scene.ego_pose, dtype=np.float64)
    world = to_world(cell_centres(), pose[:2], pose[2])
    out = np.zeros((NUM_BEV, BEV_NX, BEV_NY), dtype=np.float32)
    for channel, step in ((BevChannel.OCCUPIED, 0), (BevChannel.OCCUPIED_1S, BEV_FUTURE_STEP)):
        valid = scene.agent_valid[:, step]
        out[channel] = box_cells(world, scene.agent_boxes[valid, step])
    out[BevChannel.DRIVABLE] = town.area.contains(world)
    return out


def batch_bev_targets(scenes: list[tuple[Scene, ScoringMap]]) -> Tensor:
    """(B, NUM_BEV, NX, NY) the targets of a batch's scenes."""
    return torch.from_numpy(np.stack([bev_target(s, t) for s, t in scenes]))


def bev_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """BCE of the BEV logits (B, NUM_BEV, NX, NY) against the targets, positives weighted by
    :data:`BEV_POS_WEIGHT`, averaged over cells and channels."""
    weight = torch.tensor(BEV_POS_WEIGHT, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight[:, None, None])


class BevHead(nn.Module):
    """Image tokens (B, N, d) -> BEV logits (B, NUM_BEV, NX, NY): one learned query per cell
    cross-attends into the tokens, then a per-cell MLP."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(BEV_NX * BEV_NY, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                 nn.Linear(dim, NUM_BEV))  # fmt: skip

    def forward(self, image: Tensor) -> Tensor:
        b = image.shape[0]
        q = self.queries[None].expand(b, -1, -1)
        kv = self.norm(image)
        x, _ = self.attn(q, kv, kv, need_weights=False)
        x = q + x
        return self.out(x).transpose(1, 2).reshape(b, NUM_BEV, BEV_NX, BEV_NY)
