"""No at-fault collision (NC) and time-to-collision (TTC), vectorised over candidates x time x
agents.

NC follows NAVSIM / nuPlan: agents already overlapping the ego at t=0 are ignored; the first
contact with each agent classifies it: ego stopped (<= STOPPED_SPEED_MPS) -> not at fault; agent
stopped -> at fault; agent behind the ego (bearing from the rear axle > 150 deg off the heading)
-> not at fault; the ego's front bumper (front-left to front-right corner segment) touches the
agent -> at fault; otherwise a lateral hit, at fault when the ego straddles lanes or has a corner
off the drivable area. At fault with a vehicle / pedestrian / cyclist -> 0, with a static object
-> 0.5; NC is the minimum over agents.

TTC: at every step where the ego moves (> STOPPED_SPEED_MPS), its box is projected at constant
speed and heading 0, 0.3, 0.6, 0.9 s ahead and tested against the agents at that future step
(projections past 4 s are skipped). A hit counts when the agent is ahead (bearing < 30 deg) or
the ego is in several lanes, off the drivable area or in a junction and the agent is not behind.

Deviations from NAVSIM: the agent-stopped threshold is the ego's (0.05 m/s; NAVSIM 0.005 m/s);
agents that NC already counted are not excluded from TTC; red lights are not collision objects
(TLC scores them).

Speed: a broad phase buckets the agents of each time step into a coarse grid, so each ego
sample is only paired with the few agents of its own cell; the narrow phase (separating axes)
runs on that flat pair list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.boxes import BoxField, box_corners, boxes_overlap
from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.geometry import wrap_angle
from harness.sim.state import ActorKind
from teachers.scene import Scene
from teachers.scoring.rasters import EgoAreas

STOPPED_SPEED_MPS = 0.05  # ego / agent at or below this speed counts as stopped [m/s]
BEHIND_ANGLE_RAD = np.deg2rad(150.0)  # agent bearing beyond this from the heading: behind [rad]
AHEAD_ANGLE_RAD = np.deg2rad(30.0)  # agent bearing within this of the heading: ahead [rad]
BROAD_CELL_M = 12.0  # smallest broad-phase bucket [m]
TTC_HORIZONS_STEPS = (0, 3, 6, 9)  # projection times in 0.1 s steps: 0, 0.3, 0.6, 0.9 s
STATIC_COLLISION_SCORE = 0.5  # NC for an at-fault hit of a static object
MOVING_COLLISION_SCORE = 0.0  # NC for an at-fault hit of a vehicle, pedestrian or cyclist

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


def ego_boxes(states: Float, length_m: float, width_m: float) -> Float:
    """Ego boxes (B, T, 5) [x, y, yaw, length, width] of states (B, T, N_STATE)."""
    out = np.empty(states.shape[:-1] + (5,))
    out[..., BoxField.X] = states[..., StateIndex.X]
    out[..., BoxField.Y] = states[..., StateIndex.Y]
    out[..., BoxField.YAW] = states[..., StateIndex.YAW]
    out[..., BoxField.LENGTH] = length_m
    out[..., BoxField.WIDTH] = width_m
    return out


def bearing(ego_box: Float, rear_offset_m: float, agent_xy: Float) -> Float:
    """|angle| (...) [rad] between the ego heading and the direction from its rear axle to the
    agent centre."""
    yaw = ego_box[..., BoxField.YAW]
    rx = ego_box[..., BoxField.X] - rear_offset_m * np.cos(yaw)
    ry = ego_box[..., BoxField.Y] - rear_offset_m * np.sin(yaw)
    ang = np.arctan2(agent_xy[..., 1] - ry, agent_xy[..., 0] - rx)
    return np.abs(wrap_angle(ang - yaw))


@dataclass(frozen=True)
class Pairs:
    """Flat candidate (ego sample, agent) pairs from the broad phase: candidate ``b`` (N,),
    ego time index ``t`` (N,), agent ``a`` (N,), agent time index ``t_agent`` (N,)."""

    b: NDArray[np.intp]
    t: NDArray[np.intp]
    a: NDArray[np.intp]
    t_agent: NDArray[np.intp]


def broad_phase(ego: Float, agents: Float, valid: Bool, t_agent: NDArray[np.intp]) -> Pairs:
    """Pairs of ego boxes (B, T', 5) and agents (A, T, 5) at times ``t_agent`` (T',) whose
    circumscribed circles may touch: agents are bucketed per time into square cells at least as
    wide as two reach radii, so an ego centre only meets the agents listed in its own cell."""
    bsz, n_t = ego.shape[:2]
    ag = agents[:, t_agent]  # (A, T', 5)
    ok = valid[:, t_agent]
    ego_r = 0.5 * float(np.hypot(ego[0, 0, BoxField.LENGTH], ego[0, 0, BoxField.WIDTH]))
    reach = 0.5 * np.hypot(ag[..., BoxField.LENGTH], ag[..., BoxField.WIDTH]) + ego_r  # (A, T')
    cell = max(BROAD_CELL_M, 2.0 * float(reach.max(initial=0.0)))
    lo = ego[..., :2].reshape(-1, 2).min(axis=0) - cell
    hi = ego[..., :2].reshape(-1, 2).max(axis=0) + cell
    nx, ny = (np.floor((hi - lo) / cell) + 1).astype(int)
    keys = []
    a_idx, t_idx = np.nonzero(ok)
    xy, r = ag[a_idx, t_idx, :2], reach[a_idx, t_idx]
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            cx = np.floor((xy[:, 0] + sx * r - lo[0]) / cell).astype(np.int64)
            cy = np.floor((xy[:, 1] + sy * r - lo[1]) / cell).astype(np.int64)
            inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
            key = (t_idx * ny + cy) * nx + cx
            keys.append(np.where(inside, key * len(ag) + a_idx, -1))
    entry = np.unique(np.concatenate(keys))
    entry = entry[entry >= 0]
    cell_key, agent = entry // max(len(ag), 1), entry % max(len(ag), 1)
    ecx = np.floor((ego[..., 0] - lo[0]) / cell).astype(np.int64)
    ecy = np.floor((ego[..., 1] - lo[1]) / cell).astype(np.int64)
    q = ((np.arange(n_t)[None, :] * ny + ecy) * nx + ecx).ravel()
    first = np.searchsorted(cell_key, q, side="left")
    count = np.searchsorted(cell_key, q, side="right") - first
    sample = np.repeat(np.arange(q.size), count)
    offset = np.arange(sample.size) - np.repeat(np.cumsum(count) - count, count)
    pick = first[sample] + offset
    t = sample % n_t
    return Pairs(b=sample // n_t, t=t, a=agent[pick], t_agent=t_agent[t])


def front_bumper_hits(ego: Float, agent: Float) -> Bool:
    """Whether the ego's front bumper segment touches the agent box; ego, agent (N, 5)."""
    c = box_corners(*(ego[:, k] for k in range(5)))  # (N, 4, 2)
    p0, p1 = c[:, 0], c[:, 1]  # front-right, front-left
    ca, sa = np.cos(agent[:, BoxField.YAW]), np.sin(agent[:, BoxField.YAW])

    def local(p: Float) -> tuple[Float, Float]:
        d = p - agent[:, :2]
        return ca * d[:, 0] + sa * d[:, 1], -sa * d[:, 0] + ca * d[:, 1]

    (ax, ay), (bx, by) = local(p0), local(p1)
    hl, hw = 0.5 * agent[:, BoxField.LENGTH], 0.5 * agent[:, BoxField.WIDTH]
    t0, t1 = np.zeros(len(ax)), np.ones(len(ax))
    for p, d, h in ((ax, bx - ax, hl), (ay, by - ay, hw)):  # Liang-Barsky slab clipping
        safe = np.where(np.abs(d) < 1e-12, 1.0, d)
        lo_t, hi_t = (-h - p) / safe, (h - p) / safe
        lo_t, hi_t = np.minimum(lo_t, hi_t), np.maximum(lo_t, hi_t)
        parallel = np.abs(d) < 1e-12
        inside = np.abs(p) <= h
        t0 = np.where(parallel, np.where(inside, t0, 2.0), np.maximum(t0, lo_t))
        t1 = np.where(parallel, np.where(inside, t1, -1.0), np.minimum(t1, hi_t))
    return t0 <= t1


