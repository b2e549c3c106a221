"""Candidate plans of one scene from the three sources: the trajectory vocabulary placed at the
ego, the route-aligned lattice and the expert's own trajectory (its recorded plan at this tick
when the driver exposed one, and what it really drove next)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import NUM_POSES, PDM_DT_S
from harness.maps.town import Town
from teachers.episode_scenes import SceneRecord
from teachers.lattice import LatticeConfig, lattice_candidates
from teachers.vocabulary import Vocabulary

VOCAB_SPEED_TOLERANCE_MPS = 3.0  # vocabulary entries whose initial speed differs more are skipped

Float = NDArray[np.float64]


class Source(IntEnum):
    """Where a candidate came from (the dataset stores the lower-case name)."""

    VOCABULARY = 0
    LATTICE = 1
    EXPERT = 2

    @property
    def label(self) -> str:
        """Dataset spelling: vocabulary / lattice / expert."""
        return self.name.lower()


@dataclass(frozen=True)
class CandidateConfig:
    """Which candidates a scene gets: the lattice axes, and the vocabulary's initial-speed gate
    (an entry starting much faster or slower than the ego cannot be tracked from its state)."""

    lattice: LatticeConfig = field(default_factory=LatticeConfig)
    vocab_speed_tolerance_mps: float = VOCAB_SPEED_TOLERANCE_MPS


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """``poses`` (B, 40, 3) [x, y, yaw] world frame at t = 0.1 .. 4.0 s; ``source`` (B,) Source."""

    poses: Float
    source: NDArray[np.int8]

    def __post_init__(self) -> None:
        if self.poses.shape[1:] != (NUM_POSES - 1, 3) or self.source.shape != self.poses.shape[:1]:
            raise ValueError(f"CandidateSet poses {self.poses.shape} / source {self.source.shape}")

    @property
    def size(self) -> int:
        """B."""
        return int(self.poses.shape[0])

    def count(self, source: Source) -> int:
        """Candidates from one source."""
        return int(np.count_nonzero(self.source == source))


def vocabulary_candidates(vocab: Vocabulary, record: SceneRecord, tolerance_mps: float) -> Float:
    """Vocabulary entries (V', 40, 3) in the world whose initial speed (first step / 0.1 s) is
    within ``tolerance_mps`` of the ego's."""
    v_first = np.hypot(*vocab.trajectories[:, 0, :2].T) / PDM_DT_S
    keep = np.abs(v_first - record.scene.ego_speed_mps) <= tolerance_mps
    return vocab.in_world(record.scene.ego_pose)[keep]


def build_candidates(
    record: SceneRecord, town: Town, vocab: Vocabulary | None, config: CandidateConfig
) -> CandidateSet:
    """Every candidate of the scene, vocabulary first, then lattice, then expert."""
    parts: list[Float] = []
    tags: list[NDArray[np.int8]] = []

    def add(poses: Float, source: Source) -> None:
        parts.append(poses)
        tags.append(np.full(len(poses), source, dtype=np.int8))

    if vocab is not None:
        add(
            vocabulary_candidates(vocab, record, config.vocab_speed_tolerance_mps),
            Source.VOCABULARY,
        )
    add(
        lattice_candidates(town, record.scene, record.route_lane_seq, config.lattice),
        Source.LATTICE,
    )
    expert = [record.expert_future] + (
        [record.expert_plan] if record.expert_plan is not None else []
    )
    add(np.stack(expert), Source.EXPERT)
    return CandidateSet(poses=np.concatenate(parts, axis=0), source=np.concatenate(tags))
