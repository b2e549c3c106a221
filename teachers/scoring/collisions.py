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

The rules above are the ``harness`` profile's. The ``navsim`` profile (the default) follows
NAVSIM: an agent counts as stopped by its speed where it first appears, static objects always
(:func:`first_seen_stopped`); TTC is NAVSIM's loop (:func:`navsim_time_to_collision`: steps
0 .. 31, an ego slower than 0.005 m/s skipped, "ahead" from the current rear axle, agents hit
without counting exempt for the rest of the horizon). In both, red lights are not collision
objects (TLC scores them, as NAVSIM skips their tokens in NC and TTC).

Speed: NC's contacts (:func:`_overlaps`) and TTC's 0.3 / 0.6 / 0.9 s projections
(:func:`_projected_ttc`, a candidate stops at its first counted hit) run in numba kernels over a
(time, cell) -> agent-list table (:class:`_AgentGrid`; cells at least two reach radii wide, so
every ego sample meets the agents of its own cell only). NC's pairs double as TTC's 0 s
projection. The vectorised NumPy path the kernels replaced is their test oracle
(``tests/oracles/scoring_numpy.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.boxes import BoxField, box_corners
from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.geometry import wrap_angle, wrap_angle_scalar
from harness.jit import njit
from harness.world.comfort import STOPPED_SPEED_MPS
from harness.world.state import ActorKind
from teachers.scene import Scene
from teachers.scoring.egopose import EgoPose
from teachers.scoring.rasters import EgoAreas

BEHIND_ANGLE_RAD = np.deg2rad(150.0)  # agent bearing beyond this from the heading: behind [rad]
AHEAD_ANGLE_RAD = np.deg2rad(30.0)  # agent bearing within this of the heading: ahead [rad]
BROAD_CELL_M = 12.0  # smallest broad-phase bucket [m]
TTC_HORIZONS_STEPS = (0, 3, 6, 9)  # projections in 0.1 s steps: 0 .. 0.9 s (TTC_HORIZON_S)
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


@dataclass(frozen=True, eq=False)
class AgentTable:
    """Agents of a scene as flat arrays over (A * T) in agent-major order (index a * T + t):
    centre ``x``, ``y`` [m], ``cos``/``sin`` of the yaw, half length / width ``hl``/``hw`` [m],
    circumradius ``radius`` [m]; ``valid`` (A * T,); ``num_steps`` T."""

    x: Float
    y: Float
    cos: Float
    sin: Float
    hl: Float
    hw: Float
    radius: Float
    valid: Bool
    num_steps: int

    @classmethod
    def of(cls, scene: Scene) -> AgentTable:
        """The table of ``scene.agent_boxes`` (A, T, 5)."""
        b = scene.agent_boxes.reshape(-1, 5)
        yaw = b[:, BoxField.YAW]
        return cls(
            x=np.ascontiguousarray(b[:, BoxField.X]),
            y=np.ascontiguousarray(b[:, BoxField.Y]),
            cos=np.cos(yaw),
            sin=np.sin(yaw),
            hl=0.5 * b[:, BoxField.LENGTH],
            hw=0.5 * b[:, BoxField.WIDTH],
            radius=0.5 * np.hypot(b[:, BoxField.LENGTH], b[:, BoxField.WIDTH]),
            valid=scene.agent_valid.ravel(),
            num_steps=scene.agent_boxes.shape[1],
        )


@dataclass(frozen=True, eq=False)
class Contacts:
    """Ego-agent overlaps at equal times from NC's pass, reused by TTC's 0 s projection: the
    candidate ``b``, step ``t`` and agent ``a`` (H,) of every overlapping pair, and ``start``
    (B, A) the agents already overlapping at t = 0."""

    b: NDArray[np.intp]
    t: NDArray[np.intp]
    a: NDArray[np.intp]
    start: Bool


def contacts(scene: Scene, pose: EgoPose, ag: AgentTable) -> Contacts:
    """All overlapping (candidate, step, agent) triples of the ego boxes with the agents, in
    (candidate, step) order; the pairs come from the numba kernel :func:`_overlaps`."""
    bsz, n_t = pose.shape
    start = np.zeros((bsz, scene.num_agents), dtype=bool)
    if not ag.valid.any() or bsz == 0:
        empty = np.zeros(0, np.intp)
        return Contacts(b=empty, t=empty, a=empty, start=start)
    ego_r = 0.5 * float(np.hypot(scene.ego_length_m, scene.ego_width_m))
    grid = _AgentGrid.build(pose, 0, ego_r, ag)
    ego = np.array([0.5 * scene.ego_length_m, 0.5 * scene.ego_width_m, ego_r])
    args = (
        pose.x,
        pose.y,
        pose.cos,
        pose.sin,
        ag.x,
        ag.y,
        ag.cos,
        ag.sin,
        ag.hl,
        ag.hw,
        ag.radius,
        ag.num_steps,
        grid.origin,
        grid.cell_m,
        grid.nx,
        grid.ny,
        grid.start,
        grid.agents,
        ego,
    )
    count = _overlaps(*args, np.zeros(0, np.int64))
    sample = np.empty(count, np.int64)
    _overlaps(*args, sample)
    b, t = np.divmod(sample // ag.valid.size, n_t)
    a = (sample % ag.valid.size) // ag.num_steps
    b, t, a = b.astype(np.intp), t.astype(np.intp), a.astype(np.intp)
    start[b[t == 0], a[t == 0]] = True
    return Contacts(b=b, t=t, a=a, start=start)


@njit
def _boxes_touch(  # noqa: PLR0913
    dx: float,
    dy: float,
    ca: float,
    sa: float,
    hle: float,
    hwe: float,
    cb: float,
    sb: float,
    hlb: float,
    hwb: float,
) -> bool:
    """Separating-axis test of two oriented rectangles in compiled kernels: B's centre is at
    (dx, dy) [m] from A's; (ca, sa) / (cb, sb) their heading cos/sin; hle, hwe / hlb, hwb their
    half length / width [m]. Touching counts as overlapping (as
    :func:`harness.boxes.boxes_overlap`)."""
    cd = abs(ca * cb + sa * sb)
    sd = abs(ca * sb - sa * cb)
    return not (
        abs(dx * ca + dy * sa) > hle + hlb * cd + hwb * sd
        or abs(-dx * sa + dy * ca) > hwe + hlb * sd + hwb * cd
        or abs(dx * cb + dy * sb) > hlb + hle * cd + hwe * sd
        or abs(-dx * sb + dy * cb) > hwb + hle * sd + hwe * cd
    )  # fmt: skip


@njit
def _overlaps(  # noqa: PLR0913
    ex: Float,
    ey: Float,
    ecos: Float,
    esin: Float,
    ax: Float,
    ay: Float,
    acos: Float,
    asin: Float,
    ahl: Float,
    ahw: Float,
    aradius: Float,
    n_ta: int,
    origin: Float,
    cell: float,
    nx: int,
    ny: int,
    start: NDArray[np.int64],
    agents: NDArray[np.int64],
    ego: Float,
    found: NDArray[np.int64],
) -> int:
    """Count the overlapping (ego sample, agent box) pairs at equal times and, when ``found`` is
    large enough, store each as (b * T + t) * (A * T) + flat agent index; ego planes (B, T),
    agents flat (A * T), ``ego`` = [half length, half width, circumradius] [m]."""
    hle, hwe, ego_r = ego[0], ego[1], ego[2]
    inv = 1.0 / cell
    bsz, n_t = ex.shape
    n_flat = ax.shape[0]
    n = 0
    store = found.shape[0] > 0
    for b in range(bsz):
        for t in range(min(n_t, n_ta)):
            ca, sa = ecos[b, t], esin[b, t]
            px, py = ex[b, t], ey[b, t]
            q = (t * ny + int((py - origin[1]) * inv)) * nx + int((px - origin[0]) * inv)
            for e in range(start[q], start[q + 1]):
                j = agents[e]
                dx = ax[j] - px
                dy = ay[j] - py
                reach = aradius[j] + ego_r
                if dx * dx + dy * dy > reach * reach:
                    continue
                if not _boxes_touch(dx, dy, ca, sa, hle, hwe, acos[j], asin[j], ahl[j], ahw[j]):
                    continue
                if store:
                    found[n] = (b * n_t + t) * n_flat + j
                n += 1
    return n


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


def first_seen_stopped(scene: Scene) -> Bool:
    """(A,) whether each agent counts as stopped in nuPlan's collision rule: its speed where it
    first appears (the first valid step) is <= STOPPED_SPEED_MPS; static objects always."""
    first = np.argmax(scene.agent_valid, axis=1)
    speed = scene.agent_speed_mps[np.arange(scene.num_agents), first]
    return np.asarray((speed <= STOPPED_SPEED_MPS) | (scene.agent_kind == ActorKind.STATIC))


def no_at_fault_collision(
    scene: Scene,
    states: Float,
    areas: EgoAreas,
    hits: Contacts | None = None,
    *,
    stopped_at_first_seen: bool = False,
) -> Float:
    """NC (B,) in {0, 0.5, 1} of simulated states (B, T, N_STATE); see module docstring. Pass the
    :func:`contacts` of the states to share them with TTC. ``stopped_at_first_seen``: NAVSIM's
    stopped-agent rule (:func:`first_seen_stopped`) instead of the speed at the contact step."""
    bsz, n_t = states.shape[:2]
    nc = np.ones(bsz)
    if scene.num_agents == 0:
        return nc
    if hits is None:
        hits = contacts(scene, EgoPose.of(states), AgentTable.of(scene))
    later = hits.t > 0
    b, t, a = hits.b[later], hits.t[later], hits.a[later]
    # first contact per (candidate, agent) decides the collision type
    first = np.full((bsz, scene.num_agents), n_t)
    np.minimum.at(first, (b, a), t)
    first[hits.start] = n_t
    b_i, a_i = np.nonzero(first < n_t)
    if b_i.size == 0:
        return nc
    t_i = first[b_i, a_i]
    e = ego_boxes(states[b_i, t_i], scene.ego_length_m, scene.ego_width_m)
    ag = scene.agent_boxes[a_i, t_i]
    ego_stopped = states[b_i, t_i, StateIndex.SPEED] <= STOPPED_SPEED_MPS
    if stopped_at_first_seen:
        agent_stopped = first_seen_stopped(scene)[a_i]
    else:
        agent_stopped = scene.agent_speed_mps[a_i, t_i] <= STOPPED_SPEED_MPS
    behind = bearing(e, scene.ego_rear_axle_to_center_m, ag[:, :2]) > BEHIND_ANGLE_RAD
    front = front_bumper_hits(e, ag)
    lateral_fault = areas.multiple_lanes[b_i, t_i] | areas.off_drivable[b_i, t_i]
    at_fault = ~ego_stopped & (agent_stopped | (~behind & (front | lateral_fault)))
    static = scene.agent_kind[a_i] == ActorKind.STATIC
    score = np.where(static, STATIC_COLLISION_SCORE, MOVING_COLLISION_SCORE)
    np.minimum.at(nc, b_i[at_fault], score[at_fault])
    return nc


def time_to_collision(
    scene: Scene,
    states: Float,
    areas: EgoAreas,
    hits: Contacts | None = None,
    pose: EgoPose | None = None,
) -> Float:
    """TTC (B,) in {0, 1} of simulated states (B, T, N_STATE); see module docstring. ``hits``
    (NC's :func:`contacts`) serve as the 0 s projection; the later projections run in
    the numba kernel :func:`_projected_ttc`."""
    bsz, n_t = states.shape[:2]
    ttc = np.ones(bsz)
    if scene.num_agents == 0:
        return ttc
    pose = pose or EgoPose.of(states)
    ag = AgentTable.of(scene)
    if hits is None:
        hits = contacts(scene, pose, ag)
    moving = pose.speed > STOPPED_SPEED_MPS  # (B, T)
    loose = areas.multiple_lanes | areas.off_drivable | areas.in_junction
    rear = scene.ego_rear_axle_to_center_m
    # 0 s: the equal-time contacts
    keep = moving[hits.b, hits.t] & ~hits.start[hits.b, hits.a]
    b, t, a = hits.b[keep], hits.t[keep], hits.a[keep]
    if b.size:
        e = np.stack([pose.x[b, t], pose.y[b, t], pose.yaw[b, t]], axis=-1)
        ang = bearing(e, rear, scene.agent_boxes[a, t, :2])
        counts = (ang < AHEAD_ANGLE_RAD) | (loose[b, t] & (ang <= BEHIND_ANGLE_RAD))
        ttc[b[counts]] = 0.0
    horizons = np.array([k for k in TTC_HORIZONS_STEPS if 0 < k < n_t], dtype=np.int64)
    if horizons.size == 0 or not ag.valid.any():
        return ttc
    ego_r = 0.5 * float(np.hypot(scene.ego_length_m, scene.ego_width_m))
    grid = _AgentGrid.build(pose, int(horizons.max()), ego_r, ag)
    _projected_ttc(
        pose.x,
        pose.y,
        pose.yaw,
        pose.cos,
        pose.sin,
        pose.speed,
        moving,
        loose,
        hits.start,
        horizons,
        ag.x,
        ag.y,
        ag.cos,
        ag.sin,
        ag.hl,
        ag.hw,
        ag.radius,
        ag.num_steps,
        grid.origin,
        grid.cell_m,
        grid.nx,
        grid.ny,
        grid.start,
        grid.agents,
        np.array([0.5 * scene.ego_length_m, 0.5 * scene.ego_width_m, ego_r, rear]),
        ttc,
    )
    return ttc


@dataclass(frozen=True, eq=False)
class _AgentGrid:
    """Valid agent boxes bucketed per (time step, square cell): the flat agent indices of bucket
    ``q = (t * ny + cy) * nx + cx`` are ``agents[start[q]:start[q + 1]]``; every box is listed in
    each cell its reach square (own circumradius + the ego's) touches, so an ego centre meets
    every agent whose circles may touch through its own cell. ``origin`` (2,) [m], ``cell_m``
    [m]; the grid covers the ego centres and their projections with a one-cell margin."""

    origin: Float
    cell_m: float
    nx: int
    ny: int
    start: NDArray[np.int64]
    agents: NDArray[np.int64]

    @classmethod
    def build(cls, pose: EgoPose, max_steps: int, ego_r: float, ag: AgentTable) -> _AgentGrid:
        """The grid for the ego centres of ``pose`` projected up to ``max_steps`` steps ahead."""
        a_idx = np.flatnonzero(ag.valid)
        reach = ag.radius[a_idx] + ego_r
        cell = max(BROAD_CELL_M, 2.0 * float(reach.max()))
        shift = float(np.abs(pose.speed).max()) * max_steps * PDM_DT_S
        x0 = float(pose.x.min()) - shift - cell
        y0 = float(pose.y.min()) - shift - cell
        nx = int((float(pose.x.max()) + shift + cell - x0) // cell) + 1
        ny = int((float(pose.y.max()) + shift + cell - y0) // cell) + 1
        n_t = ag.num_steps
        ax, ay, t_a = ag.x[a_idx], ag.y[a_idx], a_idx % n_t
        keys = []
        for sx in (-1.0, 1.0):
            cx = np.floor((ax + sx * reach - x0) / cell).astype(np.int64)
            for sy in (-1.0, 1.0):
                cy = np.floor((ay + sy * reach - y0) / cell).astype(np.int64)
                inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
                key = (t_a * ny + cy) * nx + cx
                keys.append(np.where(inside, key * ag.valid.size + a_idx, -1))
        entry = np.unique(np.concatenate(keys))
        entry = entry[entry >= 0]
        count = np.bincount(entry // ag.valid.size, minlength=n_t * ny * nx)
        start = np.zeros(count.size + 1, np.int64)
        np.cumsum(count, out=start[1:])
        return cls(
            origin=np.array([x0, y0]),
            cell_m=cell,
            nx=nx,
            ny=ny,
            start=start,
            agents=(entry % ag.valid.size).astype(np.int64),
        )


@njit
def _projected_ttc(  # noqa: PLR0913
    ex: Float,
    ey: Float,
    eyaw: Float,
    ecos: Float,
    esin: Float,
    espeed: Float,
    moving: Bool,
    loose: Bool,
    start_hit: Bool,
    horizons: NDArray[np.int64],
    ax: Float,
    ay: Float,
    acos: Float,
    asin: Float,
    ahl: Float,
    ahw: Float,
    aradius: Float,
    n_ta: int,
    origin: Float,
    cell: float,
    nx: int,
    ny: int,
    start: NDArray[np.int64],
    agents: NDArray[np.int64],
    ego: Float,
    ttc: Float,
) -> None:
    """Zero ``ttc[b]`` where a projection of candidate b's box (centre moved speed x k x 0.1 s
    along its heading at step t, k in ``horizons``) overlaps an agent at step t + k that counts
    (ahead, or not behind while ``loose``); ego planes (B, T), agents flat (A * T), ``ego`` =
    [half length, half width, circumradius, rear-axle offset] [m]."""
    hle, hwe, ego_r, rear = ego[0], ego[1], ego[2], ego[3]
    inv = 1.0 / cell
    bsz, n_t = ex.shape
    for b in range(bsz):
        if ttc[b] == 0.0:
            continue
        hit = False
        for k in horizons:
            lead = k * PDM_DT_S
            for t in range(min(n_t, n_ta) - k):
                if not moving[b, t]:
                    continue
                ca, sa = ecos[b, t], esin[b, t]
                shift = espeed[b, t] * lead
                px = ex[b, t] + shift * ca
                py = ey[b, t] + shift * sa
                q = ((t + k) * ny + int((py - origin[1]) * inv)) * nx + int((px - origin[0]) * inv)
                for e in range(start[q], start[q + 1]):
                    j = agents[e]
                    if start_hit[b, j // n_ta]:
                        continue
                    dx = ax[j] - px
                    dy = ay[j] - py
                    reach = aradius[j] + ego_r
                    if dx * dx + dy * dy > reach * reach:
                        continue
                    if not _boxes_touch(dx, dy, ca, sa, hle, hwe, acos[j], asin[j], ahl[j], ahw[j]):
                        continue
                    yaw = eyaw[b, t]
                    rx = px - rear * np.cos(yaw)
                    ry = py - rear * np.sin(yaw)
                    ang = abs(wrap_angle_scalar(np.arctan2(ay[j] - ry, ax[j] - rx) - yaw))
                    if ang < AHEAD_ANGLE_RAD or (loose[b, t] and ang <= BEHIND_ANGLE_RAD):
                        hit = True
                        break
                if hit:
                    break
            if hit:
                break
        if hit:
            ttc[b] = 0.0


def navsim_time_to_collision(
    scene: Scene,
    pose: EgoPose,
    loose: Bool,
    start_hit: Bool,
    *,
    last_step: int,
    stopped_mps: float,
) -> Float:
    """TTC (B,) in {0, 1} under NAVSIM's rule: for steps t = 0 .. ``last_step`` where the ego
    speed is >= ``stopped_mps``, and projections k = 0, 3, 6, 9 steps in that order, the ego box
    moved speed x k x 0.1 s along its heading is tested against the agents at step t + k; a hit
    counts when the agent centre is ahead (< 30 deg) of the ego's *current* rear axle, or
    ``loose`` (B, T) holds and it is not behind (> 150 deg); a hit that does not count exempts
    that agent for the rest of the candidate's horizon, as do the agents in ``start_hit`` (B, A)
    (overlapping at t = 0). Numba kernel :func:`_navsim_ttc`; NumPy oracle
    ``tests/oracles/scoring_numpy.py::navsim_ttc_numpy``."""
    bsz, n_t = pose.shape
    ttc = np.ones(bsz)
    ag = AgentTable.of(scene)
    if scene.num_agents == 0 or not ag.valid.any() or bsz == 0:
        return ttc
    horizons = np.array([k for k in TTC_HORIZONS_STEPS if k < n_t], dtype=np.int64)
    ego_r = 0.5 * float(np.hypot(scene.ego_length_m, scene.ego_width_m))
    grid = _AgentGrid.build(pose, int(horizons.max()), ego_r, ag)
    _navsim_ttc(
        pose.x,
        pose.y,
        pose.yaw,
        pose.cos,
        pose.sin,
        pose.speed,
        np.ascontiguousarray(loose),
        np.ascontiguousarray(start_hit),
        horizons,
        min(last_step, n_t - 1 - int(horizons.max())),
        stopped_mps,
        ag.x,
        ag.y,
        ag.cos,
        ag.sin,
        ag.hl,
        ag.hw,
        ag.radius,
        ag.num_steps,
        grid.origin,
        grid.cell_m,
        grid.nx,
        grid.ny,
        grid.start,
        grid.agents,
        np.array(
            [
                0.5 * scene.ego_length_m,
                0.5 * scene.ego_width_m,
                ego_r,
                scene.ego_rear_axle_to_center_m,
            ]
        ),
        ttc,
    )
    return ttc


@njit
def _navsim_ttc(  # noqa: PLR0913, PLR0912
    ex: Float,
    ey: Float,
    eyaw: Float,
    ecos: Float,
    esin: Float,
    espeed: Float,
    loose: Bool,
    start_hit: Bool,
    horizons: NDArray[np.int64],
    last_step: int,
    stopped_mps: float,
    ax: Float,
    ay: Float,
    acos: Float,
    asin: Float,
    ahl: Float,
    ahw: Float,
    aradius: Float,
    n_ta: int,
    origin: Float,
    cell: float,
    nx: int,
    ny: int,
    start: NDArray[np.int64],
    agents: NDArray[np.int64],
    ego: Float,
    ttc: Float,
) -> None:
    """Zero ``ttc[b]`` per :func:`navsim_time_to_collision`; ego planes (B, T), agents flat
    (A * T), ``ego`` = [half length, half width, circumradius, rear-axle offset] [m]. Agents are
    visited in ascending index within a bucket, so the exemptions build up in a fixed order."""
    hle, hwe, ego_r, rear = ego[0], ego[1], ego[2], ego[3]
    inv = 1.0 / cell
    bsz = ex.shape[0]
    n_agents = start_hit.shape[1]
    exempt = np.zeros(n_agents, dtype=np.bool_)
    for b in range(bsz):
        for a in range(n_agents):
            exempt[a] = start_hit[b, a]
        hit = False
        for t in range(last_step + 1):
            speed = abs(espeed[b, t])  # NAVSIM: the velocity's magnitude
            if speed < stopped_mps:
                continue
            ca, sa = ecos[b, t], esin[b, t]
            yaw = eyaw[b, t]
            rx = ex[b, t] - rear * ca
            ry = ey[b, t] - rear * sa
            for k in horizons:
                if t + k >= n_ta:
                    continue
                shift = speed * (k * PDM_DT_S)
                px = ex[b, t] + shift * ca
                py = ey[b, t] + shift * sa
                q = ((t + k) * ny + int((py - origin[1]) * inv)) * nx + int((px - origin[0]) * inv)
                for e in range(start[q], start[q + 1]):
                    j = agents[e]
                    a = j // n_ta
                    if exempt[a]:
                        continue
                    dx = ax[j] - px
                    dy = ay[j] - py
                    reach = aradius[j] + ego_r
                    if dx * dx + dy * dy > reach * reach:
                        continue
                    if not _boxes_touch(dx, dy, ca, sa, hle, hwe, acos[j], asin[j], ahl[j], ahw[j]):
                        continue
                    ang = abs(wrap_angle_scalar(np.arctan2(ay[j] - ry, ax[j] - rx) - yaw))
                    if ang < AHEAD_ANGLE_RAD or (loose[b, t] and ang <= BEHIND_ANGLE_RAD):
                        hit = True
                        break
                    exempt[a] = True
                if hit:
                    break
            if hit:
                break
        if hit:
            ttc[b] = 0.0
