"""Software RGB camera for the embedded simulator, shaped like CARLA's sensor.camera.rgb output
(uint8 (H, W, 4) BGRA). The ground is a per-pixel lookup into the town raster through rays
precomputed once per camera; actors and traffic lights are shaded 3-D boxes painted far to near.
Not photoreal, but geometrically consistent with a pinhole camera at the declared mount."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from harness.jit import njit
from harness.sim.sensors.raster import GroundClass, SignalsLike, TownRaster
from harness.sim.sensors.spec import SensorSpec
from harness.world.state import EGO_INDEX, ActorKind, LightState, WorldState

NEAR_PLANE_M = 0.05  # [m] faces are clipped at this camera depth
MAX_GROUND_RANGE_M = 400.0  # [m] ground beyond this horizontal distance is drawn as haze
MAX_BOX_RANGE_M = 150.0  # [m] boxes (actors, lights) farther than this are not drawn
LIGHT_POLE_SIDE_M = 0.25  # [m]
LIGHT_POLE_HEIGHT_M = 3.0  # [m] top of the pole, bottom of the head
LIGHT_HEAD_SIDE_M = 0.45  # [m]
LIGHT_HEAD_HEIGHT_M = 1.1  # [m]

# Palette layout: one uint8 index per pixel, turned into BGRA by a 256-entry table at the end.
SKY_BASE = 16  # indices [16, 16 + SKY_LEVELS) hold the sky gradient, horizon to zenith
SKY_LEVELS = 32
HAZE = SKY_BASE + SKY_LEVELS  # ground beyond MAX_GROUND_RANGE_M
MATERIAL_BASE = 64  # each material takes FACE_SHADES consecutive indices
FACE_SHADES = 4  # top, front/back, sides, bottom

GROUND_RGB: dict[GroundClass, tuple[int, int, int]] = {
    GroundClass.TERRAIN: (84, 104, 60),
    GroundClass.SIDEWALK: (150, 146, 140),
    GroundClass.ROAD: (68, 68, 72),
    GroundClass.WHITE_MARKING: (228, 228, 228),
    GroundClass.YELLOW_MARKING: (222, 180, 40),
    GroundClass.STOP_LINE: (236, 236, 236),
}
SKY_HORIZON_RGB = (205, 218, 232)
SKY_ZENITH_RGB = (82, 132, 200)
HAZE_RGB = (170, 178, 180)
VEHICLE_RGB = (
    (180, 30, 30), (30, 60, 160), (200, 200, 200), (30, 30, 30),
    (120, 120, 130), (200, 160, 40), (40, 120, 60), (110, 40, 120),
)  # fmt: skip
PEDESTRIAN_RGB = (200, 120, 90)
BICYCLE_RGB = (40, 160, 200)
STATIC_RGB = (230, 110, 20)
EMERGENCY_RGB = (245, 245, 245)
POLE_RGB = (60, 60, 60)
LIGHT_RGB: dict[LightState, tuple[int, int, int]] = {
    LightState.RED: (240, 30, 30),
    LightState.YELLOW: (245, 200, 20),
    LightState.GREEN: (30, 220, 60),
    LightState.OFF: (40, 40, 40),
}
FACE_SHADE = (1.0, 0.82, 0.66, 0.5)  # top, +-x faces, +-y faces, bottom

# Materials (index into the palette = MATERIAL_BASE + FACE_SHADES * material + shade).
MAT_VEHICLE0 = 0
MAT_PEDESTRIAN = len(VEHICLE_RGB)
MAT_BICYCLE = MAT_PEDESTRIAN + 1
MAT_STATIC = MAT_PEDESTRIAN + 2
MAT_EMERGENCY = MAT_PEDESTRIAN + 3
MAT_POLE = MAT_PEDESTRIAN + 4
MAT_LIGHT0 = MAT_PEDESTRIAN + 5  # + LightState
MATERIAL_RGB = (
    *VEHICLE_RGB, PEDESTRIAN_RGB, BICYCLE_RGB, STATIC_RGB, EMERGENCY_RGB, POLE_RGB,
    *(LIGHT_RGB[s] for s in LightState),
)  # fmt: skip

# Box corner c = 4 sx + 2 sy + sz (s = 0 for the -half / bottom side, 1 for +half / top).
BOX_SIGNS = np.array(
    [[sx, sy, sz] for sx in (0, 1) for sy in (0, 1) for sz in (0, 1)], dtype=np.float64
)
BOX_FACES = np.array(
    [[1, 3, 7, 5], [0, 2, 6, 4], [4, 5, 7, 6], [0, 1, 3, 2], [2, 3, 7, 6], [0, 1, 5, 4]],
    dtype=np.int64,
)  # top, bottom, +x, -x, +y, -y
BOX_SIGN_X = 2.0 * BOX_SIGNS[:, 0] - 1.0  # (8,) -1 rear, +1 front
BOX_SIGN_Y = 2.0 * BOX_SIGNS[:, 1] - 1.0  # (8,) -1 left, +1 right
BOX_TOP = BOX_SIGNS[:, 2] > 0  # (8,)
BOX_FACE_SHADE = np.array([0, 3, 1, 1, 2, 2], dtype=np.int64)


def build_palette() -> NDArray[np.uint32]:
    """(256,) BGRA colours packed as uint32 (memory order B, G, R, A)."""
    rgb = np.zeros((256, 3), dtype=np.float64)
    for cls, c in GROUND_RGB.items():
        rgb[int(cls)] = c
    t = np.linspace(0.0, 1.0, SKY_LEVELS)[:, None]
    rgb[SKY_BASE : SKY_BASE + SKY_LEVELS] = (1 - t) * np.array(SKY_HORIZON_RGB) + t * np.array(
        SKY_ZENITH_RGB
    )
    rgb[HAZE] = HAZE_RGB
    for m, c in enumerate(MATERIAL_RGB):
        for shade, k in enumerate(FACE_SHADE):
            rgb[MATERIAL_BASE + FACE_SHADES * m + shade] = np.array(c) * k
    bgra = np.zeros((256, 4), dtype=np.uint8)
    bgra[:, :3] = np.clip(np.round(rgb[:, ::-1]), 0, 255).astype(np.uint8)
    bgra[:, 3] = 255
    return bgra.view(np.uint32).reshape(256)


PALETTE = build_palette()


@dataclass(frozen=True, eq=False)
class Boxes:
    """B upright boxes standing on flat ground: centres (x, y) [m] world frame, yaw [rad], extents
    [m], vertical span [z0, z1] [m] above the ground, and a palette material per box."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    yaw: NDArray[np.float64]
    length: NDArray[np.float64]
    width: NDArray[np.float64]
    z0: NDArray[np.float64]
    z1: NDArray[np.float64]
    material: NDArray[np.int64]

    @staticmethod
    def concat(parts: list[Boxes]) -> Boxes:
        return Boxes(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in Boxes.__dataclass_fields__)
        )


