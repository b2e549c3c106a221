"""What a report reads from an eval folder, gathered by one function (:func:`load_run`).

It reads ``OUT/results.json`` (leaderboard records), the run's settings (the route file;
``harness.runner.evaluation.RUN_FILE``, else ``OUT/run.json``), the Bench2Drive metrics
(``OUT/harness/bench2drive.json``; for folders without it computed by the same functions of
:mod:`harness.leaderboard.bench2drive` from the records, the route file and ``metric_info/``),
``OUT/routes.parquet`` (per-route efficiency / smoothness; else computed), ``OUT/infractions.parquet``
(infraction time and place; else the place parsed from the message),
``OUT/steps/<route_id>.parquet`` (per-tick ego pose, progress, infraction counts and the agent's
plan), ``OUT/closed_loop/<route_id>.parquet`` (closed-loop PDMS / EPDMS per scored step) and lists
``OUT/videos/``. Files are found by the record's leaderboard ``route_id``, which
Bench2Drive-style ``save_name``s need not equal.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.errors import HarnessError
from harness.leaderboard import bench2drive as b2d
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.leaderboard.results import RouteRecord
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.closed_loop import (
    ClosedLoopSummary,
    overall_means,
    step_scores_path,
    table_means,
)
from harness.runner.evaluation import RUN_FILE
from harness.runner.route_runner import STEPS_DIR
from harness.runner.tables import (
    HARNESS_DIR,
    INFRACTIONS_TABLE,
    ROUTES_TABLE,
    SUMMARY_FILE,
    junction_completions,
    route_smoothness,
)
from harness.runner.videos import VIDEOS_DIR

log = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
LEGACY_RUN_FILE = "run.json"  # OUT/run.json, where runs kept their settings before OUT/harness/
BENCH2DRIVE_FILE = f"{HARNESS_DIR}/{SUMMARY_FILE}"  # OUT/harness/bench2drive.json
READ = f"read from {BENCH2DRIVE_FILE}"
COMPUTED = "computed from results.json, the route file and metric_info/"
_LOCATION = re.compile(
    r"at \(x=(-?[\d.]+(?:e-?\d+)?), y=(-?[\d.]+(?:e-?\d+)?), z=(-?[\d.]+(?:e-?\d+)?)\)"
)


class ReportError(HarnessError):
    """A folder that is not an eval output (no readable results.json)."""


@dataclass(frozen=True)
class InfractionMark:
    """One infraction of a record: its key, the message, the place (from infractions.parquet,
    else the place the message names; NaN when neither gives one, e.g. min-speed) and the
    simulation time [s] (NaN where unknown)."""

    key: str
    text: str
    x_m: float
    y_m: float
    time_s: float = math.nan


@dataclass(frozen=True)
class Steps:
    """Per-tick columns of one route's step file, (T,) each; ``plans`` the agent's planned
    poses (P, 3) per tick or None."""

    time_s: NDArray[np.float64]
    x_m: NDArray[np.float64]
    y_m: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    progress_pct: NDArray[np.float64]
    infractions: NDArray[np.int64]
    plans: tuple[NDArray[np.float64] | None, ...]

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


@dataclass(frozen=True)
class ClosedLoopRoute:
    """One route's closed-loop scores: ``means`` of every score column (plus ``steps`` and
    ``agent_plan_share``, :func:`harness.runner.closed_loop.table_means`) and the per-step
    ``time_s`` [s], ``pdms``, ``epdms`` [0, 1], (S,) each."""

    means: dict[str, float]
    time_s: NDArray[np.float64]
    pdms: NDArray[np.float64]
    epdms: NDArray[np.float64]


@dataclass(frozen=True)
class RouteData:
    """One route record with what else the folder holds about it: the route's Bench2Drive
    efficiency [%] and smoothness [-] (None where it has none), its infractions."""

    record: dict[str, Any]
    route: RouteConfig | None  # from the run's route file (None when it is gone)
    steps: Steps | None
    video: Path | None
    marks: tuple[InfractionMark, ...] = ()
    efficiency_pct: float | None = None
    smoothness: float | None = None
    closed_loop: ClosedLoopRoute | None = None

    @property
    def stem(self) -> str:
        """The record's leaderboard route id ('RouteScenario_<id>_rep<r>'), the stem of the
        route's files under steps/, recordings/, closed_loop/ and videos/ (Bench2Drive's
        save_name may differ)."""
        return str(self.record["route_id"])


@dataclass(frozen=True)
class RunData:
    """One eval folder: ``results`` the results.json content, ``total_routes`` the run's route
    count (missing routes count 0 in the leaderboard means), ``routes`` one entry per record,
    ``bench2drive`` every Bench2Drive metric over the route file (None when the route file is
    gone) and where it came from, ``closed_loop`` the closed-loop means over the routes."""

    out_dir: Path
    results: dict[str, Any]
    run: dict[str, Any]
    total_routes: int
    routes: tuple[RouteData, ...]
    bench2drive: b2d.Bench2DriveMetrics | None = None
    bench2drive_source: str = ""
    closed_loop: ClosedLoopSummary = field(default_factory=lambda: ClosedLoopSummary({}, 0, 0))

    @property
    def name(self) -> str:
        return self.out_dir.name or str(self.out_dir)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r.record for r in self.routes]

    @property
    def privileged(self) -> bool:
        return bool(self.run.get("privileged", False))


def infraction_marks(record: Mapping[str, Any]) -> tuple[InfractionMark, ...]:
    """Every infraction message of a record with the location it names."""
    out = []
    for key in INFRACTION_KEYS:
        for text in record.get("infractions", {}).get(key, []):
            out.append(_mark(key, str(text), None, None, None))
    return tuple(out)


def _mark(key: str, text: str, x: float | None, y: float | None, t: float | None) -> InfractionMark:
    """A mark at (x, y) where given, else at the place the message names."""
    if x is None or y is None:
        m = _LOCATION.search(text)
        x, y = (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)
    return InfractionMark(key, text, x, y, math.nan if t is None else float(t))


def _table_marks(rows: Sequence[Mapping[str, Any]]) -> tuple[InfractionMark, ...]:
    return tuple(
        _mark(str(r["kind"]), str(r["text"]), r["x_m"], r["y_m"], r["time_s"]) for r in rows
    )


def read_steps(path: Path) -> Steps:
    """The columns of a step file the report draws."""
    t = pq.read_table(path)

    def col(name: str) -> NDArray[Any]:
        return np.asarray(t.column(name).to_numpy(zero_copy_only=False))

    xs, ys, yaws = (t.column(c).to_pylist() for c in ("plan_x_m", "plan_y_m", "plan_yaw_rad"))
    plans = tuple(
        None if px is None else np.stack([px, py, pyaw], axis=1).astype(np.float64)
        for px, py, pyaw in zip(xs, ys, yaws, strict=True)
    )
    return Steps(
        time_s=col("time_s").astype(np.float64), x_m=col("x_m").astype(np.float64),
        y_m=col("y_m").astype(np.float64), speed_mps=col("speed_mps").astype(np.float64),
        progress_pct=col("route_progress_pct").astype(np.float64),
        infractions=col("infractions").astype(np.int64), plans=plans,
    )  # fmt: skip


def read_closed_loop(path: Path) -> ClosedLoopRoute | None:
    """A route's closed-loop step file (None when it is absent, empty or unreadable)."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        log.warning("report: %s is unreadable (%s)", path, exc)
        return None
    means = table_means(table)
    if means is None:
        return None

    def col(name: str) -> NDArray[np.float64]:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    return ClosedLoopRoute(means, col("time_s"), col("pdms"), col("epdms"))


