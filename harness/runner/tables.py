"""The run-level tables and Bench2Drive summary of an evaluation, written atomically at the end of
a run (also after Ctrl-C), built from every record of ``results.json`` (resumed ones included):

- ``OUT/routes.parquet``: one row per route record: ids, town, scenario name and type, its
  Bench2Drive abilities, weather id, status, Bench2Drive success, DS / RC / IP, the number of
  infractions of each leaderboard key, route length [m], game and system durations [s], the
  route's Bench2Drive efficiency [%] and smoothness [-] (null where the route has none), and
  ``unimplemented_scenarios``: the route's scenario types without an implementation, comma-separated
  (empty when none; the route ran without them).
- ``OUT/infractions.parquet``: one row per infraction: record index, route ids, kind (the
  leaderboard key), frame, time [s] and ego x, y [m] where known (null for routes that ran
  before this table existed), and the leaderboard message.
- ``OUT/harness/bench2drive.json``: every Bench2Drive metric of the run over the route file
  (:class:`harness.leaderboard.bench2drive.Bench2DriveMetrics`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.io import atomic_output, atomic_write_json
from harness.leaderboard import bench2drive as b2d
from harness.leaderboard.outcome import INFRACTION_KEYS, RouteOutcome
from harness.leaderboard.results import RouteRecord
from harness.leaderboard.statistics import is_bench2drive_success
from harness.maps import load_town
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.runner.metric_info import metric_info_path

log = logging.getLogger(__name__)

ROUTES_TABLE = "routes.parquet"
INFRACTIONS_TABLE = "infractions.parquet"
HARNESS_DIR = "harness"  # OUT/harness/: the harness's own files (run.json, bench2drive.json)
SUMMARY_FILE = "bench2drive.json"

INFRACTION_SCHEMA = pa.schema([
    ("index", pa.int64()), ("route_id", pa.string()), ("record_route_id", pa.string()),
    ("kind", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()),
    ("x_m", pa.float64()), ("y_m", pa.float64()), ("text", pa.string()),
])  # fmt: skip

InfractionRow = dict[str, Any]


def outcome_infraction_rows(
    index: int, route_id: str, record_route_id: str, outcome: RouteOutcome
) -> list[InfractionRow]:
    """The infraction rows of a route that ran in this process (frame, time and place known)."""
    return [
        {"index": index, "route_id": route_id, "record_route_id": record_route_id,
         "kind": i.key.value, "frame": i.frame, "time_s": i.time_s, "x_m": i.x_m, "y_m": i.y_m,
         "text": i.message}
        for i in outcome.infractions
    ]  # fmt: skip


def _message_rows(index: int, route_id: str, rec: RouteRecord) -> list[InfractionRow]:
    return [
        {"index": index, "route_id": route_id, "record_route_id": rec.route_id, "kind": k,
         "frame": None, "time_s": None, "x_m": None, "y_m": None, "text": m}
        for k in INFRACTION_KEYS for m in rec.infractions.get(k, [])
    ]  # fmt: skip


def _stored_rows(path: Path) -> dict[int, list[InfractionRow]]:
    """Rows of an existing infractions table by record index (empty when there is none)."""
    if not path.is_file():
        return {}
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        log.warning("%s is unreadable (%s); rebuilding it from the records", path, exc)
        return {}
    out: dict[int, list[InfractionRow]] = {}
    for r in rows:
        out.setdefault(int(r["index"]), []).append(r)
    return out


def infraction_rows(
    path: Path,
    records: Sequence[RouteRecord],
    route_ids: Sequence[str],
    fresh: Mapping[int, list[InfractionRow]],
) -> list[InfractionRow]:
    """Rows of every record: this run's (``fresh``), else those already in the table at
    ``path`` for the same record, else the record's messages without frame / place."""
    stored = _stored_rows(path)
    rows: list[InfractionRow] = []
    for rec in records:
        i = rec.index
        kept = stored.get(i, [])
        if i in fresh:
            rows += fresh[i]
        elif (
            kept
            and all(r["record_route_id"] == rec.route_id for r in kept)
            and len(kept) == rec.num_infractions
        ):
            rows += kept
        else:
            rows += _message_rows(i, route_ids[i], rec)
    return rows


def _read_metric_info(path: Path) -> b2d.MetricInfo | None:
    try:
        return b2d.MetricInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); the route gets no smoothness", path, exc)
        return None


