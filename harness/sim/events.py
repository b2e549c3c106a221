"""Ego events per tick: collisions by the other actor's kind, leaving the drivable area, running a
red light, not stopping at a stop sign, deviating from the route.

Collisions, off-drivable and route deviation are rising edges computed from ``prev`` and ``cur``
alone (a continuing condition is one event). The red-light and stop-sign checks use the path of
the ego's front-bumper midpoint between ``prev`` and ``cur``. Only the stop-sign check needs memory
beyond ``prev``; it lives in :class:`StopSignMemory`, reset whenever ``prev`` is None. The
conditions of the state just evaluated are cached (keyed by its frame and ActorArrays object, which
``dataclasses.replace(state, events=...)`` keeps), so the next tick's ``prev`` costs nothing.

Cost per tick is kept to a few dozen small operations by exact broad phases: circumscribed circles
before the box test, the drivable-area test only when the ego's box moved, the route distance
only when its 1-Lipschitz bound cannot decide the deviation, and stop lines / stop areas only
from a subset near the ego, refreshed when the ego drifts NEAR_MOVE_M from where it was built.

Stop-sign rule (after ScenarioRunner's RunningStopTest: speed threshold 0.1 m/s while the actor
is affected by the stop's trigger volume): the ego's box entering the stop line's stop area
(``town.signals.stop_area(i)``) starts a visit; a tick inside the area with ``|speed| <
stop_speed_mps`` completes the stop; crossing the stop line in the lane's direction without a
completed stop in the current (or last) visit is one STOP_SIGN event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import shapely
from numpy.typing import NDArray

from harness.boxes import Corner, boxes_overlap
from harness.jit import njit
from harness.world.state import (
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
NEAR_MOVE_M = (
    25.0  # [m] the near stop-line subset stays valid while the ego is this close to its centre
)
NEAR_MARGIN_M = 1.0  # [m] slack on the near-subset bounds (rounding)
LAYOUT_ID = -1  # contact id of the road layout (walls, kerbs, poles): Event.other_id -1
ROUTE_BOUND_MARGIN_M = 1e-6  # [m] slack on the route-distance Lipschitz bound (GEOS rounding)

COLLISION_KIND = {
    ActorKind.VEHICLE: EventKind.COLLISION_VEHICLE,
    ActorKind.BICYCLE: EventKind.COLLISION_VEHICLE,
    ActorKind.EMERGENCY: EventKind.COLLISION_VEHICLE,
    ActorKind.PEDESTRIAN: EventKind.COLLISION_PEDESTRIAN,
    ActorKind.STATIC: EventKind.COLLISION_STATIC,
}
_CORNER_SIGNS = ((1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0))  # harness.boxes Corner order
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


def _ego_corners(
    x: float, y: float, yaw: float, length: float, width: float
) -> NDArray[np.float64]:
    """(4, 2) corners [m] in harness.boxes.Corner order, as harness.boxes.box_corners computes
    them (same operations, so the same bits) without its broadcasting overhead."""
    c, s = float(np.cos(yaw)), float(np.sin(yaw))
    hl, hw = 0.5 * length, 0.5 * width
    out = [
        (x + c * (sl * hl) - s * (sw * hw), y + s * (sl * hl) + c * (sw * hw))
        for sl, sw in _CORNER_SIGNS
    ]
    return np.array(out, dtype=np.float64)


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
        mid = 0.5 * (self.stop_a + self.stop_b)
        self._line_mid = mid  # (S, 2) [m]
        self._line_half = 0.5 * np.hypot(*(self.stop_b - self.stop_a).T)  # (S,) [m]
        bounds = shapely.bounds(self.sign_areas).reshape(-1, 4)
        self._sign_bounds = bounds  # (G, 4) [m] minx, miny, maxx, maxy of the stop areas
        self._near: tuple[float, float, NDArray[np.int64], NDArray[np.int64]] | None = None
        self._pose_cache: (
            tuple[tuple[float, ...], NDArray[np.float64], NDArray[np.bool_]] | None
        ) = None
        self._route_anchor: tuple[float, float, float] | None = None  # x, y, distance [m]

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
        self._near = None

    def _flags(self, state: WorldState, contacts: frozenset[int] | None = None) -> _TickFlags:
        """Collision ids, off-drivable and deviation of one state (cached for the next tick);
        ``contacts`` replaces the box-overlap test when the backend resolves contacts itself."""
        c = (
            self._cache
        )  # keyed on the actors object: dataclasses.replace(state, events=...) keeps it
        if c is not None and c[0] == state.frame and c[1] is state.actors:
            return c[2]
        a, i = state.actors, EGO_INDEX
        ex, ey, eyaw = float(a.x[i]), float(a.y[i]), float(a.yaw[i])
        el, ew = float(a.length[i]), float(a.width[i])
        ids: frozenset[int] = frozenset()
        if contacts is not None:
            ids = contacts
        else:  # circumscribed-circle broad phase (as boxes_overlap starts with), compiled
            others = near_rows(a.x, a.y, a.length, a.width, a.valid, i, 0.0)
            if others.size:
                hit = boxes_overlap(a.boxes[i], a.boxes[others])
                ids = frozenset(int(v) for v in a.actor_id[others[hit]])
        pose = (ex, ey, eyaw, el, ew)
        pc = self._pose_cache
        if pc is not None and pc[0] == pose:  # the ego's box did not move: same corners, same area
            corners, outside = pc[1], pc[2]
        else:
            corners = _ego_corners(ex, ey, eyaw, el, ew)
            outside = ~np.asarray(self.town.area.contains(corners), dtype=bool)
            self._pose_cache = (pose, corners, outside)
        half = 0.5 * el
        front = np.array([ex + half * math.cos(eyaw), ey + half * math.sin(eyaw)])
        flags = _TickFlags(ids, outside, self._deviated(ex, ey), corners, front)
        self._cache = (state.frame, a, flags)
        return flags

    def _deviated(self, x: float, y: float) -> bool:
        """Route distance > route_deviation_m, decided from the last computed distance when the
        move since then cannot change the answer (distance to a fixed set is 1-Lipschitz)."""
        if self._route is None:
            return False
        limit = self.config.route_deviation_m
        anchor = self._route_anchor
        if anchor is not None:
            moved = math.hypot(x - anchor[0], y - anchor[1]) + ROUTE_BOUND_MARGIN_M
            if anchor[2] + moved < limit:
                return False
            if anchor[2] - moved > limit:
                return True
        d = self.route_distance(x, y)
        self._route_anchor = (x, y, d)
        return d > limit

    def _near_items(
        self,
        p0: NDArray[np.float64] | None,
        p1: NDArray[np.float64],
        ego: tuple[float, float, float],
    ) -> tuple[NDArray[np.int64] | None, NDArray[np.int64] | None]:
        """(stop lines, stop-sign areas) that the front path p0 -> p1 or the ego's box (centre x, y
        and circumscribed radius) may reach: the items within NEAR_MOVE_M of a centre, rebuilt at
        the ego when it strays farther. None = every item (the ego jumped too far to bound)."""

        def reach(c: tuple[float, float]) -> float:
            r = math.hypot(ego[0] - c[0], ego[1] - c[1]) + ego[2]
            r = max(r, math.hypot(float(p1[0]) - c[0], float(p1[1]) - c[1]))
            if p0 is not None:
                r = max(r, math.hypot(float(p0[0]) - c[0], float(p0[1]) - c[1]))
            return r

        near = self._near
        if near is None or reach((near[0], near[1])) > NEAR_MOVE_M:
            cx, cy = ego[0], ego[1]
            bound = NEAR_MOVE_M + NEAR_MARGIN_M
            lines = np.flatnonzero(
                np.hypot(self._line_mid[:, 0] - cx, self._line_mid[:, 1] - cy) - self._line_half
                <= bound
            )
            b = self._sign_bounds
            gx = np.maximum(np.maximum(b[:, 0] - cx, cx - b[:, 2]), 0.0)
            gy = np.maximum(np.maximum(b[:, 1] - cy, cy - b[:, 3]), 0.0)
            signs = np.flatnonzero(np.hypot(gx, gy) <= bound)
            near = self._near = (cx, cy, lines, signs)
            if reach((cx, cy)) > NEAR_MOVE_M:
                return None, None
        return near[2], near[3]

    def _crossed(
        self,
        p0: NDArray[np.float64],
        p1: NDArray[np.float64],
        lines: NDArray[np.int64] | None = None,
    ) -> NDArray[np.bool_]:
        """(S,) stop lines the segment p0 -> p1 crosses in the lane's direction (from behind the
        line to on or past it, within the line's extent); only ``lines`` are tested when given
        (the others read False)."""
        return _crossed_kernel(
            float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1]), self.stop_a, self.stop_b,
            self.stop_normal,
            np.arange(self.stop_a.shape[0]) if lines is None else np.asarray(lines, dtype=np.int64),
        )  # fmt: skip

    def _update_stop_memory(
        self,
        cur: WorldState,
        ego_corners: NDArray[np.float64],
        near_signs: NDArray[np.int64] | None = None,
    ) -> None:
        """Visits to stop-sign areas: entering restarts the visit; slow ticks inside complete it.
        Only the areas ``near_signs`` (indices into sign_lines) can hold the ego when given; an
        area is tested with GEOS only when its bounding box meets the ego's."""
        if self.sign_lines.size == 0:
            return
        a, i = cur.actors, EGO_INDEX
        m, idx = self.stop_memory, self.sign_lines
        inside = np.zeros(idx.shape[0], dtype=bool)
        cand = np.arange(idx.shape[0]) if near_signs is None else near_signs
        if cand.size:
            b = self._sign_bounds[cand]
            lo, hi = ego_corners.min(axis=0), ego_corners.max(axis=0)
            cand = cand[
                (b[:, 0] <= hi[0]) & (b[:, 2] >= lo[0]) & (b[:, 1] <= hi[1]) & (b[:, 3] >= lo[1])
            ]
        if cand.size:
            ego = shapely.Polygon(ego_corners)
            inside[cand] = shapely.intersects(self.sign_areas[cand], ego).astype(bool)
        elif not m.in_area[idx].any():
            return  # outside every area, before and now: nothing changes
        entered = inside & ~m.in_area[idx]
        m.stopped[idx[entered]] = False
        m.min_speed_mps[idx[entered]] = np.inf
        speed = abs(float(a.speed[i]))
        m.min_speed_mps[idx[inside]] = np.minimum(m.min_speed_mps[idx[inside]], speed)
        if speed < self.config.stop_speed_mps:
            m.stopped[idx[inside]] = True
        m.in_area[idx] = inside

    def detect(
        self, prev: WorldState | None, cur: WorldState, contacts: frozenset[int] | None = None
    ) -> tuple[Event, ...]:
        """Events of the ego raised by the step from ``prev`` to ``cur``. ``contacts``: the ids
        of the bodies touching the ego in ``cur`` (LAYOUT_ID for the road layout) where the
        backend resolves contacts (embedded); None = the boxes overlapping the ego's."""
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
        now = self._flags(cur, contacts)  # cached: the next tick's ``prev`` is this ``cur``

        new_ids = now.colliding_ids - before.colliding_ids
        if LAYOUT_ID in new_ids:
            events.append(
                ev(EventKind.COLLISION_STATIC, "collision with the road layout", other_id=LAYOUT_ID)
            )
            new_ids = new_ids - {LAYOUT_ID}
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

        ego_r = 0.5 * math.hypot(float(a.length[i]), float(a.width[i]))
        p0 = before.front_xy if prev is not None else None
        lines, signs = self._near_items(p0, now.front_xy, (ex, ey, ego_r))
        self._update_stop_memory(cur, now.ego_corners, signs)
        if p0 is not None and self.stop_a.shape[0] and (lines is None or lines.size):
            crossed = self._crossed(p0, now.front_xy, lines)
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


