"""The typed, frozen configuration of one evaluation run (``harness eval``): what to run, where
the results go, the criteria and scoring settings. Built once at the CLI edge (the only place
overrides happen) and passed down unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.fingerprint import file_sha256
from harness.leaderboard.route_criteria import CriteriaConfig
from harness.leaderboard.statistics import (
    BENCH2DRIVE,
    LEADERBOARD_2_0,
    LEADERBOARD_2_1,
    PenaltyTable,
)
from harness.runner.backends import BackendSpec
from harness.runner.extensions import RouteObserverFactory
from harness.runner.time_limit import DEFAULT_AGENT_TIMEOUT_S
from harness.world.backend import TrafficConfig

BENCH2DRIVE_PLAN_SPACING_M = 50.0  # [m] global-plan downsampling of Bench2Drive
LEADERBOARD_PLAN_SPACING_M = 200.0  # [m] global-plan downsampling of the CARLA leaderboard


class VideoPolicy(StrEnum):
    """Which evaluated routes get an episode video (``--videos``)."""

    NONE = "none"
    FAILED = "failed"  # routes that did not complete
    ALL = "all"

    def wants(self, completed: bool) -> bool:
        """Whether a route that did (not) complete gets a video."""
        return self is VideoPolicy.ALL or (self is VideoPolicy.FAILED and not completed)


PENALTY_TABLES: dict[str, PenaltyTable] = {
    "2.0": LEADERBOARD_2_0,
    "2.1": LEADERBOARD_2_1,
    "bench2drive": BENCH2DRIVE,
}
"""``--penalties`` choices -> penalty table (``bench2drive``: 2.0 without the min-speed penalty)."""


def _canonical(name_or_path: str) -> str:
    """An existing file as its absolute path (so a resumed run may name it differently), else
    the text unchanged (a registered agent name)."""
    p = Path(name_or_path).expanduser()
    return str(p.resolve()) if p.is_file() else name_or_path


class Mode(StrEnum):
    """Evaluation protocol: Bench2Drive (60 s blocked, 4000-tick limit, 50 m global plan) or the
    CARLA leaderboard 2.0 (180 s blocked, no tick limit, 200 m global plan)."""

    BENCH2DRIVE = "bench2drive"
    LEADERBOARD = "leaderboard"

    def criteria(self) -> CriteriaConfig:
        """The route criteria of this protocol."""
        return CriteriaConfig.bench2drive() if self is Mode.BENCH2DRIVE else CriteriaConfig()

    @property
    def plan_spacing_m(self) -> float:
        """Global-plan downsampling distance [m] of this protocol."""
        if self is Mode.BENCH2DRIVE:
            return BENCH2DRIVE_PLAN_SPACING_M
        return LEADERBOARD_PLAN_SPACING_M


@dataclass(frozen=True)
class RunConfig:
    """Everything one evaluation run needs.

    ``agent`` is a registered agent name or a path to a leaderboard-style agent file;
    ``agent_config`` the ``path_to_conf_file`` handed to ``setup`` ('' for none); ``subset`` the
    ``--routes-subset`` text (None: all routes); ``seed`` the run seed from which every route's
    episode seed is derived (by route position in the file, so a route gets the same seed in any
    subset and on resume); ``record`` also writes one full episode recording per route;
    ``backend`` says which simulator runs the routes; ``agent_timeout_s`` bounds every call into
    the agent; ``route_observers`` build one extension observer per route (e.g. the closed-loop
    PDMS / EPDMS scoring; picklable, see :mod:`harness.runner.extensions`); ``repetitions`` runs
    every route that many times (record ids ``..._rep<i>``, a seed per repetition). Where the
    routes run is no part of the results: ``workers`` processes (None: one; with Ray, one actor
    per CPU of the cluster) and ``ray_address`` (None: no Ray; 'auto': a local cluster; else a
    cluster's address); ``videos`` which routes get an episode video (not part of the identity:
    it changes no result).
    """

    agent: str
    routes_file: Path
    out_dir: Path
    agent_config: str = ""
    subset: str | None = None
    backend: BackendSpec = field(default_factory=BackendSpec)
    mode: Mode = Mode.BENCH2DRIVE
    criteria: CriteriaConfig = field(default_factory=CriteriaConfig.bench2drive)
    penalties: PenaltyTable = LEADERBOARD_2_0
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    seed: int = 0
    record: bool = False
    resume: bool = True
    rerun_crashed: bool = False
    plan_spacing_m: float = BENCH2DRIVE_PLAN_SPACING_M
    agent_timeout_s: float = DEFAULT_AGENT_TIMEOUT_S  # per agent call (setup, run_step, destroy)
    route_observers: tuple[RouteObserverFactory, ...] = ()
    repetitions: int = 1
    workers: int | None = None
    ray_address: str | None = None
    videos: VideoPolicy = VideoPolicy.NONE

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise ConfigError(f"repetitions must be >= 1, got {self.repetitions}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.ray_address is not None and not self.ray_address.strip():
            raise ConfigError("--ray needs 'auto' or a cluster address such as 10.0.0.5:6379")
        parallel = (self.workers or 1) > 1 or self.ray_address is not None
        if parallel and self.backend.name == "carla":
            raise ConfigError(
                "the carla backend runs one route at a time on its server; drop --workers / "
                "--ray, or run one harness eval per CARLA server"
            )
        if not self.agent_timeout_s > 0:
            raise ConfigError(f"agent_timeout_s must be > 0, got {self.agent_timeout_s}")
        if self.plan_spacing_m <= 0:
            raise ConfigError(f"plan_spacing_m must be > 0, got {self.plan_spacing_m}")
        if self.traffic.vehicles < 0 or self.traffic.pedestrians < 0:
            raise ConfigError("traffic counts must be >= 0")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in 0 .. 2**32 - 1, got {self.seed}")

    @staticmethod
    def for_mode(mode: Mode, **kwargs: Any) -> RunConfig:
        """A config with the criteria, penalty table and global-plan spacing of ``mode``
        (``kwargs`` may still override any of them)."""
        kwargs.setdefault("criteria", mode.criteria())
        # Bench2Drive's statistics manager marks the min-speed penalty 'unused'
        kwargs.setdefault("penalties", BENCH2DRIVE if mode == Mode.BENCH2DRIVE else LEADERBOARD_2_0)
        kwargs.setdefault("plan_spacing_m", mode.plan_spacing_m)
        return RunConfig(mode=mode, **kwargs)

    @property
    def results_path(self) -> Path:
        """``OUT/results.json``, the leaderboard-format results."""
        return self.out_dir / "results.json"

    def identity(self) -> dict[str, Any]:
        """The fingerprint a resumed run must share with the run it continues: everything that
        changes route results or the outputs (agent file and config with their content hashes,
        route file content hash, subset, mode, criteria, penalties, traffic, seed, recording,
        repetitions; not the workers or Ray);
        stored in ``OUT/run.json``."""
        c = self.criteria
        ident: dict[str, Any] = {
            "agent": _canonical(self.agent),
            "agent_sha256": file_sha256(self.agent),
            "agent_config": _canonical(self.agent_config) if self.agent_config else "",
            "agent_config_sha256": file_sha256(self.agent_config) if self.agent_config else "",
            "routes_file": _canonical(str(self.routes_file)),
            "routes_sha256": file_sha256(self.routes_file),
            "subset": self.subset or "",
            "backend": self.backend.name,
            "mode": self.mode.value,
            "criteria": {
                "blocked_time_s": c.blocked_time_s,
                "tick_limit": c.tick_limit,
                "min_speed_checkpoints": c.min_speed_checkpoints,
                "speed_limit_mps": c.speed_limit_mps,
                "route_deviation_m": c.route_deviation_m,
            },
            "penalties": self.penalties.name,
            "traffic": {
                "vehicles": self.traffic.vehicles,
                "pedestrians": self.traffic.pedestrians,
                "spawn_radius_m": self.traffic.spawn_radius_m,
            },
            "seed": self.seed,
            "record": self.record,
            "plan_spacing_m": self.plan_spacing_m,
        }
        if self.repetitions != 1:  # only then: folders of earlier one-repetition runs still resume
            ident["repetitions"] = self.repetitions
        return ident
