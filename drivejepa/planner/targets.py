"""Online score targets: the project's scorer (:mod:`teachers.scoring`, ``navsim`` profile) run on
the detached final proposals of each training sample in the sample's scene.

Per sample, one scorer call holds all P proposals plus the expert's driven future as the
reference row: the 8 ego-frame poses at 0.5 s are placed at the scene's ego pose and interpolated
to the scorer's 40 poses at 0.1 s (:func:`harness.world.timing.planner_to_score_poses`, the same
input path the closed-loop observer uses for 8-pose plans), tracked by the scorer's LQR + bicycle
and scored; EP is normalised pairwise against the expert and NAVSIM's human filter applied with
the expert as the human (:func:`teachers.per_scene.normalise_scores`, as gen-teachers does).

With ``execution="held"`` each proposal is scored as the agent executes it rather than as drawn
(:func:`held_poses`): the agent re-plans every 0.1 s and its tracker only ever follows a plan's
first 0.5 s segment, at that segment's mean speed; the held rollout keeps that speed for the
whole horizon along the proposal's path (straight on past its end). A plan that jumps ahead and
stops is then scored as the drive its jump makes, not as the creep the LQR makes of the whole
plan (agents/drivejepa/MODEL_CARD.md, "Scoring as executed").

Columns (:class:`drivejepa.planner.model.ScoreColumn`): NC, DAC, EP, TTC, C (NAVSIM v1 comfort of
the proposal's own rollout) and the final column = **EPDMS** (NAVSIM v2: it carries the traffic
light and driving-direction gates that matter in CARLA; Drive-JEPA trains on PDMS).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from drivejepa.planner.model import NUM_SCORES, ScoreColumn
from drivejepa.runtime import DEFAULT_MAX_SPEED_MPS
from harness.dynamics.tracking import PurePursuitPIDConfig
from harness.geometry import to_world, wrap_angle
from harness.world.timing import PLANNER_DT_S, planner_to_score_poses
from teachers.per_scene import normalise_scores
from teachers.scene import Scene
from teachers.scoring import Metric, ScoreMatrix, score_candidates
from teachers.scoring.rasters import ScoringMap

PROFILE = "navsim"
TARGET_METRICS = {  # target column -> scorer row
    ScoreColumn.NC: Metric.NC,
    ScoreColumn.DAC: Metric.DAC,
    ScoreColumn.EP: Metric.EP,
    ScoreColumn.TTC: Metric.TTC,
    ScoreColumn.C: Metric.C,
    ScoreColumn.FINAL: Metric.EPDMS,
}

EXECUTIONS = ("plan", "held")  # how a proposal is rolled out before scoring (module docstring)
# [m/s] the held rollout's speed limits: the agent's tracker never targets more than the
# runtime's default ``max_speed_mps`` and brakes to a stop for a target below its stop speed
HELD_MAX_SPEED_MPS = DEFAULT_MAX_SPEED_MPS
HELD_STOP_SPEED_MPS = PurePursuitPIDConfig().stop_speed_mps

Float = NDArray[np.float64]


def held_poses(
    local: Float, max_speed_mps: float = HELD_MAX_SPEED_MPS,
    stop_speed_mps: float = HELD_STOP_SPEED_MPS,
) -> Float:  # fmt: skip
    """Ego-frame proposals (..., K, 3) at 0.5 s steps -> the K poses of the held rollout: the ego
    (at the origin at t = 0) moves along the polyline origin -> poses at the proposal's first
    segment mean speed v0 = |pose_1| / 0.5 s, capped at ``max_speed_mps`` (0 below
    ``stop_speed_mps``), reaching arc length v0 t at each pose time t; past the polyline's end it
    goes straight on along the last pose's yaw. Yaw is linear in arc length between vertices."""
    p = np.asarray(local, dtype=np.float64)
    shape = p.shape
    rows = p.reshape(-1, shape[-2], 3)
    n, k = rows.shape[:2]
    knots = np.concatenate([np.zeros((n, 1, 3)), rows], axis=1)  # (n, K + 1, 3)
    knots[..., 2] = np.unwrap(knots[..., 2], axis=-1)
    seg = np.linalg.norm(np.diff(knots[..., :2], axis=1), axis=-1)  # (n, K)
    s_cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)  # (n, K + 1)
    v0 = np.minimum(seg[:, 0] / PLANNER_DT_S, max_speed_mps)
    v0 = np.where(v0 < stop_speed_mps, 0.0, v0)
    arc = v0[:, None] * PLANNER_DT_S * np.arange(1, k + 1)  # (n, K)
    out = np.empty_like(rows)
    for r in range(n):  # K + 1 knots a row: np.interp per row is cheaper than a padded search
        s = s_cum[r]
        if s[-1] <= 0.0:  # a proposal that never moves: held at the origin (v0 is 0)
            out[r] = 0.0
            continue
        keep = np.concatenate([[True], seg[r] > 0.0])  # drop repeated vertices (interp needs s up)
        sk, kk = s[keep], knots[r][keep]
        a = np.minimum(arc[r], sk[-1])
        for c in range(3):
            out[r, :, c] = np.interp(a, sk, kk[:, c])
        past = arc[r] - a  # beyond the end: straight on along the last yaw
        yaw_end = kk[-1, 2]
        out[r, :, 0] += past * np.cos(yaw_end)
        out[r, :, 1] += past * np.sin(yaw_end)
    out[..., 2] = wrap_angle(out[..., 2])
    return out.reshape(shape)


