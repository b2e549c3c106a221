"""Leaderboard scores: per-route route completion (RC), infraction penalty (IP) and driving score
DS = RC x IP; the global record (means over all routes of the route file, missing routes
counting 0; infractions per km driven); Bench2Drive's driving score and success rate.

Penalty tables (statistics_manager.py of each release):

- leaderboard 2.0 (default): each collision with a pedestrian x0.5, vehicle x0.6, layout /
  static x0.65, red light x0.7, stop sign x0.8, scenario timeout x0.7, failure to yield to an
  emergency vehicle x0.7; outside route lanes x(1 - pct/100); each min-speed checkpoint
  x(1 - 0.3 (1 - pct/100)).
- leaderboard 2.1 (branch leaderboard-2.1 of carla-simulator/leaderboard): additive weights,
  IP = (1 - outside-lanes pct/100) / (1 + sum of weights), each collision with a pedestrian 1.0,
  vehicle 0.7, layout / static 0.6, red light 0.4, stop sign 0.25, scenario timeout 0.4, failure
  to yield 0.4, each min-speed checkpoint 0.4 x (1 - pct/100).
- Bench2Drive: the 2.0 table with the min-speed penalty disabled ('unused' in its code; the
  infractions are still listed and counted).
- leaderboard 1.0: pedestrian 0.5, vehicle 0.6, layout 0.65, red light 0.7, stop 0.8, outside
  route lanes x(1 - pct/100); no min-speed, scenario-timeout or yield infractions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.leaderboard.outcome import (
    INFRACTION_KEYS,
    STATUS_PERFECT,
    InfractionKey,
    RouteOutcome,
    is_success_status,
)

ROUND_DIGITS = 3  # decimals of lengths, durations, std devs and per-km values (leaderboard)
ROUND_DIGITS_SCORE = 6  # decimals of scores (leaderboard)
MIN_KM_DRIVEN = 0.001  # [km] floor of the driven distance in per-km rates (leaderboard)
_OUTSIDE_METERS = re.compile(r"for about ([-+0-9.eE]+) meters")


@dataclass(frozen=True)
class PenaltyTable:
    """Penalty factors per infraction. Percentage criteria: outside route lanes multiplies by
    1 - (1 - outside_lanes_base) x pct/100; min speed by 1 - (1 - min_speed_base) x (1 - pct/100),
    or not at all when ``min_speed_base`` is None.

    With ``additive`` (leaderboard 2.1) the count-based fields are weights instead: IP =
    (1 - outside pct/100) / (1 + sum of the weights of every infraction), a min-speed checkpoint
    weighing ``min_speed_base`` x (1 - pct/100)."""

    name: str = "leaderboard-2.0"
    additive: bool = False
    collisions_pedestrian: float = 0.5
    collisions_vehicle: float = 0.6
    collisions_layout: float = 0.65
    red_light: float = 0.7
    stop_infraction: float = 0.8
    scenario_timeouts: float = 0.7
    yield_emergency_vehicle_infractions: float = 0.7
    outside_lanes_base: float = 0.0
    min_speed_base: float | None = 0.7

    def fixed(self) -> dict[str, float]:
        """Key -> factor of the count-based infractions."""
        return {
            InfractionKey.COLLISIONS_PEDESTRIAN: self.collisions_pedestrian,
            InfractionKey.COLLISIONS_VEHICLE: self.collisions_vehicle,
            InfractionKey.COLLISIONS_LAYOUT: self.collisions_layout,
            InfractionKey.RED_LIGHT: self.red_light,
            InfractionKey.STOP_INFRACTION: self.stop_infraction,
            InfractionKey.SCENARIO_TIMEOUTS: self.scenario_timeouts,
            InfractionKey.YIELD_EMERGENCY_VEHICLE_INFRACTIONS: self.yield_emergency_vehicle_infractions,
        }


LEADERBOARD_2_0 = PenaltyTable()
LEADERBOARD_2_1 = PenaltyTable(
    name="leaderboard-2.1", additive=True, collisions_pedestrian=1.0, collisions_vehicle=0.7,
    collisions_layout=0.6, red_light=0.4, stop_infraction=0.25, scenario_timeouts=0.4,
    yield_emergency_vehicle_infractions=0.4, min_speed_base=0.4,
)  # fmt: skip
BENCH2DRIVE = replace(LEADERBOARD_2_0, name="bench2drive", min_speed_base=None)
LEADERBOARD_1_0 = replace(
    LEADERBOARD_2_0, name="leaderboard-1.0", scenario_timeouts=1.0,
    yield_emergency_vehicle_infractions=1.0, min_speed_base=None,
)  # fmt: skip
PENALTY_TABLES: dict[str, PenaltyTable] = {
    t.name: t for t in (LEADERBOARD_2_0, LEADERBOARD_2_1, BENCH2DRIVE, LEADERBOARD_1_0)
}


def penalty_factor(
    key: str, percentage: float | None, table: PenaltyTable = LEADERBOARD_2_0
) -> float:
    """The factor one infraction multiplies the route's penalty by (1.0 for keys without one:
    route_dev, vehicle_blocked, route_timeout). Additive tables: 1 / (1 + its weight), its IP
    alone."""
    if table.additive and key != InfractionKey.OUTSIDE_ROUTE_LANES:
        return 1.0 / (1.0 + penalty_weight(key, percentage, table))
    if key == InfractionKey.OUTSIDE_ROUTE_LANES:
        return 1.0 - (1.0 - table.outside_lanes_base) * float(percentage or 0.0) / 100.0
    if key == InfractionKey.MIN_SPEED_INFRACTIONS:
        if table.min_speed_base is None:
            return 1.0
        pct = 100.0 if percentage is None else float(percentage)
        return 1.0 - (1.0 - table.min_speed_base) * (1.0 - pct / 100.0)
    return table.fixed().get(key, 1.0)


def penalty_weight(key: str, percentage: float | None, table: PenaltyTable) -> float:
    """An additive table's weight of one infraction (0 for keys without one; min speed
    weighs min_speed_base x (1 - pct/100))."""
    if key == InfractionKey.MIN_SPEED_INFRACTIONS:
        if table.min_speed_base is None:
            return 0.0
        pct = 100.0 if percentage is None else float(percentage)
        return table.min_speed_base * (1.0 - pct / 100.0)
    return table.fixed().get(key, 0.0)


def infraction_penalty(
    items: Iterable[tuple[str, float | None]], table: PenaltyTable = LEADERBOARD_2_0
) -> float:
    """IP of (key, percentage) infractions (1.0 for none): the product of their factors, or for
    an additive table (1 - outside pct/100) / (1 + sum of their weights)."""
    if not table.additive:
        ip = 1.0
        for key, pct in items:
            ip *= penalty_factor(key, pct, table)
        return ip
    lanes, weights = 1.0, 0.0
    for key, pct in items:
        if key == InfractionKey.OUTSIDE_ROUTE_LANES:
            lanes *= penalty_factor(key, pct, table)
        else:
            weights += penalty_weight(key, pct, table)
    return lanes / (1.0 + weights)


@dataclass(frozen=True)
class RouteScores:
    """A record's ``scores``: RC [%], IP [-], DS = RC x IP (rounded to 6 decimals)."""

    score_route: float
    score_penalty: float
    score_composed: float

    def to_json(self) -> dict[str, float]:
        return {
            "score_route": self.score_route,
            "score_penalty": self.score_penalty,
            "score_composed": self.score_composed,
        }