def _read_rows(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a run table (None when it is absent or unreadable: then the report computes
    what it needs from results.json)."""
    if not path.is_file():
        return None
    try:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        log.warning("report: %s is unreadable (%s); using results.json", path, exc)
        return None
    return rows


def _route_file(run: Mapping[str, Any]) -> list[RouteConfig] | None:
    """Every route of the run's route file (None when run.json names none or it is
    unreadable)."""
    name = run.get("config", {}).get("routes_file")
    if not name or not Path(name).is_file():
        return None
    try:
        return read_route_file(name)
    except HarnessError as exc:
        log.warning("report: route file %s is unreadable (%s)", name, exc)
        return None


def _file_route_id(record: Mapping[str, Any]) -> str:
    """'RouteScenario_<id>_rep<r>' -> '<id>' (the route file's id)."""
    m = re.fullmatch(r"RouteScenario_(.+)_rep\d+", str(record["route_id"]))
    return m.group(1) if m else str(record["route_id"])


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def metrics_from_json(data: Mapping[str, Any]) -> b2d.Bench2DriveMetrics:
    """The :class:`Bench2DriveMetrics` that ``Bench2DriveMetrics.to_json`` wrote."""
    counts = {str(a): (int(c[0]), int(c[1])) for a, c in data["ability_counts"].items()}
    missing = tuple(
        (None if m[0] is None else str(m[0]), str(m[1])) for m in data.get("missing_routes", [])
    )
    return b2d.Bench2DriveMetrics(
        driving_score=float(data["driving_score"]), success_rate=float(data["success_rate"]),
        num_records=int(data["eval_num"]), total_routes=int(data["total_routes"]),
        efficiency_pct=_opt(data["driving_efficiency"]),
        smoothness=_opt(data["driving_smoothness"]),
        abilities=b2d.AbilityResult(counts, missing),
        scenario_types={
            str(k): b2d.TypeResult(int(t["routes"]), int(t["eval_num"]), float(t["score_sum"]),
                                   int(t["successes"]))
            for k, t in data.get("scenario_types", {}).items()
        },
    )  # fmt: skip


def _stored_metrics(
    out: Path, records: Sequence[Mapping[str, Any]]
) -> b2d.Bench2DriveMetrics | None:
    """OUT/harness/bench2drive.json when it is readable and covers the records."""
    path = out / BENCH2DRIVE_FILE
    if not path.is_file():
        return None
    try:
        metrics = metrics_from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.warning("report: %s is unreadable (%s); computing the metrics", path, exc)
        return None
    if metrics.num_records != len(records):
        log.warning("report: %s counts %d records, results.json %d; computing the metrics",
                    path, metrics.num_records, len(records))  # fmt: skip
        return None
    return metrics


def _smoothness(out: Path, records: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """save_name -> the route's smoothness from its metric_info.json (as the run computes it)."""
    return route_smoothness(out, [RouteRecord.from_json(dict(r)) for r in records])


def load_run(out_dir: str | Path) -> RunData:
    """Everything the report of ``out_dir`` draws; ReportError when it is no eval folder."""
    out = Path(out_dir)
    path = out / RESULTS_FILE
    if not out.is_dir():
        raise ReportError(f"{out} is not a folder; pass the --out folder of a `harness eval` run")
    if not path.is_file():
        raise ReportError(
            f"{out} holds no {RESULTS_FILE}; pass the --out folder of a `harness eval` run"
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        records = sorted(results["_checkpoint"]["records"], key=lambda r: int(r.get("index", 0)))
        total = int(results["_checkpoint"]["progress"][1])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ReportError(
            f"{path} is not a leaderboard results file ({type(exc).__name__}: {exc}); "
            "pass the --out folder of a `harness eval` run"
        ) from exc
    run: dict[str, Any] = {}
    for name in dict.fromkeys((RUN_FILE, LEGACY_RUN_FILE)):
        try:
            run = json.loads((out / name).read_text(encoding="utf-8"))
            break
        except (OSError, ValueError):
            continue
    all_routes = _route_file(run)
    configs = {r.id: r for r in all_routes or ()}

    metrics, source = _stored_metrics(out, records), READ
    smooth: dict[str, float | None] | None = None
    if metrics is None and all_routes:
        smooth = _smoothness(out, records)
        metrics = b2d.bench2drive_metrics(
            all_routes, records, smooth, junction_completions(all_routes, records)
        )
        source = COMPUTED

    table = {str(r["record_route_id"]): r for r in _read_rows(out / ROUTES_TABLE) or ()}
    inf_rows: dict[str, list[dict[str, Any]]] = {}
    for inf in _read_rows(out / INFRACTIONS_TABLE) or ():
        inf_rows.setdefault(str(inf["record_route_id"]), []).append(inf)

    routes = []
    for rec in records:
        save = str(rec["route_id"])
        steps_path = out / STEPS_DIR / f"{save}.parquet"
        videos = sorted((out / VIDEOS_DIR).glob(f"{save}.*")) if (out / VIDEOS_DIR).is_dir() else []
        row = table.get(save)
        if row is not None:
            eff, sm = _opt(row.get("efficiency_pct")), _opt(row.get("smoothness"))
        else:
            if smooth is None:
                smooth = _smoothness(out, records)
            eff, sm = b2d.route_efficiency_pct(rec), smooth.get(str(rec.get("save_name")))
        kept = inf_rows.get(save, [])
        n_msgs = sum(len(rec.get("infractions", {}).get(k, [])) for k in INFRACTION_KEYS)
        marks = _table_marks(kept) if kept and len(kept) == n_msgs else infraction_marks(rec)
        routes.append(
            RouteData(
                record=rec,
                route=configs.get(_file_route_id(rec)),
                steps=read_steps(steps_path) if steps_path.is_file() else None,
                video=videos[0] if videos else None,
                marks=marks,
                efficiency_pct=eff,
                smoothness=sm,
                closed_loop=read_closed_loop(step_scores_path(out, save)),
            )  # fmt: skip
        )
    closed = overall_means(r.closed_loop.means if r.closed_loop else None for r in routes)
    return RunData(
        out, results, run, max(total, len(records), 1), tuple(routes), metrics,
        source if metrics is not None else "", closed,
    )  # fmt: skip