def no_at_fault_collision(scene: Scene, states: Float, areas: EgoAreas) -> Float:
    """NC (B,) in {0, 0.5, 1} of simulated states (B, T, N_STATE); see module docstring."""
    bsz, n_t = states.shape[:2]
    nc = np.ones(bsz)
    if scene.num_agents == 0:
        return nc
    ego = ego_boxes(states, scene.ego_length_m, scene.ego_width_m)
    agents = scene.agent_boxes
    p = broad_phase(ego, agents, scene.agent_valid, np.arange(n_t))
    hit = boxes_overlap(ego[p.b, p.t], agents[p.a, p.t])
    ignored = np.zeros((bsz, scene.num_agents), dtype=bool)
    ignored[p.b[hit & (p.t == 0)], p.a[hit & (p.t == 0)]] = True
    hit &= p.t > 0
    # first contact per (candidate, agent) decides the collision type
    first = np.full((bsz, scene.num_agents), n_t)
    np.minimum.at(first, (p.b[hit], p.a[hit]), p.t[hit])
    first[ignored] = n_t
    b_i, a_i = np.nonzero(first < n_t)
    if b_i.size == 0:
        return nc
    t_i = first[b_i, a_i]
    e, ag = ego[b_i, t_i], agents[a_i, t_i]
    ego_stopped = states[b_i, t_i, StateIndex.SPEED] <= STOPPED_SPEED_MPS
    agent_stopped = scene.agent_speed_mps[a_i, t_i] <= STOPPED_SPEED_MPS
    behind = bearing(e, scene.ego_rear_axle_to_center_m, ag[:, :2]) > BEHIND_ANGLE_RAD
    front = front_bumper_hits(e, ag)
    lateral_fault = areas.multiple_lanes[b_i, t_i] | areas.off_drivable[b_i, t_i]
    at_fault = ~ego_stopped & (agent_stopped | (~behind & (front | lateral_fault)))
    static = scene.agent_kind[a_i] == ActorKind.STATIC
    score = np.where(static, STATIC_COLLISION_SCORE, MOVING_COLLISION_SCORE)
    np.minimum.at(nc, b_i[at_fault], score[at_fault])
    return nc


