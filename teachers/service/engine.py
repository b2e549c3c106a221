"""The service's work, without HTTP: towns (loaded once per process, one load at a time per town),
the vocabulary, and the two operations, teachers and scores for a scene, as blocking functions the
app runs in its worker threads. Both go through :mod:`teachers.per_scene`, as gen-teachers does."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from harness.errors import UnknownTownError
from harness.maps import available_towns, load_town
from harness.maps.town import Town
from teachers.candidates import Source
from teachers.dataset import SUB_SCORES
from teachers.per_scene import TeacherConfig, score_trajectories, teachers_for_scene
from teachers.scoring import Metric, ScoreMatrix
from teachers.service import schemas
from teachers.service.convert import SceneFieldError, scene_record, trajectories_array
from teachers.vocabulary import (
    DEFAULT_VOCABULARY_ID,
    Vocabulary,
    load_registered,
    registered_ids,
    resolve_vocabulary,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """The default vocabulary (a registered id, or a file named at start-up; None: lattice and
    reference candidates only), towns to load at start-up, and the teacher settings a
    request's k and options override."""

    vocabulary: str | Path | None = DEFAULT_VOCABULARY_ID
    preload: tuple[str, ...] = ()
    teachers: TeacherConfig = field(default_factory=TeacherConfig)


def sub_scores(scores: ScoreMatrix, j: int) -> schemas.SubScores:
    """Column j of a score matrix as the response's named sub-scores."""
    values = {name: float(scores.values[m, j]) for name, m in zip(SUB_SCORES, Metric, strict=True)}
    return schemas.SubScores(**values)


def _poses(a: np.ndarray) -> list[tuple[float, float, float]]:
    return [(float(x), float(y), float(w)) for x, y, w in a]


class Engine:
    """Towns, vocabulary and the blocking operations; safe to call from several threads."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.vocab: Vocabulary | None = (
            resolve_vocabulary(config.vocabulary) if config.vocabulary is not None else None
        )
        self._names = {t.name: t.origin for t in available_towns()}
        self._towns: dict[str, Town] = {}
        self._locks: dict[str, threading.Lock] = {n: threading.Lock() for n in self._names}
        for name in config.preload:
            self.town(name)

    def town_names(self) -> dict[str, str]:
        """Resolvable town name -> origin (HARNESS_MAPS, CARLA_ROOT, builtin)."""
        return dict(self._names)

    def loaded(self, name: str) -> bool:
        """Whether the town is already in memory."""
        return name in self._towns

    def town(self, name: str) -> Town:
        """The town by name, loaded on first use (only names found at start-up: a request never
        names a file)."""
        if name not in self._names:
            raise UnknownTownError(
                f"unknown town {name!r}; available: {', '.join(sorted(self._names))}"
            )
        got = self._towns.get(name)
        if got is not None:
            return got
        with self._locks[name]:
            if name not in self._towns:
                t0 = time.perf_counter()
                self._towns[name] = load_town(name)
                log.info("loaded %s in %.1f s", name, time.perf_counter() - t0)
        return self._towns[name]

    def teachers(self, req: schemas.TeachersRequest) -> schemas.TeachersResponse:
        """K teachers for the request's scene."""
        t0 = time.perf_counter()
        town = self.town(req.scene.town)
        record = scene_record(req.scene, town)
        base = self.config.teachers
        selection = replace(
            base.selection,
            k=req.k,
            threshold=req.options.threshold,
            min_separation_m=req.options.min_separation_m,
        )
        opts = req.options
        cfg = TeacherConfig(candidates=base.candidates, selection=selection, profile=opts.profile,
                            pool_cap=opts.pool_cap, seed=opts.seed)  # fmt: skip
        vocab = self.request_vocabulary(req.options) if opts.use_vocabulary else None
        result = teachers_for_scene(record, town, vocab, cfg)
        teachers = [
            schemas.Teacher(
                rank=rank,
                source=Source(int(result.candidates.source[j])).label,
                poses=_poses(result.poses[j]),
                scores=sub_scores(result.scores, int(j)),
                progress_m=float(result.scores.progress_m[j]),
            )
            for rank, j in enumerate(result.teacher_index)
        ]
        return schemas.TeachersResponse(
            scene_id=req.scene.scene_id,
            town=town.name,
            k=req.k,
            counts=schemas.Counts(**result.counts()),
            coverage=result.selection.coverage,
            max_gap_m=result.selection.max_gap_m,
            teachers=teachers,
            pool=[int(v) for v in result.vocab_pool],
            vocabulary=(
                schemas.VocabularyInfo(id=vocab.vocabulary_id, sha256=vocab.sha256, size=vocab.size)
                if vocab is not None
                else None
            ),
            seconds=time.perf_counter() - t0,
        )

    def request_vocabulary(self, options: schemas.Options) -> Vocabulary | None:
        """The vocabulary a request asks for: a registered id (never a path), else the
        service's; SceneFieldError for an unknown id or a hash that does not match."""
        loc = ("options", "vocabulary")
        if options.vocabulary is None:
            vocab = self.vocab
        elif options.vocabulary not in registered_ids():
            raise SceneFieldError(
                loc, f"unknown vocabulary {options.vocabulary!r}; registered: "
                f"{', '.join(registered_ids())}",
            )  # fmt: skip
        else:
            vocab = load_registered(options.vocabulary)
        want = options.vocabulary_sha256
        if want is not None and (vocab is None or vocab.sha256 != want):
            raise SceneFieldError(
                ("options", "vocabulary_sha256"),
                f"the vocabulary here has hash {vocab.sha256 if vocab else None}, the request "
                f"names {want}; ask with the vocabulary id the dataset was made with",
            )
        return vocab

    def score(self, req: schemas.ScoreRequest) -> schemas.ScoreResponse:
        """Sub-scores of the caller's trajectories in the request's scene."""
        t0 = time.perf_counter()
        town = self.town(req.scene.town)
        record = scene_record(req.scene, town)
        traj = trajectories_array(req.trajectories, record.scene.ego_pose[:2])
        out = score_trajectories(record, town, traj, simulate=req.simulate)
        results = [
            schemas.ScoredTrajectory(
                index=i,
                scores=sub_scores(out.scores, i),
                progress_m=float(out.scores.progress_m[i]),
                poses=_poses(out.poses[i]),
            )
            for i in range(len(traj))
        ]
        return schemas.ScoreResponse(
            scene_id=req.scene.scene_id,
            town=town.name,
            results=results,
            seconds=time.perf_counter() - t0,
        )
