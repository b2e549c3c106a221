"""Route criteria with the leaderboard's semantics (ScenarioRunner's atomic_criteria.py and the
leaderboard's RouteTimeoutBehavior), each a small class fed one shared :class:`TickInput` per
tick and producing :class:`~harness.leaderboard.outcome.Infraction` records. The red-light and
stop-sign tests, which read the town's stop lines, live in :mod:`harness.leaderboard.traffic_rules`.

Progress along the route is the leaderboard's: the furthest dense route point (about 1 m apart)
that the ego has passed, found by a forward window search (a point is passed when the
ego-minus-point vector has a positive dot product with the route heading there); it never goes
back. One tracker with RouteCompletionTest's window (2 points ahead) serves every criterion; the
leaderboard gives OutsideRouteLanesTest and RouteTimeoutBehavior a window of 3, which only
differs for an ego moving more than 2 route points (~2 m) per 0.05 s tick (40 m/s).
:class:`~harness.leaderboard.route_criteria.RouteCriteria` assembles them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.geometry import wrap_angle
from harness.leaderboard.outcome import Infraction, InfractionKey, location_text
from harness.world.state import EGO_INDEX, ActorKind, ActorRole, Event, EventKind, WorldState

COMPLETION_PCT = 99.0  # [%] RouteCompletionTest: completed above this ...
COMPLETION_DIST_M = 10.0  # [m] ... and closer than this to the route's last point
PROGRESS_WINDOW = 2  # [points] RouteCompletionTest.WINDOWS_SIZE
COLLISION_RADIUS_M = 5.0  # [m] CollisionTest: hits within this distance of the last count once
COLLISION_ID_TIME_S = 5.0  # [s] CollisionTest: hits with the same actor within this count once
COLLISION_MIN_SPEED_MPS = 0.1  # [m/s] CollisionTest: a standing ego is not at fault
IN_ROUTE_MAX_M = 30.0  # [m] InRouteTest offroad_max: farther ends the route
IN_ROUTE_WINDOW = 5  # [points] InRouteTest.WINDOWS_SIZE
IN_ROUTE_MAX_PCT = 30.0  # [%] InRouteTest: driving this share of the route beyond offroad_max/2
OUTSIDE_ALLOWED_M = 0.5  # [m] OutsideRouteLanesTest.ALLOWED_OUT_DISTANCE beyond half a lane
WRONG_DIRECTION_DEG = 120.0  # [deg] OutsideRouteLanesTest.MAX_VEHICLE_ANGLE
BLOCKED_SPEED_MPS = 0.1  # [m/s] ActorBlockedTest min_speed
BLOCKED_TIME_LEADERBOARD_S = 180.0  # [s] leaderboard 2.0 ActorBlockedTest max_time
BLOCKED_TIME_BENCH2DRIVE_S = 60.0  # [s] Bench2Drive's setting
MIN_SPEED_CHECKPOINTS = 4  # [-] MinimumSpeedRouteTest checkpoints in the leaderboard's routes
MIN_SPEED_FINAL_FRACTION = 0.95  # [-] the last checkpoint is scored if the ego got this far
TIMEOUT_MIN_S = 300.0  # [s] RouteTimeoutBehavior.MIN_TIMEOUT
TIMEOUT_ROUTE_PCT = 10.0  # [%] RouteTimeoutBehavior: progress is credited at this % of the limit
DEFAULT_SPEED_LIMIT_MPS = 30.0 / 3.6  # [m/s] CARLA's urban default lane speed limit (30 km/h)
TICK_LIMIT_BENCH2DRIVE = 4000  # [ticks] Bench2Drive aborts a route after 4000 ticks (200 s)

VEHICLE_KINDS = (ActorKind.VEHICLE, ActorKind.BICYCLE, ActorKind.EMERGENCY)
COLLISION_EVENT_KEY = {
    EventKind.COLLISION_VEHICLE: InfractionKey.COLLISIONS_VEHICLE,
    EventKind.COLLISION_PEDESTRIAN: InfractionKey.COLLISIONS_PEDESTRIAN,
    EventKind.COLLISION_STATIC: InfractionKey.COLLISIONS_LAYOUT,
}
_TYPE_NAME = {  # CARLA-like type_id prefixes for collision messages
    ActorKind.VEHICLE: "vehicle",
    ActorKind.BICYCLE: "vehicle.bicycle",
    ActorKind.EMERGENCY: "vehicle.emergency",
    ActorKind.PEDESTRIAN: "walker.pedestrian",
    ActorKind.STATIC: "static.prop",
}


@dataclass(frozen=True, eq=False)
class RouteGeometry:
    """The dense route the criteria measure against: xy (M, 2) [m], yaw_rad (M,) route heading,
    s_m (M,) cumulative length [m] (M >= 2)."""

    xy: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]
    s_m: NDArray[np.float64]

    def __post_init__(self) -> None:
        m = self.xy.shape[0]
        if self.xy.shape != (m, 2) or self.yaw_rad.shape != (m,) or self.s_m.shape != (m,) or m < 2:
            raise ValueError("RouteGeometry needs xy (M, 2), yaw_rad (M,), s_m (M,) with M >= 2")

    @staticmethod
    def from_arrays(xy: ArrayLike, yaw_rad: ArrayLike | None = None) -> RouteGeometry:
        """From route points (M, 2); headings from the point spacing when not given."""
        p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        seg = np.diff(p, axis=0)
        if yaw_rad is None:
            d = np.concatenate([seg, seg[-1:]], axis=0)
            yaw = np.arctan2(d[:, 1], d[:, 0])
        else:
            yaw = np.asarray(yaw_rad, dtype=np.float64).reshape(-1)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
        return RouteGeometry(p, yaw, s)

    @staticmethod
    def from_planned(planned: object) -> RouteGeometry:
        """From a ``harness.routes.interpolate.PlannedRoute`` (xy, yaw_rad)."""
        return RouteGeometry.from_arrays(getattr(planned, "xy"), getattr(planned, "yaw_rad"))  # noqa: B009

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    @property
    def percent(self) -> NDArray[np.float64]:
        """(M,) share of the route length up to each point [%]."""
        return self.s_m / max(self.length_m, 1e-9) * 100.0


@dataclass
class RouteTracker:
    """Monotone progress: the furthest passed route point within ``window`` points ahead."""

    route: RouteGeometry
    window: int = PROGRESS_WINDOW
    index: int = 0

    def update(self, x: float, y: float) -> int:
        lo, hi = self.index, min(self.index + self.window + 1, self.route.xy.shape[0])
        rel = np.array([x, y]) - self.route.xy[lo:hi]
        yaw = self.route.yaw_rad[lo:hi]
        passed = np.flatnonzero(rel[:, 0] * np.cos(yaw) + rel[:, 1] * np.sin(yaw) > 0.0)
        if passed.size:
            self.index = lo + int(passed[-1])
        return self.index


@dataclass(frozen=True, eq=False)
class TickInput:
    """What every criterion reads of one tick: the state, the ego (row 0) pose [m, rad] and
    speed [m/s], the tick's events, the route progress index, and the mean |speed| of the
    background vehicles [m/s] (None when there are none)."""

    state: WorldState
    x: float
    y: float
    z: float
    yaw_rad: float
    speed_mps: float
    route_index: int
    background_speed_mps: float | None

    @property
    def frame(self) -> int:
        return self.state.frame

    @property
    def time_s(self) -> float:
        return self.state.time_s

    @property
    def events(self) -> tuple[Event, ...]:
        return self.state.events

    @staticmethod
    def from_state(state: WorldState, route_index: int) -> TickInput:
        a, i = state.actors, EGO_INDEX
        bg = a.valid & (a.role == ActorRole.BACKGROUND) & np.isin(a.kind, VEHICLE_KINDS)
        bg[i] = False
        mean_bg = float(np.mean(np.abs(a.speed[bg]))) if bg.any() else None
        return TickInput(
            state, float(a.x[i]), float(a.y[i]), float(a.z[i]), float(a.yaw[i]),
            abs(float(a.speed[i])), route_index, mean_bg,
        )  # fmt: skip

    def infraction(self, key: InfractionKey, message: str, **extra: object) -> Infraction:
        """An infraction at the ego's position this tick."""
        return Infraction(key, message, self.frame, self.time_s, self.x, self.y, self.z, **extra)  # type: ignore[arg-type]

    @property
    def where(self) -> str:
        return location_text(self.x, self.y, self.z)