def actor_boxes(state: WorldState, include_ego: bool = False) -> Boxes:
    """Boxes of the valid actors (ego excluded unless asked), coloured by kind; vehicle colours are
    picked from the actor id so they stay stable over an episode."""
    a = state.actors
    keep = a.valid.copy()
    if not include_ego:
        keep[EGO_INDEX] = False
    kind = a.kind[keep]
    mat = np.full(kind.shape, MAT_STATIC, dtype=np.int64)
    mat[kind == ActorKind.VEHICLE] = MAT_VEHICLE0 + a.actor_id[keep][
        kind == ActorKind.VEHICLE
    ] % len(VEHICLE_RGB)
    mat[kind == ActorKind.PEDESTRIAN] = MAT_PEDESTRIAN
    mat[kind == ActorKind.BICYCLE] = MAT_BICYCLE
    mat[kind == ActorKind.EMERGENCY] = MAT_EMERGENCY
    h = a.height[keep]
    return Boxes(
        a.x[keep], a.y[keep], a.yaw[keep], a.length[keep], a.width[keep], np.zeros_like(h), h, mat
    )


def light_boxes(signals: SignalsLike | None, light_state: NDArray[np.int8]) -> Boxes:
    """A pole plus a head coloured by the light's state for every traffic light."""
    if signals is None or len(signals.light_xy) == 0:
        e = np.zeros(0)
        return Boxes(e, e, e, e, e, e, e, np.zeros(0, dtype=np.int64))
    xy = np.asarray(signals.light_xy, dtype=np.float64)
    yaw = np.asarray(signals.light_yaw, dtype=np.float64)
    n = len(xy)
    st = np.asarray(light_state, dtype=np.int64)
    st = st if st.shape == (n,) else np.full(n, int(LightState.OFF))
    one = np.ones(n)
    pole = Boxes(xy[:, 0], xy[:, 1], yaw, LIGHT_POLE_SIDE_M * one, LIGHT_POLE_SIDE_M * one,
                 0 * one, LIGHT_POLE_HEIGHT_M * one, np.full(n, MAT_POLE, dtype=np.int64))  # fmt: skip
    head = Boxes(xy[:, 0], xy[:, 1], yaw, LIGHT_HEAD_SIDE_M * one, LIGHT_HEAD_SIDE_M * one,
                 LIGHT_POLE_HEIGHT_M * one, (LIGHT_POLE_HEIGHT_M + LIGHT_HEAD_HEIGHT_M) * one,
                 MAT_LIGHT0 + np.clip(st, 0, len(LightState) - 1))  # fmt: skip
    return Boxes.concat([pole, head])


