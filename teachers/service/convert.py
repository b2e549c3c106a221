"""A validated request scene -> the :class:`SceneRecord` the teacher pipeline scores.

Agents with futures keep them (invalid steps hold the t = 0 box, as ``extract_scene`` does);
agents with a current state only are forecast by :meth:`Scene.constant_velocity_agents`. Lights
are matched to the town's lights by ``light_id`` or by the overlap of the given stop area with
the town's stop areas. The route becomes planned route lanes: a global plan is connected on the
lane graph by ``plan_route`` (as a route file is), a polyline is projected onto the lanes; the
route window and command then follow ``extract_scene``'s rules. Geometry problems a client can
fix raise :class:`SceneFieldError` (a ConfigError naming the request field; -> 422 there).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from harness.dynamics.lqr import NAVSIM_BICYCLE, NUM_POSES, StateIndex
from harness.errors import ConfigError, RoutePlanningError
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute, RoadOption, plan_route
from harness.world.state import ActorKind, LightState
from teachers.episode_scenes import (
    ROUTE_AHEAD_M,
    ROUTE_BEHIND_M,
    SceneRecord,
    route_command,
    route_index,
)
from teachers.scene import PAST_POSES, Scene, states_from_poses
from teachers.scoring.rasters import expand_route_lanes
from teachers.service import schemas

Float = NDArray[np.float64]

SCENE_RADIUS_M = 500.0  # agents, lights' stop areas and trajectories stay this close to the ego [m]
MAX_EGO_ROUTE_GAP_M = 30.0  # the ego must be this close to its route [m]
MAX_POLYLINE_OFF_LANE_M = 4.0  # route polyline points must be this close to a lane centreline [m]
POLYLINE_SPACING_M = 1.0  # a route polyline is resampled at this spacing, as planned routes [m]
MIN_STOP_OVERLAP_M2 = 0.5  # a stop area matches a town light when they overlap this much [m2]
KINDS = {"vehicle": ActorKind.VEHICLE, "pedestrian": ActorKind.PEDESTRIAN,
         "bicycle": ActorKind.BICYCLE, "static": ActorKind.STATIC,
         "emergency": ActorKind.EMERGENCY}  # fmt: skip
LIGHT_STATES = {s.name.lower(): int(s) for s in LightState}
NO_REFERENCE = np.zeros((0, 3))  # SceneRecord.expert_future of a scene without a reference
Loc = tuple[str | int, ...]


class SceneFieldError(ConfigError):
    """A problem of a request found with the town's geometry; ``loc`` is the request field it
    is about, from the body down (("scene", "lights", 0, "stop_area"))."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _near_ego(name: str, xy: Float, ego_xy: Float, loc: Loc) -> None:
    """SceneFieldError when any point of ``xy`` (..., 2) is farther than SCENE_RADIUS_M from
    the ego."""
    if xy.size == 0:
        return
    d = np.hypot(*(xy.reshape(-1, 2) - ego_xy).T)
    if d.max() > SCENE_RADIUS_M:
        raise SceneFieldError(
            loc,
            f"{name} reaches {d.max():.0f} m from the ego; keep it within {SCENE_RADIUS_M:.0f} m",
        )


def ego_past(req: schemas.Scene) -> Float:
    """(16, N_STATE) history: the given rows (steer from speed and yaw rate, as extract_scene) or
    a constant-velocity past ending at the ego state."""
    e = req.ego
    wb = e.wheelbase
    if req.past is not None:
        rows = np.asarray(req.past, dtype=np.float64)
        out = np.zeros((PAST_POSES, len(StateIndex)))
        out[:, StateIndex.X] = rows[:, 0]
        out[:, StateIndex.Y] = rows[:, 1]
        out[:, StateIndex.YAW] = rows[:, 2]
        out[:, StateIndex.SPEED] = rows[:, 3]
        out[:, StateIndex.ACCEL] = rows[:, 4]
        out[:, StateIndex.YAW_RATE] = rows[:, 5]
        moving = np.abs(rows[:, 3]) > 0.1
        out[:, StateIndex.STEER] = np.where(
            moving, np.arctan(wb * rows[:, 5] / np.where(moving, rows[:, 3], 1.0)), 0.0
        )
        return out
    t = (np.arange(PAST_POSES) - (PAST_POSES - 1)) * 0.1
    poses = np.column_stack(
        [
            e.x + np.cos(e.yaw) * e.speed * t,
            e.y + np.sin(e.yaw) * e.speed * t,
            np.full(PAST_POSES, e.yaw),
        ]
    )
    return states_from_poses(poses, wheelbase_m=wb)


