"""Momentum-aware selection: pick the proposal with the best predicted score minus lambda x its
inter-frame inconsistency with the plan executed at the previous planning step.

Inconsistency (no reference code exists; REFERENCE.md 3 gives the quantities): both plans are
expressed in the *current* ego frame as poses at 0.1 s from their own origin (the previous plan
from the ego pose it was made at), turned into states by finite differences
(:func:`teachers.scene.states_from_poses`) and filtered as NAVSIM v2's EC does
(:func:`teachers.scoring.comfort.navsim_comfort_signals`, yaw acceleration of order 2). On the
overlap (the current plan's first ``41 - offset`` states against the previous plan's states from
``offset`` on, ``offset`` = planning steps elapsed in 0.1 s) the RMS differences of |acceleration|,
jerk, yaw rate and yaw acceleration are compared with EC's limits (0.7 m/s2, 0.5 m/s3,
0.1 rad/s, 0.1 rad/s2). inconsistency = (number of the 4 terms over their limit) / 4, in
{0, 0.25, 0.5, 0.75, 1}; 0 without a previous plan or without an overlap of MIN_OVERLAP states.
choice = argmax(sigmoid(final logit) + w x imitation probability - lambda x inconsistency);
lambda = 0 and w = 0 is plain argmax.

Imitation term (optional, ``imitation_weight`` w > 0 with a checkpoint that has an imitation
head; not in Drive-JEPA, docs/DIFFERENCES.md): the softmax over the proposals of the imitation
head's logits, the head's belief that a proposal is the one the expert would drive (Hydra-MDP
combines the same two kinds of score, in log space). The scorer's EPDMS rewards progress and
ranks the proposals only moderately; the imitation probability pulls the choice towards the
expert's speed profile. ``harness train head --fit imitation`` chooses w on the val split.

Kinematic filter (optional, ``MomentumSelector(..., kinematic_filter=True)``; not in Drive-JEPA,
docs/DIFFERENCES.md): a proposal is kinematically consistent when the longitudinal accelerations
between the mean speeds of its consecutive 0.5 s segments ((v_k - v_k-1) / 0.5 s, the first
segment measured from the ego) all lie within NAVSIM's comfort bounds (``MIN_LON_ACCEL_MPS2``,
``MAX_LON_ACCEL_MPS2``). The choice is made among the consistent proposals, or among all when
none is. It removes the proposals that jump ahead and stop (agents/drivejepa/MODEL_CARD.md):
re-planned every 0.1 s, only their jump is ever driven. The step from the ego's own speed to the
first segment is not checked: the tracker's controller makes that transition, and checking it
leaves no proposal that starts from standstill (measured in the model card).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from drivejepa.planner import kinematics
from harness.dynamics.lqr import N_STATE
from harness.geometry import to_local, to_world, wrap_angle
from harness.world.timing import HORIZON_STEPS, POSE_DT_S, planner_to_score_poses
from teachers.scene import states_from_poses
from teachers.scoring.comfort import EC_LIMITS, JERK_WINDOW, navsim_comfort_signals

MIN_OVERLAP = JERK_WINDOW  # [states] the jerk filter's window: shorter overlaps are not compared
NUM_EC_TERMS = len(EC_LIMITS)

Float = NDArray[np.float64]


def plan_states(local: Float) -> Float:
    """Planner poses (..., 8, 3) in the frame of their origin -> states (..., 41, N_STATE) at
    0.1 s, the origin (t = 0) first."""
    p = planner_to_score_poses(local)
    origin = np.zeros(p.shape[:-2] + (1, 3))
    return states_from_poses(np.concatenate([origin, p], axis=-2))


def ec_violations(current: Float, previous: Float, offset_steps: int) -> NDArray[np.bool_]:
    """(P, 4) whether each EC term (EC_LIMITS order) exceeds its limit, for current states
    (P, 41, N_STATE) against previous states (41, N_STATE), all in one frame; the previous plan
    started ``offset_steps`` x 0.1 s earlier. All False when the overlap is shorter than
    MIN_OVERLAP."""
    n = min(current.shape[1], previous.shape[0] - offset_steps)
    out = np.zeros((current.shape[0], NUM_EC_TERMS), dtype=bool)
    if offset_steps < 0 or n < MIN_OVERLAP:
        return out
    cur = navsim_comfort_signals(current[:, :n], 0.0, yaw_accel_order=2)
    prev = navsim_comfort_signals(previous[None, offset_steps : offset_steps + n], 0.0,
                                  yaw_accel_order=2)  # fmt: skip
    for j, (name, limit) in enumerate(EC_LIMITS):
        diff = getattr(cur, name) - getattr(prev, name)
        out[:, j] = np.sqrt(np.mean(diff * diff, axis=1)) > limit
    return out


def inconsistency(current: Float, previous: Float | None, offset_steps: int) -> Float:
    """(P,) in [0, 1]: the fraction of EC terms violated (0 without a previous plan)."""
    if previous is None:
        return np.zeros(current.shape[0])
    return ec_violations(current, previous, offset_steps).mean(axis=1)


def implied_accels(proposals: Float) -> Float:
    """(P, K - 1) longitudinal accelerations [m/s2] implied by proposals (P, K, 3) (ego frame,
    poses every 0.5 s, the ego at the origin; :func:`drivejepa.planner.kinematics.implied_accels`)."""
    return kinematics.implied_accels(torch.from_numpy(np.asarray(proposals, float))).numpy()


def kinematically_feasible(proposals: Float) -> NDArray[np.bool_]:
    """(P,) whether every implied acceleration lies within NAVSIM's longitudinal comfort bounds
    [MIN_LON_ACCEL_MPS2, MAX_LON_ACCEL_MPS2] (:func:`drivejepa.planner.kinematics.within_bounds`)."""
    return kinematics.within_bounds(torch.from_numpy(np.asarray(proposals, float))).numpy()


def choose(
    score: Float, incons: Float, lambda_: float, allowed: NDArray[np.bool_] | None = None
) -> int:
    """argmax(score - lambda x inconsistency) over the ``allowed`` proposals (all when None or
    none is allowed; first index on ties)."""
    value = np.asarray(score, dtype=np.float64) - lambda_ * np.asarray(incons)
    if allowed is not None and allowed.any():
        value = np.where(allowed, value, -np.inf)
    return int(np.argmax(value))


@dataclass(frozen=True)
class ExecutedPlan:
    """A plan the agent executed: ``local`` (8, 3) in the frame of ``origin`` (world x, y, yaw)
    made at ``time_s``."""

    local: Float
    origin: Float
    time_s: float


@dataclass(frozen=True)
class Choice:
    """``index`` of the chosen proposal, its ``inconsistency`` (P,), the selection ``value``
    (P,) and which proposals were ``feasible`` (P,) (all True without the kinematic filter)."""

    index: int
    inconsistency: Float
    value: Float
    feasible: NDArray[np.bool_]


class MomentumSelector:
    """Keeps the previous step's executed plan and selects with it (``lambda_`` 0: plain
    argmax), among the kinematically feasible proposals when ``kinematic_filter`` is on, adding
    ``imitation_weight`` x the imitation probability when one is given."""

    def __init__(
        self, lambda_: float, kinematic_filter: bool = False, imitation_weight: float = 0.0
    ) -> None:
        if not (lambda_ >= 0.0 and np.isfinite(lambda_)):
            raise ValueError(f"momentum lambda must be finite and >= 0, got {lambda_}")
        if not (imitation_weight >= 0.0 and np.isfinite(imitation_weight)):
            raise ValueError(f"imitation weight must be finite and >= 0, got {imitation_weight}")
        self.lambda_ = float(lambda_)
        self.kinematic_filter = bool(kinematic_filter)
        self.imitation_weight = float(imitation_weight)
        self.previous: ExecutedPlan | None = None

    def previous_states(self, ego_pose: Float) -> Float | None:
        """The previous executed plan as states (41, N_STATE) in the ego frame of ``ego_pose``
        (its own origin first), or None."""
        prev = self.previous
        if prev is None:
            return None
        own = np.concatenate([np.zeros((1, 3)), planner_to_score_poses(prev.local)], axis=0)
        world_xy = to_world(own[:, :2], prev.origin[:2], prev.origin[2])  # (41, 2)
        local = np.empty_like(own)
        local[:, :2] = to_local(world_xy, ego_pose[:2], ego_pose[2])
        local[:, 2] = np.unwrap(own[:, 2]) + wrap_angle(prev.origin[2] - ego_pose[2])
        states = states_from_poses(local)
        assert states.shape == (HORIZON_STEPS + 1, N_STATE)
        return states

    def select(
        self, proposals: Float, score: Float, ego_pose: Float, time_s: float,
        imitation: Float | None = None,
    ) -> Choice:  # fmt: skip
        """Choose among proposals (P, 8, 3) (ego frame at ``ego_pose``, world) with predicted
        scores (P,) in [0, 1] and, optionally, imitation probabilities (P,) summing to 1; does
        not remember the choice (see :meth:`executed`)."""
        score = np.asarray(score, dtype=np.float64)
        if imitation is not None and self.imitation_weight > 0.0:
            score = score + self.imitation_weight * np.asarray(imitation, dtype=np.float64)
        incons = np.zeros(proposals.shape[0])
        if self.lambda_ > 0.0 and self.previous is not None:
            offset = int(round((time_s - self.previous.time_s) / POSE_DT_S))
            incons = inconsistency(plan_states(proposals), self.previous_states(ego_pose), offset)
        value = score - self.lambda_ * incons
        feasible = (
            kinematically_feasible(proposals)
            if self.kinematic_filter
            else np.ones(proposals.shape[0], dtype=bool)
        )
        return Choice(choose(score, incons, self.lambda_, feasible), incons, value, feasible)

    def executed(self, plan: Float, ego_pose: Float, time_s: float) -> None:
        """Remember the plan (8, 3) executed from ``ego_pose`` at ``time_s``."""
        self.previous = ExecutedPlan(np.array(plan, dtype=np.float64), np.array(ego_pose, float),
                                     float(time_s))  # fmt: skip

    def reset(self) -> None:
        self.previous = None
