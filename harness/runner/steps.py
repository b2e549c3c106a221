"""Per-step metrics of one route, kept in memory while the route runs and written to one Parquet
file per route (atomically), so later analysis (comfort, PDMS / EPDMS on the agent's own plans)
needs no re-simulation.

Columns (one row per simulator tick after the reset):
``frame`` int64, ``time_s`` [s]; ego ``x_m, y_m`` [m], ``yaw_rad`` (CARLA world frame),
``speed_mps``, ``accel_mps2`` (longitudinal), ``jerk_mps3`` (difference of accel over the tick,
0 on the first row); ``route_index`` (furthest passed dense-route point), ``route_progress_pct``
(route completion so far [%]); ``infractions`` (infractions so far) and ``collisions`` (collision
infractions so far); the control applied: ``throttle, steer, brake`` [-], ``reverse`` bool;
the agent's plan behind that control when it exposes ``planned_trajectory()``:
``plan_x_m, plan_y_m, plan_yaw_rad`` list<float64> (poses at 0.1 s from one step ahead; null
when the agent gave none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.io import atomic_output
from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import RouteCriteria
from harness.world.control import VehicleControl
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S

_COLLISION_KEYS = frozenset(
    {
        InfractionKey.COLLISIONS_LAYOUT,
        InfractionKey.COLLISIONS_PEDESTRIAN,
        InfractionKey.COLLISIONS_VEHICLE,
    }
)
_FLOAT_COLUMNS = (
    "time_s", "x_m", "y_m", "yaw_rad", "speed_mps", "accel_mps2", "jerk_mps3",
    "route_progress_pct", "throttle", "steer", "brake",
)  # fmt: skip
_INT_COLUMNS = ("frame", "route_index", "infractions", "collisions")
_PLAN_COLUMNS = ("plan_x_m", "plan_y_m", "plan_yaw_rad")

SCHEMA = pa.schema(
    [(c, pa.int64()) for c in _INT_COLUMNS]
    + [(c, pa.float64()) for c in _FLOAT_COLUMNS]
    + [("reverse", pa.bool_())]
    + [(c, pa.list_(pa.float64())) for c in _PLAN_COLUMNS]
)


@dataclass
class StepLog:
    """Rows of per-step metrics for one route (append one per tick, then :meth:`write`)."""

    ints: dict[str, list[int]] = field(default_factory=lambda: {c: [] for c in _INT_COLUMNS})
    floats: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in _FLOAT_COLUMNS})
    reverse: list[bool] = field(default_factory=list)
    plans: list[NDArray[np.float64] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.reverse)

    @property
    def last_time_s(self) -> float:
        """Simulation time [s] of the last row (0 when there is none)."""
        times = self.floats["time_s"]
        return times[-1] if times else 0.0

    def append(
        self,
        state: WorldState,
        control: VehicleControl,
        criteria: RouteCriteria,
        plan: NDArray[np.float64] | None,
    ) -> None:
        """Add the row of ``state`` (after ``criteria.update(state)``), reached by ``control``
        that the agent chose with ``plan`` ((T, 3) poses or None)."""
        a = state.actors
        accel = float(a.accel[0])
        prev = self.floats["accel_mps2"]
        jerk = (accel - prev[-1]) / SIM_DT_S if prev else 0.0
        infractions = criteria.infractions()
        row_f = {
            "time_s": float(state.time_s), "x_m": float(a.x[0]), "y_m": float(a.y[0]),
            "yaw_rad": float(a.yaw[0]), "speed_mps": float(a.speed[0]), "accel_mps2": accel,
            "jerk_mps3": jerk, "route_progress_pct": float(criteria.completion.value_pct),
            "throttle": float(control.throttle), "steer": float(control.steer),
            "brake": float(control.brake),
        }  # fmt: skip
        row_i = {
            "frame": int(state.frame),
            "route_index": int(criteria.tracker.index),
            "infractions": len(infractions),
            "collisions": sum(1 for i in infractions if i.key in _COLLISION_KEYS),
        }
        for k, v in row_f.items():
            self.floats[k].append(v)
        for k, n in row_i.items():
            self.ints[k].append(n)
        self.reverse.append(bool(control.reverse))
        self.plans.append(None if plan is None else np.array(plan, dtype=np.float64, copy=True))

    def table(self) -> pa.Table:
        """The rows as a pyarrow Table with :data:`SCHEMA`."""
        cols: dict[str, pa.Array] = {}
        for c in _INT_COLUMNS:
            cols[c] = pa.array(self.ints[c], type=pa.int64())
        for c in _FLOAT_COLUMNS:
            cols[c] = pa.array(self.floats[c], type=pa.float64())
        cols["reverse"] = pa.array(self.reverse, type=pa.bool_())
        for j, c in enumerate(_PLAN_COLUMNS):
            cols[c] = pa.array(
                [None if p is None else p[:, j].tolist() for p in self.plans],
                type=pa.list_(pa.float64()),
            )
        return pa.table(cols, schema=SCHEMA)

    def write(self, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> Path:
        """Write the rows to ``path`` atomically (temp file beside it, then os.replace);
        ``metadata`` goes into the Parquet schema metadata (route id, agent, seed, ...)."""
        out = Path(path)
        table = self.table()
        if metadata:
            table = table.replace_schema_metadata(
                {f"harness.{k}".encode(): v.encode() for k, v in metadata.items()}
            )
        with atomic_output(out) as tmp:
            pq.write_table(table, tmp)
        return out
