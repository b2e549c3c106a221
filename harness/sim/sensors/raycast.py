"""Ray casting against upright actor boxes and the flat ground: the geometry the embedded lidar
and radar share. Rays start at one origin (the sensor) in the ego frame (x forward, y right,
z up from the road surface, CARLA's axes); the ground is the plane z = 0."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.jit import njit
from harness.world.state import EGO_INDEX, WorldState

NO_HIT = -1  # hit index of a ray that reached its range
GROUND_HIT = -2  # hit index of a ray that met the ground plane
MIN_HIT_M = 1e-6  # [m] hits closer than this (the origin on a face) are ignored


@dataclass(frozen=True, eq=False)
class EgoBoxes:
    """B upright boxes in the ego frame: centre (x, y) [m], heading cos/sin, half length and
    half width [m], vertical span [z0, z1] [m] above the ground, velocity (vx, vy) [m/s] in the
    ego frame, and the actor id of each box."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    cos: NDArray[np.float64]
    sin: NDArray[np.float64]
    half_length: NDArray[np.float64]
    half_width: NDArray[np.float64]
    z0: NDArray[np.float64]
    z1: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    actor_id: NDArray[np.int64]

    def __post_init__(self) -> None:
        n = self.x.shape
        for name in self.__dataclass_fields__:
            if getattr(self, name).shape != n:
                raise ValueError(f"EgoBoxes.{name} has shape {getattr(self, name).shape}, want {n}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, keep: NDArray[np.bool_]) -> EgoBoxes:
        return EgoBoxes(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def ego_frame_boxes(state: WorldState) -> EgoBoxes:
    """The valid actors except the ego as boxes in the ego frame (standing on the ground, like
    the camera draws them); velocities are the kinematic speed along each heading, relative to
    the world, rotated into the ego frame."""
    a = state.actors
    keep = a.valid.copy()
    keep[EGO_INDEX] = False
    ex, ey, eyaw = float(a.x[EGO_INDEX]), float(a.y[EGO_INDEX]), float(a.yaw[EGO_INDEX])
    c, s = np.cos(eyaw), np.sin(eyaw)
    dx, dy = a.x[keep] - ex, a.y[keep] - ey
    rel = a.yaw[keep] - eyaw
    speed = a.speed[keep]
    vx_w, vy_w = speed * np.cos(a.yaw[keep]), speed * np.sin(a.yaw[keep])
    return EgoBoxes(
        x=c * dx + s * dy, y=-s * dx + c * dy, cos=np.cos(rel), sin=np.sin(rel),
        half_length=0.5 * a.length[keep], half_width=0.5 * a.width[keep],
        z0=np.zeros(int(keep.sum())), z1=a.height[keep].astype(np.float64),
        vx=c * vx_w + s * vy_w, vy=-s * vx_w + c * vy_w, actor_id=a.actor_id[keep],
    )  # fmt: skip


def boxes_in_reach(boxes: EgoBoxes, origin: NDArray[np.float64], range_m: float) -> EgoBoxes:
    """The boxes whose bounding sphere comes within ``range_m`` of ``origin`` (a cheap cull)."""
    radius = np.sqrt(
        boxes.half_length**2 + boxes.half_width**2 + (0.5 * (boxes.z1 - boxes.z0)) ** 2
    )
    d = np.sqrt(
        (boxes.x - origin[0]) ** 2 + (boxes.y - origin[1]) ** 2
        + (0.5 * (boxes.z0 + boxes.z1) - origin[2]) ** 2
    )  # fmt: skip
    return boxes.subset(d - radius <= range_m)


def cast_rays(
    origin: NDArray[np.float64],
    directions: NDArray[np.float64],
    range_m: float,
    boxes: EgoBoxes,
    ground: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distance [m] along each unit direction (N, 3) from ``origin`` (3,) to the first hit within
    ``range_m`` and what was hit: a box index, GROUND_HIT or NO_HIT (distance = range_m)."""
    dirs = np.ascontiguousarray(directions, dtype=np.float64).reshape(-1, 3)
    dist = np.full(len(dirs), float(range_m))
    hit = np.full(len(dirs), NO_HIT, dtype=np.int64)
    _cast_kernel(
        np.ascontiguousarray(origin, dtype=np.float64), dirs, float(range_m), bool(ground),
        boxes.x, boxes.y, boxes.cos, boxes.sin, boxes.half_length, boxes.half_width,
        boxes.z0, boxes.z1, dist, hit,
    )  # fmt: skip
    return dist, hit


@njit
def _cast_kernel(
    origin: NDArray[np.float64], dirs: NDArray[np.float64], range_m: float, ground: bool,
    bx: NDArray[np.float64], by: NDArray[np.float64], bc: NDArray[np.float64],
    bs: NDArray[np.float64], hl: NDArray[np.float64], hw: NDArray[np.float64],
    z0: NDArray[np.float64], z1: NDArray[np.float64], dist: NDArray[np.float64],
    hit: NDArray[np.int64],
) -> None:  # fmt: skip
    """Per ray: the ground plane z = 0 (rays pointing down), then every box whose bounding sphere
    the ray passes, by the slab test in the box frame; the nearest hit in front wins."""
    ox, oy, oz = origin[0], origin[1], origin[2]
    nb = bx.shape[0]
    cz = np.empty(nb)
    rad = np.empty(nb)
    for b in range(nb):
        cz[b] = 0.5 * (z0[b] + z1[b])
        rad[b] = np.sqrt(hl[b] ** 2 + hw[b] ** 2 + (0.5 * (z1[b] - z0[b])) ** 2)
    for k in range(dirs.shape[0]):
        dx, dy, dz = dirs[k, 0], dirs[k, 1], dirs[k, 2]
        best = dist[k]
        what = hit[k]
        if ground and dz < 0.0 and oz > 0.0:
            t = -oz / dz
            if t <= best:
                best, what = t, -2
        for b in range(nb):
            px, py, pz = bx[b] - ox, by[b] - oy, cz[b] - oz
            along = px * dx + py * dy + pz * dz
            if along + rad[b] < MIN_HIT_M or along - rad[b] > best:
                continue
            perp2 = px * px + py * py + pz * pz - along * along
            if perp2 > rad[b] * rad[b]:
                continue
            # origin and direction in the box frame (x along the box heading)
            lx = bc[b] * (ox - bx[b]) + bs[b] * (oy - by[b])
            ly = -bs[b] * (ox - bx[b]) + bc[b] * (oy - by[b])
            ldx = bc[b] * dx + bs[b] * dy
            ldy = -bs[b] * dx + bc[b] * dy
            t0, t1 = -np.inf, np.inf
            inside = True
            for o, d, lo, hi in ((lx, ldx, -hl[b], hl[b]), (ly, ldy, -hw[b], hw[b]),
                                 (oz, dz, z0[b], z1[b])):  # fmt: skip
                if abs(d) < 1e-12:
                    if o < lo or o > hi:
                        inside = False
                    continue
                ta, tb = (lo - o) / d, (hi - o) / d
                if ta > tb:
                    ta, tb = tb, ta
                t0, t1 = max(t0, ta), min(t1, tb)
            if inside and t0 <= t1 and t0 >= MIN_HIT_M and t0 < best:
                best, what = t0, b
        dist[k] = best
        hit[k] = what