def world_score_poses(local: Float, ego_pose: Float) -> Float:
    """Ego-frame planner poses (..., 8, 3) [x fwd, y right, yaw] -> the scorer's world poses
    (..., 40, 3) at 0.1 s, interpolated from the ego pose (x, y, yaw) at t = 0."""
    p = np.asarray(local, dtype=np.float64)
    xy = to_world(p[..., :2], ego_pose[:2], ego_pose[2])
    yaw = np.unwrap(p[..., 2], axis=-1) + ego_pose[2]
    world = np.concatenate([xy, yaw[..., None]], axis=-1)
    out = planner_to_score_poses(world, ego_pose)
    out[..., 2] = wrap_angle(out[..., 2])
    return out


def scene_targets(
    scene: Scene, town: ScoringMap, proposals: Float, expert: Float | None,
    execution: str = "plan",
) -> tuple[NDArray[np.float32], ScoreMatrix]:  # fmt: skip
    """One sample: proposals (P, 8, 3) and the expert's future (8, 3) or None, ego frame ->
    targets (P, 6) and the normalised score matrix of the P proposals (one scorer call). With
    ``execution="held"`` the proposals (not the expert's driven future) are scored as their held
    rollouts (:func:`held_poses`)."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
    n = int(proposals.shape[0])
    if execution == "held":
        proposals = held_poses(proposals)
    rows = proposals if expert is None else np.concatenate([proposals, expert[None]], axis=0)
    poses = world_score_poses(rows, np.asarray(scene.ego_pose, dtype=np.float64))
    raw, _ = score_candidates(scene, town, poses, profile=PROFILE)
    scores = normalise_scores(raw, None if expert is None else n, PROFILE)
    out = np.empty((n, NUM_SCORES), dtype=np.float32)
    for col, metric in TARGET_METRICS.items():
        out[:, col] = scores.values[metric, :n]
    kept = ScoreMatrix(values=scores.values[:, :n], progress_m=scores.progress_m[:n])
    return out, kept


def batch_targets(
    scenes: Sequence[tuple[Scene, ScoringMap]],
    proposals: Float,
    expert: Float | None = None,
    execution: str = "plan",
) -> NDArray[np.float32]:
    """Targets (B, P, 6) for final proposals (B, P, 8, 3) (detached, numpy) in the B samples'
    (scene, town) pairs; ``expert`` (B, 8, 3) the reference futures or None; ``execution`` as
    :func:`scene_targets`."""
    if len(scenes) != proposals.shape[0]:
        raise ValueError(f"{len(scenes)} scenes for {proposals.shape[0]} samples")
    return np.stack(
        [
            scene_targets(
                scene, town, proposals[b], None if expert is None else expert[b], execution
            )[0]
            for b, (scene, town) in enumerate(scenes)
        ]
    )