def route_smoothness(out_dir: Path, records: Sequence[RouteRecord]) -> dict[str, float | None]:
    """save_name -> the route's Bench2Drive smoothness from its metric_info.json."""
    out: dict[str, float | None] = {}
    for rec in records:
        if rec.save_name is None:
            continue
        info = _read_metric_info(metric_info_path(out_dir, rec.save_name))
        out[rec.save_name] = b2d.route_smoothness(info) if info is not None else None
    return out


def junction_completions(
    routes: Sequence[RouteConfig], records: Sequence[Mapping[str, Any]]
) -> dict[str, float | None]:
    """Route id -> junction completion of the failed Traffic_Signs routes with a record (the
    only ones ability_benchmark.py needs it for), from the route planned at 1 m."""
    out: dict[str, float | None] = {}
    for route in routes:
        if "Traffic_Signs" not in b2d.abilities_of(b2d.first_scenario_type(route)):
            continue
        rec = b2d.record_for(records, route.id)
        if rec is None or is_bench2drive_success(rec):
            continue
        try:
            town = load_town(route.town)
            planned = plan_route(town, route.keypoints, route.id)
        except HarnessError as exc:
            log.warning("route %s: no junction completion (%s)", route.id, exc)
            out[route.id] = None
            continue
        out[route.id] = b2d.junction_completion(
            np.asarray(town.lanes.junction_id)[planned.lane] >= 0
        )
    return out


def _routes_table(
    records: Sequence[RouteRecord],
    routes: Sequence[RouteConfig],
    smooth: Mapping[str, float | None],
) -> pa.Table:
    rows = []
    for rec in records:
        route = routes[rec.index]
        js = rec.to_json()
        stype = b2d.first_scenario_type(route)
        row: dict[str, Any] = {
            "index": rec.index, "route_id": route.id, "record_route_id": rec.route_id,
            "save_name": rec.save_name, "town": route.town, "scenario_name": rec.scenario_name,
            "scenario_type": stype, "abilities": ",".join(b2d.abilities_of(stype)),
            "weather_id": None if rec.weather_id is None else str(rec.weather_id),
            "status": rec.status, "success": is_bench2drive_success(js),
            "driving_score": rec.scores.score_composed, "route_completion_pct": rec.scores.score_route,
            "infraction_penalty": rec.scores.score_penalty, "num_infractions": rec.num_infractions,
        }  # fmt: skip
        row |= {f"n_{k}": len(rec.infractions.get(k, [])) for k in INFRACTION_KEYS}
        row |= {
            "route_length_m": rec.route_length_m, "duration_game_s": rec.duration_game_s,
            "duration_system_s": rec.duration_system_s,
            "efficiency_pct": b2d.route_efficiency_pct(js),
            "smoothness": smooth.get(rec.save_name or ""),
            "unimplemented_scenarios": ",".join(rec.unimplemented_scenarios),
        }  # fmt: skip
        rows.append(row)
    return pa.Table.from_pylist(rows) if rows else pa.table({"index": pa.array([], pa.int64())})


def write_run_tables(
    out_dir: Path,
    all_routes: Sequence[RouteConfig],
    chosen: Sequence[RouteConfig],
    records: Sequence[RouteRecord],
    fresh_infractions: Mapping[int, list[InfractionRow]],
) -> b2d.Bench2DriveMetrics:
    """Write routes.parquet, infractions.parquet and harness/bench2drive.json for ``records``
    (indices into ``chosen``, the run's routes) over the route file's ``all_routes``; returns the
    Bench2Drive metrics."""
    smooth = route_smoothness(out_dir, records)
    with atomic_output(out_dir / ROUTES_TABLE) as tmp:
        pq.write_table(_routes_table(records, chosen, smooth), tmp)
    inf_path = out_dir / INFRACTIONS_TABLE
    rows = infraction_rows(inf_path, records, [r.id for r in chosen], fresh_infractions)
    with atomic_output(inf_path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=INFRACTION_SCHEMA), tmp)
    recs = [r.to_json() for r in records]
    metrics = b2d.bench2drive_metrics(
        all_routes, recs, smooth, junction_completions(all_routes, recs)
    )
    atomic_write_json(out_dir / HARNESS_DIR / SUMMARY_FILE, metrics.to_json(), indent=2)
    return metrics