def time_to_collision(scene: Scene, states: Float, areas: EgoAreas) -> Float:
    """TTC (B,) in {0, 1} of simulated states (B, T, N_STATE); see module docstring."""
    bsz, n_t = states.shape[:2]
    ttc = np.ones(bsz)
    if scene.num_agents == 0:
        return ttc
    ego = ego_boxes(states, scene.ego_length_m, scene.ego_width_m)
    agents = scene.agent_boxes
    p0 = broad_phase(ego[:, :1], agents, scene.agent_valid, np.zeros(1, dtype=np.intp))
    hit0 = boxes_overlap(ego[p0.b, 0], agents[p0.a, 0])
    start = np.zeros((bsz, scene.num_agents), dtype=bool)
    start[p0.b[hit0], p0.a[hit0]] = True
    moving = states[..., StateIndex.SPEED] > STOPPED_SPEED_MPS  # (B, T)
    loose = areas.multiple_lanes | areas.off_drivable | areas.in_junction
    yaw = states[..., StateIndex.YAW]
    for k in TTC_HORIZONS_STEPS:
        steps = n_t - k
        if steps <= 0:
            continue
        shift = states[:, :steps, StateIndex.SPEED] * k * PDM_DT_S
        proj = ego[:, :steps].copy()
        proj[..., BoxField.X] += shift * np.cos(yaw[:, :steps])
        proj[..., BoxField.Y] += shift * np.sin(yaw[:, :steps])
        # the projection made at t meets the agents at t + k
        p = broad_phase(proj, agents, scene.agent_valid, np.arange(k, n_t))
        keep = moving[p.b, p.t] & ~start[p.b, p.a] & (ttc[p.b] > 0)
        b, t, a, ta = p.b[keep], p.t[keep], p.a[keep], p.t_agent[keep]
        e, ag = proj[b, t], agents[a, ta]
        hit = boxes_overlap(e, ag)
        ang = bearing(e[hit], scene.ego_rear_axle_to_center_m, ag[hit, :2])
        counts = (ang < AHEAD_ANGLE_RAD) | (loose[b[hit], t[hit]] & (ang <= BEHIND_ANGLE_RAD))
        ttc[b[hit][counts]] = 0.0
    return ttc
