"""``RouteCriteria``: all route criteria of one route behind one ``update(state)`` per tick, the
end-of-route decision (``done``) and the leaderboard-style summary (``RouteOutcome``).

A route ends (as the leaderboard's route scenario does) when it is completed, the agent deviates
from the route, gets blocked or times out, or - with a tick limit (Bench2Drive: 4000) - when the
limit is reached; the runner may also end it with a failure (simulation / agent crash) through
:meth:`RouteCriteria.fail`. Scenarios report scenario timeouts and failures to yield to an
emergency vehicle through :meth:`RouteCriteria.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.errors import ConfigError
from harness.leaderboard.criteria import (
    BLOCKED_TIME_LEADERBOARD_S,
    DEFAULT_SPEED_LIMIT_MPS,
    MIN_SPEED_CHECKPOINTS,
    ActorBlocked,
    Collision,
    InRoute,
    LaneCheck,
    MinimumSpeed,
    OutsideRouteLanes,
    RouteCompletion,
    RouteGeometry,
    RouteTimeout,
    RouteTracker,
    TickInput,
)
from harness.leaderboard.outcome import (
    FAILURE_BLOCKED,
    FAILURE_DEVIATED,
    FAILURE_TICK_RUNTIME,
    FAILURE_TIMED_OUT,
    STATUS_COMPLETED,
    STATUS_PERFECT,
    Infraction,
    InfractionKey,
    RouteOutcome,
    failed_status,
)
from harness.leaderboard.traffic_rules import RunningRedLight, RunningStop, SignalGeometry
from harness.world.state import WorldState


class ReportKind(StrEnum):
    """Infractions that scenarios detect themselves and report."""

    SCENARIO_TIMEOUT = "scenario_timeout"
    YIELD_EMERGENCY_VEHICLE = "yield_emergency_vehicle"


_REPORTED = {
    ReportKind.SCENARIO_TIMEOUT: (InfractionKey.SCENARIO_TIMEOUTS, "Agent timed out a scenario"),
    ReportKind.YIELD_EMERGENCY_VEHICLE: (
        InfractionKey.YIELD_EMERGENCY_VEHICLE_INFRACTIONS,
        "Agent failed to yield to an emergency vehicle",
    ),
}


@dataclass(frozen=True)
class CriteriaConfig:
    """Settings of the route criteria. Defaults are the leaderboard 2.0's; use
    :meth:`bench2drive` for Bench2Drive's (60 s blocked, 4000-tick limit)."""

    blocked_time_s: float = BLOCKED_TIME_LEADERBOARD_S  # [s] ActorBlockedTest max_time
    tick_limit: int | None = None  # [ticks] abort the route after this many (None: no limit)
    min_speed_checkpoints: int = MIN_SPEED_CHECKPOINTS  # [-] MinimumSpeedRouteTest checkpoints
    speed_limit_mps: float = DEFAULT_SPEED_LIMIT_MPS  # [m/s] for the route timeout
    route_deviation_m: float = 30.0  # [m] InRouteTest offroad_max

    def __post_init__(self) -> None:
        if self.blocked_time_s <= 0 or self.speed_limit_mps <= 0 or self.route_deviation_m <= 0:
            raise ConfigError("blocked_time_s, speed_limit_mps and route_deviation_m must be > 0")
        if self.tick_limit is not None and self.tick_limit < 1:
            raise ConfigError(f"tick_limit must be >= 1 or None, got {self.tick_limit}")
        if self.min_speed_checkpoints < 1:
            raise ConfigError("min_speed_checkpoints must be >= 1")

    @staticmethod
    def bench2drive() -> CriteriaConfig:
        """Bench2Drive: blocked after 60 s, route aborted after 4000 ticks."""
        return CriteriaConfig(blocked_time_s=60.0, tick_limit=4000)


def _always_on_lane(_x: float, _y: float, _yaw: float) -> tuple[bool, bool]:
    """Lane check for routes without a town (tests, synthetic routes): never outside."""
    return False, False