def agent_arrays(
    req: schemas.Scene,
) -> tuple[Float, NDArray[np.int64], NDArray[np.bool_], Float, NDArray[np.int64]]:
    """(boxes (A, 41, 5), kind (A,), valid (A, 41), speed (A, 41), ids (A,)) for Scene."""
    n = len(req.agents)
    boxes = np.zeros((n, NUM_POSES, 5))
    valid = np.zeros((n, NUM_POSES), dtype=bool)
    speed = np.zeros((n, NUM_POSES))
    for i, a in enumerate(req.agents):
        if a.future is not None:
            f = np.asarray(a.future, dtype=np.float64)
            v = np.asarray(a.valid if a.valid is not None else [True] * NUM_POSES, dtype=bool)
            first = int(np.argmax(v))
            b = np.column_stack(
                [f[:, :3], np.full(NUM_POSES, a.length), np.full(NUM_POSES, a.width)]
            )
            boxes[i] = np.where(v[:, None], b, b[first])
            valid[i] = v
            speed[i] = np.where(v, f[:, 3], 0.0)
        else:
            assert a.state is not None  # the schema requires one of future / state
            s = a.state
            bx, vx, sp = Scene.constant_velocity_agents(
                [s.x, s.y, s.yaw], s.speed, a.length, a.width
            )
            boxes[i], valid[i], speed[i] = bx[0], vx[0], sp[0]
    kind = np.asarray([KINDS[a.kind] for a in req.agents], dtype=np.int64)
    ids = np.asarray([a.id if a.id is not None else i for i, a in enumerate(req.agents)], np.int64)
    return boxes, kind, valid, speed, ids


def _stop_polygon(light: schemas.Light, i: int) -> shapely.Geometry:
    """The light's stop area, finite and valid (the schema checked it already)."""
    assert light.stop_area is not None  # the caller matches by stop area only when it is given
    try:
        return schemas.stop_area_geometry(light.stop_area)
    except ValueError as exc:
        raise SceneFieldError(
            ("scene", "lights", i, "stop_area"), f"lights[{i}].stop_area {exc}"
        ) from exc


