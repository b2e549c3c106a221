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

VOCAB_SPEED_TOLERANCE_MPS = 3.0  # the optional speed prefilter's tolerance [m/s]

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
    """Which candidates a scene gets: the lattice axes, and an optional initial-speed prefilter
    of the vocabulary (None, the default: every entry is scored, as Drive-JEPA does; the LQR
    starts from the ego's real state; e.g. VOCAB_SPEED_TOLERANCE_MPS skips entries starting
    that much faster or slower than the ego)."""

    lattice: LatticeConfig = field(default_factory=LatticeConfig)
    vocab_speed_tolerance_mps: float | None = None


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """``poses`` (B, 40, 3) [x, y, yaw] world frame at t = 0.1 .. 4.0 s; ``source`` (B,) Source;
    ``vocab_index`` (B,) the vocabulary entry of each vocabulary row, -1 for the others."""

    poses: Float
    source: NDArray[np.int8]
    vocab_index: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.poses.shape[1:] != (NUM_POSES - 1, 3) or self.source.shape != self.poses.shape[:1]:
            raise ValueError(f"CandidateSet poses {self.poses.shape} / source {self.source.shape}")
        if self.vocab_index.shape != self.source.shape:  # no vocabulary rows given
            if np.any(self.source == Source.VOCABULARY):
                raise ValueError("CandidateSet with vocabulary rows needs their vocab_index")
            object.__setattr__(self, "vocab_index", np.full(self.source.shape, -1, np.int64))

    @property
    def size(self) -> int:
        """B."""
        return int(self.poses.shape[0])

    def count(self, source: Source) -> int:
        """Candidates from one source."""
        return int(np.count_nonzero(self.source == source))


def vocabulary_candidates(
    vocab: Vocabulary, record: SceneRecord, tolerance_mps: float | None
) -> tuple[Float, NDArray[np.int64]]:
    """Vocabulary entries (V', 40, 3) placed at the ego in the world and their entry indices
    (V',): all of them, or with ``tolerance_mps`` those whose initial speed (first step /
    0.1 s) is within it of the ego's."""
    if tolerance_mps is None:
        return vocab.in_world(record.scene.ego_pose), np.arange(vocab.size, dtype=np.int64)
    v_first = np.hypot(*vocab.trajectories[:, 0, :2].T) / PDM_DT_S
    keep = np.flatnonzero(np.abs(v_first - record.scene.ego_speed_mps) <= tolerance_mps)
    return vocab.in_world(record.scene.ego_pose)[keep], keep.astype(np.int64)


def build_candidates(
    record: SceneRecord, town: Town, vocab: Vocabulary | None, config: CandidateConfig
) -> CandidateSet:
    """Every candidate of the scene, vocabulary first, then lattice, then expert."""
    parts: list[Float] = []
    tags: list[NDArray[np.int8]] = []
    index: list[NDArray[np.int64]] = []

    def add(poses: Float, source: Source, entries: NDArray[np.int64] | None = None) -> None:
        parts.append(poses)
        tags.append(np.full(len(poses), source, dtype=np.int8))
        index.append(entries if entries is not None else np.full(len(poses), -1, np.int64))

    if vocab is not None:
        poses, entries = vocabulary_candidates(vocab, record, config.vocab_speed_tolerance_mps)
        add(poses, Source.VOCABULARY, entries)
    add(
        lattice_candidates(town, record.scene, record.route_lane_seq, config.lattice),
        Source.LATTICE,
    )
    expert = [record.expert_future] + (
        [record.expert_plan] if record.expert_plan is not None else []
    )
    add(np.stack(expert), Source.EXPERT)
    return CandidateSet(
        poses=np.concatenate(parts, axis=0),
        source=np.concatenate(tags),
        vocab_index=np.concatenate(index),
    )
