"""Online score targets: the project's scorer (:mod:`teachers.scoring`, ``navsim`` profile) run on
the detached final proposals of each training sample in the sample's scene.

Per sample, one scorer call holds all P proposals plus the expert's driven future as the
reference row: the 8 ego-frame poses at 0.5 s are placed at the scene's ego pose and interpolated
to the scorer's 40 poses at 0.1 s (:func:`harness.world.timing.planner_to_score_poses`, the same
input path the closed-loop observer uses for 8-pose plans), tracked by the scorer's LQR + bicycle
and scored; EP is normalised pairwise against the expert and NAVSIM's human filter applied with
the expert as the human (:func:`teachers.per_scene.normalise_scores`, as gen-teachers does).

Columns (:class:`drivejepa.planner.model.ScoreColumn`): NC, DAC, EP, TTC, C (NAVSIM v1 comfort of
the proposal's own rollout) and the final column = **EPDMS** (NAVSIM v2: it carries the traffic
light and driving-direction gates that matter in CARLA; Drive-JEPA trains on PDMS).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from drivejepa.planner.model import NUM_SCORES, ScoreColumn
from harness.geometry import to_world, wrap_angle
from harness.world.timing import planner_to_score_poses
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

Float = NDArray[np.float64]


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
    scene: Scene, town: ScoringMap, proposals: Float, expert: Float | None
) -> tuple[NDArray[np.float32], ScoreMatrix]:
    """One sample: proposals (P, 8, 3) and the expert's future (8, 3) or None, ego frame ->
    targets (P, 6) and the normalised score matrix of the P proposals (one scorer call)."""
    n = int(proposals.shape[0])
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
) -> NDArray[np.float32]:
    """Targets (B, P, 6) for final proposals (B, P, 8, 3) (detached, numpy) in the B samples'
    (scene, town) pairs; ``expert`` (B, 8, 3) the reference futures or None."""
    if len(scenes) != proposals.shape[0]:
        raise ValueError(f"{len(scenes)} scenes for {proposals.shape[0]} samples")
    return np.stack(
        [
            scene_targets(scene, town, proposals[b], None if expert is None else expert[b])[0]
            for b, (scene, town) in enumerate(scenes)
        ]
    )