def light_arrays(req: schemas.Scene, town: Town) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Town light indices (T,) in ascending order and their states (T, 41) LightState values."""
    sig = town.signals
    ids = {str(v): j for j, v in enumerate(sig.light_id)}
    found: dict[int, NDArray[np.int64]] = {}
    ego_xy = np.array([req.ego.x, req.ego.y])
    for i, light in enumerate(req.lights):
        if light.light_id is not None:
            if light.light_id not in ids:
                raise SceneFieldError(
                    ("scene", "lights", i, "light_id"),
                    f"lights[{i}].light_id {light.light_id!r} is not a light of {town.name}",
                )
            idx = ids[light.light_id]
        else:
            idx = _match_stop_area(town, _stop_polygon(light, i), i, ego_xy)
        if idx in found:
            raise SceneFieldError(
                ("scene", "lights", i), f"lights[{i}] is the same town light as an earlier entry"
            )
        names = light.states if light.states is not None else [light.state] * NUM_POSES
        found[idx] = np.asarray([LIGHT_STATES[str(s)] for s in names], dtype=np.int64)
    order = np.asarray(sorted(found), dtype=np.int64)
    states = np.asarray([found[int(j)] for j in order], dtype=np.int64).reshape(-1, NUM_POSES)
    return order, states


def _match_stop_area(town: Town, geom: shapely.Geometry, i: int, ego_xy: Float) -> int:
    """The town light whose stop areas overlap ``geom`` most; ConfigError when none does."""
    xy = np.asarray(shapely.get_coordinates(geom), dtype=np.float64)
    loc: Loc = ("scene", "lights", i, "stop_area")
    _near_ego(f"lights[{i}].stop_area", xy, ego_xy, loc)
    sig = town.signals
    lines = np.flatnonzero(sig.stop_kind == 0)
    best, best_area = -1, MIN_STOP_OVERLAP_M2
    for s in lines:
        a = float(geom.intersection(sig.stop_area(int(s))).area)
        if a >= best_area:
            best, best_area = int(sig.stop_owner[s]), a
    if best < 0:
        raise SceneFieldError(
            loc,
            f"lights[{i}].stop_area overlaps no stop area of a {town.name} light; give its "
            "light_id or the stop area from GET /v1/towns' town (dataset lights.parquet)",
        )
    return best


POLYLINE_LOC: Loc = ("scene", "route", "polyline")


def polyline_route(town: Town, points: Float) -> PlannedRoute:
    """A route polyline resampled at ~1 m with its lanes (projection along the polyline's
    heading); every point must lie on a lane."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] < 2 * POLYLINE_SPACING_M:
        raise SceneFieldError(
            POLYLINE_LOC, f"route polyline is {s[-1]:.1f} m long; give at least 2 m of route"
        )
    keep = np.concatenate([[True], seg > 1e-6])
    pts, s = points[keep], s[keep]
    grid = np.linspace(0.0, s[-1], int(np.ceil(s[-1] / POLYLINE_SPACING_M)) + 1)
    xy = np.column_stack([np.interp(grid, s, pts[:, 0]), np.interp(grid, s, pts[:, 1])])
    d = np.diff(xy, axis=0)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    yaw = np.concatenate([yaw, yaw[-1:]])
    proj = town.lanes.project(xy, yaw)
    far = np.flatnonzero(proj.distance_m > MAX_POLYLINE_OFF_LANE_M)
    if far.size:
        j = int(far[0])
        raise SceneFieldError(
            POLYLINE_LOC,
            f"route polyline leaves the lanes of {town.name} at ({xy[j, 0]:.1f}, {xy[j, 1]:.1f}) "
            f"({proj.distance_m[j]:.1f} m from a lane centreline; max {MAX_POLYLINE_OFF_LANE_M} m)",
        )
    m = len(xy)
    return PlannedRoute(
        route_id="request", xy=xy, z=np.zeros(m), yaw_rad=yaw, lane=proj.lane.astype(np.int64),
        option=np.full(m, int(RoadOption.LANEFOLLOW), dtype=np.int64), s_m=grid,
        keypoint_index=np.array([0, m - 1], dtype=np.int64), keypoint_offset_m=np.zeros(2),
    )  # fmt: skip


def planned_route(req: schemas.Scene, town: Town) -> PlannedRoute:
    """The request's route as a PlannedRoute (global plan -> plan_route, polyline -> lanes)."""
    r = req.route
    if r.global_plan is not None:
        kp = np.asarray(r.global_plan, dtype=np.float64)
        try:
            return plan_route(town, np.column_stack([kp, np.zeros(len(kp))]), req.scene_id)
        except RoutePlanningError as exc:
            raise SceneFieldError(("scene", "route", "global_plan"), str(exc)) from exc
    assert r.polyline is not None  # the schema requires one of the two
    return polyline_route(town, np.asarray(r.polyline, dtype=np.float64))


def _ordered_unique(a: NDArray[np.int64]) -> NDArray[np.int64]:
    keep = np.concatenate([[True], a[1:] != a[:-1]]) if a.size else np.zeros(0, bool)
    return a[keep]


