"""Bench2Drive's record values and every Bench2Drive metric, computed as its own tools compute
them (``tools/merge_route_json.py``, ``ability_benchmark.py`` and
``efficiency_smoothness_benchmark.py`` of Thinklab-SJTU/Bench2Drive, branch 0.0.4), so our
numbers equal theirs on the same files.

- Record values: ``scenario_name`` is the name of the route's first scenario
  (``DynamicObjectCrossing_1``); ``weather_id`` the id (a string) of the first case of
  Bench2Drive's ``weather.xml`` whose values all equal the route's first weather keyframe (None
  when none does); ``save_name`` = ``<route_id>_<town>_<scenario_name>_<weather_id>_<stamp>``
  with ``stamp`` = local time ``%m_%d_%H_%M_%S``; ``sensors`` the leaderboard's icon names.
- Driving score: sum of score_composed / number of routes of the route file; success rate:
  routes Completed / Perfect with no infraction but min speed / number of routes (fraction, as
  ``merge_route_json.py`` writes it). Missing routes count 0.
- Efficiency [%]: over the records with min-speed infractions, the mean of each record's mean
  checkpoint percentage (values over 1000 % ignored).
- Smoothness (comfortness) [-]: per route the fraction of full 20-sample windows (2 s at 10 Hz)
  of ``metric_info.json`` in which every comfort bound holds (a route of at most 20 samples is one
  window: 1 or 0); the mean over routes. The arithmetic is the tool's, including its units: the
  yaw-rate signal is ``angular_velocity[2]`` in deg/s compared with the rad/s bounds, and the
  "yaw acceleration" is the smoothed yaw rate, not its derivative (docs/DIFFERENCES.md).
- Multi-ability: per ability the share of its routes (those with a record) that succeeded; a
  failed Traffic_Signs route still counts when it completed more than its junction completion
  (first junction point + 8 of the 1 m route, over the route's points) without a red-light or
  stop infraction; mean over the five abilities.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import savgol_filter

from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.statistics import is_bench2drive_success
from harness.routes.model import RouteConfig, Weather

ABILITIES: dict[str, tuple[str, ...]] = {
    "Overtaking": (
        "Accident", "AccidentTwoWays", "ConstructionObstacle", "ConstructionObstacleTwoWays",
        "HazardAtSideLaneTwoWays", "HazardAtSideLane", "ParkedObstacleTwoWays", "ParkedObstacle",
        "VehicleOpensDoorTwoWays",
    ),
    "Merging": (
        "CrossingBicycleFlow", "EnterActorFlow", "HighwayExit", "InterurbanActorFlow",
        "HighwayCutIn", "InterurbanAdvancedActorFlow", "MergerIntoSlowTrafficV2",
        "MergerIntoSlowTraffic", "NonSignalizedJunctionLeftTurn",
        "NonSignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurnEnterFlow", "ParkingExit",
        "SequentialLaneChange", "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
        "SignalizedJunctionLeftTurnEnterFlow",
    ),
    "Emergency_Brake": (
        "BlockedIntersection", "DynamicObjectCrossing", "HardBreakRoute",
        "OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight", "ParkingCutIn",
        "PedestrianCrossing", "ParkingCrossingPedestrian", "StaticCutIn", "VehicleTurningRoute",
        "VehicleTurningRoutePedestrian", "ControlLoss",
    ),
    "Give_Way": ("InvadingTurn", "YieldToEmergencyVehicle"),
    "Traffic_Signs": (
        "BlockedIntersection", "OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight",
        "PedestrianCrossing", "VehicleTurningRoute", "VehicleTurningRoutePedestrian",
        "EnterActorFlow", "CrossingBicycleFlow", "NonSignalizedJunctionLeftTurn",
        "NonSignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurnEnterFlow",
        "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
        "SignalizedJunctionLeftTurnEnterFlow", "T_Junction", "VanillaNonSignalizedTurn",
        "VanillaSignalizedTurnEncounterGreenLight", "VanillaSignalizedTurnEncounterRedLight",
        "VanillaNonSignalizedTurnEncounterStopsign",
    ),
}  # fmt: skip
"""Ability -> scenario types (ability_benchmark.py's table; a type may serve two abilities)."""

SENSOR_ICONS: dict[str, str] = {
    "sensor.camera.rgb": "carla_camera",
    "sensor.lidar.ray_cast": "carla_lidar",
    "sensor.other.radar": "carla_radar",
    "sensor.other.gnss": "carla_gnss",
    "sensor.other.imu": "carla_imu",
    "sensor.opendrive_map": "carla_opendrive_map",
    "sensor.speedometer": "carla_speedometer",
}
"""Sensor type -> the icon name the leaderboard writes into results.json's ``sensors``."""

STAMP_FORMAT = "%m_%d_%H_%M_%S"  # save_name time stamp (leaderboard_evaluator.py)
WEATHERS_CSV = Path(__file__).with_name("data") / "bench2drive_weathers.csv"
BASE_WEATHER = {"sun_altitude_angle": 70.0, "cloudiness": 50.0}  # route_parser's base weather
"""Weather values a keyframe does not set (every other parameter defaults to 0)."""

# efficiency_smoothness_benchmark.py
COMFORT_WINDOW_SAMPLES = 20  # [-] samples per comfort window (2 s at 10 Hz)
METRIC_INFO_DT_S = 0.1  # [s] sample spacing the tool assumes (10 Hz)
SAVGOL_WINDOW = 7  # [-] Savitzky-Golay window length (shortened to the samples available)
SAVGOL_ORDER = 2  # [-] Savitzky-Golay polynomial order
MAX_EFFICIENCY_PCT = 1000.0  # [%] min-speed percentages above this are ignored
MIN_LON_ACCEL = -4.05  # [m/s2]
MAX_LON_ACCEL = 2.40  # [m/s2]
MAX_ABS_LAT_ACCEL = 4.89  # [m/s2]
MAX_ABS_MAG_JERK = 8.37  # [m/s3]
MAX_ABS_LON_JERK = 4.13  # [m/s3]
MAX_ABS_YAW_ACCEL = 1.93  # [rad/s2] bound the tool compares with the smoothed yaw rate [deg/s]
MAX_ABS_YAW_RATE = 0.95  # [rad/s] bound the tool compares with the yaw rate in deg/s
JUNCTION_MARGIN_POINTS = 8  # [-] route points past the first junction point (ability_benchmark)

_PERCENT = re.compile(r"\b\d+\.?\d*%")
METRIC_INFO_KEYS = (
    "acceleration", "angular_velocity", "forward_vector", "right_vector", "location", "rotation",
)  # fmt: skip


# ---------------------------------------------------------------------- record values
def run_stamp(now: datetime | None = None) -> str:
    """The save_name time stamp ('12_06_20_45_03', local time) of ``now`` (default: now)."""
    return (now or datetime.now()).strftime(STAMP_FORMAT)


def first_scenario_name(route: RouteConfig) -> str | None:
    """The record's scenario_name: the name of the route's first scenario (None without one)."""
    return route.scenarios[0].name if route.scenarios else None


def first_scenario_type(route: RouteConfig) -> str | None:
    """The scenario type ability_benchmark.py files the route under (its first scenario's)."""
    return route.scenarios[0].type if route.scenarios else None


@cache
def _weather_cases() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """(weather_id, ((parameter, value text), ...)) per case of Bench2Drive's weather.xml."""
    with WEATHERS_CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    return tuple(
        (r["weather_id"], tuple((k, v) for k, v in r.items() if k != "weather_id")) for r in rows
    )


def _as_float32_text(value: float) -> str:
    """str() of a carla.WeatherParameters attribute: the value stored as float32, read back."""
    return str(float(np.float32(value)))


def weather_id(weathers: Sequence[Weather]) -> str | None:
    """Bench2Drive's weather_id of a route: the first weather.xml case all of whose values equal
    the route's first keyframe (by route_percentage), compared as text the way
    leaderboard_evaluator.get_weather_id does; None when no case matches."""
    first = min(weathers, key=lambda w: w.route_percentage) if weathers else None
    values = dict(BASE_WEATHER)
    if first is not None:
        values.update(first.values)
    for case_id, params in _weather_cases():
        if all(_as_float32_text(values.get(k, 0.0)) == v for k, v in params):
            return case_id
    return None


def save_name(route_name: str, route: RouteConfig, stamp: str) -> str:
    """'<route_name>_<town>_<scenario_name>_<weather_id>_<stamp>', route_name being the record's
    'RouteScenario_<id>_rep<r>' (leaderboard_evaluator.py builds it so, None as 'None')."""
    return f"{route_name}_{route.town}_{first_scenario_name(route)}_{weather_id(route.weathers)}_{stamp}"


def sensor_icons(sensor_types: Iterable[str]) -> list[str]:
    """results.json's ``sensors``: each sensor type's icon name (types without one unchanged)."""
    return [SENSOR_ICONS.get(t, t) for t in sensor_types]


# ---------------------------------------------------------------------- DS, SR, efficiency
def driving_score(records: Sequence[Mapping[str, Any]], total_routes: int) -> float:
    """Sum of score_composed / ``total_routes`` (the route file's route count)."""
    return sum(float(r["scores"]["score_composed"]) for r in records) / total_routes


def success_rate(records: Sequence[Mapping[str, Any]], total_routes: int) -> float:
    """Successful records / ``total_routes``, a fraction as merge_route_json.py writes it."""
    return sum(1 for r in records if is_bench2drive_success(r)) / total_routes


def route_efficiency_pct(record: Mapping[str, Any]) -> float | None:
    """Mean percentage of a record's min-speed infraction messages (the first 'N%' of each),
    those over 1000 % left out; None without any."""
    values = []
    for msg in record["infractions"].get(InfractionKey.MIN_SPEED_INFRACTIONS, []):
        m = _PERCENT.search(msg)
        if m is None:
            continue
        v = float(m.group().rstrip("%"))
        if v <= MAX_EFFICIENCY_PCT:
            values.append(v)
    return sum(values) / len(values) if values else None


def driving_efficiency_pct(records: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean of the records' efficiencies over the records that have one (None if none has)."""
    per_route = [e for e in map(route_efficiency_pct, records) if e is not None]
    return sum(per_route) / len(per_route) if per_route else None


# ---------------------------------------------------------------------- smoothness
@dataclass(frozen=True)
class MetricInfo:
    """One route's ``metric_info.json`` samples, (S, 3) each, CARLA world frame (left-handed,
    y to the right): acceleration [m/s2], angular_velocity [deg/s], unit forward / right
    vectors, location [m], rotation (roll, pitch, yaw) [deg]; ``steps`` (S,) the file's keys."""

    steps: NDArray[np.int64]
    acceleration: NDArray[np.float64]
    angular_velocity: NDArray[np.float64]
    forward_vector: NDArray[np.float64]
    right_vector: NDArray[np.float64]
    location: NDArray[np.float64]
    rotation: NDArray[np.float64]

    def __post_init__(self) -> None:
        s = self.steps.shape[0]
        for k in METRIC_INFO_KEYS:
            if getattr(self, k).shape != (s, 3):
                raise ValueError(f"MetricInfo.{k} must be ({s}, 3), got {getattr(self, k).shape}")

    def __len__(self) -> int:
        return int(self.steps.shape[0])

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        """{step: {key: [3 floats]}}, the layout Bench2Drive's agents dump."""
        arrays = {k: getattr(self, k).tolist() for k in METRIC_INFO_KEYS}
        return {str(int(s)): {k: arrays[k][i] for k in METRIC_INFO_KEYS}
                for i, s in enumerate(self.steps)}  # fmt: skip

    @staticmethod
    def from_json(data: Mapping[str, Mapping[str, Sequence[float]]]) -> MetricInfo:
        """The samples of a metric_info.json mapping, in the file's order."""
        rows = list(data.items())
        arrays = {
            k: np.array([v[k] for _, v in rows], dtype=np.float64).reshape(len(rows), 3)
            for k in METRIC_INFO_KEYS
        }
        steps = np.array([int(s) for s, _ in rows], dtype=np.int64)
        return MetricInfo(steps=steps, **arrays)


def _savgol(x: NDArray[np.float64], window: int, deriv: int = 0) -> NDArray[np.float64]:
    out: NDArray[np.float64] = savgol_filter(
        x, window_length=window, polyorder=SAVGOL_ORDER, deriv=deriv, delta=METRIC_INFO_DT_S,
        axis=-1,
    )  # fmt: skip
    return out


def _within(x: NDArray[np.float64], low: float, high: float) -> NDArray[np.bool_]:
    return np.all((x > low) & (x < high), axis=-1)


def comfortable(info_windows: Mapping[str, NDArray[np.float64]]) -> NDArray[np.bool_]:
    """(W,) whether every comfort bound holds in each window; ``info_windows`` maps
    acceleration, angular_velocity, forward_vector, right_vector to (W, L, 3) arrays
    (efficiency_smoothness_benchmark.compute_comfort_metric over W windows of L samples)."""
    acc = info_windows["acceleration"][..., :2]
    window = min(SAVGOL_WINDOW, acc.shape[-2])
    if window <= SAVGOL_ORDER:
        raise ValueError(f"comfort needs more than {SAVGOL_ORDER} samples, got {acc.shape[-2]}")
    yaw_rate = info_windows["angular_velocity"][..., 2]
    two_pi = 2.0 * math.pi
    adjust = np.zeros_like(yaw_rate)
    adjust[..., 1:] = np.cumsum(np.round(np.diff(yaw_rate, axis=-1) / two_pi), axis=-1)
    yaw_rate = yaw_rate - two_pi * adjust
    lon = np.einsum("...ij,...ij->...i", acc, info_windows["forward_vector"][..., :2])
    lat = np.einsum("...ij,...ij->...i", acc, info_windows["right_vector"][..., :2])
    mag = np.hypot(acc[..., 0], acc[..., 1])
    yaw_acc = _savgol(yaw_rate, window)
    yaw_rate = _savgol(yaw_rate, window)
    lon, lat, mag = _savgol(lon, window), _savgol(lat, window), _savgol(mag, window)
    mag_jerk = _savgol(mag, window, deriv=1)
    lon_jerk = _savgol(lon, window, deriv=1)
    ok: NDArray[np.bool_] = (
        _within(lon, MIN_LON_ACCEL, MAX_LON_ACCEL)
        & _within(lat, -MAX_ABS_LAT_ACCEL, MAX_ABS_LAT_ACCEL)
        & _within(mag_jerk, -MAX_ABS_MAG_JERK, MAX_ABS_MAG_JERK)
        & _within(lon_jerk, -MAX_ABS_LON_JERK, MAX_ABS_LON_JERK)
        & _within(yaw_acc, -MAX_ABS_YAW_ACCEL, MAX_ABS_YAW_ACCEL)
        & _within(yaw_rate, -MAX_ABS_YAW_RATE, MAX_ABS_YAW_RATE)
    )
    return ok


def route_smoothness(info: MetricInfo) -> float | None:
    """Share of the route's full 20-sample windows that are comfortable (a route of at most 20
    samples: 1.0 or 0.0 for the whole route); None below 3 samples, where the tool fails."""
    n = len(info)
    if n <= SAVGOL_ORDER:
        return None
    keys = ("acceleration", "angular_velocity", "forward_vector", "right_vector")
    if n <= COMFORT_WINDOW_SAMPLES:
        return float(comfortable({k: getattr(info, k)[None] for k in keys})[0])
    w = n // COMFORT_WINDOW_SAMPLES
    cut = w * COMFORT_WINDOW_SAMPLES
    windows = {k: getattr(info, k)[:cut].reshape(w, COMFORT_WINDOW_SAMPLES, 3) for k in keys}
    return float(np.mean(comfortable(windows)))


def driving_smoothness(per_route: Iterable[float | None]) -> float | None:
    """Mean of the routes' smoothness over the routes that have one."""
    values = [v for v in per_route if v is not None]
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------------- multi-ability
def abilities_of(scenario_type: str | None) -> tuple[str, ...]:
    """The abilities a scenario type counts towards (in ABILITIES order)."""
    return tuple(a for a, types in ABILITIES.items() if scenario_type in types)


def junction_completion(in_junction: NDArray[np.bool_]) -> float | None:
    """(index of the first junction point, 1-based, + 8) / number of route points, for a route
    sampled at 1 m; None when the route has no junction point (the tool raises there)."""
    hits = np.flatnonzero(in_junction)
    if hits.size == 0:
        return None
    return float(hits[0] + 1 + JUNCTION_MARGIN_POINTS) / len(in_junction)


def record_for(records: Sequence[Mapping[str, Any]], route_id: str) -> Mapping[str, Any] | None:
    """The first record whose 'RouteScenario_<id>_rep<r>' names ``route_id``."""
    for r in records:
        parts = str(r["route_id"]).split("_")
        if len(parts) > 1 and parts[1] == route_id:
            return r
    return None


def ability_success(
    record: Mapping[str, Any], scenario_type: str | None, junction_pct: float | None
) -> dict[str, bool]:
    """Ability -> whether this route counts as a success for it: a Bench2Drive success, or for
    Traffic_Signs also a route whose completion passed ``junction_pct`` (a fraction) without a
    red-light or stop infraction."""
    ok = is_bench2drive_success(record)
    out = {a: ok for a in abilities_of(scenario_type)}
    if "Traffic_Signs" in out and not ok and junction_pct is not None:
        inf = record["infractions"]
        out["Traffic_Signs"] = (
            float(record["scores"]["score_route"]) / 100.0 > junction_pct
            and not inf.get(InfractionKey.STOP_INFRACTION)
            and not inf.get(InfractionKey.RED_LIGHT)
        )
    return out


@dataclass(frozen=True)
class AbilityResult:
    """Per ability [successes, routes with a record]; the rates (None for an ability without
    routes), their mean over the abilities that have one, and the routes without a record
    ('crashed' in ability_benchmark.py) as (scenario type, route id)."""

    counts: dict[str, tuple[int, int]]
    missing: tuple[tuple[str | None, str], ...] = field(default_factory=tuple)

    @property
    def rates(self) -> dict[str, float | None]:
        return {a: (s / n if n else None) for a, (s, n) in self.counts.items()}

    @property
    def mean(self) -> float | None:
        vals = [v for v in self.rates.values() if v is not None]
        return sum(vals) / len(vals) if vals else None


def multi_ability(
    routes: Sequence[RouteConfig],
    records: Sequence[Mapping[str, Any]],
    junction_pct: Mapping[str, float | None] | None = None,
) -> AbilityResult:
    """ability_benchmark.py over the route file's ``routes``: each route with a record counts
    towards its first scenario's abilities; ``junction_pct`` gives route id -> junction
    completion (fraction) for failed Traffic_Signs routes (missing: no second chance)."""
    counts = {a: [0, 0] for a in ABILITIES}
    missing: list[tuple[str | None, str]] = []
    for route in routes:
        stype = first_scenario_type(route)
        rec = record_for(records, route.id)
        if rec is None:
            missing.append((stype, route.id))
            continue
        jc = (junction_pct or {}).get(route.id)
        for ability, ok in ability_success(rec, stype, jc).items():
            counts[ability][1] += 1
            counts[ability][0] += int(ok)
    return AbilityResult({a: (s, n) for a, (s, n) in counts.items()}, tuple(missing))


@dataclass(frozen=True)
class TypeResult:
    """One scenario type (the routes' first scenario): ``routes`` of the route file, ``records``
    among them with a record, ``score_sum`` of their score_composed and ``successes``. DS and SR
    count routes without a record as 0, as the totals over the route file do."""

    routes: int
    records: int
    score_sum: float
    successes: int

    @property
    def driving_score(self) -> float:
        return self.score_sum / self.routes if self.routes else 0.0

    @property
    def success_rate(self) -> float:
        return self.successes / self.routes if self.routes else 0.0


def per_type(
    routes: Sequence[RouteConfig], records: Sequence[Mapping[str, Any]]
) -> dict[str, TypeResult]:
    """Scenario type -> its routes' DS / SR (not a Bench2Drive tool number: ours, per type, by
    the same rules as the totals); routes without a scenario under 'none'; sorted by type."""
    acc: dict[str, list[float]] = {}
    for route in routes:
        key = first_scenario_type(route) or "none"
        row = acc.setdefault(key, [0, 0, 0.0, 0])
        row[0] += 1
        rec = record_for(records, route.id)
        if rec is not None:
            row[1] += 1
            row[2] += float(rec["scores"]["score_composed"])
            row[3] += int(is_bench2drive_success(rec))
    return {
        k: TypeResult(int(v[0]), int(v[1]), float(v[2]), int(v[3])) for k, v in sorted(acc.items())
    }


# ---------------------------------------------------------------------- summary
@dataclass(frozen=True)
class Bench2DriveMetrics:
    """Every Bench2Drive number of a run: DS and SR (fraction) over the route file's
    ``total_routes``, efficiency [%], smoothness [-] (None where no route gives one), abilities."""

    driving_score: float
    success_rate: float
    num_records: int
    total_routes: int
    efficiency_pct: float | None
    smoothness: float | None
    abilities: AbilityResult
    scenario_types: dict[str, TypeResult] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "driving_score": self.driving_score,
            "success_rate": self.success_rate,
            "eval_num": self.num_records,
            "total_routes": self.total_routes,
            "driving_efficiency": self.efficiency_pct,
            "driving_smoothness": self.smoothness,
            "ability": {**self.abilities.rates, "mean": self.abilities.mean},
            "ability_counts": {a: list(c) for a, c in self.abilities.counts.items()},
            "missing_routes": [list(m) for m in self.abilities.missing],
            "scenario_types": {
                k: {
                    "routes": t.routes, "eval_num": t.records, "score_sum": t.score_sum,
                    "successes": t.successes, "driving_score": t.driving_score,
                    "success_rate": t.success_rate,
                }
                for k, t in self.scenario_types.items()
            },  # fmt: skip
        }


def bench2drive_metrics(
    routes: Sequence[RouteConfig],
    records: Sequence[Mapping[str, Any]],
    smoothness: Mapping[str, float | None],
    junction_pct: Mapping[str, float | None] | None = None,
) -> Bench2DriveMetrics:
    """All metrics of ``records`` over the route file's ``routes``; ``smoothness`` maps a record's
    save_name to its route smoothness."""
    total = len(routes)
    if total < 1:
        raise ValueError("the route file must hold at least one route")
    return Bench2DriveMetrics(
        driving_score=driving_score(records, total),
        success_rate=success_rate(records, total),
        num_records=len(records),
        total_routes=total,
        efficiency_pct=driving_efficiency_pct(records),
        smoothness=driving_smoothness(smoothness.get(str(r.get("save_name"))) for r in records),
        abilities=multi_ability(routes, records, junction_pct),
        scenario_types=per_type(routes, records),
    )
