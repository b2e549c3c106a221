"""The per-scene teacher step shared by ``harness gen-teachers`` and ``harness serve``: candidates
built, scored (PDMS / EPDMS), normalised, selected, with their counts. One implementation, so a
scene sent to the service gets exactly the teachers the dataset generator would give it.

A scene may come without a reference trajectory (a live planner has no logged future): the
record's ``expert_future`` is then an empty (0, 3) array, no expert candidate is scored and the
NAVSIM human filter (which needs the reference) is not applied; EP is still normalised by the best
progress among candidates passing the safety gates.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.maps.town import Town
from harness.world.timing import HORIZON_STEPS
from teachers.candidates import (
    CandidateConfig,
    CandidateSet,
    Source,
    build_candidates,
    vocabulary_candidates,
)
from teachers.episode_scenes import SceneRecord
from teachers.lattice import lattice_candidates
from teachers.modes import manoeuvre_modes
from teachers.scoring import DEFAULT_PROFILE, Metric, ScoreMatrix, score_candidates
from teachers.scoring.aggregate import NUM_METRICS, SAFETY_GATES, with_aggregates
from teachers.scoring.progress import ego_progress
from teachers.selection import (
    POOL_CAP,
    Selection,
    SelectionConfig,
    adjust_scores,
    gates,
    hard_checks,
    pool_indices,
    select_teachers,
)
from teachers.vocabulary import Vocabulary

Float = NDArray[np.float64]
Int = NDArray[np.int64]


@dataclass(frozen=True)
class TeacherConfig:
    """What a scene's teachers depend on besides the scene: the candidate sources, the
    selection (K, EPDMS threshold, diversity), the scoring profile's name and the pool (cap,
    and the run seed that with the scene id draws it when more candidates pass)."""

    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    profile: str = DEFAULT_PROFILE.name
    pool_cap: int = POOL_CAP
    seed: int = 0


@dataclass(frozen=True, eq=False)
class SceneTeachers:
    """A scored scene: ``candidates`` (B), their adjusted ``scores`` (NUM_METRICS, B), the
    simulated ego ``poses`` (B, 40, 3) [x, y, yaw] box centres at t = 0.1 .. 4.0 s (what a teacher
    row stores), the ``selection`` (teacher indices best first, pass mask, coverage, modes),
    ``expert_row`` (index of the reference trajectory, None when the scene had none), the
    manoeuvre ``modes`` (B,) of every candidate (:func:`teachers.modes.mode_id`; -1 where not
    classified: only passing candidates are) and ``pool`` (P,) ascending candidate indices of the
    scene's pool (vocabulary entries and lattice / expert extras; :attr:`vocab_pool` is its
    vocabulary part as vocabulary indices, Drive-JEPA's per-scene index file)."""

    candidates: CandidateSet
    scores: ScoreMatrix
    poses: Float
    selection: Selection
    expert_row: int | None
    modes: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pool: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def vocab_index(self) -> NDArray[np.int64]:
        """Each candidate's vocabulary entry (B,), -1 for the lattice / expert extras."""
        return self.candidates.vocab_index

    @property
    def vocab_pool(self) -> NDArray[np.int64]:
        """The pool's vocabulary entries (vocabulary indices, ascending): what the dataset's
        ``scenes.vocab_pool``, the drivejepa export and the service answer's ``pool`` hold."""
        v = self.candidates.vocab_index[self.pool]
        return np.sort(v[v >= 0]).astype(np.int64)

    @property
    def teacher_index(self) -> NDArray[np.int64]:
        """Candidate indices of the teachers (K',), rank order."""
        return self.selection.index

    @property
    def n_passed(self) -> int:
        """Candidates passing the gates and the hard checks."""
        return int(self.selection.passed.sum())

    def counts(self) -> dict[str, int]:
        """Candidates scored (total and by source), passed and kept."""
        c = self.candidates
        return {
            "candidates": c.size,
            "vocabulary": c.count(Source.VOCABULARY),
            "lattice": c.count(Source.LATTICE),
            "expert": c.count(Source.EXPERT),
            "passed": self.n_passed,
            "teachers": len(self.selection.index),
            "pool": len(self.pool),
            "modes_available": self.selection.modes_available,
            "modes_kept": self.selection.modes_kept,
        }


@dataclass(frozen=True, eq=False)
class TrajectoryScores:
    """Scores of caller-given trajectories: ``scores`` (NUM_METRICS, N) and the simulated
    ``poses`` (N, 40, 3) after the LQR + bicycle rollout."""

    scores: ScoreMatrix
    poses: Float


def has_reference(record: SceneRecord) -> bool:
    """Whether the scene carries a reference (expert / logged) future of 40 poses."""
    return bool(record.expert_future.shape[0] == HORIZON_STEPS)