class RouteCompletion:
    """RouteCompletionTest: RC = share of the route up to the furthest passed point, rounded to
    0.01 %; completed (RC = 100) once RC > 99 % and the ego is within 10 m of the last point.
    (REFERENCE.md writes '>= 99 %'; ScenarioRunner's code compares strictly.)"""

    def __init__(self, route: RouteGeometry) -> None:
        self.route = route
        self.percent = route.percent
        self.value_pct = 0.0
        self.completed = False

    def update(self, tick: TickInput) -> None:
        if self.completed:
            return
        self.value_pct = round(float(self.percent[tick.route_index]), 2)
        end = self.route.xy[-1]
        if (
            self.value_pct > COMPLETION_PCT
            and math.hypot(tick.x - end[0], tick.y - end[1]) < COMPLETION_DIST_M
        ):
            self.completed = True
            self.value_pct = 100.0


LaneCheck = Callable[[float, float, float], tuple[bool, bool]]
"""(x_m, y_m, yaw_rad) -> (outside driving lanes, in a lane of the opposite direction)."""


def town_lane_check(town: object, allowed_out_m: float = OUTSIDE_ALLOWED_M) -> LaneCheck:
    """OutsideRouteLanesTest's two tests on a harness Town's driving lanes.

    Outside: the ego centre lies farther than half the lane width + ``allowed_out_m`` from the
    nearest driving-lane centerline and is not on a parking lane (the leaderboard accepts
    parking lanes too; asked of the town's map only when the driving-lane test fails). Wrong direction: outside junctions, the nearest lane's heading
    differs from the ego's by more than 120 deg (the leaderboard tracks lane changes with a
    flip on > 150 deg jumps; a stateless heading test gives the same answer on a lane of the
    opposite direction). Same-direction lanes off the route are not penalised, as in the
    leaderboard.
    """
    lanes = getattr(town, "lanes")  # noqa: B009
    on_parking = getattr(town, "on_parking_lane", None)

    def check(x: float, y: float, yaw_rad: float) -> tuple[bool, bool]:
        proj = lanes.project(np.array([[x, y]]))
        lane, s = int(proj.lane[0]), float(proj.s_m[0])
        sl = lanes.lane_points(lane)
        width = float(np.interp(s, lanes.s_m[sl], lanes.width_m[sl]))
        outside = float(proj.distance_m[0]) > width / 2.0 + allowed_out_m
        if outside and on_parking is not None:
            outside = not on_parking(x, y, allowed_out_m)
        _, lane_yaw = lanes.position(lane, s)
        err = abs(float(wrap_angle(yaw_rad - float(lane_yaw))))
        wrong = int(lanes.junction_id[lane]) < 0 and err > math.radians(WRONG_DIRECTION_DEG)
        return outside, wrong

    return check


