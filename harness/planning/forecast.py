"""Constant-velocity forecasts of the other actors and path-corridor occupancy.

The expert plans against a non-reactive world (as PDM-Closed): every actor keeps its speed and
heading over the 4 s horizon. From the forecast it reads (a) per candidate path the nearest
object in the path's corridor (the IDM lead, with its speed along the path) and (b) when actors
enter a stretch of the route corridor (junction gap acceptance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.geometry import to_local
from harness.planning.paths import STATION_STEP_M, PathSet, RouteContext
from harness.world.state import ActorKind, WorldState
from harness.world.timing import HORIZON_STEPS, POSE_DT_S

FORECAST_RADIUS_M = 90.0  # [m] actors farther than this from the ego are left out
STOPPED_SPEED_MPS = 0.1  # [m/s] slower actors are forecast as standing still
CORRIDOR_MARGIN_M = 0.35  # [m] lateral clearance wanted beyond both half widths
CORRIDOR_SAMPLE_STEPS = (0, 5, 10, 15, 20, 30, 40)  # forecast steps searched for corridor entries
VEHICLE_ENTRY_S = 1.0  # [s] vehicles count as leads when they enter a corridor this soon
VULNERABLE_ENTRY_S = 4.0  # [s] pedestrians / bicycles: this soon (they become stopped objects;
# a walker crossing a two-lane road from the far sidewalk at 1.8 m/s needs ~3.5 s)
VULNERABLE_FAST_MPS = 3.0  # [m/s] a bicycle faster than this is forecast as a vehicle (a flow of
# fast bicycles crossing ahead is a stream to find a gap in, not a row of standing obstacles)
YIELD_HORIZON_S = 8.0  # [s] horizon of the junction arrival-time forecast
YIELD_DT_S = 0.25  # [s] its step

VULNERABLE = (int(ActorKind.PEDESTRIAN), int(ActorKind.BICYCLE))


@dataclass(frozen=True, eq=False)
class Forecast:
    """N actors (the ego excluded) forecast at constant velocity.

    boxes (T+1, N, 5) [x, y, yaw, length, width] at t = k * POSE_DT_S; speed (N,) [m/s];
    kind (N,) ActorKind; actor_id (N,); ahead_m (N,) [m] longitudinal position of each actor in
    the ego frame at t = 0 (negative behind)."""

    boxes: NDArray[np.float64]
    speed: NDArray[np.float64]
    kind: NDArray[np.int64]
    actor_id: NDArray[np.int64]
    ahead_m: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.speed.shape[0])


def constant_velocity(
    state: WorldState, steps: int = HORIZON_STEPS, dt_s: float = POSE_DT_S,
    radius_m: float = FORECAST_RADIUS_M,
) -> Forecast:  # fmt: skip
    """Forecast every valid non-ego actor within ``radius_m`` of the ego."""
    a = state.actors
    ego_xy = np.array([a.x[0], a.y[0]])
    d = np.hypot(a.x - ego_xy[0], a.y - ego_xy[1])
    rows = np.flatnonzero(a.valid & (d < radius_m))
    rows = rows[rows != 0]
    speed = np.where(np.abs(a.speed[rows]) < STOPPED_SPEED_MPS, 0.0, a.speed[rows])
    t = dt_s * np.arange(steps + 1)[:, None]
    yaw = a.yaw[rows]
    x = a.x[rows][None] + t * speed * np.cos(yaw)[None]
    y = a.y[rows][None] + t * speed * np.sin(yaw)[None]
    shape = x.shape
    boxes = np.stack(
        [x, y, np.broadcast_to(yaw, shape), np.broadcast_to(a.length[rows], shape),
         np.broadcast_to(a.width[rows], shape)], axis=-1,
    )  # fmt: skip
    ahead = to_local(np.column_stack([a.x[rows], a.y[rows]]), ego_xy, a.yaw[0])[:, 0]
    return Forecast(boxes, speed, a.kind[rows].astype(np.int64), a.actor_id[rows], ahead)


def _extents(
    yaw: NDArray[np.float64], length: NDArray[np.float64], width: NDArray[np.float64],
    ref_yaw: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Half extents of boxes along and across a reference heading [m]."""
    c, s = np.abs(np.cos(yaw - ref_yaw)), np.abs(np.sin(yaw - ref_yaw))
    return 0.5 * (length * c + width * s), 0.5 * (length * s + width * c)


@dataclass(frozen=True)
class CorridorLeads:
    """Per path (P,): relative station [m] of the rear of the nearest object in the corridor
    (inf: none), its speed along the path [m/s] (>= 0), and its forecast row (-1: none)."""

    station: NDArray[np.float64]
    speed: NDArray[np.float64]
    row: NDArray[np.int64]


