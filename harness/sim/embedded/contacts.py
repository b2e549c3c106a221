"""Contact response of the embedded simulator (no PhysX): the ego's box never enters another body.

After every actor has moved, the ego's new box is tested against every other actor's box and
against the layout stand-in (:class:`LayoutBodies`). Where it overlaps something the simulator
(simulator.py) resolves the contact: an actor that moved into the ego's previous box is put back
and stopped; a hit walker falls beside the ego and stays down; the ego is moved back along its
own step to the last pose clear of everything (bisection), and its speed into the body drops to
zero (hit vehicles are held, so a perfectly inelastic contact leaves both at rest). The compiled
kernels here do the box tests; the tick pays one kernel call and one point-in-polygon test when
nothing touches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from harness.jit import njit
from harness.sim.events import LAYOUT_ID

CONTACT_MARGIN_M = 0.02  # [m] boxes closer than this are in contact (a resting contact persists)
BISECT_STEPS = 12  # [-] halvings of the ego's step when backing out of a body (~0.1 mm at 10 m/s)
NEAR_SLACK_M = 3.0  # [m] broad phase: bodies within both circumradii + this can touch this tick
VEHICLE_HIT_HOLD_S = 10.0  # [s] a vehicle hit by (or hitting) the ego stands still this long
WALKER_DOWN_HEIGHT_M = 0.3  # [m] box height of a walker lying on the ground after a hit
EGO_MASS_KG = 1_800.0  # [kg] CARLA's Lincoln MKZ 2017 (vehicle.lincoln.mkz_2017 physics mass)
WALKER_MASS_KG = 80.0  # [kg] a CARLA walker
KERB_CLOSE_M = 3.0  # [m] closing radius: gaps up to twice this between road and sidewalk are road
KERB_MARGIN_M = 2.5  # [m] the layout bodies start this far outside the closed road surface
__all__ = ["LAYOUT_ID"]  # re-exported: the simulator names contacts with it
CODE_TOUCH, CODE_OVERLAP = 1, 2  # contact_rows: within CONTACT_MARGIN_M / interpenetrating


class LayoutBodies:
    """The layout stand-in of a town: everything outside the road surface is a static body.

    The road surface is the drivable area joined with the sidewalks, closed by KERB_CLOSE_M (so
    shoulders, medians and kerbs between a lane and its sidewalk, and junction corners, count as
    road) and grown by KERB_MARGIN_M. Its edge stands for the walls, fences, poles and guard
    rails that line CARLA's towns beyond the sidewalks and shoulders.
    """

    def __init__(self, area: Any) -> None:
        road = shapely.union(area.drivable, area.sidewalks)
        closed = shapely.buffer(
            shapely.buffer(road, KERB_CLOSE_M, quad_segs=2), -KERB_CLOSE_M, quad_segs=2
        )
        self.surface = shapely.buffer(closed, KERB_MARGIN_M, quad_segs=2)
        shapely.prepare(self.surface)

    def outside(self, corners: NDArray[np.float64]) -> bool:
        """Whether any of the box corners (4, 2) [m] lies outside the road surface."""
        c = np.asarray(corners, dtype=np.float64)
        return not bool(np.all(shapely.contains_xy(self.surface, c[:, 0], c[:, 1])))


@njit
def box_corners(x: float, y: float, yaw: float, length: float, width: float) -> NDArray[np.float64]:
    """(4, 2) corners [m] of one box, in harness.boxes.Corner order (compiled: called per tick)."""
    c, s = np.cos(yaw), np.sin(yaw)
    hl, hw = 0.5 * length, 0.5 * width
    out = np.empty((4, 2))
    for k, (sl, sw) in enumerate(((1.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-1.0, 1.0))):
        out[k, 0] = x + c * sl * hl - s * sw * hw
        out[k, 1] = y + s * sl * hl + c * sw * hw
    return out


@njit
def _separated(
    ax: float, ay: float, ayaw: float, al: float, aw: float,
    bx: float, by: float, byaw: float, bl: float, bw: float, margin: float,
) -> bool:  # fmt: skip
    """Separating-axis test of two boxes, box A grown by ``margin`` on every side: True when an
    axis of either box separates them (touching boxes are not separated)."""
    ca, sa, cb, sb = np.cos(ayaw), np.sin(ayaw), np.cos(byaw), np.sin(byaw)
    ha, wa = 0.5 * al + margin, 0.5 * aw + margin
    hb, wb = 0.5 * bl, 0.5 * bw
    dx, dy = bx - ax, by - ay
    for k in range(4):
        if k == 0:
            ux, uy = ca, sa
        elif k == 1:
            ux, uy = -sa, ca
        elif k == 2:
            ux, uy = cb, sb
        else:
            ux, uy = -sb, cb
        ra = ha * abs(ca * ux + sa * uy) + wa * abs(-sa * ux + ca * uy)
        rb = hb * abs(cb * ux + sb * uy) + wb * abs(-sb * ux + cb * uy)
        if abs(dx * ux + dy * uy) > ra + rb:
            return True
    return False


@njit
def contact_rows(
    x: NDArray[np.float64], y: NDArray[np.float64], yaw: NDArray[np.float64],
    length: NDArray[np.float64], width: NDArray[np.float64], valid: NDArray[np.bool_], ego: int,
    margin: float,
) -> tuple[NDArray[np.int64], NDArray[np.int8]]:  # fmt: skip
    """Rows (other than ``ego``) whose box lies within ``margin`` of the ego's box, and for each
    CODE_OVERLAP where the boxes interpenetrate (overlap with no margin) else CODE_TOUCH."""
    ex, ey, eyaw, el, ew = x[ego], y[ego], yaw[ego], length[ego], width[ego]
    r_ego = 0.5 * np.hypot(el, ew) + margin
    rows = np.empty(x.shape[0], dtype=np.int64)
    code = np.empty(x.shape[0], dtype=np.int8)
    m = 0
    for j in range(x.shape[0]):
        if j == ego or not valid[j]:
            continue
        dx, dy = x[j] - ex, y[j] - ey
        reach = r_ego + 0.5 * np.hypot(length[j], width[j])
        if dx * dx + dy * dy > reach * reach:
            continue
        if _separated(ex, ey, eyaw, el, ew, x[j], y[j], yaw[j], length[j], width[j], margin):
            continue
        rows[m] = j
        sep = _separated(ex, ey, eyaw, el, ew, x[j], y[j], yaw[j], length[j], width[j], 0.0)
        code[m] = CODE_TOUCH if sep else CODE_OVERLAP
        m += 1
    return rows[:m], code[:m]


@njit
def overlaps_any(box: NDArray[np.float64], boxes: NDArray[np.float64]) -> bool:
    """Whether ``box`` (5,) [x, y, yaw, length, width] interpenetrates any of ``boxes`` (K, 5)."""
    for j in range(boxes.shape[0]):
        if not _separated(
            box[0], box[1], box[2], box[3], box[4],
            boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3], boxes[j, 4], 0.0,
        ):  # fmt: skip
            return True
    return False


def interpolate_pose(
    p0: tuple[float, float, float], p1: tuple[float, float, float], t: float
) -> tuple[float, float, float]:
    """The pose a fraction t of the way from p0 to p1 (x, y [m], yaw [rad], yaw the short way)."""
    dyaw = (p1[2] - p0[2] + math.pi) % (2.0 * math.pi) - math.pi
    return (p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1]), p0[2] + t * dyaw)


def clear_fraction(
    p0: tuple[float, float, float],
    p1: tuple[float, float, float],
    length: float,
    width: float,
    boxes: NDArray[np.float64],
    layout: LayoutBodies | None,
) -> float:
    """The largest fraction t in [0, 1] of the step p0 -> p1 (to BISECT_STEPS halvings) at which
    a box (length, width) is clear of ``boxes`` (K, 5) and inside the layout's road surface;
    0 when even p0 is not. The layout is only tested when the box at p0 is inside it."""
    check_layout = layout is not None and not layout.outside(box_corners(*p0, length, width))

    def blocked(t: float) -> bool:
        x, y, yaw = interpolate_pose(p0, p1, t)
        box = np.array([x, y, yaw, length, width])
        if boxes.shape[0] and overlaps_any(box, boxes):
            return True
        return bool(
            check_layout
            and layout is not None
            and layout.outside(box_corners(x, y, yaw, length, width))
        )

    if not blocked(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        if blocked(mid):
            hi = mid
        else:
            lo = mid
    return lo


def walker_landing(
    ego: tuple[float, float, float, float, float], wx: float, wy: float, walker_width: float
) -> tuple[float, float, float]:
    """Where a walker hit by the ego box (x, y, yaw, length, width) falls: beside the ego on the
    walker's side, lying along the ego's heading, CONTACT_MARGIN_M / 4 clear of its flank."""
    ex, ey, eyaw, el, ew = ego
    c, s = math.cos(eyaw), math.sin(eyaw)
    lon = min(max(c * (wx - ex) + s * (wy - ey), -0.5 * el), 0.5 * el)
    lat = -s * (wx - ex) + c * (wy - ey)
    side = 1.0 if lat >= 0.0 else -1.0
    off = side * (0.5 * ew + 0.5 * walker_width + 0.25 * CONTACT_MARGIN_M)
    return ex + c * lon - s * off, ey + s * lon + c * off, eyaw
