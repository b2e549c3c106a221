"""The per-route ``metric_info.json`` Bench2Drive's ``efficiency_smoothness_benchmark.py`` reads,
written by an episode observer (any backend: it reads only the world states the loop sees).

Layout: ``OUT/metric_info/<save_name>/metric_info.json`` (``-m OUT/metric_info`` for the tool),
a mapping step -> {acceleration [x, y, z] m/s2, angular_velocity [x, y, z] deg/s,
forward_vector, right_vector, location [x, y, z] m, rotation [roll, pitch, yaw] deg}, what
``AutonomousAgent.get_metric_info`` reads from the hero actor, in the CARLA world frame
(left-handed: x forward at yaw 0, y to the right, z up, yaw clockwise seen from above). The step
is the 20 Hz tick index since the reset (0 = the reset state); every second tick is kept, so the
samples are 0.1 s apart, the spacing the tool's derivatives assume.

The embedded states carry speed along the heading, longitudinal acceleration and yaw rate, no
roll or pitch: the acceleration vector is a_lon f + v yaw_rate r (the derivative of v f), the
angular velocity (0, 0, yaw rate), roll and pitch 0.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from harness.io import atomic_write_json
from harness.leaderboard.bench2drive import MetricInfo
from harness.runner.episode import Tick
from harness.world.state import EGO_INDEX, WorldState
from harness.world.timing import TICKS_PER_POSE

METRIC_INFO_DIR = "metric_info"  # OUT/metric_info/<save_name>/metric_info.json
METRIC_INFO_FILE = "metric_info.json"


def metric_info_path(out_dir: str | os.PathLike[str], save_name: str) -> Path:
    """Where the route ``save_name``'s metric_info.json goes under the run folder."""
    return Path(out_dir) / METRIC_INFO_DIR / save_name / METRIC_INFO_FILE


def ego_sample(state: WorldState) -> tuple[list[float], ...]:
    """The six (3,) vectors of the ego in ``state``, in METRIC_INFO_KEYS order."""
    a = state.actors
    i = EGO_INDEX
    yaw, v, acc, w = float(a.yaw[i]), float(a.speed[i]), float(a.accel[i]), float(a.yaw_rate[i])
    c, s = math.cos(yaw), math.sin(yaw)
    fwd = [c, s, 0.0]
    right = [-s, c, 0.0]
    lat = v * w  # [m/s2] centripetal acceleration along the right vector
    accel = [acc * c - lat * s, acc * s + lat * c, 0.0]
    yaw_deg = math.degrees(math.atan2(s, c))
    return (
        accel,
        [0.0, 0.0, math.degrees(w)],
        fwd,
        right,
        [float(a.x[i]), float(a.y[i]), float(a.z[i])],
        [0.0, 0.0, yaw_deg],
    )


class MetricInfoObserver:
    """Keeps the ego's metric_info sample of every second tick of an episode (10 Hz)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.rows: list[tuple[list[float], ...]] = []
        self._ticks = 0

    def __len__(self) -> int:
        return len(self.steps)

    def _keep(self, state: WorldState) -> None:
        if self._ticks % TICKS_PER_POSE == 0:
            self.steps.append(self._ticks)
            self.rows.append(ego_sample(state))

    def on_start(self, state: WorldState) -> None:
        self._ticks = 0
        self._keep(state)

    def on_tick(self, tick: Tick) -> None:
        self._ticks += 1
        self._keep(tick.state)

    def info(self) -> MetricInfo:
        """The samples so far as a MetricInfo."""
        n = len(self.rows)
        cols = [np.array([r[k] for r in self.rows], dtype=np.float64).reshape(n, 3)
                for k in range(6)]  # fmt: skip
        return MetricInfo(np.array(self.steps, dtype=np.int64), *cols)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the samples as metric_info.json (atomically)."""
        return atomic_write_json(path, self.info().to_json())
