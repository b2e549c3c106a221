"""Test oracles of the scoring kernels: the vectorised NumPy paths the numba kernels of
:mod:`teachers.scoring` replaced, kept to check the kernels against (tests assert equality).
Not imported by production code.

- NC contacts (:func:`contacts_numpy`) and TTC (:func:`time_to_collision_numpy`): an agent
  table bucketed per (time, cell) read with two O(1) gathers per ego sample
  (:func:`broad_phase`), then the narrow phase (circle test, separating axes with the cosines and
  sines computed once per box) on the flat pair list (:func:`narrow_phase`); NC's pairs double
  as TTC's 0 s projection.
- the ego's map facts (:func:`ego_areas_numpy`, :func:`centerline_distance_xy_numpy`), DDC's
  worst window (:func:`driving_direction_compliance_numpy`) and the heading unwrap of the
  comfort filters (:func:`unwrap_time_numpy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import savgol_filter

from harness.boxes import boxes_overlap
from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.geometry import wrap_angle
from teachers.scene import Scene
from teachers.scoring.collisions import (
    AHEAD_ANGLE_RAD,
    BEHIND_ANGLE_RAD,
    BROAD_CELL_M,
    STOPPED_SPEED_MPS,
    TTC_HORIZONS_STEPS,
    AgentTable,
    Contacts,
    bearing,
    contacts,
)
from teachers.scoring.compliance import DDC_FULL_M, DDC_HALF_M, DDC_WINDOW_STEPS
from teachers.scoring.egopose import EgoPose
from teachers.scoring.rasters import (
    FLAG_DRIVABLE,
    FLAG_JUNCTION,
    FLAG_MULTI_LANE,
    FLAG_ON_ROUTE,
    EgoAreas,
    Grid,
    SceneRasters,
    red_light_hits,
)

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]
CORNER_SIGNS = ((1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0))  # box-frame corner signs


# ---------------------------------------------------------------- NC and TTC (collisions.py)


def broad_phase(
    ex: Float, ey: Float, e_t: NDArray[np.intp], ego_radius_m: float, ag: AgentTable
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pairs (sample index, flat agent index) of ego centres ``ex``/``ey`` (N,) meeting the agents
    at times ``e_t`` (N,) whose circumscribed circles may touch. Every valid agent box is listed in
    the cells its reach square (own circumradius + the ego's) touches, at most 4; each ego centre
    reads the list of its own cell."""
    n_t = ag.num_steps
    a_idx = np.flatnonzero(ag.valid)
    if a_idx.size == 0 or ex.size == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    reach = ag.radius[a_idx] + ego_radius_m
    cell = max(BROAD_CELL_M, 2.0 * float(reach.max()))
    x0, y0 = float(ex.min()) - cell, float(ey.min()) - cell
    nx = int((float(ex.max()) + cell - x0) // cell) + 1
    ny = int((float(ey.max()) + cell - y0) // cell) + 1
    n_keys = n_t * ny * nx
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
    entry_key, entry_agent = entry // ag.valid.size, entry % ag.valid.size
    count = np.bincount(entry_key, minlength=n_keys)
    start = np.cumsum(count) - count
    inv = 1.0 / cell  # samples are >= one cell inside the grid: truncation == floor
    q = (e_t * ny + ((ey - y0) * inv).astype(np.intp)) * nx + ((ex - x0) * inv).astype(np.intp)
    cnt = count[q]
    sample = np.flatnonzero(cnt)
    reps = cnt[sample]
    first = np.repeat(start[q[sample]] - (np.cumsum(reps) - reps), reps)
    pick = first + np.arange(first.size)
    return np.repeat(sample, reps), entry_agent[pick]


def sat_overlap(
    dx: Float,
    dy: Float,
    ca: Float,
    sa: Float,
    hla: float | Float,
    hwa: float | Float,
    cb: Float,
    sb: Float,
    hlb: Float,
    hwb: Float,
) -> Bool:
    """Separating-axis overlap (touching counts) of boxes a and b (N,) given the centre offset
    b - a, the cos/sin of each yaw and half lengths / widths; the same test as
    :func:`harness.boxes.boxes_overlap` with the trigonometry hoisted out."""
    cd = np.abs(ca * cb + sa * sb)  # |cos(yb - ya)|
    sd = np.abs(ca * sb - sa * cb)  # |sin(yb - ya)|
    hit = np.abs(dx * ca + dy * sa) <= hla + hlb * cd + hwb * sd  # a's length axis
    hit &= np.abs(-dx * sa + dy * ca) <= hwa + hlb * sd + hwb * cd  # a's width axis
    hit &= np.abs(dx * cb + dy * sb) <= hlb + hla * cd + hwa * sd  # b's length axis
    hit &= np.abs(-dx * sb + dy * cb) <= hwb + hla * sd + hwa * cd  # b's width axis
    return np.asarray(hit)


def narrow_phase(
    ex: Float,
    ey: Float,
    ec: Float,
    es: Float,
    sample: NDArray[np.intp],
    agent: NDArray[np.intp],
    ag: AgentTable,
    length_m: float,
    width_m: float,
) -> Bool:
    """Whether the ego box at each pair's sample (centre ``ex``/``ey``, cos/sin ``ec``/``es``)
    overlaps the pair's agent box: circle test, then SAT on the survivors; (P,) bool."""
    dx = ag.x[agent] - ex[sample]
    dy = ag.y[agent] - ey[sample]
    reach = ag.radius[agent] + 0.5 * float(np.hypot(length_m, width_m))
    near = np.flatnonzero(dx * dx + dy * dy <= reach * reach)
    out = np.zeros(sample.size, dtype=bool)
    s, a = sample[near], agent[near]
    out[near] = sat_overlap(
        dx[near],
        dy[near],
        ec[s],
        es[s],
        0.5 * length_m,
        0.5 * width_m,
        ag.cos[a],
        ag.sin[a],
        ag.hl[a],
        ag.hw[a],
    )
    return out


def contacts_numpy(scene: Scene, pose: EgoPose, ag: AgentTable) -> Contacts:
    """:func:`teachers.scoring.collisions.contacts` vectorised in NumPy (the oracle of the
    kernel ``_overlaps``)."""
    bsz, n_t = pose.shape
    ex, ey = pose.x.ravel(), pose.y.ravel()  # sample index = b * T + t
    ec, es = pose.cos.ravel(), pose.sin.ravel()
    e_t = np.tile(np.arange(n_t), bsz)
    ego_r = 0.5 * float(np.hypot(scene.ego_length_m, scene.ego_width_m))
    sample, agent = broad_phase(ex, ey, e_t, ego_r, ag)
    hit = narrow_phase(ex, ey, ec, es, sample, agent, ag, scene.ego_length_m, scene.ego_width_m)
    sample, agent = sample[hit], agent[hit]
    b, t = np.divmod(sample, n_t)
    a = agent // ag.num_steps
    start = np.zeros((bsz, scene.num_agents), dtype=bool)
    start[b[t == 0], a[t == 0]] = True
    return Contacts(b=b, t=t, a=a, start=start)


def time_to_collision_numpy(
    scene: Scene,
    states: Float,
    areas: EgoAreas,
    hits: Contacts | None = None,
    pose: EgoPose | None = None,
) -> Float:
    """:func:`teachers.scoring.collisions.time_to_collision` vectorised in NumPy (the oracle of
    the kernel ``_projected_ttc``): TTC (B,) in {0, 1} of simulated states (B, T, N_STATE).
    ``hits`` (NC's contacts) serve as the 0 s projection."""
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
    agents = scene.agent_boxes

    def fail(b: NDArray[np.intp], t: NDArray[np.intp], px: Float, py: Float, ta: Float) -> None:
        """Zero TTC where the hit agent (boxes ``ta`` (N, 5)) counts, from the projected centre."""
        e = np.stack([px, py, pose.yaw[b, t]], axis=-1)
        ang = bearing(e, rear, ta[:, :2])
        counts = (ang < AHEAD_ANGLE_RAD) | (loose[b, t] & (ang <= BEHIND_ANGLE_RAD))
        ttc[b[counts]] = 0.0

    # 0 s: the equal-time contacts
    keep = moving[hits.b, hits.t] & ~hits.start[hits.b, hits.a]
    b, t, a = hits.b[keep], hits.t[keep], hits.a[keep]
    fail(b, t, pose.x[b, t], pose.y[b, t], agents[a, t])
    # 0.3 / 0.6 / 0.9 s: the projection made at t meets the agents at t + k; the (B, T - k)
    # planes of every horizon are concatenated into one sample list and one broad phase
    parts = [k for k in TTC_HORIZONS_STEPS if 0 < k < n_t]
    if not parts:
        return ttc
    px, py, pc, ps, pt = [], [], [], [], []
    for k in parts:
        m = n_t - k
        shift = pose.speed[:, :m] * (k * PDM_DT_S)
        px.append((pose.x[:, :m] + shift * pose.cos[:, :m]).ravel())
        py.append((pose.y[:, :m] + shift * pose.sin[:, :m]).ravel())
        pc.append(pose.cos[:, :m].ravel())
        ps.append(pose.sin[:, :m].ravel())
        pt.append(np.tile(np.arange(k, n_t), bsz))
    ex, ey, ec, es = (np.concatenate(v) for v in (px, py, pc, ps))
    ego_r = 0.5 * float(np.hypot(scene.ego_length_m, scene.ego_width_m))
    sample, agent = broad_phase(ex, ey, np.concatenate(pt), ego_r, ag)
    # sample -> (candidate, step, horizon)
    sizes = np.array([bsz * (n_t - k) for k in parts])
    part = np.searchsorted(np.cumsum(sizes), sample, side="right")
    k_s = np.asarray(parts)[part]
    b, t = np.divmod(sample - (np.cumsum(sizes) - sizes)[part], n_t - k_s)
    a = agent // ag.num_steps
    keep = moving[b, t] & ~hits.start[b, a]
    sample, agent, b, t, a, k_s = (v[keep] for v in (sample, agent, b, t, a, k_s))
    hit = narrow_phase(ex, ey, ec, es, sample, agent, ag, scene.ego_length_m, scene.ego_width_m)
    s = sample[hit]
    fail(b[hit], t[hit], ex[s], ey[s], agents[a[hit], t[hit] + k_s[hit]])
    return ttc


def navsim_ttc_numpy(
    scene: Scene,
    pose: EgoPose,
    loose: Bool,
    start_hit: Bool,
    *,
    last_step: int,
    stopped_mps: float,
) -> Float:
    """:func:`teachers.scoring.collisions.navsim_time_to_collision` with NumPy (the oracle of the
    kernel ``_navsim_ttc``): per candidate, NAVSIM's loop over steps and projections, each
    projection tested against all agents at once with :func:`harness.boxes.boxes_overlap`;
    agents hit without counting join the exempt set."""
    bsz, n_t = pose.shape
    ttc = np.ones(bsz)
    boxes, valid = scene.agent_boxes, scene.agent_valid
    dims = np.array([scene.ego_length_m, scene.ego_width_m])
    rear = scene.ego_rear_axle_to_center_m
    last = min(last_step, n_t - 1 - max(TTC_HORIZONS_STEPS))
    for b in range(bsz):
        exempt = start_hit[b].copy()
        done = False
        for t in range(last + 1):
            speed = abs(pose.speed[b, t])
            if speed < stopped_mps or done:
                continue
            yaw = pose.yaw[b, t]
            rx, ry = pose.x[b, t] - rear * np.cos(yaw), pose.y[b, t] - rear * np.sin(yaw)
            for k in TTC_HORIZONS_STEPS:
                d = speed * k * PDM_DT_S
                ego = np.array([pose.x[b, t] + d * np.cos(yaw), pose.y[b, t] + d * np.sin(yaw),
                                yaw, *dims])  # fmt: skip
                hit = boxes_overlap(ego[None], boxes[:, t + k]) & valid[:, t + k] & ~exempt
                for a in np.flatnonzero(hit):
                    ang = abs(wrap_angle(np.arctan2(boxes[a, t + k, 1] - ry,
                                                    boxes[a, t + k, 0] - rx) - yaw))  # fmt: skip
                    if ang < AHEAD_ANGLE_RAD or (loose[b, t] and ang <= BEHIND_ANGLE_RAD):
                        done = True
                        break
                    exempt[a] = True
                if done:
                    break
        if done:
            ttc[b] = 0.0
    return ttc


def navsim_comfort_numpy(
    states: Float, rear_axle_to_center_m: float, yaw_accel_order: int = 3, dt: float = PDM_DT_S
) -> dict[str, Float]:
    """NAVSIM's comfort signals of simulated states (B, T, N_STATE), computed the way its
    pdm_comfort_metrics does (the oracle of :func:`teachers.scoring.comfort.navsim_comfort_signals`):
    scipy's ``savgol_filter`` along time on each signal, headings unwrapped by rounding the
    steps to whole turns, every signal rounded to 8 decimals."""
    n = states.shape[1]
    acc = states[..., StateIndex.ACCEL]
    om = states[..., StateIndex.YAW_RATE]
    alpha = np.concatenate([np.zeros_like(om[:, :1]), np.diff(om, axis=1) / dt], axis=1)
    centre = acc + rear_axle_to_center_m * om**2 + rear_axle_to_center_m * alpha

    def smooth(y: Float) -> Float:
        return np.round(savgol_filter(y, polyorder=2, window_length=min(8, n), axis=-1), 8)

    def deriv(y: Float, window: int, order: int = 1, poly: int = 2) -> Float:
        w = min(window, n)
        return np.round(savgol_filter(y, w, poly, deriv=order, delta=dt, axis=-1), 8)

    head = states[..., StateIndex.YAW]
    turns = np.zeros_like(head)
    turns[:, 1:] = np.cumsum(np.round(np.diff(head, axis=-1) / (2 * np.pi)), axis=-1)
    head = head - 2 * np.pi * turns
    lon, mag = smooth(centre), smooth(np.abs(acc))
    return {
        "lon_accel": lon,
        "accel": mag,
        "lon_jerk": deriv(lon, 15),
        "jerk": deriv(mag, 15),
        "yaw_rate": deriv(head, 5),
        "yaw_accel": deriv(head, 5, 2, yaw_accel_order),
    }


# ---------------------------------------------------------------- map facts (rasters.py)


def gather(grid: Grid, table: NDArray[np.generic], x: Float, y: Float, fill: int) -> NDArray[Any]:
    """Values of the (H, W) raster ``table`` at the cells of world points ``x``, ``y`` (...);
    ``fill`` outside the grid. When every point is inside (the usual case: the window covers the
    states plus a margin) the cell index is a plain truncation and no per-point mask is built."""
    h, w = grid.shape
    qx = (x - grid.origin_xy[0]) / grid.resolution_m
    qy = (y - grid.origin_xy[1]) / grid.resolution_m
    flat_table = table.ravel()
    if qx.size == 0 or (qx.min() >= 0 and qy.min() >= 0 and qx.max() < w and qy.max() < h):
        return flat_table[qy.astype(np.intp) * w + qx.astype(np.intp)]
    i, j = np.floor(qy), np.floor(qx)
    inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    flat = np.clip(i, 0, h - 1).astype(np.intp) * w + np.clip(j, 0, w - 1).astype(np.intp)
    return np.where(inside, flat_table[flat], fill)


def ego_areas_numpy(
    rasters: SceneRasters,
    states: Float,
    length_m: float,
    width_m: float,
    pose: EgoPose | None = None,
) -> EgoAreas:
    """:func:`teachers.scoring.rasters.ego_areas` vectorised in NumPy (the oracle of the kernel
    ``_box_facts``): one gather of the flag
    bitfield and one of the lane ids per corner, one flag gather for the centre."""
    pose = pose or EgoPose.of(states)
    x, y, c, s = pose.x, pose.y, pose.cos, pose.sin
    hl, hw = 0.5 * length_m, 0.5 * width_m
    c_l, s_l, c_w, s_w = c * hl, s * hl, c * hw, s * hw
    fine = rasters.fine
    flags_and: NDArray[np.uint8] | None = None
    flags_or: NDArray[np.uint8] | None = None
    lane_max: NDArray[np.int32] | None = None
    lane_min: NDArray[np.int32] | None = None
    big = np.int32(np.iinfo(np.int32).max)
    for su, sv in CORNER_SIGNS:  # harness.boxes.Corner order
        wx = x + su * c_l - sv * s_w
        wy = y + su * s_l + sv * c_w
        f = gather(fine, rasters.flags, wx, wy, 0)
        lane = gather(fine, rasters.lane_id, wx, wy, -1)
        low = np.where(lane >= 0, lane, big)
        if flags_and is None or flags_or is None or lane_max is None or lane_min is None:
            flags_and, flags_or, lane_max, lane_min = f, f.copy(), lane, low
        else:
            flags_and &= f
            flags_or |= f
            np.maximum(lane_max, lane, out=lane_max)
            np.minimum(lane_min, low, out=lane_min)
    assert flags_and is not None and flags_or is not None
    assert lane_max is not None and lane_min is not None
    multiple = ((lane_max >= 0) & (lane_min != lane_max)) | ((flags_or & FLAG_MULTI_LANE) > 0)
    centre = gather(fine, rasters.flags, x, y, 0)
    in_junction = (centre & FLAG_JUNCTION) > 0
    oncoming = (centre & (FLAG_DRIVABLE | FLAG_ON_ROUTE | FLAG_JUNCTION)) == FLAG_DRIVABLE
    return EgoAreas(
        off_drivable=(flags_and & FLAG_DRIVABLE) == 0,
        multiple_lanes=multiple,
        in_junction=in_junction,
        oncoming=oncoming,
        red_light=red_light_hits(rasters, states, length_m, width_m),
        centerline_m=rasters.centerline_distance_xy(x, y),
    )


def centerline_distance_xy_numpy(rasters: SceneRasters, x: Float, y: Float) -> Float:
    """:meth:`SceneRasters.centerline_distance_xy` vectorised in NumPy (the oracle of the
    kernel ``_centerline_distance``)."""
    c = rasters.coarse
    h, w = c.shape
    i = np.clip(((y - c.origin_xy[1]) / c.resolution_m).astype(np.intp), 0, h - 1)
    j = np.clip(((x - c.origin_xy[0]) / c.resolution_m).astype(np.intp), 0, w - 1)
    # (floor == truncation here: points left of / below the grid clip to row / column 0)
    seg = rasters.centerline_seg.ravel()[i * w + j]
    if (seg < 0).all():
        return np.full(x.shape, np.inf)
    seg = np.maximum(seg, 0)
    best: Float | None = None
    ax, ay, dx, dy, inv = rasters.seg_params
    for s in (seg, rasters.seg_prev[seg], rasters.seg_next[seg]):
        px, py = x - ax[s], y - ay[s]
        sx, sy = dx[s], dy[s]
        u = (px * sx + py * sy) * inv[s]
        np.clip(u, 0.0, 1.0, out=u)
        px -= u * sx
        py -= u * sy
        d2 = px * px + py * py
        best = d2 if best is None else np.minimum(best, d2, out=best)
    assert best is not None
    return np.sqrt(best)


# ---------------------------------------------------------------- DDC (compliance.py), comfort


def driving_direction_compliance_numpy(states: Float, areas: EgoAreas) -> Float:
    """:func:`teachers.scoring.compliance.driving_direction_compliance` vectorised in NumPy (the
    oracle of the kernel ``_worst_oncoming``)."""
    xy = states[..., [StateIndex.X, StateIndex.Y]]
    step = np.linalg.norm(np.diff(xy, axis=1), axis=-1)  # (B, T-1), displacement into step k+1
    counted = np.where(areas.oncoming[:, 1:], step, 0.0)
    c = np.concatenate([np.zeros((len(step), 1)), np.cumsum(counted, axis=1)], axis=1)
    w = min(DDC_WINDOW_STEPS, c.shape[1] - 1)
    window = c[:, w:] - c[:, :-w] if w > 0 else np.zeros((len(step), 1))
    worst = window.max(axis=1) if window.size else np.zeros(len(step))
    return np.where(worst < DDC_FULL_M, 1.0, np.where(worst < DDC_HALF_M, 0.5, 0.0))


def unwrap_time_numpy(yaw: Float) -> Float:
    """:func:`teachers.scoring.comfort.unwrap_time` vectorised in NumPy (the oracle of the
    kernel ``_unwrap_kernel``)."""
    out = np.empty(yaw.shape)
    out[:, 0] = yaw[:, 0]
    np.cumsum(wrap_angle(np.diff(yaw, axis=1)), axis=1, out=out[:, 1:])
    out[:, 1:] += yaw[:, :1]
    return out
