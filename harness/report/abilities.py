"""Bench2Drive's multi-ability success rates, from route records and the route file.

The scenario type -> ability table and the counting follow Bench2Drive's
``tools/ability_benchmark.py`` (branch 0.0.4): a route belongs to the abilities listing the type
of its first scenario; it counts as a success when its status is Completed / Perfect with no
infraction other than min speed; a Traffic_Signs route is counted a second time in that ability,
as a success when its completion passed the route's first junction (+8 points of the 1 m route)
without red-light or stop infractions. The table lives here until the Bench2Drive metrics module
owns it (then import it from there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.leaderboard.statistics import is_bench2drive_success

ABILITIES: dict[str, frozenset[str]] = {
    "Merging": frozenset({
        "CrossingBicycleFlow", "EnterActorFlow", "HighwayExit", "InterurbanActorFlow",
        "HighwayCutIn", "InterurbanAdvancedActorFlow", "MergerIntoSlowTrafficV2",
        "MergerIntoSlowTraffic", "NonSignalizedJunctionLeftTurn", "NonSignalizedJunctionRightTurn",
        "NonSignalizedJunctionLeftTurnEnterFlow", "ParkingExit", "SequentialLaneChange",
        "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
        "SignalizedJunctionLeftTurnEnterFlow",
    }),
    "Overtaking": frozenset({
        "Accident", "AccidentTwoWays", "ConstructionObstacle", "ConstructionObstacleTwoWays",
        "HazardAtSideLaneTwoWays", "HazardAtSideLane", "ParkedObstacleTwoWays", "ParkedObstacle",
        "VehicleOpensDoorTwoWays",
    }),
    "Emergency_Brake": frozenset({
        "BlockedIntersection", "DynamicObjectCrossing", "HardBreakRoute",
        "OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight", "ParkingCutIn",
        "PedestrianCrossing", "ParkingCrossingPedestrian", "StaticCutIn", "VehicleTurningRoute",
        "VehicleTurningRoutePedestrian", "ControlLoss",
    }),
    "Give_Way": frozenset({"InvadingTurn", "YieldToEmergencyVehicle"}),
    "Traffic_Signs": frozenset({
        "BlockedIntersection", "OppositeVehicleTakingPriority", "OppositeVehicleRunningRedLight",
        "PedestrianCrossing", "VehicleTurningRoute", "VehicleTurningRoutePedestrian",
        "EnterActorFlow", "CrossingBicycleFlow", "NonSignalizedJunctionLeftTurn",
        "NonSignalizedJunctionRightTurn", "NonSignalizedJunctionLeftTurnEnterFlow",
        "SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
        "SignalizedJunctionLeftTurnEnterFlow", "T_Junction", "VanillaNonSignalizedTurn",
        "VanillaSignalizedTurnEncounterGreenLight", "VanillaSignalizedTurnEncounterRedLight",
        "VanillaNonSignalizedTurnEncounterStopsign",
    }),
}  # fmt: skip
"""Bench2Drive's five abilities -> the scenario types that test them."""

TRAFFIC_SIGNS = "Traffic_Signs"
JUNCTION_MARGIN_POINTS = 8  # Bench2Drive: "+8 to ensure the ego pass the trigger volume"


@dataclass(frozen=True)
class AbilityRoute:
    """What the ability count needs of one route: its record, its first scenario's type, and
    the fraction [0, 1] of its 1 m route up to the first junction point + the margin (None when
    unknown: the second Traffic_Signs count is then left out). Routes without a record are left
    out, as Bench2Drive lists them as crashed instead of counting them."""

    record: Mapping[str, Any]
    scenario_type: str | None
    junction_fraction: float | None = None


@dataclass(frozen=True)
class AbilityScore:
    """Successes and routes counted for one ability (rate None when no route tests it)."""

    ability: str
    successes: int
    routes: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.routes if self.routes else None


def scenario_type_of(name: str | None) -> str | None:
    """The scenario type a record's ``scenario_name`` names: the first '+'-joined part without
    Bench2Drive's '_<n>' suffix ('DynamicObjectCrossing_1' -> 'DynamicObjectCrossing')."""
    if not name:
        return None
    first = str(name).split("+")[0]
    return re.sub(r"_\d+$", "", first)


def _passed_junction(record: Mapping[str, Any], fraction: float) -> bool:
    infr = record.get("infractions", {})
    completion = float(record["scores"]["score_route"]) / 100.0
    return completion > fraction and not infr.get("stop_infraction") and not infr.get("red_light")


def ability_scores(routes: Sequence[AbilityRoute]) -> dict[str, AbilityScore]:
    """Per ability: successes / routes as Bench2Drive's ability benchmark counts them."""
    count = {a: [0, 0] for a in ABILITIES}
    for r in routes:
        if r.scenario_type is None:
            continue
        ok = is_bench2drive_success(r.record)
        for ability, types in ABILITIES.items():
            if r.scenario_type in types:
                count[ability][1] += 1
                count[ability][0] += int(ok)
        if r.scenario_type in ABILITIES[TRAFFIC_SIGNS] and r.junction_fraction is not None:
            count[TRAFFIC_SIGNS][1] += 1
            if _passed_junction(r.record, r.junction_fraction):
                count[TRAFFIC_SIGNS][0] += 1
    return {a: AbilityScore(a, s, n) for a, (s, n) in count.items()}


def mean_ability_rate(scores: Mapping[str, AbilityScore]) -> float | None:
    """Mean of the five rates (Bench2Drive divides by 5); None when an ability has no route."""
    rates = [s.rate for s in scores.values()]
    if any(r is None for r in rates):
        return None
    return sum(r for r in rates if r is not None) / len(ABILITIES)
