"""``DriveJEPAPlanner``: encoder tokens of the 2-frame clip + the 11-value ego status -> P
proposals x K poses (x forward [m], y right [m], yaw [rad], ego frame, 0.5 s apart), refined R
times by one shared refiner, and a scorer head with per-proposal logits.

One refiner pass (weights shared across passes, as Drive-JEPA's ``Traj_refiner``):
1. decode (x, y, yaw) per pose token with an MLP (the first pass gives the poses, later passes
   add residual updates);
2. add an embedding of the decoded, *detached* poses to the pose tokens (the conditioning);
3. self-attention over the P proposal tokens (the mean of each proposal's K pose tokens), its
   output broadcast back to the proposal's pose tokens;
4. cross-attention of every pose token (pose-conditioned query) into the image tokens. Drive-JEPA
   samples the image with deformable attention at the projected footprint corners; a plain
   cross-attention whose queries carry the pose embedding is used here (docs/DIFFERENCES.md).
   The image keys and values are projected once per forward (the weights are shared);
5. a feed-forward block on the pose tokens.
The scorer max-pools the final pose tokens over poses, adds an embedding of the proposal's final
decoded poses (detached, all K at once: its progress and lateral course as plain numbers, which
the pooled tokens carry only indirectly) and maps the sum to 6 logits [NC, DAC, EP, TTC, C,
final] (:class:`ScoreColumn`). Without the pose embedding the head ranked slow proposals above
expert-like ones for the first epochs (it picked proposals scoring 0.72 EPDMS on the val split
where the proposal closest to the expert scored 0.79).
Optionally (``PlannerConfig.imitation``, not in Drive-JEPA) an imitation head reads the same sum
and gives one logit per proposal whose softmax over the proposals says which one is the expert's
(Hydra-MDP's imitation score; trained by :func:`drivejepa.planner.losses.imitation_score_term`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drivejepa.planner.bev import BevHead
from drivejepa.status import STATUS_DIM

POSE_DIM = 3  # (x [m], y [m], yaw [rad])
# fixed input scales of the 11 status values: target x, y [m], heading [rad], velocity [m/s] x 2,
# acceleration [m/s2] x 2, command one-hot x 4 (keeps the linear layer's inputs near unit size)
STATUS_SCALE = (30.0, 30.0, 1.0, 10.0, 10.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0)
POSE_SCALE = (20.0, 5.0, 0.5)  # [m, m, rad] output and embedding scale of (x, y, yaw)
EGO_MOTION_SLOTS = (3, 4, 5, 6)  # the status's velocity (2) and acceleration (2) values
# the route features' scales and clip (PlannerConfig.route_offset): the ego's offset from the route
# line [m] and the route's heading [rad], each divided by its scale and clipped to +-ROUTE_CLIP
ROUTE_OFFSET_SCALE_M = 2.0
ROUTE_HEADING_SCALE_RAD = 0.25
ROUTE_CLIP = 3.0
ROUTE_FEATURES = 2


class ScoreColumn(IntEnum):
    """Columns of the scorer's logits and of the online targets."""

    NC = 0
    DAC = 1
    EP = 2
    TTC = 3
    C = 4
    FINAL = 5


NUM_SCORES = len(ScoreColumn)


class TokenEncoder(Protocol):
    """What the planner needs of ``drivejepa.model.VideoEncoder``: its config (``cfg.dim``) and
    ``forward(clip (B, T, 3, H, W), keep) -> tokens (B, N, dim)``."""

    cfg: Any

    def __call__(self, clip: Tensor, keep: Tensor | None = None) -> Tensor: ...

    def parameters(self, recurse: bool = True) -> Any: ...


