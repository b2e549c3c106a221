"""Synthetic scoring scenes on a real town, for the scoring benchmark, the raster-vs-reference
agreement tests and the kernel tests: an ego on a lane with a route that follows the lane
graph, agents driving along lanes around it, lights with random fixed states, and a fan of
constant-curvature / constant-acceleration candidate plans."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import NUM_POSES, PDM_DT_S
from harness.world.state import ActorKind, LightState
from teachers.scene import PAST_POSES, Scene, states_from_poses
from teachers.scoring.rasters import expand_route_lanes

ROUTE_LENGTH_M = 200.0  # route followed along the lane graph from the ego lane [m]
AGENT_RADIUS_M = 80.0  # agents start within this distance of the ego [m]
MIN_EGO_LANE_M = 40.0  # the ego starts on a non-junction lane at least this long [m]
EGO_START_S_M = 15.0  # ego arc length on its lane [m]

Float = NDArray[np.float64]


def synthetic_scene(
    town: Any, n_agents: int = 50, ego_speed_mps: float = 8.0, seed: int = 0
) -> Scene:
    """A seeded scene on ``town`` (a :class:`harness.maps.Town`)."""
    rng = np.random.default_rng(seed)
    lanes, graph = town.lanes, town.graph
    ok = np.flatnonzero((lanes.junction_id < 0) & (lanes.length_m >= MIN_EGO_LANE_M))
    ego_lane = int(rng.choice(ok))
    path, total = [ego_lane], float(lanes.length_m[ego_lane])
    while total < ROUTE_LENGTH_M:
        nxt = graph.successors(path[-1])
        if not nxt:
            break
        path.append(int(rng.choice(nxt)))
        total += float(lanes.length_m[path[-1]])
    route_xy = np.concatenate(
        [lanes.xy[lanes.lane_points(k)][(1 if i else 0) :] for i, k in enumerate(path)]
    )

    (ego_xy, ego_yaw) = lanes.position(ego_lane, EGO_START_S_M)
    t_past = (np.arange(PAST_POSES) - (PAST_POSES - 1)) * PDM_DT_S
    pxy, pyaw = lanes.position(
        np.full(PAST_POSES, ego_lane), EGO_START_S_M + ego_speed_mps * t_past
    )
    past = states_from_poses(np.column_stack([pxy, pyaw]))
    t_prev = (np.arange(NUM_POSES) - 5) * PDM_DT_S
    vxy, vyaw = lanes.position(np.full(NUM_POSES, ego_lane), EGO_START_S_M + ego_speed_mps * t_prev)

    near = np.flatnonzero(np.linalg.norm(lanes.xy - ego_xy, axis=1) < AGENT_RADIUS_M)
    near = near[np.linalg.norm(lanes.xy[near] - ego_xy, axis=1) > 6.0]
    pick = rng.choice(near, size=n_agents, replace=len(near) < n_agents)
    a_lane = lanes.lane_of_point[pick]
    kind = rng.choice(
        [ActorKind.VEHICLE, ActorKind.PEDESTRIAN, ActorKind.STATIC],
        size=n_agents,
        p=[0.8, 0.1, 0.1],
    ).astype(np.int64)
    speed = np.where(kind == ActorKind.STATIC, 0.0, rng.uniform(0.0, 10.0, n_agents))
    speed = np.where(kind == ActorKind.PEDESTRIAN, rng.uniform(0.0, 1.5, n_agents), speed)
    t = np.arange(NUM_POSES) * PDM_DT_S
    s = lanes.s_m[pick][:, None] + speed[:, None] * t
    axy, ayaw = lanes.position(np.repeat(a_lane[:, None], NUM_POSES, axis=1), s)
    ped = kind == ActorKind.PEDESTRIAN
    length = np.where(ped, 0.6, rng.uniform(3.8, 5.2, n_agents))
    width = np.where(ped, 0.6, rng.uniform(1.8, 2.2, n_agents))
    boxes = np.concatenate(
        [
            axy,
            ayaw[..., None],
            np.broadcast_to(length[:, None, None], (n_agents, NUM_POSES, 1)),
            np.broadcast_to(width[:, None, None], (n_agents, NUM_POSES, 1)),
        ],
        axis=-1,
    )
    sig = town.signals
    states = rng.choice([LightState.RED, LightState.GREEN], size=sig.lights_count).astype(np.int64)
    return Scene(
        town_name=town.name,
        ego_pose=np.array([ego_xy[0], ego_xy[1], ego_yaw]),
        ego_speed_mps=ego_speed_mps,
        ego_accel_mps2=0.0,
        ego_yaw_rate_radps=0.0,
        ego_past=past,
        agent_boxes=np.ascontiguousarray(boxes),
        agent_kind=kind,
        agent_valid=np.ones((n_agents, NUM_POSES), dtype=bool),
        agent_speed_mps=np.repeat(speed[:, None], NUM_POSES, axis=1),
        light_lanes=sig.light_lanes,
        light_lanes_valid=sig.light_lanes_valid,
        light_state=np.repeat(states[:, None], NUM_POSES, axis=1),
        route_xy=route_xy,
        route_lanes=expand_route_lanes(lanes, np.asarray(path, dtype=np.int64)),
        previous_plan=np.column_stack([vxy, vyaw]),
    )


def candidate_fan(
    scene: Scene,
    n_curvature: int = 64,
    n_accel: int = 64,
    max_curvature_per_m: float = 0.08,
    accel_range_mps2: tuple[float, float] = (-5.0, 3.0),
) -> Float:
    """(n_curvature * n_accel, 40, 3) plans from the ego pose at constant curvature [1/m] and
    constant acceleration [m/s2] (speed floored at 0), 0.1 .. 4.0 s."""
    kappa = np.linspace(-max_curvature_per_m, max_curvature_per_m, n_curvature)
    accel = np.linspace(*accel_range_mps2, n_accel)
    k, a = (g.ravel() for g in np.meshgrid(kappa, accel, indexing="ij"))
    t = np.arange(1, NUM_POSES) * PDM_DT_S
    v0 = scene.ego_speed_mps
    t_stop = np.where(a < 0, v0 / np.maximum(-a, 1e-9), np.inf)
    te = np.minimum(t[None], t_stop[:, None])
    dist = v0 * te + 0.5 * a[:, None] * te * te  # (B, 40)
    x0, y0, yaw0 = scene.ego_pose
    yaw = yaw0 + k[:, None] * dist
    straight = np.abs(k) < 1e-9
    ks = np.where(straight, 1.0, k)[:, None]
    dx = np.where(straight[:, None], dist, np.sin(k[:, None] * dist) / ks)
    dy = np.where(straight[:, None], 0.0, (1 - np.cos(k[:, None] * dist)) / ks)
    x = x0 + np.cos(yaw0) * dx - np.sin(yaw0) * dy
    y = y0 + np.sin(yaw0) * dx + np.cos(yaw0) * dy
    return np.stack([x, y, yaw], axis=-1)