class OutsideRouteLanes:
    """OutsideRouteLanesTest: the share [%] of the route distance progressed while outside the
    driving lanes or in an opposite-direction lane (wrong-direction checking can be switched off
    by scenarios, as the leaderboard's AC_SwitchWrongDirectionTest). One infraction whose
    percentage is that share."""

    def __init__(self, route: RouteGeometry, lane_check: LaneCheck) -> None:
        self.route, self.lane_check = route, lane_check
        self.index = 0
        self.total_m = 0.0
        self.wrong_m = 0.0
        self.wrong_direction_active = True
        self._first: TickInput | None = None

    def update(self, tick: TickInput) -> None:
        outside, wrong = self.lane_check(tick.x, tick.y, tick.yaw_rad)
        bad = outside or (self.wrong_direction_active and wrong)
        if tick.route_index > self.index:
            d = float(self.route.s_m[tick.route_index] - self.route.s_m[self.index])
            self.total_m += d
            if bad:
                self.wrong_m += d
                if self._first is None:
                    self._first = tick
            self.index = tick.route_index

    @property
    def percentage(self) -> float:
        return self.wrong_m / self.total_m * 100.0 if self.total_m > 0.0 else 0.0

    def infractions(self) -> list[Infraction]:
        if self.wrong_m <= 0.0 or self._first is None:
            return []
        pct = self.percentage
        msg = (
            f"Agent went outside its route lanes for about {round(self.wrong_m, 3)} meters "
            f"({round(pct, 2)}% of the completed route)"
        )
        return [
            self._first.infraction(
                InfractionKey.OUTSIDE_ROUTE_LANES, msg, percentage=pct, distance_m=self.wrong_m
            )
        ]