def scene_candidates(
    record: SceneRecord, town: Town, vocab: Vocabulary | None, config: CandidateConfig
) -> CandidateSet:
    """The scene's candidates: :func:`build_candidates` when it has a reference trajectory, else
    the same vocabulary and lattice sources without the expert rows."""
    if has_reference(record):
        return build_candidates(record, town, vocab, config)
    parts: list[Float] = []
    tags: list[NDArray[np.int8]] = []
    index: list[NDArray[np.int64]] = []
    if vocab is not None:
        v, entries = vocabulary_candidates(vocab, record, config.vocab_speed_tolerance_mps)
        parts.append(v)
        tags.append(np.full(len(v), Source.VOCABULARY, dtype=np.int8))
        index.append(entries)
    lat = lattice_candidates(town, record.scene, record.route_lane_seq, config.lattice)
    parts.append(lat)
    tags.append(np.full(len(lat), Source.LATTICE, dtype=np.int8))
    index.append(np.full(len(lat), -1, dtype=np.int64))
    return CandidateSet(
        poses=np.concatenate(parts, axis=0),
        source=np.concatenate(tags),
        vocab_index=np.concatenate(index),
    )


def normalise_scores(
    raw: ScoreMatrix, expert_row: int | None, profile: str = DEFAULT_PROFILE.name
) -> ScoreMatrix:
    """:func:`adjust_scores` (EP over the safe candidates and the profile's human filter) when
    there is a reference row; without one only the EP normalisation, as adjust_scores does it."""
    if expert_row is not None:
        return adjust_scores(raw, expert_row, profile=profile)
    v = raw.values.copy()
    safe = np.ones(v.shape[1], dtype=bool)
    for m in SAFETY_GATES:
        safe &= v[m] == 1.0
    if safe.any():
        v[Metric.EP] = ego_progress(raw.progress_m, float(raw.progress_m[safe].max()))
    return ScoreMatrix(values=with_aggregates(v), progress_m=raw.progress_m)


def no_teachers(cands: CandidateSet) -> SceneTeachers:
    """The answer for a scene without candidates: no scores, no teachers (coverage 1.0, as for
    a scene where no candidate passes)."""
    empty = np.zeros(0, dtype=np.int64)
    return SceneTeachers(
        candidates=cands,
        scores=ScoreMatrix(values=np.zeros((NUM_METRICS, 0)), progress_m=np.zeros(0)),
        poses=np.zeros((0, HORIZON_STEPS, 3)),
        selection=Selection(index=empty, passed=np.zeros(0, dtype=bool), coverage=1.0,
                            max_gap_m=0.0),  # fmt: skip
        expert_row=None,
    )


def scene_rng(seed: int, scene_id: str) -> np.random.Generator:
    """The generator of one scene's random choices (its pool): from the run seed and the scene
    id only, so a scene gets the same pool whichever worker scores it."""
    return np.random.default_rng([seed, zlib.crc32(scene_id.encode("utf-8"))])


def teachers_for_scene(
    record: SceneRecord,
    town: Town,
    vocab: Vocabulary | None,
    config: TeacherConfig,
) -> SceneTeachers:
    """Build, score, normalise and select one scene's candidates (the gen-teachers step): the
    K teachers across manoeuvre modes and the pool (every passing candidate whose proposed
    poses also pass the hard checks, capped at ``config.pool_cap`` at random from
    ``config.seed`` and the scene id, whichever process scores it)."""
    cands = scene_candidates(record, town, vocab, config.candidates)
    if cands.size == 0:  # e.g. a route running away from the ego's heading: nothing to score
        return no_teachers(cands)
    raw, states = score_candidates(record.scene, town, cands.poses, profile=config.profile)
    experts = np.flatnonzero(cands.source == Source.EXPERT)
    expert_row = int(experts[0]) if experts.size else None
    scores = normalise_scores(raw, expert_row, config.profile)
    poses = states[:, 1:, :3]
    first = gates(scores, config.selection.threshold, config.selection.gate_metric)
    modes = np.full(cands.size, -1, dtype=np.int64)
    modes[first] = manoeuvre_modes(
        town, record.route_lane_seq, record.scene.route_xy, record.scene.ego_speed_mps,
        poses[first],
    )  # fmt: skip
    sel = select_teachers(record.scene, town, poses, scores, config.selection, modes)
    passed = np.flatnonzero(sel.passed)
    proposed_ok = passed[hard_checks(record.scene, town, cands.poses[passed])]
    pool = pool_indices(proposed_ok, config.pool_cap, scene_rng(config.seed, record.scene_id))
    return SceneTeachers(cands, scores, poses, sel, expert_row, modes, pool)


def score_trajectories(
    record: SceneRecord,
    town: Town,
    trajectories: Float,
    simulate: bool = True,
    profile: str = DEFAULT_PROFILE.name,
) -> TrajectoryScores:
    """Score trajectories (N, 40, 3) in the scene. EP is relative to the best safe one among them
    and, when the scene has a reference future, the reference (scored alongside, not returned),
    which also drives the human filter exactly as for teacher candidates. ``simulate`` tracks
    them with the LQR + bicycle rollout first; without it the poses are scored as given (their
    speeds and accelerations by finite differences), e.g. already simulated teacher poses."""
    n = int(trajectories.shape[0])
    poses = trajectories
    expert_row = None
    if has_reference(record):
        poses = np.concatenate([trajectories, record.expert_future[None]], axis=0)
        expert_row = n
    raw, states = score_candidates(record.scene, town, poses, rollout=simulate, profile=profile)
    scores = normalise_scores(raw, expert_row, profile)
    kept = ScoreMatrix(values=scores.values[:, :n], progress_m=scores.progress_m[:n])
    return TrajectoryScores(kept, states[:n, 1:, :3])
