"""The planner's training losses (REFERENCE.md 1a): per refinement layer, the imitation term
(min over proposals of the time-averaged L1 distance to the expert) plus 0.5 x MTD (the mean over
the sampled teachers of the same min); layers combined as T = 0.1 T + L_l; and BCE of the score
logits against the online targets. Optionally (``kinematic_weight`` > 0, not in Drive-JEPA) a
kinematic term on every final proposal (:func:`kinematic_term`).

Distance of a proposal to a trajectory (both (K, 3) x, y, yaw in the ego frame): the mean of
|difference| over the K poses and the three components (one number in m / rad)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from drivejepa.planner.kinematics import accel_excess
from drivejepa.planner.model import ScoreColumn
from harness.world.timing import PLANNER_DT_S

MTD_WEIGHT = 0.5  # weight of the teacher term against the imitation term
LAYER_DECAY = 0.1  # T = LAYER_DECAY * T + L_l over the refinement layers
SUB_SCORE_WEIGHT = 1.0  # BCE weight of the sub-score columns against the final column's
# [m] temperature of the imitation head's target: softmax over the proposals of -distance / this
# (a proposal 0.5 m further from the expert than another gets e^-1 of its weight)
IMITATION_TEMPERATURE_M = 0.5


@dataclass(frozen=True)
class LossTerms:
    """Scalar tensors: ``imitation`` and ``mtd`` (layer-combined), ``score`` (BCE on the final
    column), ``sub_scores`` (BCE on the sub-score columns), ``kinematic`` (:func:`kinematic_term`,
    unweighted), ``total``."""

    imitation: Tensor
    mtd: Tensor
    score: Tensor
    sub_scores: Tensor
    kinematic: Tensor
    total: Tensor

    def as_floats(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in self.__dataclass_fields__}


def trajectory_distance(proposals: Tensor, target: Tensor) -> Tensor:
    """proposals (..., P, K, 3), target (..., K, 3) -> (..., P) time-averaged L1 distance."""
    return (proposals - target.unsqueeze(-3)).abs().mean(dim=(-1, -2))


def min_distance(proposals: Tensor, target: Tensor) -> Tensor:
    """(..., P, K, 3), (..., K, 3) -> (...) the closest proposal's distance."""
    return trajectory_distance(proposals, target).amin(dim=-1)


def layer_loss(
    proposals: Tensor, expert: Tensor, teachers: Tensor | None, teacher_mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One layer's (imitation, mtd) batch means. proposals (B, P, K, 3), expert (B, K, 3),
    teachers (B, M, K, 3) with teacher_mask (B, M) (None: no MTD). A sample without teachers
    contributes 0 to the MTD term (its mean over no teachers)."""
    imitation = min_distance(proposals, expert).mean()
    if teachers is None or teacher_mask is None:
        return imitation, torch.zeros_like(imitation)
    per_teacher = min_distance(proposals[:, None], teachers)  # (B, M)
    mask = teacher_mask.to(per_teacher.dtype)
    per_sample = (per_teacher * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return imitation, per_sample.mean()


def kinematic_term(proposals: Tensor) -> Tensor:
    """(..., P, K, 3) ego-frame proposals -> scalar: the mean over proposals and their K - 1
    segment pairs of how far the implied longitudinal acceleration lies outside NAVSIM's comfort
    bounds (:func:`drivejepa.planner.kinematics.accel_excess`), times PLANNER_DT_S^2: the excess
    as a position error [m], the unit of the imitation term. Every proposal is penalised, not
    only the one closest to a target (the winner-take-all terms leave the others unconstrained,
    and most of them jump ahead and stop: agents/drivejepa/MODEL_CARD.md)."""
    return accel_excess(proposals).mean() * PLANNER_DT_S**2


def imitation_targets(proposals: Tensor, expert: Tensor) -> Tensor:
    """proposals (..., P, K, 3), expert (..., K, 3) -> (..., P) the imitation head's target
    distribution: softmax over the proposals of -:func:`trajectory_distance` /
    IMITATION_TEMPERATURE_M (Hydra-MDP's imitation target, with this module's distance)."""
    distance = trajectory_distance(proposals.detach(), expert)
    return torch.softmax(-distance / IMITATION_TEMPERATURE_M, dim=-1)


def imitation_score_term(logits: Tensor, proposals: Tensor, expert: Tensor) -> Tensor:
    """KL divergence from :func:`imitation_targets` of the (detached) proposals (..., P, K, 3) and
    the expert (..., K, 3) to the softmax of the imitation logits (..., P), averaged over the
    batch: the cross-entropy less the target's entropy (the same gradient; 0 when they match,
    whatever the proposals, so it reads the same while they move in training)."""
    target = imitation_targets(proposals, expert)
    log_target = torch.log(target.clamp_min(torch.finfo(target.dtype).tiny))
    return (target * (log_target - torch.log_softmax(logits, dim=-1))).sum(dim=-1).mean()


def imitation_top1(logits: Tensor, proposals: Tensor, expert: Tensor) -> Tensor:
    """(..., P) imitation logits, proposals (..., P, K, 3), expert (..., K, 3) -> (...) bool:
    the head's argmax is the proposal closest to the expert (:func:`trajectory_distance`)."""
    closest = trajectory_distance(proposals, expert).argmin(dim=-1)
    return logits.argmax(dim=-1) == closest


def combine_layers(values: list[Tensor]) -> Tensor:
    """T = LAYER_DECAY * T + L_l over the layers in order (first layer decays most)."""
    total = torch.zeros_like(values[0])
    for v in values:
        total = LAYER_DECAY * total + v
    return total


def score_terms(score_logits: Tensor, score_targets: Tensor) -> tuple[Tensor, Tensor]:
    """(final, sub-scores) BCE of logits (B, P, 6) against targets (B, P, 6) in [0, 1]."""
    final = ScoreColumn.FINAL
    score = F.binary_cross_entropy_with_logits(score_logits[..., final], score_targets[..., final])
    sub = F.binary_cross_entropy_with_logits(score_logits[..., :final], score_targets[..., :final])
    return score, sub


def planner_loss(
    proposals: Tensor,
    score_logits: Tensor,
    expert: Tensor,
    teachers: Tensor | None,
    teacher_mask: Tensor | None,
    score_targets: Tensor | None,
    mtd: bool = True,
    kinematic_weight: float = 0.0,
) -> LossTerms:
    """The full loss. proposals (L, B, P, K, 3), score_logits (B, P, 6), expert (B, K, 3),
    teachers (B, M, K, 3) + mask (B, M), score_targets (B, P, 6) in [0, 1] or None (no score
    loss); ``mtd`` False drops the teacher term (the ablation); ``kinematic_weight`` x
    :func:`kinematic_term` of the final layer's proposals joins the total (0: the recipe)."""
    imitation_layers, mtd_layers = [], []
    for layer in proposals:
        im, md = layer_loss(layer, expert, teachers if mtd else None, teacher_mask)
        imitation_layers.append(im)
        mtd_layers.append(md)
    imitation = combine_layers(imitation_layers)
    mtd_term = combine_layers(mtd_layers)
    zero = torch.zeros_like(imitation)
    if score_targets is None:
        score = sub = zero
    else:
        score, sub = score_terms(score_logits, score_targets)
    kinematic = kinematic_term(proposals[-1])
    total = imitation + MTD_WEIGHT * mtd_term + score + SUB_SCORE_WEIGHT * sub
    if kinematic_weight > 0.0:
        total = total + kinematic_weight * kinematic
    return LossTerms(imitation, mtd_term, score, sub, kinematic.detach(), total)