class Collision:
    """CollisionTest over the harness's collision events: a hit counts unless the last counted
    one was with the same actor less than 5 s ago, or happened within 5 m of where the ego is
    now, or the ego moves slower than 0.1 m/s (not its fault). Layout hits (other_id -1) are not
    remembered by id."""

    def __init__(self) -> None:
        self.items: list[Infraction] = []
        self._last_id: int | None = None
        self._last_time_s = -math.inf
        self._last_xy: tuple[float, float] | None = None

    def update(self, tick: TickInput) -> None:
        if (
            self._last_xy is not None
            and math.dist((tick.x, tick.y), self._last_xy) > COLLISION_RADIUS_M
        ):
            self._last_xy = None
        if self._last_id is not None and tick.time_s - self._last_time_s > COLLISION_ID_TIME_S:
            self._last_id = None
        for ev in tick.events:
            key = COLLISION_EVENT_KEY.get(ev.kind)
            if key is None or (ev.other_id >= 0 and ev.other_id == self._last_id):
                continue
            if self._last_xy is not None or tick.speed_mps < COLLISION_MIN_SPEED_MPS:
                continue
            self._last_time_s, self._last_xy = tick.time_s, (tick.x, tick.y)
            self._last_id = ev.other_id if ev.other_id >= 0 else None
            type_id = self._type_id(tick, ev)
            msg = f"Agent collided against object with type={type_id} and id={ev.other_id} at {tick.where}"
            self.items.append(tick.infraction(key, msg, other_id=ev.other_id))

    @staticmethod
    def _type_id(tick: TickInput, ev: Event) -> str:
        a = tick.state.actors
        rows = np.flatnonzero(a.valid & (a.actor_id == ev.other_id) & (ev.other_id >= 0))
        if rows.size:
            return _TYPE_NAME[ActorKind(int(a.kind[rows[0]]))]
        return {
            EventKind.COLLISION_VEHICLE: "vehicle",
            EventKind.COLLISION_PEDESTRIAN: "walker.pedestrian",
        }.get(ev.kind, "static.layout")


class MinimumSpeed:
    """Leaderboard 2.0 MinimumSpeedRouteTest. The route is cut into ``checkpoints`` equal
    stretches; within each, every tick with background vehicles present adds the ego's |speed|
    and the mean |speed| of all background vehicles (the leaderboard averages every background
    vehicle of the world, not only nearby ones; so does this). When the ego's progress passes a
    stretch end, the checkpoint value is round(mean ego / mean traffic x 100, 2) % (100 without
    samples); below 100 % it is a min-speed infraction carrying that percentage. At the end of
    the route the running stretch is scored too if the ego got past 95 % of the route."""

    def __init__(self, route: RouteGeometry, checkpoints: int = MIN_SPEED_CHECKPOINTS) -> None:
        if checkpoints < 1:
            raise ValueError("MinimumSpeed needs at least one checkpoint")
        self.route = route
        self.checkpoint_m = route.length_m / checkpoints
        self.values: list[float] = []
        self.items: list[Infraction] = []
        self._current_m = 0.0
        self._ego_sum = self._traffic_sum = 0.0
        self._points = 0
        self._index = 0
        self._last: TickInput | None = None
        self._terminated = False

    def update(self, tick: TickInput) -> None:
        self._index, self._last = tick.route_index, tick
        reached = float(self.route.s_m[self._index])
        if reached - self._current_m > self.checkpoint_m:
            self._close(tick)
            self._current_m = reached
        if tick.background_speed_mps is not None:
            self._traffic_sum += tick.background_speed_mps
            self._ego_sum += tick.speed_mps
            self._points += 1

    def _close(self, tick: TickInput) -> None:
        value = 100.0
        if self._points > 0 and self._traffic_sum:
            value = round(
                (self._ego_sum / self._points) / (self._traffic_sum / self._points) * 100.0, 2
            )
        if value < 100.0:
            msg = f"Average speed is {value}% of the surrounding traffic's one"
            self.items.append(
                tick.infraction(InfractionKey.MIN_SPEED_INFRACTIONS, msg, percentage=value)
            )
        self.values.append(value)
        self._ego_sum = self._traffic_sum = 0.0
        self._points = 0

    def terminate(self) -> None:
        """Score the running stretch if the route is nearly done (idempotent)."""
        if self._terminated or self._last is None:
            return
        self._terminated = True
        if (
            float(self.route.s_m[self._index]) / max(self.route.length_m, 1e-9)
            > MIN_SPEED_FINAL_FRACTION
        ):
            self._close(self._last)