def route_scores(outcome: RouteOutcome, table: PenaltyTable = LEADERBOARD_2_0) -> RouteScores:
    """Scores of one route outcome."""
    rc = outcome.route_completion_pct
    ip = infraction_penalty(((i.key.value, i.percentage) for i in outcome.infractions), table)
    return RouteScores(
        round(rc, ROUND_DIGITS_SCORE),
        round(ip, ROUND_DIGITS_SCORE),
        round(max(rc * ip, 0.0), ROUND_DIGITS_SCORE),
    )


def outside_lanes_km(infractions: Mapping[str, Sequence[str]]) -> float:
    """Kilometres outside route lanes of a record, read from its outside_route_lanes message
    ('... for about <m> meters ...') as the leaderboard's global statistics do."""
    msgs = infractions.get(InfractionKey.OUTSIDE_ROUTE_LANES, [])
    if not msgs:
        return 0.0
    m = _OUTSIDE_METERS.search(msgs[0])
    return float(m.group(1)) / 1000.0 if m else 0.0


def global_record(records: Sequence[Mapping[str, Any]], total_routes: int) -> dict[str, Any]:
    """The leaderboard's global record over route records (JSON dicts) of a run of
    ``total_routes`` routes: score means divide by ``total_routes`` (missing routes count 0),
    standard deviations over the records (divided by total_routes - 1, 0 for one route);
    infractions per km driven (km = sum of route_length x RC), except outside_route_lanes,
    which is the total km driven outside route lanes; status Perfect / Completed / Failed with
    the failed routes listed in meta.exceptions."""
    if total_routes < 1:
        raise ValueError("total_routes must be >= 1")
    keys = ("score_composed", "score_route", "score_penalty")
    means = {k: 0.0 for k in keys}
    meta: dict[str, Any] = {
        "total_length": 0.0,
        "duration_game": 0.0,
        "duration_system": 0.0,
        "exceptions": [],
    }
    status = STATUS_PERFECT
    for rec in records:
        for k in keys:
            means[k] += float(rec["scores"][k]) / total_routes
        for k in ("duration_game", "duration_system"):
            meta[k] += float(rec["meta"].get(k, 0.0))
        meta["total_length"] += float(rec["meta"].get("route_length", 0.0))
        result = (
            "Failed"
            if "Failed" in rec["status"] or not is_success_status(rec["status"])
            else rec["status"]
        )
        if result == "Failed":
            meta["exceptions"].append([rec["route_id"], rec["index"], rec["status"]])
            status = "Failed"
        elif status == STATUS_PERFECT and result != STATUS_PERFECT:
            status = result
    means = {k: round(v, ROUND_DIGITS_SCORE) for k, v in means.items()}
    std = {k: 0.0 for k in keys}
    if total_routes > 1:
        for k in keys:
            ss = sum((float(r["scores"][k]) - means[k]) ** 2 for r in records)
            std[k] = round(math.sqrt(ss / (total_routes - 1)), ROUND_DIGITS)
    km = sum(
        float(r["meta"].get("route_length", 0.0))
        / 1000.0
        * float(r["scores"]["score_route"])
        / 100.0
        for r in records
    )
    km = max(km, MIN_KM_DRIVEN)
    infractions: dict[str, float] = {}
    for key in INFRACTION_KEYS:
        if key == InfractionKey.OUTSIDE_ROUTE_LANES:
            value = sum(outside_lanes_km(r["infractions"]) for r in records)
        else:
            value = sum(len(r["infractions"].get(key, [])) for r in records) / km
        infractions[key] = round(value, ROUND_DIGITS)
    for k in ("total_length", "duration_game", "duration_system"):
        meta[k] = round(meta[k], ROUND_DIGITS)
    return {
        "index": -1, "route_id": -1, "status": status, "infractions": infractions,
        "scores_mean": means, "scores_std_dev": std, "meta": meta,
    }  # fmt: skip


def is_bench2drive_success(record: Mapping[str, Any]) -> bool:
    """Bench2Drive success: Completed / Perfect with no infraction other than min speed."""
    if not is_success_status(str(record["status"])):
        return False
    return all(
        not msgs
        for key, msgs in record["infractions"].items()
        if key != InfractionKey.MIN_SPEED_INFRACTIONS
    )


@dataclass(frozen=True)
class Bench2DriveSummary:
    """Bench2Drive's headline numbers over a route file of ``total_routes`` routes:
    driving score = sum of score_composed / total_routes; success rate [%] = successful routes /
    total_routes x 100 (missing routes count as failures)."""

    driving_score: float
    success_rate_pct: float
    num_success: int
    total_routes: int


def bench2drive_summary(
    records: Sequence[Mapping[str, Any]], total_routes: int
) -> Bench2DriveSummary:
    """Bench2Drive driving score and success rate (e.g. total_routes = 220)."""
    if total_routes < 1:
        raise ValueError("total_routes must be >= 1")
    ds = sum(float(r["scores"]["score_composed"]) for r in records) / total_routes
    n = sum(1 for r in records if is_bench2drive_success(r))
    return Bench2DriveSummary(ds, n / total_routes * 100.0, n, total_routes)