class CameraRenderer:
    """Renders one camera spec mounted on the ego. Flat ground at z = 0; everything precomputable
    from the mount (pixel rays, their ground hits, the sky gradient) is done once here."""

    def __init__(self, raster: TownRaster, spec: SensorSpec, signals: SignalsLike | None = None):
        self.raster = raster
        self.spec = spec
        self.signals = signals
        w, h = spec.width, spec.height
        self.focal_px = w / (2.0 * np.tan(np.radians(spec.fov) / 2.0))
        self.cx, self.cy = w / 2.0, h / 2.0
        self.rotation = spec.rotation  # camera -> ego
        self.position = spec.position  # camera origin in the ego frame
        self._rotation = np.ascontiguousarray(self.rotation, dtype=np.float64)  # kernel inputs
        self._position = np.ascontiguousarray(self.position, dtype=np.float64)
        half_h = np.arctan(w / 2.0 / self.focal_px)  # [rad] horizontal half field of view
        half_v = np.arctan(h / 2.0 / self.focal_px)  # [rad] vertical half field of view
        self._cos_h, self._sin_h = float(np.cos(half_h)), float(np.sin(half_h))
        self._cos_v, self._sin_v = float(np.cos(half_v)), float(np.sin(half_v))
        u = np.arange(w) + 0.5
        v = np.arange(h) + 0.5
        uu, vv = np.meshgrid(u, v)
        d_cam = np.stack(
            [np.ones_like(uu), (uu - self.cx) / self.focal_px, -(vv - self.cy) / self.focal_px], -1
        )
        d_ego = d_cam @ self.rotation.T  # (H, W, 3) ray directions in the ego frame
        horiz = np.hypot(d_ego[..., 0], d_ego[..., 1])
        elevation = np.arctan2(d_ego[..., 2], horiz)
        sky_level = np.clip(elevation / (np.pi / 2) * SKY_LEVELS, 0, SKY_LEVELS - 1).astype(
            np.uint8
        )
        base = (SKY_BASE + sky_level).astype(np.uint8)
        cam_z = float(self.position[2])
        down = d_ego[..., 2] < -1e-9
        t = np.where(down, -cam_z / np.where(down, d_ego[..., 2], -1.0), np.inf)
        hits = down & (cam_z > 0) & (t * horiz <= MAX_GROUND_RANGE_M)
        base[down & ~hits] = HAZE
        self._base = base  # (H, W) palette indices of sky and haze
        flat = np.flatnonzero(hits.ravel())
        self._ground_flat = flat.astype(np.intp)
        self._ground_x = (self.position[0] + t * d_ego[..., 0]).ravel()[flat].astype(np.float32)
        self._ground_y = (self.position[1] + t * d_ego[..., 1]).ravel()[flat].astype(np.float32)
        self._classes_flat = raster.classes.ravel()
        self._lights = light_boxes(
            signals, np.full(0, 0, dtype=np.int8)
        )  # geometry; colour per frame
        self._head = np.arange(len(self._lights.x)) >= len(self._lights.x) // 2

    def _light_boxes(self, light_state: NDArray[np.int8]) -> Boxes:
        """The precomputed poles and heads with the heads coloured by this frame's light states."""
        lights = self._lights
        n = int(self._head.sum())
        if n == 0:
            return lights
        st = np.asarray(light_state, dtype=np.int64)
        st = st if st.shape == (n,) else np.full(n, int(LightState.OFF))
        material = lights.material.copy()
        material[self._head] = MAT_LIGHT0 + np.clip(st, 0, len(LightState) - 1)
        return replace(lights, material=material)

    def ground_points_ego(
        self,
    ) -> tuple[NDArray[np.intp], NDArray[np.float32], NDArray[np.float32]]:
        """Flat pixel indices that see the ground and their ego-frame hit points (x, y) [m]."""
        return self._ground_flat, self._ground_x, self._ground_y

    def project_ego(
        self, pts_ego: NDArray[np.floating]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Ego-frame points (..., 3) -> (pixel (u, v) (..., 2), depth (...,) [m]); u right, v down."""
        pc = (np.asarray(pts_ego, dtype=np.float64) - self.position) @ self.rotation
        depth = pc[..., 0]
        safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
        uv = np.stack(
            [
                self.cx + self.focal_px * pc[..., 1] / safe,
                self.cy - self.focal_px * pc[..., 2] / safe,
            ],
            -1,
        )
        return uv, depth

    def _ground(self, idx: NDArray[np.uint8], ex: float, ey: float, eyaw: float) -> None:
        """Ground classes under the precomputed ground rays for the ego at (ex, ey, eyaw)."""
        r = self.raster
        res = r.resolution_m
        _ground_kernel(
            idx.reshape(-1), self._ground_flat, self._ground_x, self._ground_y,
            np.cos(eyaw) / res, np.sin(eyaw) / res, (ex - r.x0) / res, (ey - r.y0) / res,
            r.classes,
        )  # fmt: skip

    def _boxes(
        self, idx: NDArray[np.uint8], boxes: Boxes, ex: float, ey: float, eyaw: float
    ) -> None:
        """Paint boxes into ``idx`` far to near with back-face culling and near-plane clipping
        (a bounding-sphere frustum test first; the faces are filled by a compiled kernel)."""
        c, s = np.cos(eyaw), np.sin(eyaw)
        dx, dy = boxes.x - ex, boxes.y - ey
        lx, ly = c * dx + s * dy, -s * dx + c * dy  # box centres in the ego frame
        centre = np.stack([lx, ly, 0.5 * (boxes.z0 + boxes.z1)], -1)
        cc = (centre - self.position) @ self.rotation
        radius = 0.5 * np.sqrt(boxes.length**2 + boxes.width**2 + (boxes.z1 - boxes.z0) ** 2)
        # bounding-sphere frustum test: near plane, range, and the four side planes
        keep = (cc[:, 0] > NEAR_PLANE_M - radius) & (np.abs(cc[:, 0]) < MAX_BOX_RANGE_M)
        keep &= np.abs(cc[:, 1]) * self._cos_h - cc[:, 0] * self._sin_h <= radius
        keep &= np.abs(cc[:, 2]) * self._cos_v - cc[:, 0] * self._sin_v <= radius
        if not keep.any():
            return
        order = np.flatnonzero(keep)
        order = order[np.argsort(-np.einsum("ij,ij->i", cc[order], cc[order]), kind="stable")]
        _paint_boxes_kernel(
            idx, order, lx, ly, boxes.yaw - eyaw, 0.5 * boxes.length, 0.5 * boxes.width,
            boxes.z0, boxes.z1, np.asarray(boxes.material, dtype=np.int64), self._position,
            self._rotation, self.focal_px, self.cx, self.cy,
        )  # fmt: skip

    def render_indices(self, state: WorldState) -> NDArray[np.uint8]:
        """(H, W) palette indices of one frame (ground classes, sky levels, box materials)."""
        a = state.actors
        ex, ey, eyaw = float(a.x[EGO_INDEX]), float(a.y[EGO_INDEX]), float(a.yaw[EGO_INDEX])
        idx = self._base.copy()
        self._ground(idx, ex, ey, eyaw)
        boxes = Boxes.concat([actor_boxes(state), self._light_boxes(state.light_state)])
        if len(boxes.x) == 0:
            return idx
        self._boxes(idx, boxes, ex, ey, eyaw)
        return idx

    def render(self, state: WorldState) -> NDArray[np.uint8]:
        """One frame as CARLA delivers it to agents: uint8 (H, W, 4) BGRA, alpha 255."""
        idx = self.render_indices(state)
        return PALETTE.take(idx).view(np.uint8).reshape(idx.shape[0], idx.shape[1], 4)


@njit
def _ground_kernel(
    idx_flat: NDArray[np.uint8], pix: NDArray[np.intp], gx: NDArray[np.float32],
    gy: NDArray[np.float32], c: float, s: float, col0: float, row0: float,
    classes: NDArray[np.uint8],
) -> None:  # fmt: skip
    """idx_flat[pix] = raster class under each ground hit (gx, gy) [m, ego frame], the ego's
    rotation and offset given in raster cells (c, s, col0, row0); clamped at the raster edge."""
    hgt, wid = classes.shape
    cf, sf = np.float32(c), np.float32(s)
    c0, r0 = np.float32(col0), np.float32(row0)
    for k in range(pix.shape[0]):
        col = int(cf * gx[k] - sf * gy[k] + c0)
        row = int(sf * gx[k] + cf * gy[k] + r0)
        col = min(max(col, 0), wid - 1)
        row = min(max(row, 0), hgt - 1)
        idx_flat[pix[k]] = classes[row, col]


@njit
def _fill_convex(
    idx: NDArray[np.uint8], u: NDArray[np.float64], v: NDArray[np.float64], m: int, colour: int
) -> None:
    """Fill the convex polygon (u, v)[:m] [px]: every pixel whose centre lies inside or on it."""
    hgt, wid = idx.shape
    vmin, vmax = v[0], v[0]
    for k in range(1, m):
        vmin, vmax = min(vmin, v[k]), max(vmax, v[k])
    r0 = max(int(np.ceil(vmin - 0.5)), 0)
    r1 = min(int(np.floor(vmax - 0.5)), hgt - 1)
    for row in range(r0, r1 + 1):
        yc = row + 0.5
        xl, xr = np.inf, -np.inf
        for k in range(m):
            u0, v0, u1, v1 = u[k], v[k], u[(k + 1) % m], v[(k + 1) % m]
            if min(v0, v1) <= yc <= max(v0, v1):
                if v1 != v0:
                    xi = u0 + (yc - v0) * (u1 - u0) / (v1 - v0)
                    xl, xr = min(xl, xi), max(xr, xi)
                else:
                    xl, xr = min(xl, u0, u1), max(xr, u0, u1)
        if xl > xr:
            continue
        c0 = max(int(np.ceil(xl - 0.5)), 0)
        c1 = min(int(np.floor(xr - 0.5)), wid - 1)
        for col in range(c0, c1 + 1):
            idx[row, col] = colour


@njit
def _paint_boxes_kernel(
    idx: NDArray[np.uint8], order: NDArray[np.int64], lx: NDArray[np.float64],
    ly: NDArray[np.float64], rel_yaw: NDArray[np.float64], half_len: NDArray[np.float64],
    half_wid: NDArray[np.float64], z0: NDArray[np.float64], z1: NDArray[np.float64],
    material: NDArray[np.int64], position: NDArray[np.float64], rotation: NDArray[np.float64],
    f: float, cx: float, cy: float,
) -> None:  # fmt: skip
    """Paint boxes ``order`` (far to near) into ``idx``: corners in the camera frame (x depth,
    y right, z up), faces seen from the camera (outward side) drawn with their material's shade,
    faces crossing the near plane clipped to it (Sutherland-Hodgman) before projection."""
    cam = np.empty((8, 3))
    poly = np.empty((8, 3))
    pu, pv = np.empty(8), np.empty(8)
    for b in order:
        c, s = np.cos(rel_yaw[b]), np.sin(rel_yaw[b])
        mean = np.zeros(3)
        for k in range(8):
            ox = half_len[b] * BOX_SIGN_X[k]
            oy = half_wid[b] * BOX_SIGN_Y[k]
            px = lx[b] + c * ox - s * oy - position[0]
            py = ly[b] + s * ox + c * oy - position[1]
            pz = (z1[b] if BOX_TOP[k] else z0[b]) - position[2]
            for j in range(3):
                cam[k, j] = px * rotation[0, j] + py * rotation[1, j] + pz * rotation[2, j]
                mean[j] += cam[k, j] / 8.0
        for fi in range(6):
            fc = np.zeros(3)
            n_front = 0
            for q in range(4):
                k = BOX_FACES[fi, q]
                for j in range(3):
                    fc[j] += cam[k, j] / 4.0
                n_front += cam[k, 0] >= NEAR_PLANE_M
            dot = (fc[0] - mean[0]) * fc[0] + (fc[1] - mean[1]) * fc[1] + (fc[2] - mean[2]) * fc[2]
            if not dot < 0.0 or n_front == 0:
                continue
            m = 0
            for q in range(4):  # clip to depth >= NEAR_PLANE_M (a no-op when all are in front)
                a, bq = BOX_FACES[fi, q], BOX_FACES[fi, (q + 1) % 4]
                ain, bin_ = cam[a, 0] >= NEAR_PLANE_M, cam[bq, 0] >= NEAR_PLANE_M
                if ain:
                    poly[m] = cam[a]
                    m += 1
                if ain != bin_:
                    t = (NEAR_PLANE_M - cam[a, 0]) / (cam[bq, 0] - cam[a, 0])
                    for j in range(3):
                        poly[m, j] = cam[a, j] + t * (cam[bq, j] - cam[a, j])
                    m += 1
            if m < 3:
                continue
            for q in range(m):
                depth = max(poly[q, 0], NEAR_PLANE_M)
                pu[q] = cx + f * poly[q, 1] / depth
                pv[q] = cy - f * poly[q, 2] / depth
            colour = MATERIAL_BASE + FACE_SHADES * material[b] + BOX_FACE_SHADE[fi]
            _fill_convex(idx, pu, pv, m, colour)