class InRoute:
    """InRouteTest: the nearest route point within 5 points ahead of the last one; the route is
    failed when that point is 30 m or more away, or when the route length progressed while more
    than 15 m (offroad_max / 2) away exceeds 30 % of the route."""

    def __init__(self, route: RouteGeometry, max_m: float = IN_ROUTE_MAX_M) -> None:
        self.route, self.max_m = route, max_m
        self.index = 0
        self.out_m = 0.0
        self.failed = False
        self.items: list[Infraction] = []

    def update(self, tick: TickInput) -> None:
        if self.failed:
            return
        hi = min(self.index + IN_ROUTE_WINDOW + 1, self.route.xy.shape[0])
        d = np.hypot(*(self.route.xy[self.index : hi] - (tick.x, tick.y)).T)
        # the last minimum, as the leaderboard's `<=` scan
        k = self.index + int(len(d) - 1 - np.argmin(d[::-1]))
        off = float(d[k - self.index]) >= self.max_m
        if k != self.index:
            if float(d[k - self.index]) >= self.max_m / 2.0:
                self.out_m += float(self.route.s_m[k] - self.route.s_m[self.index])
                off = off or self.out_m / max(self.route.length_m, 1e-9) * 100.0 > IN_ROUTE_MAX_PCT
            self.index = k
        if off:
            self.failed = True
            msg = f"Agent deviated from the route at {tick.where}"
            self.items.append(tick.infraction(InfractionKey.ROUTE_DEV, msg))


class ActorBlocked:
    """ActorBlockedTest: blocked once |speed| < 0.1 m/s has lasted more than ``max_time_s``
    (leaderboard 180 s, Bench2Drive 60 s). Scenarios may pause it (AC_SwitchActorBlockedTest);
    switching restarts the clock."""

    def __init__(self, max_time_s: float = BLOCKED_TIME_LEADERBOARD_S) -> None:
        self.max_time_s = max_time_s
        self.active = True
        self.failed = False
        self.items: list[Infraction] = []
        self._last_valid_s: float | None = None

    def set_active(self, active: bool, time_s: float) -> None:
        self.active, self._last_valid_s = active, time_s

    def update(self, tick: TickInput) -> None:
        if self.failed or not self.active:
            return
        if tick.speed_mps < BLOCKED_SPEED_MPS and self._last_valid_s is not None:
            if tick.time_s - self._last_valid_s > self.max_time_s:
                self.failed = True
                msg = f"Agent got blocked at {tick.where}"
                self.items.append(tick.infraction(InfractionKey.VEHICLE_BLOCKED, msg))
        else:
            self._last_valid_s = tick.time_s


class RouteTimeout:
    """RouteTimeoutBehavior: the allowed time starts at 300 s and grows, as the ego progresses,
    by the progressed distance / (10 % of the speed limit) (CARLA's ego.get_speed_limit(); here
    one ``speed_limit_mps`` for the route, 30 km/h by default: 1.2 s per metre). Timed out once
    the time since the first tick exceeds it."""

    def __init__(
        self, route: RouteGeometry, speed_limit_mps: float = DEFAULT_SPEED_LIMIT_MPS
    ) -> None:
        if speed_limit_mps <= 0.0:
            raise ValueError("speed_limit_mps must be positive")
        self.route = route
        self.credit_mps = speed_limit_mps * TIMEOUT_ROUTE_PCT / 100.0
        self.timeout_s = TIMEOUT_MIN_S
        self.index = 0
        self.failed = False
        self._start_s: float | None = None

    def update(self, tick: TickInput) -> None:
        if self._start_s is None:
            self._start_s = tick.time_s
        if tick.route_index > self.index:
            dist = float(self.route.s_m[tick.route_index] - self.route.s_m[self.index])
            self.timeout_s += dist / self.credit_mps
            self.index = tick.route_index
        if tick.time_s - self._start_s > self.timeout_s:
            self.failed = True