class RouteCriteria:
    """Every route criterion of one route; feed :meth:`update` each tick's WorldState."""

    def __init__(
        self,
        route: RouteGeometry,
        config: CriteriaConfig | None = None,
        lane_check: LaneCheck | None = None,
        route_id: str = "",
        signals: SignalGeometry | None = None,
    ) -> None:
        """``lane_check`` and ``signals`` come from the route's town
        (:func:`~harness.leaderboard.criteria.town_lane_check`, ``SignalGeometry.from_town``);
        without them nobody is ever outside its lanes and no light or stop sign is checked."""
        self.route, self.route_id = route, route_id
        self.config = cfg = config or CriteriaConfig()
        self.tracker = RouteTracker(route)
        self.completion = RouteCompletion(route)
        self.outside_lanes = OutsideRouteLanes(route, lane_check or _always_on_lane)
        self.collision = Collision()
        self.red_light = RunningRedLight(signals)
        self.stop = RunningStop(signals)
        self.min_speed = MinimumSpeed(route, cfg.min_speed_checkpoints)
        self.in_route = InRoute(route, cfg.route_deviation_m)
        self.blocked = ActorBlocked(cfg.blocked_time_s)
        self.timeout = RouteTimeout(route, cfg.speed_limit_mps)
        self.reported: list[Infraction] = []
        self.ticks = 0
        self.failure = ""
        self._first_time_s: float | None = None
        self._last: TickInput | None = None

    def update(self, state: WorldState) -> None:
        """Advance every criterion by one tick (ignored once the route is done)."""
        if self.done[0]:
            return
        a = state.actors
        index = self.tracker.update(float(a.x[0]), float(a.y[0]))
        tick = TickInput.from_state(state, index)
        if self._first_time_s is None:
            self._first_time_s = tick.time_s
        self.ticks += 1
        self._last = tick
        for crit in (
            self.collision, self.min_speed, self.in_route, self.completion, self.outside_lanes,
            self.blocked, self.timeout,
        ):  # fmt: skip
            crit.update(tick)
        self.red_light.update(state)
        self.stop.update(state)

    def report(self, kind: ReportKind | str, message: str | None = None) -> Infraction:
        """Record a scenario-detected infraction at the ego's last position (a scenario
        timeout or a failure to yield to an emergency vehicle); returns the record."""
        kind = ReportKind(kind)
        key, default = _REPORTED[kind]
        t = self._last
        inf = Infraction(
            key, message or default,
            t.frame if t else 0, t.time_s if t else 0.0, t.x if t else 0.0, t.y if t else 0.0,
            t.z if t else 0.0,
        )  # fmt: skip
        self.reported.append(inf)
        return inf

    def fail(self, reason: str) -> None:
        """End the route with an external failure (e.g. outcome.FAILURE_SIMULATION)."""
        self.failure = reason

    def set_blocked_test_active(self, active: bool) -> None:
        """Pause / resume the blocked test (scenarios where waiting is the right behaviour)."""
        self.blocked.set_active(active, self._last.time_s if self._last else 0.0)

    def set_wrong_direction_active(self, active: bool) -> None:
        """Pause / resume the wrong-direction part of the outside-route-lanes test (scenarios
        that require driving in the opposite lane, e.g. passing an obstacle)."""
        self.outside_lanes.wrong_direction_active = active

    @property
    def done(self) -> tuple[bool, str]:
        """(whether the route is over, why: completed / deviated / blocked / route_timeout /
        tick_limit / failure)."""
        if self.completion.completed:
            return True, "completed"
        if self.failure:
            return True, "failure"
        if self.in_route.failed:
            return True, "deviated"
        if self.blocked.failed:
            return True, "blocked"
        if self.timeout.failed:
            return True, "route_timeout"
        limit = self.config.tick_limit
        if limit is not None and self.ticks >= limit:
            return True, "tick_limit"
        return False, ""

    def _failure_reason(self) -> str:
        """The leaderboard's failure message: external failure, overridden by a route timeout,
        then by deviation / blocked (the criteria events), then the tick limit."""
        reason = self.failure
        if self.timeout.failed:
            reason = FAILURE_TIMED_OUT
        if self.in_route.failed:
            reason = FAILURE_DEVIATED
        if self.blocked.failed:
            reason = FAILURE_BLOCKED
        if not reason and self.done[1] == "tick_limit":
            reason = FAILURE_TICK_RUNTIME
        return reason

    def infractions(self) -> tuple[Infraction, ...]:
        """Every infraction so far, ordered by time."""
        items: list[Infraction] = [
            *self.collision.items, *self.red_light.items, *self.stop.items,
            *self.outside_lanes.infractions(), *self.min_speed.items,
            *self.reported, *self.in_route.items, *self.blocked.items,
        ]  # fmt: skip
        if self.timeout.failed and self._last is not None:
            t = self._last
            items.append(
                Infraction(
                    InfractionKey.ROUTE_TIMEOUT, "Route timeout.", t.frame, t.time_s, t.x, t.y, t.z
                )
            )
        return tuple(sorted(items, key=lambda i: (i.time_s, i.frame)))

    def summary(self, duration_game_s: float | None = None) -> RouteOutcome:
        """The route's outcome (closing the running min-speed checkpoint; safe to call again).
        ``duration_game_s`` defaults to the simulated time between the first and last tick."""
        self.min_speed.terminate()
        infractions = self.infractions()
        completed = self.completion.completed
        if completed:
            status = STATUS_COMPLETED if infractions else STATUS_PERFECT
            failure = ""
        else:
            failure = self._failure_reason()
            status = failed_status(failure)
        if duration_game_s is None:
            t0 = self._first_time_s
            duration_game_s = 0.0 if t0 is None or self._last is None else self._last.time_s - t0
        return RouteOutcome(
            route_id=self.route_id,
            status=status,
            route_completion_pct=self.completion.value_pct,
            completed=completed,
            failure=failure,
            end_reason=self.done[1],
            infractions=infractions,
            route_length_m=self.route.length_m,
            duration_game_s=float(duration_game_s),
            ticks=self.ticks,
            outside_lanes_m=self.outside_lanes.wrong_m,
            outside_lanes_pct=self.outside_lanes.percentage,
            min_speed_checkpoints_pct=tuple(self.min_speed.values),
        )