@njit
def near_rows(
    x: NDArray[np.float64], y: NDArray[np.float64], length: NDArray[np.float64],
    width: NDArray[np.float64], valid: NDArray[np.bool_], ego: int, slack: float,
) -> NDArray[np.int64]:  # fmt: skip
    """Valid rows (other than ``ego``) whose circumscribed circle meets the ego's grown by
    ``slack`` [m] (0: the boxes may touch; the contact resolution asks with a margin)."""
    ex, ey = x[ego], y[ego]
    r_ego = 0.5 * np.hypot(length[ego], width[ego]) + slack
    out = np.empty(x.shape[0], dtype=np.int64)
    m = 0
    for j in range(x.shape[0]):
        if j == ego or not valid[j]:
            continue
        dx, dy = x[j] - ex, y[j] - ey
        reach = r_ego + 0.5 * np.hypot(length[j], width[j])
        if dx * dx + dy * dy <= reach * reach:
            out[m] = j
            m += 1
    return out[:m]


@njit
def _crossed_kernel(
    p0x: float, p0y: float, p1x: float, p1y: float, stop_a: NDArray[np.float64],
    stop_b: NDArray[np.float64], normal: NDArray[np.float64], lines: NDArray[np.int64],
) -> NDArray[np.bool_]:  # fmt: skip
    """EventDetector._crossed over ``lines``: (S,) True where p0 -> p1 crosses the line forward
    (from behind to on or past it) within its extent."""
    out = np.zeros(stop_a.shape[0], dtype=np.bool_)
    for s in lines:
        ax, ay = stop_a[s, 0], stop_a[s, 1]
        nx, ny = normal[s, 0], normal[s, 1]
        s0 = (p0x - ax) * nx + (p0y - ay) * ny
        s1 = (p1x - ax) * nx + (p1y - ay) * ny
        if not (s0 < 0.0 and s1 >= 0.0):
            continue
        t = s0 / (s0 - s1)
        hx, hy = p0x + t * (p1x - p0x), p0y + t * (p1y - p0y)
        bx, by = stop_b[s, 0] - ax, stop_b[s, 1] - ay
        u = ((hx - ax) * bx + (hy - ay) * by) / max(bx * bx + by * by, 1e-12)
        out[s] = 0.0 <= u <= 1.0
    return out
