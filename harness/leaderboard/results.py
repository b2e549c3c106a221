"""``results.json`` in the leaderboard statistics-manager format (the layout Bench2Drive's tools
read), written atomically after every route, and loaded again to resume an interrupted run.

Layout::

    {"_checkpoint": {"global_record": {...}, "progress": [next_index, total_routes],
                     "records": [{index, route_id, scenario_name, weather_id, save_name, status,
                                  num_infractions, infractions{12 keys}, scores, meta, town_name}]},
     "entry_status": "Started" | "Finished" | "Crashed" | "Rejected",
     "eligible": bool, "sensors": [sensor icon names], "values": [...], "labels": [...]}

``progress[0]`` is the index of the next route to run (the leaderboard's route indexer index
after a route); resuming keeps the records and restarts there. ``eligible`` follows the entry
status (the statistics manager's table) and is false for a privileged agent's run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.io import atomic_write_json
from harness.leaderboard.outcome import (
    ENTRY_STATUS_FOR_FAILURE,
    FAILURE_SIMULATION,
    INFRACTION_KEYS,
    STATUS_STARTED,
    RouteOutcome,
)
from harness.leaderboard.statistics import (
    LEADERBOARD_2_0,
    ROUND_DIGITS,
    PenaltyTable,
    RouteScores,
    global_record,
    route_scores,
)

ELIGIBLE = {
    "Started": False,
    "Finished": True,
    "Rejected": False,
    "Crashed": False,
    "Invalid": False,
}
LABELS = (
    "Avg. driving score", "Avg. route completion", "Avg. infraction penalty",
    "Collisions with pedestrians", "Collisions with vehicles", "Collisions with layout",
    "Red lights infractions", "Stop sign infractions", "Off-road infractions", "Route deviations",
    "Route timeouts", "Agent blocked", "Yield emergency vehicles infractions", "Scenario timeouts",
    "Min speed infractions",
)  # fmt: skip
_VALUE_KEYS = (
    "collisions_pedestrian", "collisions_vehicle", "collisions_layout", "red_light",
    "stop_infraction", "outside_route_lanes", "route_dev", "route_timeout", "vehicle_blocked",
    "yield_emergency_vehicle_infractions", "scenario_timeouts", "min_speed_infractions",
)  # fmt: skip


# the record meta key listing the scenario types a route ran without (no implementation)
UNIMPLEMENTED_KEY = "unimplemented_scenarios"


class ResultsFileError(HarnessError):
    """A results.json that cannot be read or does not belong to the current run."""


def leaderboard_route_id(route_id: str, repetition: int = 0) -> str:
    """'RouteScenario_<id>_rep<r>', the record route_id Bench2Drive's tools parse."""
    return f"RouteScenario_{route_id}_rep{repetition}"