def corridor_leads(
    paths: PathSet, fc: Forecast, ego_station_m: float, ego_half_width_m: float,
    reach_m: NDArray[np.float64] | None = None,
) -> CorridorLeads:  # fmt: skip
    """Nearest object in each path's corridor, searched at CORRIDOR_SAMPLE_STEPS: an actor
    counts at t = 0 when its box reaches into the corridor; later only when it enters within
    VEHICLE_ENTRY_S (vehicles: a cut-in, keeps its along-path speed) or VULNERABLE_ENTRY_S
    (pedestrians, bicycles: a stopped object where it enters). Actors behind the ego's centre at
    t = 0 never lead. ``reach_m`` (N,) [m] widens the corridor at t = 0 per actor (vehicles
    pulling out beside the lane count as leads before their heading shows it)."""
    p_n = paths.n_paths
    none = CorridorLeads(np.full(p_n, np.inf), np.zeros(p_n), np.full(p_n, -1, dtype=np.int64))
    if fc.n == 0:
        return none
    steps = np.array([k for k in CORRIDOR_SAMPLE_STEPS if k < fc.boxes.shape[0]])
    b = fc.boxes[steps]  # (S, N, 5)
    rel = b[None, :, :, None, :2] - paths.xy[:, None, None, :, :]  # (P, S, N, K, 2)
    d2 = (rel * rel).sum(axis=-1)
    k = np.argmin(d2, axis=-1)  # (P, S, N)
    dist = np.sqrt(np.take_along_axis(d2, k[..., None], axis=-1)[..., 0])
    ref_yaw = np.take_along_axis(
        np.broadcast_to(paths.yaw[:, None, None, :], d2.shape), k[..., None], axis=-1
    )[..., 0]
    lon, lat = _extents(b[None, ..., 2], b[None, ..., 3], b[None, ..., 4], ref_yaw)
    centre = k * STATION_STEP_M
    extra = np.zeros((steps.size, fc.n))
    if reach_m is not None:
        extra[steps == 0] = reach_m
    inside = (dist < ego_half_width_m + lat + CORRIDOR_MARGIN_M + extra[None]) & (
        k < paths.yaw.shape[1] - 1
    )
    inside &= (centre > ego_station_m) & (fc.ahead_m > 0.0)[None, None, :]
    t = steps * POSE_DT_S
    vulnerable = np.isin(fc.kind, VULNERABLE) & (
        (fc.kind == int(ActorKind.PEDESTRIAN)) | (fc.speed < VULNERABLE_FAST_MPS)
    )
    window = np.where(vulnerable, VULNERABLE_ENTRY_S, VEHICLE_ENTRY_S)
    inside &= t[None, :, None] <= window[None, None, :] + 1e-9
    if not inside.any():
        return none
    along = np.maximum(fc.speed[None, None, :] * np.cos(b[None, ..., 2] - ref_yaw), 0.0)
    stopped_at_entry = vulnerable[None, None, :] & (t[None, :, None] > 0.0)
    along = np.where(stopped_at_entry, 0.0, along)
    # a moving lead seen at time t is where it would have been at t = 0 along the path
    rear = centre - lon - np.where(stopped_at_entry, 0.0, along * t[None, :, None])
    rear = np.where(inside, rear, np.inf).reshape(p_n, -1)
    j = np.argmin(rear, axis=1)
    station = rear[np.arange(p_n), j]
    speed = along.reshape(p_n, -1)[np.arange(p_n), j]
    row = np.where(np.isfinite(station), j % fc.n, -1)
    return CorridorLeads(station, np.where(np.isfinite(station), speed, 0.0), row)


@dataclass(frozen=True)
class Arrivals:
    """Per actor (N,): first time [s] its constant-velocity box reaches the route corridor
    between two stations (inf: never within YIELD_HORIZON_S), its speed [m/s], the route
    station [m] where it enters (NaN: never) and the cosine of its heading against the route's
    there (near 1: it merges into the ego's lane rather than crossing it)."""

    enter_s: NDArray[np.float64]
    speed: NDArray[np.float64]
    station_m: NDArray[np.float64]
    heading_cos: NDArray[np.float64]


def corridor_arrivals(
    ctx: RouteContext, state: WorldState, rows: NDArray[np.int64], lo: int, hi: int,
    ego_half_width_m: float,
) -> Arrivals:  # fmt: skip
    """When actors ``rows`` (indices into state.actors) enter the route corridor over stations
    lo..hi, forecast at constant velocity for YIELD_HORIZON_S (junction conflict areas)."""
    a = state.actors
    lo, hi = max(lo, 0), min(hi, ctx.n)
    if rows.size == 0 or hi <= lo:
        nan = np.full(rows.size, np.nan)
        return Arrivals(np.full(rows.size, np.inf), np.zeros(rows.size), nan, nan)
    t = np.arange(0.0, YIELD_HORIZON_S + 1e-9, YIELD_DT_S)
    v = a.speed[rows]
    yaw = a.yaw[rows]
    px = a.x[rows][:, None] + v[:, None] * np.cos(yaw)[:, None] * t[None]
    py = a.y[rows][:, None] + v[:, None] * np.sin(yaw)[:, None] * t[None]
    c = ctx.xy[lo:hi]
    d2 = (px[..., None] - c[None, None, :, 0]) ** 2 + (py[..., None] - c[None, None, :, 1]) ** 2
    k = np.argmin(d2, axis=-1)  # (N, T)
    dist = np.sqrt(np.take_along_axis(d2, k[..., None], axis=-1)[..., 0])
    _, lat = _extents(
        yaw[:, None], a.length[rows][:, None], a.width[rows][:, None], ctx.yaw[lo + k]
    )
    inside = dist < ego_half_width_m + lat + CORRIDOR_MARGIN_M
    hit = inside.any(axis=1)
    j = np.argmax(inside, axis=1)
    first = np.where(hit, t[j], np.inf)
    k_in = lo + k[np.arange(rows.size), j]
    station = np.where(hit, k_in * STATION_STEP_M, np.nan)
    heading = np.where(hit, np.cos(yaw - ctx.yaw[k_in]), np.nan)
    return Arrivals(first, v, station, heading)
