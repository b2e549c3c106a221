"""What a report reads from an eval folder, gathered by one function (:func:`load_run`) so that
further tables (``routes.parquet``, ``infractions.parquet``) plug in at one place.

Today it reads ``OUT/results.json`` (leaderboard records), the run's settings (the route file;
``harness.runner.evaluation.RUN_FILE``, else ``OUT/run.json``), ``OUT/steps/<route_id>.parquet``
(per-tick ego pose, progress, infraction counts and the agent's plan,
:mod:`harness.runner.steps`) and lists ``OUT/videos/``. Files are found by the record's
leaderboard ``route_id``, which Bench2Drive-style ``save_name``s need not equal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.errors import HarnessError
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.evaluation import RUN_FILE
from harness.runner.route_runner import STEPS_DIR
from harness.runner.videos import VIDEOS_DIR

RESULTS_FILE = "results.json"
LEGACY_RUN_FILE = "run.json"  # OUT/run.json, where runs kept their settings before OUT/harness/
_LOCATION = re.compile(
    r"at \(x=(-?[\d.]+(?:e-?\d+)?), y=(-?[\d.]+(?:e-?\d+)?), z=(-?[\d.]+(?:e-?\d+)?)\)"
)


class ReportError(HarnessError):
    """A folder that is not an eval output (no readable results.json)."""


@dataclass(frozen=True)
class InfractionMark:
    """One infraction of a record: its key, the message, and the place the message names
    (NaN when the message names none, e.g. min-speed or blocked)."""

    key: str
    text: str
    x_m: float
    y_m: float


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
class RouteData:
    """One route record with what else the folder holds about it."""

    record: dict[str, Any]
    route: RouteConfig | None  # from the run's route file (None when it is gone)
    steps: Steps | None
    video: Path | None

    @property
    def stem(self) -> str:
        """The record's leaderboard route id ('RouteScenario_<id>_rep<r>'), the stem of the
        route's files under steps/, recordings/ and videos/ (Bench2Drive's save_name may
        differ)."""
        return str(self.record["route_id"])

    @property
    def marks(self) -> tuple[InfractionMark, ...]:
        return infraction_marks(self.record)


@dataclass(frozen=True)
class RunData:
    """One eval folder: ``results`` the results.json content, ``total_routes`` the run's route
    count (missing routes count 0 in the means), ``routes`` one entry per record."""

    out_dir: Path
    results: dict[str, Any]
    run: dict[str, Any]
    total_routes: int
    routes: tuple[RouteData, ...]

    @property
    def name(self) -> str:
        return self.out_dir.name or str(self.out_dir)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r.record for r in self.routes]

    @property
    def privileged(self) -> bool:
        return bool(self.run.get("privileged", False))


def infraction_marks(record: dict[str, Any]) -> tuple[InfractionMark, ...]:
    """Every infraction message of a record with the location it names."""
    out = []
    for key in INFRACTION_KEYS:
        for text in record.get("infractions", {}).get(key, []):
            m = _LOCATION.search(str(text))
            x, y = (float(m.group(1)), float(m.group(2))) if m else (np.nan, np.nan)
            out.append(InfractionMark(key, str(text), x, y))
    return tuple(out)


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


def _route_configs(run: dict[str, Any]) -> dict[str, RouteConfig]:
    """The run's route file's routes by id ({} when run.json names none or it is unreadable)."""
    name = run.get("config", {}).get("routes_file")
    if not name or not Path(name).is_file():
        return {}
    try:
        return {r.id: r for r in read_route_file(name)}
    except HarnessError:
        return {}


def _file_route_id(record: dict[str, Any]) -> str:
    """'RouteScenario_<id>_rep<r>' -> '<id>' (the route file's id)."""
    m = re.fullmatch(r"RouteScenario_(.+)_rep\d+", str(record["route_id"]))
    return m.group(1) if m else str(record["route_id"])


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
        records = list(results["_checkpoint"]["records"])
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
    configs = _route_configs(run)
    routes = []
    for rec in sorted(records, key=lambda r: int(r.get("index", 0))):
        save = str(rec["route_id"])
        steps_path = out / STEPS_DIR / f"{save}.parquet"
        videos = sorted((out / VIDEOS_DIR).glob(f"{save}.*")) if (out / VIDEOS_DIR).is_dir() else []
        routes.append(
            RouteData(
                record=rec,
                route=configs.get(_file_route_id(rec)),
                steps=read_steps(steps_path) if steps_path.is_file() else None,
                video=videos[0] if videos else None,
            )
        )
    return RunData(out, results, run, max(total, len(records), 1), tuple(routes))