@dataclass(frozen=True)
class RouteRecord:
    """One entry of ``_checkpoint.records``; lengths [m] and durations [s] as the leaderboard
    rounds them (3 decimals). Bench2Drive's extra keys are None when not given.
    ``unimplemented_scenarios``: the types of the route's scenarios that have no implementation
    (the route ran without them), written as ``meta.unimplemented_scenarios`` only when there is
    one (a key Bench2Drive's tools do not read; records without one keep the leaderboard layout)."""

    index: int
    route_id: str
    status: str
    num_infractions: int
    infractions: dict[str, list[str]]
    scores: RouteScores
    route_length_m: float
    duration_game_s: float
    duration_system_s: float
    scenario_name: str | None = None
    town_name: str | None = None
    weather_id: str | None = None
    save_name: str | None = None
    unimplemented_scenarios: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "route_length": round(self.route_length_m, ROUND_DIGITS),
            "duration_game": round(self.duration_game_s, ROUND_DIGITS),
            "duration_system": round(self.duration_system_s, ROUND_DIGITS),
        }
        if self.unimplemented_scenarios:
            meta[UNIMPLEMENTED_KEY] = list(self.unimplemented_scenarios)
        return {
            "index": self.index,
            "route_id": self.route_id,
            "scenario_name": self.scenario_name,
            "weather_id": self.weather_id,
            "save_name": self.save_name,
            "status": self.status,
            "num_infractions": self.num_infractions,
            "infractions": {k: list(self.infractions.get(k, [])) for k in INFRACTION_KEYS},
            "scores": self.scores.to_json(),
            "meta": meta,
            "town_name": self.town_name,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> RouteRecord:
        s, m = d.get("scores", {}), d.get("meta", {})
        infractions = {
            k: [str(x) for x in d.get("infractions", {}).get(k, [])] for k in INFRACTION_KEYS
        }
        return RouteRecord(
            index=int(d["index"]), route_id=str(d["route_id"]), status=str(d["status"]),
            num_infractions=int(d.get("num_infractions", sum(len(v) for v in infractions.values()))),
            infractions=infractions,
            scores=RouteScores(float(s.get("score_route", 0)), float(s.get("score_penalty", 0)), float(s.get("score_composed", 0))),
            route_length_m=float(m.get("route_length", 0)), duration_game_s=float(m.get("duration_game", 0)),
            duration_system_s=float(m.get("duration_system", 0)), scenario_name=d.get("scenario_name"),
            town_name=d.get("town_name"), save_name=d.get("save_name"),
            weather_id=None if d.get("weather_id") is None else str(d["weather_id"]),
            unimplemented_scenarios=tuple(str(t) for t in m.get(UNIMPLEMENTED_KEY, ())),
        )  # fmt: skip


def record_from_outcome(
    outcome: RouteOutcome,
    index: int,
    *,
    route_id: str | None = None,
    table: PenaltyTable = LEADERBOARD_2_0,
    duration_system_s: float = 0.0,
    scenario_name: str | None = None,
    town_name: str | None = None,
    weather_id: str | None = None,
    save_name: str | None = None,
    unimplemented_scenarios: tuple[str, ...] = (),
) -> RouteRecord:
    """The record of route ``index`` from its criteria outcome, scored with ``table``."""
    return RouteRecord(
        index=index, route_id=route_id if route_id is not None else outcome.route_id,
        status=outcome.status, num_infractions=outcome.num_infractions,
        infractions=outcome.messages(), scores=route_scores(outcome, table),
        route_length_m=outcome.route_length_m, duration_game_s=outcome.duration_game_s,
        duration_system_s=duration_system_s, scenario_name=scenario_name, town_name=town_name,
        weather_id=weather_id, save_name=save_name,
        unimplemented_scenarios=unimplemented_scenarios,
    )  # fmt: skip


def entry_status_of(records: Sequence[RouteRecord], finished: bool) -> str:
    """'Started' until every route ran; then 'Finished', or 'Crashed' / 'Rejected' when a route
    failed with a simulation crash / invalid sensors (the statistics manager's rule)."""
    if not finished:
        return "Started"
    status = "Finished"
    for rec in records:
        for failure, entry in ENTRY_STATUS_FOR_FAILURE.items():
            if failure in rec.status and entry != "Started":
                status = entry
    return status


@dataclass
class ResultsFile:
    """The results of one evaluation run over ``total_routes`` routes, kept in memory and
    rewritten atomically by :meth:`write` (call :meth:`commit` after every route)."""

    path: Path
    total_routes: int
    records: list[RouteRecord] = field(default_factory=list)
    next_index: int = 0
    sensors: list[str] = field(default_factory=list)
    privileged: bool = False  # a privileged agent's run is never eligible

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.total_routes < 1:
            raise ConfigError(f"a results file needs total_routes >= 1, got {self.total_routes}")

    def put(self, record: RouteRecord) -> None:
        """Add a record at its index, replacing a previous one there (a re-run route)."""
        if record.index > len(self.records):
            raise ResultsFileError(
                f"record index {record.index} skips past the {len(self.records)} stored records; "
                "routes must be recorded in order"
            )
        if record.index == len(self.records):
            self.records.append(record)
        else:
            self.records[record.index] = record

    def commit(self, record: RouteRecord) -> None:
        """Store a finished route's record, advance progress past it, and write the file."""
        self.put(record)
        self.next_index = max(self.next_index, record.index + 1)
        self.write()

    @property
    def finished(self) -> bool:
        return self.next_index >= self.total_routes and len(self.records) >= self.total_routes

    def to_json(self) -> dict[str, Any]:
        recs = [r.to_json() for r in self.records]
        glob = global_record(recs, self.total_routes)
        entry = entry_status_of(self.records, self.finished)
        scores = glob["scores_mean"]
        values = [
            str(scores["score_composed"]),
            str(scores["score_route"]),
            str(scores["score_penalty"]),
        ]
        values += [str(glob["infractions"][k]) for k in _VALUE_KEYS]
        return {
            "_checkpoint": {
                "global_record": glob,
                "progress": [self.next_index, self.total_routes],
                "records": recs,
            },
            "entry_status": entry,
            "eligible": ELIGIBLE[entry] and not self.privileged,
            "sensors": list(self.sensors),
            "values": values,
            "labels": list(LABELS),
        }

    def write(self) -> None:
        """Write atomically (temp file beside it, then os.replace)."""
        atomic_write_json(self.path, self.to_json(), indent=2)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResultsFile:
        """Read a results.json written by the harness or the leaderboard (for resuming)."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            ckpt = data["_checkpoint"]
            next_index, total = (int(v) for v in ckpt["progress"])
            records = [RouteRecord.from_json(r) for r in ckpt.get("records", [])]
        except FileNotFoundError:
            raise ResultsFileError(
                f"{p} does not exist; start a new run instead of resuming"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ResultsFileError(
                f"{p} is not a readable leaderboard results file ({type(exc).__name__}: {exc}); "
                "move it away to start a new run"
            ) from exc
        records.sort(key=lambda r: r.index)
        out = cls(
            p, total, next_index=next_index, sensors=[str(s) for s in data.get("sensors", [])]
        )
        for rec in records:
            out.put(rec)
        return out


def resume_plan(
    results: ResultsFile, route_ids: Sequence[str], rerun_crashed: bool = False
) -> list[int]:
    """Indices of the routes still to run: from progress[0] on (the leaderboard's resume), plus,
    with ``rerun_crashed``, earlier routes whose record says the simulation crashed or never
    finished. ``route_ids`` are the record route_ids the run writes, in route-file order; they
    must match the stored records, else the file belongs to another run."""
    if results.total_routes != len(route_ids):
        raise ResultsFileError(
            f"{results.path} was written for {results.total_routes} routes but this run has "
            f"{len(route_ids)}; use another output folder or delete the file"
        )
    for rec in results.records:
        if rec.route_id != route_ids[rec.index]:
            raise ResultsFileError(
                f"{results.path} has route '{rec.route_id}' at index {rec.index} where this run has "
                f"'{route_ids[rec.index]}'; use another output folder or delete the file"
            )
    todo = list(range(min(results.next_index, len(route_ids)), len(route_ids)))
    if rerun_crashed:
        again = [
            r.index for r in results.records
            if r.index < results.next_index and (r.status == STATUS_STARTED or FAILURE_SIMULATION in r.status)
        ]  # fmt: skip
        todo = sorted(set(todo) | set(again))
    return todo
