"""Closed-loop PDMS / EPDMS outputs: the per-step file format, per-route means and the means over
a run's routes. The scoring itself lives in ``teachers.closed_loop`` (the runner may not import
the scorer); this module only knows the columns, so every reader (the eval summary, the route
table, the report) works without the scorer.

``OUT/closed_loop/<save_name>.parquet``, one row per scored planning step (every 0.5 s with a
full 4 s of hindsight): ``frame`` int64 (simulator frame of the state the plan was made at),
``time_s`` [s]; the sub-scores ``nc, dac, ddc, tlc, ep, ttc, lk, hc, ec, c`` and ``pdms``,
``epdms`` float64 in [0, 1]; ``progress_m`` [m] (route progress of the scored trajectory over
4 s); ``source`` string, ``agent`` (the agent's planned trajectory) or ``executed`` (the ego's
executed next 4 s, for agents that expose no plan).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.io import atomic_output

CLOSED_LOOP = "closed_loop"  # OUT/closed_loop/ and the key in RouteResult.observer_metrics
SCORE_COLUMNS = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "hc", "ec", "c", "pdms", "epdms")
SOURCE_AGENT = "agent"  # the step scored the agent's planned trajectory
SOURCE_EXECUTED = "executed"  # the step scored the ego's executed next 4 s

SCHEMA = pa.schema(
    [("frame", pa.int64()), ("time_s", pa.float64())]
    + [(c, pa.float64()) for c in SCORE_COLUMNS]
    + [("progress_m", pa.float64()), ("source", pa.string())]
)


def step_scores_path(out_dir: str | os.PathLike[str], save_name: str) -> Path:
    """``OUT/closed_loop/<save_name>.parquet``."""
    return Path(out_dir) / CLOSED_LOOP / f"{save_name}.parquet"


def write_step_scores(
    path: Path,
    frame: NDArray[np.int64],
    time_s: NDArray[np.float64],
    scores: Mapping[str, NDArray[np.float64]],
    progress_m: NDArray[np.float64],
    source: list[str],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write one route's per-step scores (``scores``: every :data:`SCORE_COLUMNS` name -> (S,))
    atomically; ``metadata`` goes into the schema metadata as ``harness.<key>``."""
    missing = [c for c in SCORE_COLUMNS if c not in scores]
    if missing:
        raise ValueError(f"step scores lack the columns {missing}")
    cols: dict[str, pa.Array] = {
        "frame": pa.array(np.asarray(frame, np.int64)),
        "time_s": pa.array(np.asarray(time_s, np.float64)),
    }
    for c in SCORE_COLUMNS:
        cols[c] = pa.array(np.asarray(scores[c], np.float64))
    cols["progress_m"] = pa.array(np.asarray(progress_m, np.float64))
    cols["source"] = pa.array(source, type=pa.string())
    table = pa.table(cols, schema=SCHEMA)
    if metadata:
        table = table.replace_schema_metadata(
            {f"harness.{k}".encode(): v.encode() for k, v in metadata.items()}
        )
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)
    return path


def table_means(table: pa.Table) -> dict[str, float] | None:
    """Per-route means of every score column over the table's steps, plus ``steps`` (count)
    and ``agent_plan_share`` (share of steps scored on the agent's own plan); None without
    rows."""
    if table.num_rows == 0:
        return None
    out = {c: float(pc.mean(table.column(c)).as_py()) for c in SCORE_COLUMNS}
    agent = pc.sum(pc.equal(table.column("source"), SOURCE_AGENT)).as_py() or 0
    out["steps"] = float(table.num_rows)
    out["agent_plan_share"] = float(agent) / table.num_rows
    return out


def read_route_means(path: str | os.PathLike[str]) -> dict[str, float] | None:
    """:func:`table_means` of one per-route file (None when it does not exist or is empty)."""
    p = Path(path)
    if not p.is_file():
        return None
    return table_means(pq.read_table(p))


@dataclass(frozen=True)
class ClosedLoopSummary:
    """Means over routes (each route weighs the same) of every per-route mean, the number of
    ``routes`` that had scored steps, and the ``steps`` scored in all."""

    means: dict[str, float]
    routes: int
    steps: int


def overall_means(per_route: Iterable[Mapping[str, float] | None]) -> ClosedLoopSummary:
    """Means over the routes that have closed-loop means (routes without scored steps, e.g.
    shorter than the 4 s horizon or never started, are left out and not counted)."""
    rows = [r for r in per_route if r is not None]
    if not rows:
        return ClosedLoopSummary({}, 0, 0)
    means = {c: float(np.mean([r[c] for r in rows])) for c in SCORE_COLUMNS}
    means["agent_plan_share"] = float(np.mean([r.get("agent_plan_share", 0.0) for r in rows]))
    return ClosedLoopSummary(means, len(rows), int(sum(r.get("steps", 0.0) for r in rows)))


def closed_loop_summary(
    out_dir: str | os.PathLike[str], save_names: Iterable[str]
) -> ClosedLoopSummary:
    """The run's overall closed-loop means from ``OUT/closed_loop/<save_name>.parquet`` of the
    given routes (read back from the files, so resumed routes and routes run by other processes
    count the same as the ones run here)."""
    return overall_means(read_route_means(step_scores_path(out_dir, n)) for n in save_names)