def _trajectory(rows: list[tuple[float, float, float]]) -> Float:
    """Poses as given (yaw is not re-wrapped: the scorer works on sin / cos and the same numbers
    must give the same scores as in the dataset)."""
    return np.asarray(rows, dtype=np.float64)


def scene_record(req: schemas.Scene, town: Town) -> SceneRecord:
    """Build the SceneRecord for a request scene (route window and command as extract_scene)."""
    e = req.ego
    ego_pose = np.array([e.x, e.y, e.yaw], dtype=np.float64)
    ego_xy = ego_pose[:2]
    boxes, kind, valid, speed, ids = agent_arrays(req)
    _near_ego("an agent", boxes[..., :2][valid], ego_xy, ("scene", "agents"))
    lights, light_state = light_arrays(req, town)
    planned = planned_route(req, town)
    k = route_index(planned, ego_pose)
    gap = float(np.hypot(*(planned.xy[k] - ego_xy)))
    if gap > MAX_EGO_ROUTE_GAP_M:
        raise SceneFieldError(
            ("scene", "route"),
            f"the ego is {gap:.0f} m from its route; the route must pass within "
            f"{MAX_EGO_ROUTE_GAP_M:.0f} m of the ego",
        )
    s0 = planned.s_m[k]
    keep = (planned.s_m >= s0 - ROUTE_BEHIND_M) & (planned.s_m <= s0 + ROUTE_AHEAD_M)
    route_xy = planned.xy[keep]
    if len(route_xy) < 2:
        route_xy = planned.xy[max(0, k - 1) : k + 2]
    lane_seq = _ordered_unique(planned.lane[k:][planned.s_m[k:] <= s0 + ROUTE_AHEAD_M])
    past = ego_past(req)
    _near_ego("the ego's past", past[:, :2], ego_xy, ("scene", "past"))
    previous = _trajectory(req.previous_plan) if req.previous_plan is not None else None
    ref = req.reference
    future = _trajectory(ref.future) if ref is not None else NO_REFERENCE
    plan = _trajectory(ref.plan) if ref is not None and ref.plan is not None else None
    for loc, arr in ((("scene", "previous_plan"), previous),
                     (("scene", "reference", "future"), future),
                     (("scene", "reference", "plan"), plan)):  # fmt: skip
        if arr is not None:
            _near_ego(".".join(map(str, loc[1:])), arr[:, :2], ego_xy, loc)
    sig = town.signals
    scene = Scene(
        town_name=town.name,
        ego_pose=ego_pose,
        ego_speed_mps=float(e.speed),
        ego_accel_mps2=float(e.accel),
        ego_yaw_rate_radps=float(e.yaw_rate),
        ego_past=past,
        agent_boxes=np.ascontiguousarray(boxes),
        agent_kind=kind,
        agent_valid=valid,
        agent_speed_mps=speed,
        light_lanes=sig.light_lanes[lights],
        light_lanes_valid=sig.light_lanes_valid[lights],
        light_state=light_state,
        route_xy=np.ascontiguousarray(route_xy),
        route_lanes=expand_route_lanes(town.lanes, np.unique(planned.lane)),
        previous_plan=previous,
        ego_length_m=float(e.length),
        ego_width_m=float(e.width),
        ego_wheelbase_m=float(e.wheelbase),
        ego_rear_axle_to_center_m=NAVSIM_BICYCLE.rear_axle_to_center_m,
    )
    return SceneRecord(
        scene_id=req.scene_id,
        route_id=req.scene_id,
        frame=0,
        time_s=0.0,
        scene=scene,
        agent_ids=ids,
        command=route_command(planned, k),
        route_lane_seq=lane_seq.astype(np.int64),
        expert_future=future,
        expert_plan=plan,
    )


def trajectories_array(rows: list[list[tuple[float, float, float]]], ego_xy: Float) -> Float:
    """Caller trajectories (N, 40, 3); all poses near the ego."""
    out = np.asarray(rows, dtype=np.float64)
    _near_ego("a trajectory", out[..., :2], ego_xy, ("trajectories",))
    return out
