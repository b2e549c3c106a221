"""Ego events per tick: collisions by the other actor's kind, leaving the drivable area, running a
red light, not stopping at a stop sign, deviating from the route.

Collisions, off-drivable and route deviation are rising edges computed from ``prev`` and ``cur``
alone (a continuing condition is one event). The red-light and stop-sign checks use the path of
the ego's front-bumper midpoint between ``prev`` and ``cur``. Only the stop-sign check needs memory
beyond ``prev``; it lives in :class:`StopSignMemory`, reset whenever ``prev`` is None. The
conditions of the state just evaluated are cached (keyed by its frame and ActorArrays object, which
``dataclasses.replace(state, events=...)`` keeps), so the next tick's ``prev`` costs nothing.

Stop-sign rule (after ScenarioRunner's RunningStopTest: speed threshold 0.1 m/s while the actor
is affected by the stop's trigger volume): the ego's box entering the stop line's stop area
(``town.signals.stop_area(i)``) starts a visit; a tick inside the area with ``|speed| <
stop_speed_mps`` completes the stop; crossing the stop line in the lane's direction without a
completed stop in the current (or last) visit is one STOP_SIGN event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import shapely
from numpy.typing import NDArray

from harness.boxes import Corner, box_corners, boxes_overlap
from harness.sim.state import (
    EGO_INDEX,
    ActorArrays,
    ActorKind,
    Event,
    EventKind,
    LightState,
    WorldState,
)

STOP_KIND_LIGHT = 0  # town.signals.stop_kind for a traffic-light stop line
STOP_KIND_SIGN = 1  # town.signals.stop_kind for a stop-sign stop line

COLLISION_KIND = {
    ActorKind.VEHICLE: EventKind.COLLISION_VEHICLE,
    ActorKind.BICYCLE: EventKind.COLLISION_VEHICLE,
    ActorKind.EMERGENCY: EventKind.COLLISION_VEHICLE,
    ActorKind.PEDESTRIAN: EventKind.COLLISION_PEDESTRIAN,
    ActorKind.STATIC: EventKind.COLLISION_STATIC,
}
_KIND_TO_EVENT = np.array(
    [COLLISION_KIND[ActorKind(k)] for k in range(len(ActorKind))], dtype=np.int64
)


class EventTown(Protocol):
    """What the detector reads of a town (``harness.maps.Town`` or a test double)."""

    @property
    def area(self) -> Any: ...  # .contains(xy (..., 2)) -> bool (...)

    @property
    def signals(
        self,
    ) -> Any: ...  # stop_a, stop_b (S, 2), stop_owner, stop_kind, stop_lane (S,), stop_area(i)

    @property
    def lanes(self) -> Any: ...  # start, count (L,), xy (P, 2), yaw_rad (P,)


@dataclass(frozen=True)
class EventConfig:
    """Thresholds of the event checks."""

    route_deviation_m: float = (
        30.0  # [m] ego centre farther than this from the route (leaderboard InRouteTest)
    )
    stop_speed_mps: float = (
        0.1  # [m/s] below this inside a stop area counts as stopped (RunningStopTest)
    )


@dataclass
class StopSignMemory:
    """Per stop line (S,): whether the ego's box was in its stop area last tick, whether it has
    stopped during the current visit, and the lowest |speed| [m/s] seen in the visit."""

    in_area: NDArray[np.bool_]
    stopped: NDArray[np.bool_]
    min_speed_mps: NDArray[np.float64]

    @staticmethod
    def fresh(n_lines: int) -> StopSignMemory:
        return StopSignMemory(
            in_area=np.zeros(n_lines, dtype=bool),
            stopped=np.zeros(n_lines, dtype=bool),
            min_speed_mps=np.full(n_lines, np.inf),
        )


@dataclass(frozen=True)
class _TickFlags:
    """Conditions of one state, for rising edges against the next."""

    colliding_ids: frozenset[int]
    outside: NDArray[np.bool_]  # (4,) which ego corners lie outside the drivable area
    deviated: bool
    ego_corners: NDArray[np.float64]  # (4, 2) [m] in harness.boxes.Corner order
    front_xy: NDArray[np.float64]  # (2,) [m] front-bumper midpoint

    @property
    def off_drivable(self) -> bool:
        return bool(self.outside.any())


_NO_FLAGS = _TickFlags(frozenset(), np.zeros(4, dtype=bool), False, np.zeros((4, 2)), np.zeros(2))


def _front_midpoint(state: WorldState) -> NDArray[np.float64]:
    """(2,) front-bumper midpoint of the ego [m]."""
    a, i = state.actors, EGO_INDEX
    half = 0.5 * a.length[i]
    return np.array([a.x[i] + half * np.cos(a.yaw[i]), a.y[i] + half * np.sin(a.yaw[i])])


class EventDetector:
    """Ego (row 0) events of one episode. Construct once per episode; call :meth:`detect` every
    tick with the previous and current states (``prev`` None on the first tick)."""

    def __init__(
        self,
        town: EventTown,
        route_xy: NDArray[np.float64] | None = None,
        config: EventConfig | None = None,
    ) -> None:
        self.town = town
        self.config = config or EventConfig()
        self.route_xy = (
            None if route_xy is None else np.asarray(route_xy, dtype=np.float64).reshape(-1, 2)
        )
        if self.route_xy is not None and self.route_xy.shape[0] == 0:
            raise ValueError("route_xy is empty; pass None to disable the route-deviation check")
        self._route: shapely.Geometry | None = None  # GEOS distance: ~4x faster than numpy here
        if self.route_xy is not None:
            r = self.route_xy
            self._route = shapely.Point(r[0]) if r.shape[0] == 1 else shapely.LineString(r)
        sig = town.signals
        self.stop_a = np.asarray(sig.stop_a, dtype=np.float64).reshape(-1, 2)  # (S, 2)
        self.stop_b = np.asarray(sig.stop_b, dtype=np.float64).reshape(-1, 2)
        self.stop_owner = np.asarray(sig.stop_owner, dtype=np.int64)
        self.stop_kind = np.asarray(sig.stop_kind, dtype=np.int64)
        self.stop_normal = self._stop_normals(np.asarray(sig.stop_lane, dtype=np.int64))  # (S, 2)
        self.sign_lines = np.flatnonzero(self.stop_kind == STOP_KIND_SIGN)
        self.sign_areas = np.array([sig.stop_area(int(i)) for i in self.sign_lines], dtype=object)
        shapely.prepare(self.sign_areas)
        self.stop_memory = StopSignMemory.fresh(self.stop_a.shape[0])
        self._cache: tuple[int, ActorArrays, _TickFlags] | None = None  # frame, actors, flags

    def _stop_normals(self, stop_lane: NDArray[np.int64]) -> NDArray[np.float64]:
        """Unit normals of the stop lines pointing the way their lane drives (past the line)."""
        lanes = self.town.lanes
        mid = 0.5 * (self.stop_a + self.stop_b)
        yaw = np.empty(mid.shape[0])
        for i, lane in enumerate(stop_lane):
            lo = int(lanes.start[lane])
            pts = np.asarray(lanes.xy[lo : lo + int(lanes.count[lane])])
            k = int(np.argmin(np.sum((pts - mid[i]) ** 2, axis=1)))
            yaw[i] = lanes.yaw_rad[lo + k]
        d = self.stop_b - self.stop_a
        n = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.maximum(
            np.linalg.norm(d, axis=1, keepdims=True), 1e-9
        )
        flip = n[:, 0] * np.cos(yaw) + n[:, 1] * np.sin(yaw) < 0.0
        n[flip] *= -1.0
        return n

    def route_distance(self, x: float, y: float) -> float:
        """Distance [m] from a point to the route polyline (0 without a route)."""
        if self._route is None:
            return 0.0
        return float(shapely.distance(self._route, shapely.Point(x, y)))

    def reset(self) -> None:
        """Forget the stop-sign visits and cached flags (a new episode)."""
        self.stop_memory = StopSignMemory.fresh(self.stop_a.shape[0])
        self._cache = None

    def _flags(self, state: WorldState) -> _TickFlags:
        """Collision ids, off-drivable and deviation of one state (cached for the next tick)."""
        c = (
            self._cache
        )  # keyed on the actors object: dataclasses.replace(state, events=...) keeps it
        if c is not None and c[0] == state.frame and c[1] is state.actors:
            return c[2]
        a = state.actors
        boxes = a.boxes
        others = np.flatnonzero(a.valid)
        others = others[others != EGO_INDEX]
        hit = boxes_overlap(boxes[EGO_INDEX], boxes[others])
        ids = frozenset(int(v) for v in a.actor_id[others[hit]])
        ex, ey = float(a.x[EGO_INDEX]), float(a.y[EGO_INDEX])
        corners = box_corners(ex, ey, a.yaw[EGO_INDEX], a.length[EGO_INDEX], a.width[EGO_INDEX])
        outside = ~np.asarray(self.town.area.contains(corners), dtype=bool)
        deviated = self.route_distance(ex, ey) > self.config.route_deviation_m
        flags = _TickFlags(ids, outside, deviated, corners, _front_midpoint(state))
        self._cache = (state.frame, a, flags)
        return flags

    def _crossed(self, p0: NDArray[np.float64], p1: NDArray[np.float64]) -> NDArray[np.bool_]:
        """(S,) stop lines the segment p0 -> p1 crosses in the lane's direction (from behind the
        line to on or past it, within the line's extent)."""
        s0 = np.einsum("ij,ij->i", p0 - self.stop_a, self.stop_normal)
        s1 = np.einsum("ij,ij->i", p1 - self.stop_a, self.stop_normal)
        forward = (s0 < 0.0) & (s1 >= 0.0)
        t = np.where(forward, s0 / np.where(forward, s0 - s1, 1.0), 0.0)  # along p0 -> p1
        hit = p0 + t[:, None] * (p1 - p0)  # (S, 2) where the path meets the line
        ab = self.stop_b - self.stop_a
        u = np.einsum("ij,ij->i", hit - self.stop_a, ab) / np.maximum(
            np.einsum("ij,ij->i", ab, ab), 1e-12
        )
        out: NDArray[np.bool_] = forward & (u >= 0.0) & (u <= 1.0)
        return out

    def _update_stop_memory(self, cur: WorldState, ego_corners: NDArray[np.float64]) -> None:
        """Visits to stop-sign areas: entering restarts the visit; slow ticks inside complete it."""
        if self.sign_lines.size == 0:
            return
        a, i = cur.actors, EGO_INDEX
        ego = shapely.Polygon(ego_corners)
        inside = shapely.intersects(self.sign_areas, ego).astype(bool)
        m, idx = self.stop_memory, self.sign_lines
        entered = inside & ~m.in_area[idx]
        m.stopped[idx[entered]] = False
        m.min_speed_mps[idx[entered]] = np.inf
        speed = abs(float(a.speed[i]))
        m.min_speed_mps[idx[inside]] = np.minimum(m.min_speed_mps[idx[inside]], speed)
        if speed < self.config.stop_speed_mps:
            m.stopped[idx[inside]] = True
        m.in_area[idx] = inside

    def detect(self, prev: WorldState | None, cur: WorldState) -> tuple[Event, ...]:
        """Events of the ego raised by the step from ``prev`` to ``cur``."""
        if prev is None:
            self.reset()
        a, i = cur.actors, EGO_INDEX
        ex, ey = float(a.x[i]), float(a.y[i])

        def ev(kind: EventKind, detail: str, other_id: int = -1, ref: int = -1) -> Event:
            return Event(
                kind, cur.frame, cur.time_s, ex, ey, other_id=other_id, ref=ref, detail=detail
            )

        events: list[Event] = []
        before = self._flags(prev) if prev is not None else _NO_FLAGS
        now = self._flags(cur)  # cached: the next tick's ``prev`` is this ``cur``

        new_ids = now.colliding_ids - before.colliding_ids
        if new_ids:
            rows = np.flatnonzero(a.valid & np.isin(a.actor_id, list(new_ids)))
            for r in rows[rows != i]:
                kind = ActorKind(int(a.kind[r]))
                events.append(
                    ev(
                        EventKind(int(_KIND_TO_EVENT[kind])),
                        f"collision with {kind.name.lower()} {int(a.actor_id[r])}",
                        other_id=int(a.actor_id[r]),
                    )
                )
        if now.off_drivable and not before.off_drivable:
            out = [Corner(int(k)).name.lower() for k in np.flatnonzero(now.outside)]
            events.append(
                ev(
                    EventKind.OFF_DRIVABLE,
                    f"left the drivable area ({', '.join(out)} corner outside)",
                )
            )

        self._update_stop_memory(cur, now.ego_corners)
        if prev is not None and self.stop_a.shape[0]:
            crossed = self._crossed(before.front_xy, now.front_xy)
            for s in np.flatnonzero(crossed):
                owner, m = int(self.stop_owner[s]), self.stop_memory
                if (
                    self.stop_kind[s] == STOP_KIND_LIGHT
                    and cur.light_state[owner] == LightState.RED
                ):
                    events.append(
                        ev(
                            EventKind.RED_LIGHT,
                            f"crossed stop line {s} of light {owner} on red",
                            ref=owner,
                        )
                    )
                elif self.stop_kind[s] == STOP_KIND_SIGN and not m.stopped[s]:
                    vmin = m.min_speed_mps[s]
                    seen = (
                        f"lowest speed {vmin:.2f} m/s"
                        if np.isfinite(vmin)
                        else "never in the stop area"
                    )
                    events.append(
                        ev(
                            EventKind.STOP_SIGN,
                            f"ran stop sign {owner} at stop line {s} ({seen})",
                            ref=int(s),
                        )
                    )

        if now.deviated and not before.deviated:
            d = self.route_distance(ex, ey)
            events.append(
                ev(
                    EventKind.ROUTE_DEVIATION,
                    f"{d:.1f} m from the route (> {self.config.route_deviation_m:.1f} m)",
                )
            )
        return tuple(events)