@dataclass(frozen=True)
class PlannerConfig:
    """Sizes of the planner (defaults: Drive-JEPA's 32 x 8 proposals, 4 refinements)."""

    proposals: int = 32  # P
    poses: int = 8  # K, 0.5 s apart
    refinements: int = 4  # R passes of the shared refiner
    dim: int = 128  # model width (Drive-JEPA: 256; 128 keeps a CPU step within the latency budget)
    heads: int = 4
    ffn_ratio: int = 2
    dropout: float = 0.0
    # whether the status's velocity and acceleration reach the planner (False: zeroed, so the
    # plan's speed has to come from the frames; Codevilla et al. 2019's remedy for the inertia of
    # driving by imitation; `harness train planner --no-ego-motion`)
    ego_motion: bool = True
    # an auxiliary BEV head on the image tokens, trained only (`harness train planner
    # --bev-weight W`; drivejepa.planner.bev); the agent never runs it
    bev: bool = False
    # an imitation logit per proposal beside the scorer's (Hydra-MDP's imitation score: which
    # proposal is the expert's, a softmax over the proposals; `harness train head --fit
    # imitation`); the agent's selection adds its probability (drivejepa.planner.selection)
    imitation: bool = False
    # two features derived from the status's route target (:func:`route_features`): the ego's
    # signed offset from the route line through the target and the target's heading, at scales
    # that make a lane's width visible (`harness train planner --route-offset`; off: on the 46
    # routes the planner trained with them drove worse, agents/drivejepa/MODEL_CARD.md)
    route_offset: bool = False

    def __post_init__(self) -> None:
        if min(self.proposals, self.poses, self.refinements, self.dim, self.heads) < 1:
            raise ValueError(f"PlannerConfig sizes must be >= 1: {self}")
        if self.dim % self.heads:
            raise ValueError(f"PlannerConfig.dim {self.dim} must divide by heads {self.heads}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PlannerConfig:
        """The stored configuration; keys it lacks (checkpoints written before an option
        existed) take the defaults, which leave every option off."""
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


@dataclass(frozen=True)
class PlannerOutput:
    """``proposals`` (L, B, P, K, 3) per refinement layer (last = final), ego frame;
    ``score_logits`` (B, P, 6) in :class:`ScoreColumn` order; ``bev_logits`` (B, NUM_BEV, NX, NY)
    of the auxiliary BEV head when it was asked for and the planner has one, else None;
    ``imitation_logits`` (B, P) when the planner has an imitation head, else None."""

    proposals: Tensor
    score_logits: Tensor
    bev_logits: Tensor | None = None
    imitation_logits: Tensor | None = None

    @property
    def final(self) -> Tensor:
        """(B, P, K, 3) the last layer's proposals."""
        return self.proposals[-1]


def route_features(status: Tensor) -> Tensor:
    """(B, 11) status -> (B, 2): the ego's signed offset from the route line, the line through
    the route target (x forward, y right, heading h in the ego frame) along h, which is
    x sin h - y cos h [m] (positive: the ego is right of the route; a target 1 m to the right
    straight ahead gives -1), over ROUTE_OFFSET_SCALE_M, and h over ROUTE_HEADING_SCALE_RAD, both
    clipped to +-ROUTE_CLIP. The route's waypoints lie on its lanes' centrelines, so on a
    straight road the first is the ego's offset from its lane's centre."""
    x, y, h = status[..., 0], status[..., 1], status[..., 2]
    offset = x * torch.sin(h) - y * torch.cos(h)
    feats = torch.stack([offset / ROUTE_OFFSET_SCALE_M, h / ROUTE_HEADING_SCALE_RAD], dim=-1)
    return feats.clamp(-ROUTE_CLIP, ROUTE_CLIP)


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class Refiner(nn.Module):
    """One pass: decode poses, condition on them, attend over proposals and into the image."""

    pose_scale: Tensor

    def __init__(self, cfg: PlannerConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.cfg = cfg
        self.decode = _mlp(d, d, POSE_DIM)
        self.pose_embed = _mlp(POSE_DIM, d, d)
        self.norm_self = nn.LayerNorm(d)
        self.self_attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_cross = nn.LayerNorm(d)
        self.q_proj = nn.Linear(d, d)
        self.kv_proj = nn.Linear(d, 2 * d)
        self.out_proj = nn.Linear(d, d)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn = _mlp(d, cfg.ffn_ratio * d, d)
        self.register_buffer("pose_scale", torch.tensor(POSE_SCALE), persistent=False)

    def memory(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (B, heads, N, d / heads) of the image tokens (B, N, d), once per forward."""
        b, n, d = image.shape
        h = self.cfg.heads
        kv = self.kv_proj(image).view(b, n, 2, h, d // h).permute(2, 0, 3, 1, 4)
        return kv[0], kv[1]

    def forward(
        self, tokens: Tensor, poses: Tensor | None, memory: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """tokens (B, P, K, d), previous poses (B, P, K, 3) or None -> (tokens, poses)."""
        b, p, k, d = tokens.shape
        delta = self.decode(tokens) * self.pose_scale
        poses = delta if poses is None else poses + delta
        x = tokens + self.pose_embed(poses.detach() / self.pose_scale)
        u = self.norm_self(x.mean(dim=2))
        u, _ = self.self_attn(u, u, u, need_weights=False)
        x = x + u[:, :, None, :]
        h = self.cfg.heads
        q = self.q_proj(self.norm_cross(x)).view(b, p * k, h, d // h).transpose(1, 2)
        att = F.scaled_dot_product_attention(q, memory[0], memory[1])
        x = x + self.out_proj(att.transpose(1, 2).reshape(b, p, k, d))
        x = x + self.ffn(self.norm_ffn(x))
        return x, poses


class DriveJEPAPlanner(nn.Module):
    """Encoder + proposal refiner + scorer (see the module docstring)."""

    status_scale: Tensor
    status_keep: Tensor
    pose_scale: Tensor

    def __init__(self, encoder: TokenEncoder, cfg: PlannerConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PlannerConfig()
        c = self.cfg
        self.encoder = encoder
        self.image_proj = nn.Sequential(nn.Linear(int(encoder.cfg.dim), c.dim), nn.LayerNorm(c.dim))
        self.status_proj = nn.Linear(STATUS_DIM + (ROUTE_FEATURES if c.route_offset else 0), c.dim)
        self.queries = nn.Parameter(torch.randn(c.proposals, c.poses, c.dim) * 0.02)
        self.refiner = Refiner(c)
        self.norm_out = nn.LayerNorm(c.dim)
        self.score_poses = _mlp(c.poses * POSE_DIM, c.dim, c.dim)
        self.scorer = _mlp(c.dim, c.dim, len(ScoreColumn))
        self.register_buffer("status_scale", torch.tensor(STATUS_SCALE), persistent=False)
        keep = torch.ones(STATUS_DIM)
        if not c.ego_motion:
            keep[list(EGO_MOTION_SLOTS)] = 0.0
        self.register_buffer("status_keep", keep, persistent=False)
        self.register_buffer("pose_scale", torch.tensor(POSE_SCALE), persistent=False)
        self.bev_head = BevHead(c.dim, c.heads) if c.bev else None
        self.imitation_head = _mlp(c.dim, c.dim, 1) if c.imitation else None

    def forward(self, frames: Tensor, status: Tensor, bev: bool = False) -> PlannerOutput:
        """frames (B, 2, 3, H, W) in [0, 1] (t - 0.5 s, t), status (B, 11) -> PlannerOutput
        (with the BEV logits when ``bev`` and the planner has the head: the trainer asks for
        them, the agent never does)."""
        image = self.image(frames)
        proposals, pooled = self.plan(image, status)
        bev_logits = self.bev_head(image) if bev and self.bev_head is not None else None
        head = self.head_input(pooled, proposals[-1])
        return PlannerOutput(proposals=proposals, score_logits=self.scorer(head),
                             bev_logits=bev_logits,
                             imitation_logits=self.imitation_from(head))  # fmt: skip

    def image(self, frames: Tensor) -> Tensor:
        """The projected image tokens (B, N, d) of the clip."""
        return cast(Tensor, self.image_proj(self.encoder(frames, None)))

    def trunk(self, frames: Tensor, status: Tensor) -> tuple[Tensor, Tensor]:
        """Everything before the scorer head: (proposals (L, B, P, K, 3), the final pose tokens
        max-pooled over poses (B, P, d)); ``harness train head`` caches both."""
        return self.plan(self.image(frames), status)

    def plan(self, image: Tensor, status: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`trunk` from the projected image tokens."""
        memory = self.refiner.memory(image)
        ego = self.status_proj(self.status_features(status))
        tokens = self.queries[None] + ego[:, None, None, :]
        poses: Tensor | None = None
        layers = []
        for _ in range(self.cfg.refinements):
            tokens, poses = self.refiner(tokens, poses, memory)
            layers.append(poses)
        assert poses is not None
        return torch.stack(layers), self.norm_out(tokens).amax(dim=2)  # max over poses

    def status_features(self, status: Tensor) -> Tensor:
        """The status (B, 11) as the planner reads it: scaled (and motion-masked), then the
        :func:`route_features` where the configuration has them -> (B, 11 [+ 2])."""
        scaled = status * self.status_keep / self.status_scale
        if not self.cfg.route_offset:
            return scaled
        return torch.cat([scaled, route_features(status)], dim=-1)

    def head_input(self, pooled: Tensor, final: Tensor) -> Tensor:
        """What the heads read (B, P, d): the pooled tokens (B, P, d) + the embedding of the
        final poses (B, P, K, 3), detached."""
        return pooled + self.score_poses((final.detach() / self.pose_scale).flatten(2))

    def score(self, pooled: Tensor, final: Tensor) -> Tensor:
        """The scorer head: pooled tokens (B, P, d) and final poses (B, P, K, 3) -> logits
        (B, P, 6) in :class:`ScoreColumn` order."""
        return self.scorer(self.head_input(pooled, final))

    def imitation(self, pooled: Tensor, final: Tensor) -> Tensor | None:
        """The imitation head on the same inputs -> logits (B, P), or None without one."""
        return self.imitation_from(self.head_input(pooled, final))

    def imitation_from(self, head: Tensor) -> Tensor | None:
        """:meth:`imitation` from :meth:`head_input`'s output."""
        if self.imitation_head is None:
            return None
        return self.imitation_head(head).squeeze(-1)
