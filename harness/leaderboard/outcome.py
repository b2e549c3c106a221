"""Typed results of one route: infraction records under the leaderboard's keys, the route status
strings of the leaderboard's statistics manager, and the ``RouteOutcome`` the criteria produce.

Status strings (leaderboard 2.0 / Bench2Drive ``statistics_manager.py``): ``Perfect`` (route
completed, no infraction of any kind), ``Completed`` (completed with infractions, min-speed ones
included), else ``Failed`` or ``Failed - <reason>`` with the reasons below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class InfractionKey(StrEnum):
    """Keys of a route record's ``infractions`` dict, in the statistics manager's order."""

    COLLISIONS_LAYOUT = "collisions_layout"
    COLLISIONS_PEDESTRIAN = "collisions_pedestrian"
    COLLISIONS_VEHICLE = "collisions_vehicle"
    RED_LIGHT = "red_light"
    STOP_INFRACTION = "stop_infraction"
    OUTSIDE_ROUTE_LANES = "outside_route_lanes"
    MIN_SPEED_INFRACTIONS = "min_speed_infractions"
    YIELD_EMERGENCY_VEHICLE_INFRACTIONS = "yield_emergency_vehicle_infractions"
    SCENARIO_TIMEOUTS = "scenario_timeouts"
    ROUTE_DEV = "route_dev"
    VEHICLE_BLOCKED = "vehicle_blocked"
    ROUTE_TIMEOUT = "route_timeout"


INFRACTION_KEYS: tuple[str, ...] = tuple(k.value for k in InfractionKey)

STATUS_PERFECT = "Perfect"
STATUS_COMPLETED = "Completed"
STATUS_FAILED = "Failed"
STATUS_STARTED = "Started"  # a record whose route never finished (crash mid-route)

FAILURE_DEVIATED = "Agent deviated from the route"
FAILURE_BLOCKED = "Agent got blocked"
FAILURE_TIMED_OUT = "Agent timed out"
FAILURE_SIMULATION = "Simulation crashed"
FAILURE_SENSORS = "Agent's sensors were invalid"
FAILURE_AGENT_INIT = "Agent couldn't be set up"
FAILURE_AGENT_RUNTIME = "Agent crashed"
FAILURE_TICK_RUNTIME = "TickRuntime"  # Bench2Drive: route aborted at its tick limit

ENTRY_STATUS_FOR_FAILURE: Mapping[str, str] = {
    FAILURE_SIMULATION: "Crashed",
    FAILURE_SENSORS: "Rejected",
    FAILURE_AGENT_INIT: "Started",
    FAILURE_AGENT_RUNTIME: "Started",
}
"""Entry status a route failure forces (the statistics manager's FAILURE_MESSAGES)."""


def failed_status(reason: str) -> str:
    """'Failed - <reason>', or bare 'Failed' without a reason."""
    return f"{STATUS_FAILED} - {reason}" if reason else STATUS_FAILED


def is_success_status(status: str) -> bool:
    """Whether a status string is Perfect or Completed."""
    return status in (STATUS_PERFECT, STATUS_COMPLETED)


@dataclass(frozen=True)
class Infraction:
    """One infraction: its leaderboard key, the leaderboard-style message, and where / when.

    ``x_m, y_m, z_m`` is the ego position at the infraction (the leaderboard reports the light
    or stop-sign position for those; the harness events carry the ego's). ``percentage`` is set
    for the percentage-valued criteria (outside_route_lanes, min_speed_infractions) and
    ``distance_m`` for outside_route_lanes (metres driven outside route lanes).
    """

    key: InfractionKey
    message: str
    frame: int
    time_s: float
    x_m: float
    y_m: float
    z_m: float = 0.0
    other_id: int = -1
    percentage: float | None = None
    distance_m: float | None = None


def location_text(x_m: float, y_m: float, z_m: float) -> str:
    """'(x=.., y=.., z=..)' rounded to 3 decimals as the leaderboard's messages write it."""
    return f"(x={round(x_m, 3)}, y={round(y_m, 3)}, z={round(z_m, 3)})"


@dataclass(frozen=True)
class RouteOutcome:
    """What the criteria say about one finished (or aborted) route.

    ``route_completion_pct`` is the leaderboard's score_route (100 when completed);
    ``failure`` the reason after 'Failed - ' ('' when none); ``end_reason`` why the route loop
    stopped ('completed', 'deviated', 'blocked', 'route_timeout', 'tick_limit', 'failure' or
    '' when the caller stopped it). Lengths in metres, durations in seconds.
    """

    route_id: str
    status: str
    route_completion_pct: float
    completed: bool
    failure: str
    end_reason: str
    infractions: tuple[Infraction, ...]
    route_length_m: float
    duration_game_s: float
    ticks: int
    outside_lanes_m: float = 0.0
    outside_lanes_pct: float = 0.0
    min_speed_checkpoints_pct: tuple[float, ...] = field(default_factory=tuple)

    @property
    def num_infractions(self) -> int:
        """All infraction entries, route_timeout / vehicle_blocked / min speed included."""
        return len(self.infractions)

    def by_key(self) -> dict[str, list[Infraction]]:
        """Infractions grouped under every leaderboard key (empty lists included)."""
        out: dict[str, list[Infraction]] = {k: [] for k in INFRACTION_KEYS}
        for inf in self.infractions:
            out[inf.key.value].append(inf)
        return out

    def messages(self) -> dict[str, list[str]]:
        """The record's ``infractions`` dict: key -> list of messages."""
        return {k: [i.message for i in v] for k, v in self.by_key().items()}
