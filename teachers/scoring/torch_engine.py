"""Torch backend of the PDMS/EPDMS scorer: rollout + every sub-metric on one device.

``score_candidates_torch`` mirrors :func:`teachers.scoring.aggregate.score_states` metric by
metric (same definitions, constants and raster semantics) with dense tensor ops, so it runs
unchanged on CPU and CUDA with no host round trip between the upload of the plans / scene /
rasters and the download of the (NUM_METRICS, B) matrix. Differences from the NumPy engine, all
of implementation and not of definition:
- collisions are dense over candidates x time x agents (circle pre-test as a mask, then SAT) in
  chunks of COLLISION_CHUNK candidates instead of a broad-phase pair list (no data-dependent
  shapes, hence no host syncs);
- red-light tests gather every perimeter sample of every light (no bounding-box pre-filter);
- the raster window is :func:`teachers.scoring.aggregate.plan_window` (the plans grown by
  20 m), built before the rollout so there is no device-to-host sync; the NumPy engine uses the
  rolled-out states' window. The route station of a point far off the route depends on which
  route segments the window holds, so EP (through the batch-best progress) can differ between
  the engines in scenes where some candidate leaves the route; pass the same ``rasters`` to
  both to compare them exactly (the tests do);
- float32 (the default on CUDA) can flip decisions that sit within float32 rounding of a
  threshold or a raster cell edge; float64 reproduces the NumPy engine (tests check both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.world.state import ActorKind
from teachers.rollout import full_plan, scene_lqr_config
from teachers.scene import PREVIOUS_PLAN_OFFSET_STEPS, Scene
from teachers.scoring import collisions as col
from teachers.scoring import comfort as cmf
from teachers.scoring import rules
from teachers.scoring.aggregate import (
    EPDMS_GATES,
    EPDMS_WEIGHTS,
    NUM_METRICS,
    PDMS_GATES,
    PDMS_WEIGHTS,
    Metric,
    ScoreMatrix,
    plan_window,
)
from teachers.scoring.progress import EP_MIN_PROGRESS_M
from teachers.scoring.rasters import (
    FLAG_DRIVABLE,
    FLAG_JUNCTION,
    FLAG_MULTI_LANE,
    FLAG_ON_ROUTE,
    RASTER_RESOLUTION_M,
    SceneRasters,
    ScoringMap,
    perimeter_samples,
)
from teachers.scoring.torch_rollout import lqr_rollout_torch, wrap

COLLISION_CHUNK = 512  # candidates per dense collision block (memory ~ chunk x T x A)

Float = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class DeviceRasters:
    """:class:`SceneRasters` uploaded: fine ``flags``/``lane_id``/``red`` (flattened; ``red``
    (K, H*W)) with ``red_state`` (K, T), coarse ``centerline_seg``/``route_seg`` (flattened),
    lane segment parameters ``seg`` (5, S) [ax, ay, dx, dy, 1/len2] and neighbours, route
    segments ``route`` (5, R) and ``route_s0`` (R,), grid frames as Python floats."""

    fine: tuple[float, float, float, int, int]  # x0, y0, res, H, W
    coarse: tuple[float, float, float, int, int]
    flags: Tensor
    lane_id: Tensor
    red: Tensor
    red_state: Tensor
    centerline_seg: Tensor
    seg: Tensor
    seg_prev: Tensor
    seg_next: Tensor
    route_seg: Tensor
    route: Tensor
    route_s0: Tensor

    @classmethod
    def upload(cls, r: SceneRasters, device: torch.device, dtype: torch.dtype) -> DeviceRasters:
        """Copy the rasters to ``device`` (one transfer per array, once per scene)."""

        def t(a: ArrayLike, dt: torch.dtype | None = None) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dt)

        def frame(g: object) -> tuple[float, float, float, int, int]:
            o, res, (h, w) = g.origin_xy, g.resolution_m, g.shape  # type: ignore[attr-defined]
            return float(o[0]), float(o[1]), float(res), int(h), int(w)

        d = r.seg_b - r.seg_a
        seg = np.stack([r.seg_a[:, 0], r.seg_a[:, 1], d[:, 0], d[:, 1]])
        seg = np.concatenate([seg, 1.0 / np.maximum((d * d).sum(-1), 1e-12)[None]])
        rd = r.route_b - r.route_a
        route = np.stack([r.route_a[:, 0], r.route_a[:, 1], rd[:, 0], rd[:, 1]])
        route = np.concatenate([route, 1.0 / np.maximum((rd * rd).sum(-1), 1e-12)[None]])
        k = r.red_masks.shape[0]
        return cls(
            fine=frame(r.fine),
            coarse=frame(r.coarse),
            flags=t(r.flags.ravel().astype(np.int32)),
            lane_id=t(r.lane_id.ravel()),
            red=t(r.red_masks.reshape(k, int(np.prod(r.flags.shape)))),
            red_state=t(r.red_state),
            centerline_seg=t(r.centerline_seg.ravel()),
            seg=t(seg, dtype),
            seg_prev=t(r.seg_prev),
            seg_next=t(r.seg_next),
            route_seg=t(r.route_seg.ravel()),
            route=t(route, dtype),
            route_s0=t(r.route_s0, dtype),
        )


def _cells(
    frame: tuple[float, float, float, int, int], x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    """Flat cell index (clamped) and in-grid flag of world points (...)."""
    x0, y0, res, h, w = frame
    i = torch.floor((y - y0) / res)
    j = torch.floor((x - x0) / res)
    inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    return i.clamp(0, h - 1).long() * w + j.clamp(0, w - 1).long(), inside


def _seg_dist2(x: Tensor, y: Tensor, p: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """Squared distance and clamped fraction of points (...) to segments ``s`` of params p (5, S)."""
    px, py = x - p[0, s], y - p[1, s]
    sx, sy = p[2, s], p[3, s]
    u = ((px * sx + py * sy) * p[4, s]).clamp(0.0, 1.0)
    px, py = px - u * sx, py - u * sy
    return px * px + py * py, u


@dataclass(frozen=True)
class _Areas:
    """Torch twin of :class:`teachers.scoring.rasters.EgoAreas`, (B, T) each."""

    off_drivable: Tensor
    multiple_lanes: Tensor
    in_junction: Tensor
    oncoming: Tensor
    red_light: Tensor
    centerline_m: Tensor


def _areas(r: DeviceRasters, st: Tensor, length_m: float, width_m: float) -> _Areas:
    x, y, yaw = st[..., StateIndex.X], st[..., StateIndex.Y], st[..., StateIndex.YAW]
    c, s = torch.cos(yaw), torch.sin(yaw)
    signs = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]], device=st.device)
    su, sv = signs[:, 0].to(st.dtype), signs[:, 1].to(st.dtype)
    hl, hw = 0.5 * length_m, 0.5 * width_m
    wx = x[..., None] + su * (c * hl)[..., None] - sv * (s * hw)[..., None]  # (B, T, 4)
    wy = y[..., None] + su * (s * hl)[..., None] + sv * (c * hw)[..., None]
    flat, inside = _cells(r.fine, wx, wy)
    f = torch.where(inside, r.flags[flat], 0)
    lane = torch.where(inside, r.lane_id[flat], -1)
    big = torch.iinfo(torch.int32).max
    lane_max = lane.amax(-1)
    lane_min = torch.where(lane >= 0, lane, big).amin(-1)
    multiple = ((lane_max >= 0) & (lane_min != lane_max)) | ((f & FLAG_MULTI_LANE) > 0).any(-1)
    off = ((f & FLAG_DRIVABLE) == 0).any(-1)
    cflat, cin = _cells(r.fine, x, y)
    centre = torch.where(cin, r.flags[cflat], 0)
    in_junction = (centre & FLAG_JUNCTION) > 0
    mask = FLAG_DRIVABLE | FLAG_ON_ROUTE | FLAG_JUNCTION
    oncoming = (centre & mask) == FLAG_DRIVABLE
    # centerline distance: coarse nearest segment and its neighbours
    x0, y0, res, h, w = r.coarse
    ci = ((y - y0) / res).floor().clamp(0, h - 1).long()
    cj = ((x - x0) / res).floor().clamp(0, w - 1).long()
    seg = r.centerline_seg[ci * w + cj]
    none = seg < 0
    seg = seg.clamp(min=0)
    best = _seg_dist2(x, y, r.seg, seg)[0]
    for nb in (r.seg_prev[seg], r.seg_next[seg]):
        best = torch.minimum(best, _seg_dist2(x, y, r.seg, nb)[0])
    dist = torch.where(none, torch.full_like(best, math.inf), best.sqrt())
    # red lights: every perimeter sample of the box against each light's mask
    red = torch.zeros_like(off)
    if r.red.shape[0]:
        local = torch.as_tensor(perimeter_samples(length_m, width_m), device=st.device)
        lu, lv = local[:, 0].to(st.dtype), local[:, 1].to(st.dtype)
        px = x[..., None] + c[..., None] * lu - s[..., None] * lv  # (B, T, P)
        py = y[..., None] + s[..., None] * lu + c[..., None] * lv
        pflat, pin = _cells(r.fine, px, py)
        n_t = st.shape[1]
        for k in range(r.red.shape[0]):
            touch = (r.red[k][pflat] & pin).any(-1)  # (B, T)
            red |= touch & r.red_state[k, :n_t][None] & ~touch[:, :1]
    return _Areas(off, multiple, in_junction, oncoming, red, dist)


def _route_station(r: DeviceRasters, x: Tensor, y: Tensor) -> Tensor:
    x0, y0, res, h, w = r.coarse
    ci = ((y - y0) / res).floor().clamp(0, h - 1).long()
    cj = ((x - x0) / res).floor().clamp(0, w - 1).long()
    seg = r.route_seg[ci * w + cj].clamp(min=0)
    last = r.route.shape[1] - 1
    best_d = torch.full_like(x, math.inf)
    best_s = torch.zeros_like(x)
    seg_len = torch.sqrt(1.0 / r.route[4])
    for s in (seg, (seg - 1).clamp(min=0), (seg + 1).clamp(max=last)):
        d2, u = _seg_dist2(x, y, r.route, s)
        d = d2.sqrt()
        better = d < best_d
        best_d = torch.where(better, d, best_d)
        best_s = torch.where(better, r.route_s0[s] + u * seg_len[s], best_s)
    return best_s


def _sat(dx: Tensor, dy: Tensor, ca: Tensor, sa: Tensor, hla: float, hwa: float,
         cb: Tensor, sb: Tensor, hlb: Tensor, hwb: Tensor) -> Tensor:  # fmt: skip
    cd = (ca * cb + sa * sb).abs()
    sd = (ca * sb - sa * cb).abs()
    hit = (dx * ca + dy * sa).abs() <= hla + hlb * cd + hwb * sd
    hit &= (-dx * sa + dy * ca).abs() <= hwa + hlb * sd + hwb * cd
    hit &= (dx * cb + dy * sb).abs() <= hlb + hla * cd + hwa * sd
    hit &= (-dx * sb + dy * cb).abs() <= hwb + hla * sd + hwa * cd
    return hit


def _overlap(ex: Tensor, ey: Tensor, ec: Tensor, es: Tensor, ag: dict[str, Tensor],
             t_a: slice, length_m: float, width_m: float) -> Tensor:  # fmt: skip
    """Dense overlap (b, T', A) of ego boxes (b, T') with the agents at times ``t_a`` (T')."""
    ax, ay = ag["x"][:, t_a].T[None], ag["y"][:, t_a].T[None]  # (1, T', A)
    dx, dy = ax - ex[..., None], ay - ey[..., None]
    reach = ag["r"][:, t_a].T[None] + 0.5 * math.hypot(length_m, width_m)
    near = (dx * dx + dy * dy <= reach * reach) & ag["valid"][:, t_a].T[None]
    hit = _sat(dx, dy, ec[..., None], es[..., None], 0.5 * length_m, 0.5 * width_m,
               ag["c"][:, t_a].T[None], ag["s"][:, t_a].T[None],
               ag["hl"][:, t_a].T[None], ag["hw"][:, t_a].T[None])  # fmt: skip
    return near & hit


def _bearing(x: Tensor, y: Tensor, yaw: Tensor, rear: float, ax: Tensor, ay: Tensor) -> Tensor:
    rx, ry = x - rear * torch.cos(yaw), y - rear * torch.sin(yaw)
    return wrap(torch.atan2(ay - ry, ax - rx) - yaw).abs()


def _front_bumper(x: Tensor, y: Tensor, c: Tensor, s: Tensor, hl: float, hw: float,
                  ax: Tensor, ay: Tensor, ac: Tensor, as_: Tensor, ahl: Tensor,
                  ahw: Tensor) -> Tensor:  # fmt: skip
    """Liang-Barsky test of the ego front bumper segment against the agent box (as collisions)."""
    p0x, p0y = x + c * hl - s * hw, y + s * hl + c * hw  # front-right
    p1x, p1y = x + c * hl + s * hw, y + s * hl - c * hw  # front-left

    def local(px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        dx, dy = px - ax, py - ay
        return ac * dx + as_ * dy, -as_ * dx + ac * dy

    (lx0, ly0), (lx1, ly1) = local(p0x, p0y), local(p1x, p1y)
    t0, t1 = torch.zeros_like(x), torch.ones_like(x)
    for p, d, h in ((lx0, lx1 - lx0, ahl), (ly0, ly1 - ly0, ahw)):
        par = d.abs() < 1e-12
        safe = torch.where(par, torch.ones_like(d), d)
        a, b = (-h - p) / safe, (h - p) / safe
        lo, hi = torch.minimum(a, b), torch.maximum(a, b)
        ins = p.abs() <= h
        t0 = torch.where(par, torch.where(ins, t0, torch.full_like(t0, 2.0)), torch.maximum(t0, lo))
        t1 = torch.where(
            par, torch.where(ins, t1, torch.full_like(t1, -1.0)), torch.minimum(t1, hi)
        )
    return t0 <= t1


def _collisions(
    scene: Scene, st: Tensor, areas: _Areas, ag: dict[str, Tensor]
) -> tuple[Tensor, Tensor]:
    """NC and TTC (B,), dense per chunk of candidates."""
    bsz, n_t = st.shape[:2]
    L, W, rear = scene.ego_length_m, scene.ego_width_m, scene.ego_rear_axle_to_center_m
    nc = torch.ones(bsz, device=st.device, dtype=st.dtype)
    ttc = torch.ones_like(nc)
    n_a = ag["x"].shape[0]
    if n_a == 0:
        return nc, ttc
    tt = torch.arange(n_t, device=st.device)
    for b0 in range(0, bsz, COLLISION_CHUNK):
        sl = slice(b0, min(bsz, b0 + COLLISION_CHUNK))
        x, y, yaw = st[sl, :, StateIndex.X], st[sl, :, StateIndex.Y], st[sl, :, StateIndex.YAW]
        v = st[sl, :, StateIndex.SPEED]
        c, s = torch.cos(yaw), torch.sin(yaw)
        hit = _overlap(x, y, c, s, ag, slice(0, n_t), L, W)  # (b, T, A)
        start = hit[:, 0]  # (b, A)
        later = hit & (tt[None, :, None] > 0)
        first = torch.where(later, tt[None, :, None], n_t).amin(1)  # (b, A)
        first = torch.where(start, n_t, first)
        has = first < n_t
        fi = first.clamp(max=n_t - 1)
        bi = torch.arange(x.shape[0], device=st.device)[:, None]
        ai = torch.arange(n_a, device=st.device)[None]
        ex, ey, eyaw, ev = x[bi, fi], y[bi, fi], yaw[bi, fi], v[bi, fi]
        ax, ay = ag["x"][ai, fi], ag["y"][ai, fi]
        behind = _bearing(ex, ey, eyaw, rear, ax, ay) > col.BEHIND_ANGLE_RAD
        front = _front_bumper(ex, ey, torch.cos(eyaw), torch.sin(eyaw), 0.5 * L, 0.5 * W, ax, ay,
                              ag["c"][ai, fi], ag["s"][ai, fi], ag["hl"][ai, fi], ag["hw"][ai, fi])  # fmt: skip
        lateral = areas.multiple_lanes[sl][bi, fi] | areas.off_drivable[sl][bi, fi]
        agent_stopped = ag["speed"][ai, fi] <= col.STOPPED_SPEED_MPS
        fault = has & (ev > col.STOPPED_SPEED_MPS) & (agent_stopped | (~behind & (front | lateral)))
        score = torch.where(
            ag["static"][None], col.STATIC_COLLISION_SCORE, col.MOVING_COLLISION_SCORE
        )
        nc[sl] = torch.where(fault, score.to(st.dtype), 1.0).amin(1)
        # TTC
        moving = v > col.STOPPED_SPEED_MPS
        loose = (areas.multiple_lanes | areas.off_drivable | areas.in_junction)[sl]
        fails = torch.zeros(x.shape[0], dtype=torch.bool, device=st.device)
        for k in col.TTC_HORIZONS_STEPS:
            m = n_t - k
            if m <= 0:
                continue
            shift = v[:, :m] * (k * PDM_DT_S)
            px, py = x[:, :m] + shift * c[:, :m], y[:, :m] + shift * s[:, :m]
            h = (
                hit[:, :m]
                if k == 0
                else _overlap(px, py, c[:, :m], s[:, :m], ag, slice(k, n_t), L, W)
            )
            h = h & moving[:, :m, None] & ~start[:, None, :]
            ang = _bearing(px[..., None], py[..., None], yaw[:, :m, None], rear,
                           ag["x"][:, k:].T[None], ag["y"][:, k:].T[None])  # fmt: skip
            counts = (ang < col.AHEAD_ANGLE_RAD) | (
                loose[:, :m, None] & (ang <= col.BEHIND_ANGLE_RAD)
            )
            fails |= (h & counts).flatten(1).any(1)
        ttc[sl] = torch.where(fails, 0.0, 1.0).to(st.dtype)
    return nc, ttc


def _savgol(n: int, window: int, deriv: int, dt_s: float, ref: Tensor) -> Tensor:
    return torch.as_tensor(
        cmf.savgol_matrix(n, window, deriv, dt_s), device=ref.device, dtype=ref.dtype
    )


def _signals(st: Tensor) -> dict[str, Tensor]:
    """:func:`teachers.scoring.comfort.comfort_signals` in torch."""
    n = st.shape[1]
    dt = PDM_DT_S
    lon_raw = st[..., StateIndex.ACCEL]
    lat_raw = st[..., StateIndex.SPEED] * st[..., StateIndex.YAW_RATE]
    sm = _savgol(n, cmf.ACCEL_WINDOW, 0, 1.0, st)
    dj = _savgol(n, cmf.JERK_WINDOW, 1, dt, st)
    dy = _savgol(n, cmf.YAW_WINDOW, 1, dt, st)
    yaw = st[..., StateIndex.YAW]
    unwrapped = torch.cat([yaw[:, :1], yaw[:, :1] + torch.cumsum(wrap(yaw.diff(dim=1)), 1)], 1)
    lon, mag = lon_raw @ sm, torch.hypot(lon_raw, lat_raw) @ sm
    yaw_rate = unwrapped @ dy
    return {
        "lon_accel": lon,
        "lat_accel": lat_raw @ sm,
        "accel": mag,
        "lon_jerk": lon @ dj,
        "jerk": mag @ dj,
        "yaw_rate": yaw_rate,
        "yaw_accel": yaw_rate @ dy,
    }


def _within(sg: dict[str, Tensor]) -> Tensor:
    ok = (sg["lon_accel"] > cmf.MIN_LON_ACCEL_MPS2) & (sg["lon_accel"] < cmf.MAX_LON_ACCEL_MPS2)
    ok &= sg["lat_accel"].abs() < cmf.MAX_ABS_LAT_ACCEL_MPS2
    ok &= sg["jerk"].abs() < cmf.MAX_ABS_JERK_MPS3
    ok &= sg["lon_jerk"].abs() < cmf.MAX_ABS_LON_JERK_MPS3
    ok &= sg["yaw_rate"].abs() < cmf.MAX_ABS_YAW_RATE_RADPS
    ok &= sg["yaw_accel"].abs() < cmf.MAX_ABS_YAW_ACCEL_RADPS2
    return ok.all(1)


def _agents(scene: Scene, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    b = scene.agent_boxes

    def t(a: ArrayLike, dt: torch.dtype | None = dtype) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dt)

    return {
        "x": t(b[..., 0]),
        "y": t(b[..., 1]),
        "c": t(np.cos(b[..., 2])),
        "s": t(np.sin(b[..., 2])),
        "hl": t(0.5 * b[..., 3]),
        "hw": t(0.5 * b[..., 4]),
        "r": t(0.5 * np.hypot(b[..., 3], b[..., 4])),
        "valid": t(scene.agent_valid, torch.bool),
        "speed": t(scene.agent_speed_mps),
        "static": t(scene.agent_kind == ActorKind.STATIC, torch.bool),
    }


def score_candidates_torch(
    scene: Scene,
    town: ScoringMap,
    candidate_poses: ArrayLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    rollout: bool = True,
    reference_progress_m: float | None = None,
    rasters: SceneRasters | None = None,
) -> tuple[ScoreMatrix, Float]:
    """Torch twin of :func:`teachers.scoring.score_candidates` on ``device`` (dtype float64 on
    CPU, float32 on CUDA by default). ``rollout=False`` takes the plans as states (computed on the
    host by finite differences, as the NumPy engine)."""
    dev = torch.device(device)
    dt_ = dtype or (torch.float32 if dev.type == "cuda" else torch.float64)
    plan = full_plan(scene, candidate_poses)
    if rasters is None:
        rasters = SceneRasters.build(scene, town, plan_window(plan), RASTER_RESOLUTION_M)
    r = DeviceRasters.upload(rasters, dev, dt_)
    cfg = scene_lqr_config(scene)
    if rollout:
        bsz = plan.shape[0]

        def full(v: float) -> Tensor:
            return torch.full((bsz,), v, device=dev, dtype=dt_)

        st = lqr_rollout_torch(
            torch.as_tensor(plan, device=dev, dtype=dt_),
            full(scene.ego_speed_mps), full(scene.ego_accel_mps2), full(scene.ego_yaw_rate_radps),
            cfg,
        )  # fmt: skip
    else:
        from teachers.rollout import rollout_candidates

        st = torch.as_tensor(np.ascontiguousarray(rollout_candidates(scene, plan, rollout=False)),
                             device=dev, dtype=dt_)  # fmt: skip
    values = _score(scene, st, r, dev, dt_, reference_progress_m)
    vals = values.cpu().numpy().astype(np.float64)
    return ScoreMatrix(values=vals[:-1], progress_m=vals[-1]), st.cpu().numpy().astype(np.float64)


def _score(scene: Scene, st: Tensor, r: DeviceRasters, dev: torch.device, dt_: torch.dtype,
           reference_progress_m: float | None) -> Tensor:  # fmt: skip
    """(NUM_METRICS + 1, B): the score matrix rows and, last, the route progress [m]."""
    bsz, n_t = st.shape[:2]
    L, W = scene.ego_length_m, scene.ego_width_m
    areas = _areas(r, st, L, W)
    station = _route_station(r, st[:, [0, -1], StateIndex.X], st[:, [0, -1], StateIndex.Y])
    progress = station[:, 1] - station[:, 0]
    out = torch.zeros((NUM_METRICS + 1, bsz), device=dev, dtype=dt_)
    nc, ttc = _collisions(scene, st, areas, _agents(scene, dev, dt_))
    out[Metric.NC], out[Metric.TTC] = nc, ttc
    one, zero = torch.ones_like(nc), torch.zeros_like(nc)
    out[Metric.DAC] = torch.where(areas.off_drivable.any(1), zero, one)
    # DDC
    step = torch.hypot(st[:, 1:, 0] - st[:, :-1, 0], st[:, 1:, 1] - st[:, :-1, 1])
    counted = torch.where(areas.oncoming[:, 1:], step, torch.zeros_like(step))
    cum = torch.cat([torch.zeros_like(step[:, :1]), torch.cumsum(counted, 1)], 1)
    w = min(rules.DDC_WINDOW_STEPS, cum.shape[1] - 1)
    worst = (cum[:, w:] - cum[:, :-w]).amax(1) if w > 0 else zero
    out[Metric.DDC] = torch.where(worst < rules.DDC_FULL_M, 1.0,
                                  torch.where(worst < rules.DDC_HALF_M, 0.5, 0.0)).to(dt_)  # fmt: skip
    out[Metric.TLC] = torch.where(areas.red_light.any(1), zero, one)
    # EP (no sync: the batch maximum stays on the device)
    best = progress.amax().clamp(min=0.0) if reference_progress_m is None else torch.tensor(
        reference_progress_m, device=dev, dtype=dt_)  # fmt: skip
    ep = (progress / torch.where(best > 0, best, 1.0)).clamp(0.0, 1.0)
    out[Metric.EP] = torch.where(best <= EP_MIN_PROGRESS_M, one, ep)
    # LK
    off = (areas.centerline_m > rules.LK_MAX_DEVIATION_M) & ~areas.in_junction
    c = torch.cumsum(off.long(), 1)
    reset = torch.cummax(torch.where(off, torch.zeros_like(c), c), 1).values
    out[Metric.LK] = torch.where((c - reset).amax(1) >= rules.LK_MIN_RUN_STEPS, zero, one)
    # comfort
    sig = _signals(st)
    out[Metric.C] = _within(sig).to(dt_)
    past = torch.as_tensor(scene.ego_past[:-1], device=dev, dtype=dt_)
    out[Metric.HC] = _within(_signals(torch.cat([past.expand(bsz, -1, -1), st], 1))).to(dt_)
    out[Metric.EC] = _extended(scene, sig, dev, dt_, n_t)
    gate = out[list(PDMS_GATES)].prod(0)
    wts = torch.tensor(list(PDMS_WEIGHTS.values()), device=dev, dtype=dt_)
    out[Metric.PDMS] = gate * (wts[:, None] * out[list(PDMS_WEIGHTS)]).sum(0) / wts.sum()
    gate = out[list(EPDMS_GATES)].prod(0)
    wts = torch.tensor(list(EPDMS_WEIGHTS.values()), device=dev, dtype=dt_)
    out[Metric.EPDMS] = gate * (wts[:, None] * out[list(EPDMS_WEIGHTS)]).sum(0) / wts.sum()
    out[-1] = progress
    return out


def _extended(scene: Scene, sig: dict[str, Tensor], dev: torch.device, dt_: torch.dtype,
              n_t: int) -> Tensor:  # fmt: skip
    """EC (B,) against the previous plan rolled out on the device."""
    bsz = sig["accel"].shape[0]
    ones = torch.ones(bsz, device=dev, dtype=dt_)
    if scene.previous_plan is None:
        return ones
    cfg = scene_lqr_config(scene)
    plan = torch.as_tensor(scene.previous_plan[None], device=dev, dtype=dt_)
    chord = plan[0, 1, :2] - plan[0, 0, :2]
    v0 = (torch.hypot(chord[0], chord[1]) / cfg.dt_s).reshape(1)
    prev = lqr_rollout_torch(plan, v0, torch.zeros_like(v0), torch.zeros_like(v0), cfg)
    off = PREVIOUS_PLAN_OFFSET_STEPS
    n = min(n_t, prev.shape[1] - off)
    if n <= 0:
        return ones
    ps = _signals(prev)
    ok = torch.ones(bsz, dtype=torch.bool, device=dev)
    for name, limit in (("accel", cmf.EC_ACCEL_RMS_MPS2), ("jerk", cmf.EC_JERK_RMS_MPS3),
                        ("yaw_rate", cmf.EC_YAW_RATE_RMS_RADPS),
                        ("yaw_accel", cmf.EC_YAW_ACCEL_RMS_RADPS2)):  # fmt: skip
        d = sig[name][:, :n] - ps[name][:, off : off + n]
        ok &= torch.sqrt((d * d).mean(1)) <= limit
    return ok.to(dt_)
