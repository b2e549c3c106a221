"""Observers of the episode loop that any caller may attach: the episode recorder (works on every
backend, since it only reads the states the loop sees)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness import __version__
from harness.runner.episode import Tick
from harness.world.backend import EpisodeSpec
from harness.world.recording import EpisodeRecorder
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S


class Recorder:
    """Keeps every state of an episode (the reset state, then one per tick) and writes them as
    one Parquet episode recording (:mod:`harness.world.recording`)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.recorder = EpisodeRecorder(meta)

    @classmethod
    def for_spec(cls, spec: EpisodeSpec) -> Recorder:
        """A recorder whose metadata names the episode's town, seed and ego start."""
        return cls(
            {"town": spec.town, "seed": spec.seed, "ego_start": list(spec.ego_start),
             "harness_version": __version__, "dt_s": SIM_DT_S}
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.recorder)

    def on_start(self, state: WorldState) -> None:
        self.recorder.append(state)

    def on_tick(self, tick: Tick) -> None:
        self.recorder.append(tick.state)

    def write(self, path: str | os.PathLike[str], extra_meta: dict[str, Any] | None = None) -> Path:
        """Write the recording (atomically), ``extra_meta`` merged into its metadata."""
        if extra_meta:
            self.recorder.meta.update(extra_meta)
        return self.recorder.write(path)
