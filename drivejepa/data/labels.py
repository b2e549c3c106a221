"""The expert's intended plans as imitation labels (docs/DRIVEJEPA.md, "Labels").

A collection drive is perturbed (:mod:`drivejepa.data.perturb`) and an aggregation drive is the
planner's, so the driven future of a scene is not what the expert meant to do there: during a
steering or brake burst it holds the injected control. The label of a scene is therefore the
privileged expert's plan made at the scene's tick, replayed along the recorded drive
(:func:`expert_labels`; one :class:`harness.planning.ExpertPlanner` watches every planning tick,
so its memory - route progress, served stop signs, waiting time - is what it would have been
along this drive), at the planner's poses (+0.5 .. 4.0 s) in the ego frame at the scene
(:func:`planner_target`). An emergency plan (the expert's ``Plan`` keeps the colliding proposal's
poses at zero speed) becomes its path driven with a full brake (:func:`braking_poses`): what the
expert does then. This is DART's rule (label the state with the expert's action, not with the
noisy one that was executed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from drivejepa.data.build import EXPERT_POSES
from drivejepa.status import to_ego_frame
from harness.maps.town import Town
from harness.planning import ExpertConfig, ExpertPlanner, Plan
from harness.world.state import EGO_INDEX, WorldState
from harness.world.timing import HORIZON_STEPS, POSE_DT_S
from teachers.episode_scenes import Episode

POSE_STRIDE = 5  # plan poses (0.1 s) per planner pose (0.5 s)
PLAN_POSES = HORIZON_STEPS  # the expert's plan: 40 poses at 0.1 s
Float = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ExpertLabels:
    """The expert's plans replayed over a recorded drive: ``frames`` (N,) simulator frames it
    planned at, ``plans`` (N, 40, 3) world poses [x, y, yaw] at +0.1 .. 4.0 s, ``emergency``
    (N,) whether the plan was an emergency stop (its poses then brake along the path)."""

    frames: NDArray[np.int64]
    plans: Float
    emergency: NDArray[np.bool_]

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.plans.shape != (n, PLAN_POSES, 3) or self.emergency.shape != (n,):
            raise ValueError(f"labels need (N,), (N, {PLAN_POSES}, 3), (N,), got "
                             f"{self.frames.shape}, {self.plans.shape}, {self.emergency.shape}")  # fmt: skip

    def at(self, frame: int) -> int:
        """Index of the plan made at ``frame`` (ValueError when the expert did not plan there)."""
        j = int(np.searchsorted(self.frames, frame))
        if j >= len(self.frames) or self.frames[j] != frame:
            raise ValueError(f"the expert did not plan at frame {frame}")
        return j


def braking_poses(state: WorldState, plan: Plan, decel_mps2: float) -> Float:
    """(40, 3) the plan's path driven from the ego's pose with a full-brake speed profile
    (``decel_mps2`` until standstill): what the expert does in an emergency (its ``Plan`` keeps
    the colliding proposal's poses and zero speeds)."""
    a = state.actors
    start = np.array([a.x[EGO_INDEX], a.y[EGO_INDEX], a.yaw[EGO_INDEX]], dtype=np.float64)
    path = np.vstack([start[None], plan.poses[:, :3]])
    path[:, 2] = np.unwrap(path[:, 2])
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1))])
    v0 = max(float(a.speed[EGO_INDEX]), 0.0)
    t = POSE_DT_S * np.arange(1, PLAN_POSES + 1)
    t_stop = v0 / decel_mps2
    travelled = np.where(t < t_stop, v0 * t - 0.5 * decel_mps2 * t**2, 0.5 * v0 * t_stop)
    out = np.column_stack([np.interp(travelled, s, path[:, k]) for k in range(3)])
    return out


def expert_labels(
    ep: Episode, town: Town, last_row: int, config: ExpertConfig | None = None
) -> ExpertLabels:
    """The privileged expert's plan at every planning tick (every ``plan_every_ticks`` recorded
    rows from the reset state) up to ``last_row``, on the recorded world states: one expert
    along the drive, so its memory is what it would have been had it watched the drive."""
    expert = ExpertPlanner(town, ep.planned, config)
    every = expert.config.plan_every_ticks
    rec = ep.recording
    rows = np.arange(0, last_row + 1, every, dtype=np.int64)
    plans = np.empty((len(rows), PLAN_POSES, 3))
    emergency = np.zeros(len(rows), dtype=bool)
    for j, r in enumerate(rows):
        state = rec.state_at(int(r))
        plan = expert.plan(state)
        if plan.poses.shape[0] < PLAN_POSES:
            raise ValueError(f"the expert planned {plan.poses.shape[0]} poses, not {PLAN_POSES}")
        emergency[j] = plan.emergency
        plans[j] = (braking_poses(state, plan, expert.config.ego.max_brake_mps2)
                    if plan.emergency else plan.poses[:PLAN_POSES, :3])  # fmt: skip
    return ExpertLabels(rec.frames[rows].astype(np.int64), plans, emergency)


def planner_target(plan: Float, ego_pose: Float) -> NDArray[np.float32]:
    """(8, 3) float32 a world plan (40, 3) at the planner's poses (+0.5 .. 4.0 s) in the ego frame
    of ``ego_pose`` (x, y, yaw): the dataset's ``expert`` frame."""
    p = plan[POSE_STRIDE - 1 :: POSE_STRIDE][:EXPERT_POSES]
    ego = (float(ego_pose[0]), float(ego_pose[1]), float(ego_pose[2]))
    return np.asarray(to_ego_frame(p[:, :2], p[:, 2], ego), dtype=np.float32)


def scene_labels(
    ep: Episode, town: Town, rows: NDArray[np.int64], labels: ExpertLabels | None = None
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """(S, 8, 3) float32 the expert's plan at each scene row of ``rows`` in the ego frame there,
    and (S,) whether it was an emergency stop; ``labels`` (replayed here when None) must cover
    the rows."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros((0, EXPERT_POSES, 3), np.float32), np.zeros(0, bool)
    if labels is None:
        labels = expert_labels(ep, town, int(rows.max()))
    rec, a = ep.recording, ep.recording.actors
    at = [labels.at(int(rec.frames[r])) for r in rows]
    pose = np.column_stack([a.x[rows, EGO_INDEX], a.y[rows, EGO_INDEX], a.yaw[rows, EGO_INDEX]])
    target = np.stack([planner_target(labels.plans[j], pose[i]) for i, j in enumerate(at)])
    return target, labels.emergency[at]
