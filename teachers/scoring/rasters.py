"""Per-scene map rasters: the map questions of PDMS/EPDMS as O(1) array gathers.

Built once per scene over a window covering every simulated ego state (plus a margin for the
box and the TTC projection), then queried for all candidates x time x box points in one gather:

- fine masks at ``RASTER_RESOLUTION_M`` (0.1 m): drivable area (union of driving-lane
  polygons), lane id / number of lane polygons covering each cell (straddling lanes), on-route
  lanes, junctions, and one mask per traffic light whose on-route connectors are inside the
  window. Polygons are filled with PIL (cell-centre sampling, edge pixels included), so a point
  within about one cell (0.1 m, at most 0.1 * sqrt(2) = 0.14 m) of a polygon edge may be
  classified differently from the exact shapely answer; everything farther is exact.
- nearest-segment grids at ``NEAREST_RESOLUTION_M`` (0.5 m): for every cell the nearest lane
  centerline segment and the nearest route segment, from a Euclidean distance transform of the
  rasterised segments. Distances and route stations are then computed exactly against that
  segment and its two neighbours along the polyline, so they are exact except near points
  equidistant from two different lanes (where both distances are large: no lane-keeping
  threshold decision changes there).

The reference scorer (the test oracle ``tests/oracles/reference.py``) answers the same questions
with shapely; the tests check both agree on random candidates.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import shapely
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from scipy import ndimage

from harness.dynamics.lqr import StateIndex
from harness.jit import njit
from harness.maps.area import DrivableArea
from harness.maps.junctions import Junction
from harness.maps.lanes import LaneSet
from harness.world.state import LightState
from teachers.scene import Scene
from teachers.scoring.egopose import EgoPose

RASTER_RESOLUTION_M = 0.1  # fine mask cell size [m]
NEAREST_RESOLUTION_M = 0.5  # nearest-segment grid cell size [m]
SEGMENT_SAMPLE_M = 0.2  # sample spacing when rasterising segments (< the coarse cell) [m]
WINDOW_MARGIN_M = 8.0  # window margin beyond the ego centres: box half-diagonal + TTC reach [m]
FLAG_DRIVABLE = 1  # bits of SceneRasters.flags: cell in a driving-lane polygon
FLAG_MULTI_LANE = 2  # in more than one lane polygon
FLAG_ON_ROUTE = 4  # in an on-route lane
FLAG_JUNCTION = 8  # in a junction polygon
LANE_SLOTS = 4  # lane polygons remembered per cell (SceneRasters.lane_slots)

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


class ScoringMap(Protocol):
    """The parts of a :class:`harness.maps.Town` that scoring reads (tests pass small doubles)."""

    @property
    def lanes(self) -> LaneSet: ...

    @property
    def area(self) -> DrivableArea: ...

    @property
    def junctions(self) -> tuple[Junction, ...]: ...


@dataclass(frozen=True, eq=False)
class TownIndex:
    """Derived, immutable per-town lookup structures: an STRtree over lane polygons, lane
    centerline segments ``seg_a``/``seg_b`` (S, 2) [m] with their lane ``seg_lane`` (S,) and
    neighbour segment indices ``seg_prev``/``seg_next`` (S,) along the same lane (self at ends),
    and junction polygons."""

    lane_tree: shapely.STRtree
    seg_a: Float
    seg_b: Float
    seg_lane: NDArray[np.int64]
    seg_prev: NDArray[np.int64]
    seg_next: NDArray[np.int64]
    junction_polygons: NDArray[np.object_]


def town_index(town: ScoringMap) -> TownIndex:
    """The lookup structures of :class:`TownIndex`, built once per town object (towns are
    immutable and hash by identity)."""
    key: Any = town
    return _town_index(key)


@functools.lru_cache(maxsize=8)
def _town_index(town: Any) -> TownIndex:
    lanes = town.lanes
    start = np.flatnonzero(lanes.lane_of_point[1:] == lanes.lane_of_point[:-1])
    seg_lane = lanes.lane_of_point[start]
    idx = np.arange(len(start))
    same_prev = np.r_[False, seg_lane[1:] == seg_lane[:-1]]
    same_next = np.r_[seg_lane[:-1] == seg_lane[1:], False]
    return TownIndex(
        lane_tree=shapely.STRtree(town.area.lane_polygons),
        seg_a=lanes.xy[start],
        seg_b=lanes.xy[start + 1],
        seg_lane=seg_lane,
        seg_prev=np.where(same_prev, idx - 1, idx),
        seg_next=np.where(same_next, idx + 1, idx),
        junction_polygons=np.array([j.polygon for j in town.junctions], dtype=object),
    )


def expand_route_lanes(lanes: LaneSet, route_lanes: NDArray[np.int64]) -> NDArray[np.int64]:
    """On-route lane set in NAVSIM's sense: every lane of the route's road sections that drives
    in the same direction (same road, section and sign of OpenDRIVE lane id), plus the route's own
    junction connectors."""
    r = np.unique(np.asarray(route_lanes, dtype=np.int64))
    keys = set(zip(lanes.road_id[r], lanes.section_id[r], np.sign(lanes.lane_id[r]), strict=True))
    mine = [
        i
        for i, k in enumerate(
            zip(lanes.road_id, lanes.section_id, np.sign(lanes.lane_id), strict=True)
        )
        if k in keys and lanes.junction_id[i] < 0
    ]
    return np.union1d(r, np.asarray(mine, dtype=np.int64))


def _segment_distance(p: Float, a: Float, b: Float) -> tuple[Float, Float]:
    """Distance (...) from points p (..., 2) to segments a-b (..., 2) and the clamped fraction."""
    d = b - a
    len2 = np.maximum((d * d).sum(-1), 1e-12)
    u = np.clip(((p - a) * d).sum(-1) / len2, 0.0, 1.0)
    foot = a + u[..., None] * d
    return np.linalg.norm(p - foot, axis=-1), u


@dataclass(frozen=True, eq=False)
class Grid:
    """An axis-aligned raster frame: cell (row i, col j) covers x in [x0 + j r, x0 + (j+1) r),
    y in [y0 + i r, y0 + (i+1) r); ``origin_xy`` (2,) [m], ``resolution_m``, ``shape`` (H, W)."""

    origin_xy: Float
    resolution_m: float
    shape: tuple[int, int]

    def cells(self, xy: Float) -> tuple[NDArray[np.intp], NDArray[np.intp], Bool]:
        """Row, column (clipped into the grid) and in-grid flag of world points (..., 2)."""
        q = (xy - self.origin_xy) / self.resolution_m
        j = np.floor(q[..., 0]).astype(np.intp)
        i = np.floor(q[..., 1]).astype(np.intp)
        h, w = self.shape
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        return np.clip(i, 0, h - 1), np.clip(j, 0, w - 1), inside

    def fill(self, geoms: list[shapely.Geometry]) -> Bool:
        """Cells whose centres lie in the union of (multi)polygons, by PIL scan fill."""
        return np.asarray(self._draw(geoms), dtype=bool)

    def fill_crop(self, geoms: list[shapely.Geometry]) -> tuple[tuple[slice, slice], Bool]:
        """:meth:`fill` as (rows, columns) slices of the filled cells' bounding box and the mask
        inside it (empty slices when nothing is filled): only the box is converted, so callers
        combining many small polygons touch only their boxes."""
        img = self._draw(geoms)
        box = img.getbbox()
        if box is None:
            return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
        left, upper, right, lower = box
        return (slice(upper, lower), slice(left, right)), np.asarray(img.crop(box), dtype=bool)

    def _draw(self, geoms: list[shapely.Geometry]) -> Image.Image:
        h, w = self.shape
        img = Image.new("1", (w, h), 0)
        draw = ImageDraw.Draw(img)
        for g in geoms:
            for poly in getattr(g, "geoms", [g]):
                if poly.is_empty or poly.geom_type != "Polygon":
                    continue
                draw.polygon(self._pixels(poly.exterior.coords), fill=1)
                for ring in poly.interiors:
                    draw.polygon(self._pixels(ring.coords), fill=0)
        return img

    def _pixels(self, coords: object) -> list[tuple[float, float]]:
        c = (np.asarray(coords)[:, :2] - self.origin_xy) / self.resolution_m - 0.5
        return [tuple(p) for p in c.tolist()]

    def nearest_feature(self, points: Float, labels: NDArray[np.int64]) -> NDArray[np.int64]:
        """Per cell, the label of the nearest labelled point (EDT over the rasterised points);
        -1 everywhere when there are none."""
        grid = np.full(self.shape, -1, dtype=np.int64)
        if len(labels) == 0:
            return grid
        i, j, inside = self.cells(points)
        grid[i[inside], j[inside]] = labels[inside]
        if not (grid >= 0).any():
            return grid
        idx = ndimage.distance_transform_edt(grid < 0, return_distances=False, return_indices=True)
        return grid[idx[0], idx[1]]


def _sample_segments(a: Float, b: Float) -> tuple[Float, NDArray[np.int64]]:
    """Points every <= SEGMENT_SAMPLE_M along segments (S, 2) and their segment index."""
    n = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / SEGMENT_SAMPLE_M), 1).astype(int) + 1
    seg = np.repeat(np.arange(len(a)), n)
    first = np.repeat(np.cumsum(n) - n, n)
    u = (np.arange(seg.size) - first) / (n[seg] - 1)
    return a[seg] + u[:, None] * (b - a)[seg], seg


@dataclass(frozen=True, eq=False)
class SceneRasters:
    """Map rasters of one scene window (see module docstring). Fine (H, W) masks on ``fine``:
    ``flags`` (uint8 bitfield of FLAG_DRIVABLE, FLAG_MULTI_LANE, FLAG_ON_ROUTE, FLAG_JUNCTION, so
    one gather answers several metrics), ``drivable``, ``lane_id`` (int32, lowest covering lane or -1), ``lane_count`` (uint8),
    ``on_route``, ``junction``; ``lane_slots`` (H, W, LANE_SLOTS) int32 the lanes covering each
    cell (-1 padded; where more cover it, the LANE_SLOTS highest indices); ``red_masks`` (K, H, W) on-route connectors of the K lights in the
    window, ``red_state`` (K, 41) whether each is red at t = 0..4 s. Coarse (h, w) grids on
    ``coarse``: ``centerline_seg`` and ``route_seg`` nearest-segment indices into ``seg_a/seg_b``
    (S, 2) with neighbours ``seg_prev/seg_next`` and into ``route_a/route_b`` (R, 2) with
    ``route_s0`` (R,) [m] route arc length at each segment start."""

    fine: Grid
    flags: NDArray[np.uint8]
    drivable: Bool
    lane_id: NDArray[np.int32]
    lane_count: NDArray[np.uint8]
    lane_slots: NDArray[np.int32]
    on_route: Bool
    junction: Bool
    red_masks: Bool
    red_state: Bool
    coarse: Grid
    centerline_seg: NDArray[np.int64]
    seg_a: Float
    seg_b: Float
    seg_prev: NDArray[np.int64]
    seg_next: NDArray[np.int64]
    route_seg: NDArray[np.int64]
    route_a: Float
    route_b: Float
    route_s0: Float

    @classmethod
    def build(
        cls,
        scene: Scene,
        town: ScoringMap,
        bounds: tuple[float, float, float, float],
        resolution_m: float = RASTER_RESOLUTION_M,
    ) -> SceneRasters:
        """Rasterise the map inside ``bounds`` (xmin, ymin, xmax, ymax) [m] grown by
        WINDOW_MARGIN_M. The window snaps outwards to a world-aligned grid of the coarse cell
        size, so a point always falls in the same cells whatever batch set the window (scores
        of a trajectory do not depend on which other trajectories it was scored with)."""
        snap = max(NEAREST_RESOLUTION_M, resolution_m)
        x0 = math.floor((bounds[0] - WINDOW_MARGIN_M) / snap) * snap
        y0 = math.floor((bounds[1] - WINDOW_MARGIN_M) / snap) * snap
        x1 = math.ceil((bounds[2] + WINDOW_MARGIN_M) / snap) * snap
        y1 = math.ceil((bounds[3] + WINDOW_MARGIN_M) / snap) * snap
        origin = np.array([x0, y0])
        fine = Grid(origin, resolution_m, _shape(x1 - x0, y1 - y0, resolution_m))
        coarse = Grid(origin, NEAREST_RESOLUTION_M, _shape(x1 - x0, y1 - y0, NEAREST_RESOLUTION_M))
        index = town_index(town)
        window = shapely.box(x0, y0, x1, y1)
        lanes_in = np.sort(index.lane_tree.query(window, predicate="intersects"))
        polys = town.area.lane_polygons

        lane_id = np.full(fine.shape, -1, dtype=np.int32)
        lane_count = np.zeros(fine.shape, dtype=np.uint8)
        lane_slots = np.full((*fine.shape, LANE_SLOTS), -1, dtype=np.int32)
        for lane in lanes_in[::-1].tolist():  # descending: the lowest covering lane wins
            box, m = fine.fill_crop([polys[lane]])
            rows, cols = np.nonzero(m)
            slot = lane_count[box][rows, cols]
            free = slot < LANE_SLOTS
            lane_slots[box][rows[free], cols[free], slot[free]] = lane
            lane_count[box] += m
            lane_id[box][m] = lane
        route = np.asarray(scene.route_lanes, dtype=np.int64)
        on_route = fine.fill([polys[k] for k in np.intersect1d(lanes_in, route).tolist()])
        jpolys = index.junction_polygons
        junction = fine.fill(
            list(jpolys[shapely.intersects(jpolys, window)]) if len(jpolys) else []
        )

        masks, states = [], []
        for i in range(scene.light_lanes.shape[0]):
            ctrl = scene.light_lanes[i][scene.light_lanes_valid[i]]
            ctrl = np.intersect1d(np.intersect1d(ctrl, route), lanes_in)
            red = scene.light_state[i] == LightState.RED
            if ctrl.size and red.any():
                masks.append(fine.fill([polys[k] for k in ctrl.tolist()]))
                states.append(red)
        red_masks = np.array(masks, dtype=bool).reshape(len(masks), *fine.shape)
        red_state = np.array(states, dtype=bool).reshape(len(states), scene.light_state.shape[1])

        segs = np.flatnonzero(np.isin(index.seg_lane, lanes_in))
        pts, which = _sample_segments(index.seg_a[segs], index.seg_b[segs])
        centerline_seg = coarse.nearest_feature(pts, segs[which])

        r_a, r_b = scene.route_xy[:-1], scene.route_xy[1:]
        r_s0 = np.r_[0.0, np.cumsum(np.linalg.norm(r_b - r_a, axis=1))[:-1]]
        pts, which = _sample_segments(r_a, r_b)
        route_seg = coarse.nearest_feature(pts, which)
        flags = (
            (lane_count > 0) * FLAG_DRIVABLE
            | (lane_count > 1) * FLAG_MULTI_LANE
            | on_route * FLAG_ON_ROUTE
            | junction * FLAG_JUNCTION
        ).astype(np.uint8)
        return cls(
            fine=fine,
            flags=flags,
            drivable=lane_count > 0,
            lane_id=lane_id,
            lane_count=lane_count,
            lane_slots=lane_slots,
            on_route=on_route,
            junction=junction,
            red_masks=red_masks,
            red_state=red_state,
            coarse=coarse,
            centerline_seg=centerline_seg,
            seg_a=index.seg_a,
            seg_b=index.seg_b,
            seg_prev=index.seg_prev,
            seg_next=index.seg_next,
            route_seg=route_seg,
            route_a=r_a,
            route_b=r_b,
            route_s0=r_s0,
        )

    def centerline_distance(self, xy: Float) -> Float:
        """Distance (...) [m] from points (..., 2) to the nearest driving-lane centerline."""
        return self.centerline_distance_xy(xy[..., 0], xy[..., 1])

    def centerline_distance_xy(self, x: Float, y: Float) -> Float:
        """Distance (...) [m] from points ``x``, ``y`` (...) to the nearest lane centerline: exact
        against the grid cell's nearest segment and its two neighbours along the lane (numba
        kernel :func:`_centerline_distance`)."""
        c = self.coarse
        xf = np.ascontiguousarray(x, dtype=np.float64).ravel()
        yf = np.ascontiguousarray(y, dtype=np.float64).ravel()
        out = np.empty(xf.size)
        ax, ay, dx, dy, inv = self.seg_params
        found = _centerline_distance(
            xf,
            yf,
            float(c.origin_xy[0]),
            float(c.origin_xy[1]),
            float(c.resolution_m),
            np.ascontiguousarray(self.centerline_seg, dtype=np.int64),
            self.seg_prev,
            self.seg_next,
            ax,
            ay,
            dx,
            dy,
            inv,
            out,
        )
        if not found:
            out[:] = np.inf
        return out.reshape(np.shape(x))

    def route_distance_xy(self, x: Float, y: Float) -> Float:
        """Distance (...) [m] from points ``x``, ``y`` (...) to the route centreline polyline:
        exact against the coarse cell's nearest route segment and its two neighbours (the
        :func:`_centerline_distance` kernel on the route's segments)."""
        c = self.coarse
        xf = np.ascontiguousarray(x, dtype=np.float64).ravel()
        yf = np.ascontiguousarray(y, dtype=np.float64).ravel()
        out = np.empty(xf.size)
        idx = np.arange(len(self.route_a), dtype=np.int64)
        d = self.route_b - self.route_a
        inv = 1.0 / np.maximum((d * d).sum(-1), 1e-12)
        _centerline_distance(
            xf,
            yf,
            float(c.origin_xy[0]),
            float(c.origin_xy[1]),
            float(c.resolution_m),
            np.ascontiguousarray(self.route_seg, dtype=np.int64),
            np.maximum(idx - 1, 0),
            np.minimum(idx + 1, len(idx) - 1),
            np.ascontiguousarray(self.route_a[:, 0]),
            np.ascontiguousarray(self.route_a[:, 1]),
            np.ascontiguousarray(d[:, 0]),
            np.ascontiguousarray(d[:, 1]),
            inv,
            out,
        )
        return out.reshape(np.shape(x))

    def flags_at(self, x: Float, y: Float) -> NDArray[np.uint8]:
        """The FLAG_* bitfield (...) at points ``x``, ``y`` (...) [m] (0 outside the window);
        numba kernel :func:`_gather_flags`."""
        xf = np.ascontiguousarray(x, dtype=np.float64).ravel()
        yf = np.ascontiguousarray(y, dtype=np.float64).ravel()
        out = np.empty(xf.size, dtype=np.uint8)
        g = self.fine
        _gather_flags(
            xf, yf, float(g.origin_xy[0]), float(g.origin_xy[1]), g.resolution_m, self.flags, out
        )
        return out.reshape(np.shape(x))

    @functools.cached_property
    def seg_params(self) -> tuple[Float, Float, Float, Float, Float]:
        """Lane segments as (start x, start y, chord x, chord y, inverse squared length) (S,)."""
        d = self.seg_b - self.seg_a
        inv = 1.0 / np.maximum((d * d).sum(-1), 1e-12)
        a = np.ascontiguousarray(self.seg_a.T)
        return a[0], a[1], np.ascontiguousarray(d[:, 0]), np.ascontiguousarray(d[:, 1]), inv

    def route_station(self, xy: Float) -> Float:
        """Arc length (...) [m] along the route centerline of the projection of points (..., 2)."""
        i, j, _ = self.coarse.cells(xy)
        seg = np.maximum(self.route_seg[i, j], 0)
        last = len(self.route_a) - 1
        best_d = np.full(xy.shape[:-1], np.inf)
        best_s = np.zeros(xy.shape[:-1])
        for s in (seg, np.maximum(seg - 1, 0), np.minimum(seg + 1, last)):
            a, b = self.route_a[s], self.route_b[s]
            d, u = _segment_distance(xy, a, b)
            better = d < best_d
            best_d = np.where(better, d, best_d)
            best_s = np.where(better, self.route_s0[s] + u * np.linalg.norm(b - a, axis=-1), best_s)
        return best_s


def _shape(width_m: float, height_m: float, res: float) -> tuple[int, int]:
    return int(np.ceil(height_m / res)), int(np.ceil(width_m / res))


@dataclass(frozen=True)
class EgoAreas:
    """Per candidate and time step (B, T) map facts about the ego box: ``off_drivable`` (a corner
    outside the drivable area), ``multiple_lanes`` (corners in different lanes or in more than one
    lane polygon), ``in_junction`` (centre), ``oncoming`` (centre on a drivable cell that is not an
    on-route lane, outside junctions), ``red_light`` (the box, sampled along its perimeter, on an
    on-route connector of a light red at that step that it did not already
    touch at t=0), ``centerline_m`` (centre's distance to the nearest lane centerline [m])."""

    off_drivable: Bool
    multiple_lanes: Bool
    in_junction: Bool
    oncoming: Bool
    red_light: Bool
    centerline_m: Float


RED_SAMPLE_SPACING_M = 0.25  # spacing of the box-perimeter samples tested against red connectors


def perimeter_samples(length_m: float, width_m: float) -> Float:
    """(S, 2) box-frame points [m]: the box perimeter every <= RED_SAMPLE_SPACING_M, and the centre.
    A connector polygon that enters the box crosses its perimeter, so it contains some sample
    unless the overlap is a sliver shorter than the spacing along every edge it crosses."""
    nl = int(np.ceil(length_m / RED_SAMPLE_SPACING_M)) + 1
    nw = int(np.ceil(width_m / RED_SAMPLE_SPACING_M)) + 1
    u = np.linspace(-0.5 * length_m, 0.5 * length_m, nl)
    v = np.linspace(-0.5 * width_m, 0.5 * width_m, nw)
    hl, hw = 0.5 * length_m, 0.5 * width_m
    return np.concatenate(
        [
            np.column_stack([u, np.full(nl, hw)]),
            np.column_stack([u, np.full(nl, -hw)]),
            np.column_stack([np.full(nw, hl), v]),
            np.column_stack([np.full(nw, -hl), v]),
            np.zeros((1, 2)),
        ]
    )


def red_light_hits(
    rasters: SceneRasters,
    states: Float,
    length_m: float,
    width_m: float,
    exempt_t0: bool = True,
) -> Bool:
    """(B, T) whether the ego box touches a red on-route connector (with ``exempt_t0``, one it did
    not already touch at t=0; NAVSIM counts t = 0 too). Only samples whose centre is within the box's circumradius of a light's mask bounding box
    are gathered."""
    bsz, n_t = states.shape[:2]
    red = np.zeros((bsz, n_t), dtype=bool)
    if rasters.red_masks.shape[0] == 0:
        return red
    local = perimeter_samples(length_m, width_m)
    reach = 0.5 * float(np.hypot(length_m, width_m)) + rasters.fine.resolution_m
    fine = rasters.fine
    for k in range(rasters.red_masks.shape[0]):
        rows, cols = (
            np.nonzero(rasters.red_masks[k].any(axis=1))[0],
            np.nonzero(rasters.red_masks[k].any(axis=0))[0],
        )
        if rows.size == 0:
            continue
        lo = fine.origin_xy + fine.resolution_m * np.array([cols[0], rows[0]]) - reach
        hi = fine.origin_xy + fine.resolution_m * np.array([cols[-1] + 1, rows[-1] + 1]) + reach
        xy = states[..., [StateIndex.X, StateIndex.Y]]
        near = np.all((xy >= lo) & (xy <= hi), axis=-1)
        if not near.any():
            continue
        b, t = np.nonzero(near)
        sel = states[b, t]
        c, s = np.cos(sel[:, StateIndex.YAW])[:, None], np.sin(sel[:, StateIndex.YAW])[:, None]
        px = sel[:, StateIndex.X, None] + c * local[:, 0] - s * local[:, 1]
        py = sel[:, StateIndex.Y, None] + s * local[:, 0] + c * local[:, 1]
        i, j, inside = fine.cells(np.stack([px, py], axis=-1))
        touch = np.zeros((bsz, n_t), dtype=bool)
        touch[b, t] = (rasters.red_masks[k][i, j] & inside).any(axis=-1)
        red |= touch & rasters.red_state[k][None, :n_t] & ~(touch[:, :1] & exempt_t0)
    return red


def ego_areas(
    rasters: SceneRasters,
    states: Float,
    length_m: float,
    width_m: float,
    pose: EgoPose | None = None,
    red_exempt_t0: bool = True,
) -> EgoAreas:
    """:class:`EgoAreas` of simulated states (B, T, N_STATE) by raster gathers: the flag bitfield
    and the lane id at each corner and the flags at the centre, in one pass of the numba kernel
    :func:`_box_facts` (``red_exempt_t0``: see :func:`red_light_hits`)."""
    pose = pose or EgoPose.of(states)
    fine = rasters.fine
    shape = pose.x.shape
    off, multiple, junction, oncoming = (np.empty(shape, dtype=bool) for _ in range(4))
    _box_facts(
        pose.x,
        pose.y,
        pose.cos,
        pose.sin,
        0.5 * length_m,
        0.5 * width_m,
        float(fine.origin_xy[0]),
        float(fine.origin_xy[1]),
        float(fine.resolution_m),
        rasters.flags,
        rasters.lane_id,
        off,
        multiple,
        junction,
        oncoming,
    )
    return EgoAreas(
        off_drivable=off,
        multiple_lanes=multiple,
        in_junction=junction,
        oncoming=oncoming,
        red_light=red_light_hits(rasters, states, length_m, width_m, red_exempt_t0),
        centerline_m=rasters.centerline_distance_xy(pose.x, pose.y),
    )


@njit
def _box_facts(  # noqa: PLR0913
    x: Float,
    y: Float,
    cos: Float,
    sin: Float,
    hl: float,
    hw: float,
    x0: float,
    y0: float,
    res: float,
    flags: NDArray[np.uint8],
    lane_id: NDArray[np.int32],
    off: Bool,
    multiple: Bool,
    junction: Bool,
    oncoming: Bool,
) -> None:
    """Fill the (B, T) planes ``off`` (a corner off the drivable area), ``multiple`` (corners in
    different lanes or in a multi-lane cell), ``junction`` and ``oncoming`` (centre facts) from
    the rasters ``flags`` / ``lane_id`` (H, W) (outside the grid: flags 0, lane -1)."""
    h, w = flags.shape
    big = np.iinfo(np.int32).max
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            xc, yc = x[b, t], y[b, t]
            c_l, s_l = cos[b, t] * hl, sin[b, t] * hl
            c_w, s_w = cos[b, t] * hw, sin[b, t] * hw
            f_and = np.uint8(255)
            f_or = np.uint8(0)
            lane_max = -1
            lane_min = big
            for corner in range(4):
                su = 1.0 if corner < 2 else -1.0  # harness.boxes.Corner order
                sv = 1.0 if corner == 0 or corner == 3 else -1.0
                qx = (xc + su * c_l - sv * s_w - x0) / res
                qy = (yc + su * s_l + sv * c_w - y0) / res
                f = np.uint8(0)
                lane = -1
                if qx >= 0.0 and qy >= 0.0 and qx < w and qy < h:
                    i, j = int(qy), int(qx)
                    f = flags[i, j]
                    lane = lane_id[i, j]
                f_and &= f
                f_or |= f
                lane_max = max(lane_max, lane)
                if lane >= 0:
                    lane_min = min(lane_min, lane)
            off[b, t] = (f_and & FLAG_DRIVABLE) == 0
            multiple[b, t] = (lane_max >= 0 and lane_min != lane_max) or (
                f_or & FLAG_MULTI_LANE
            ) > 0
            qx = (xc - x0) / res
            qy = (yc - y0) / res
            centre = np.uint8(0)
            if qx >= 0.0 and qy >= 0.0 and qx < w and qy < h:
                centre = flags[int(qy), int(qx)]
            junction[b, t] = (centre & FLAG_JUNCTION) > 0
            oncoming[b, t] = (centre & (FLAG_DRIVABLE | FLAG_ON_ROUTE | FLAG_JUNCTION)) == (
                FLAG_DRIVABLE
            )


@njit
def _centerline_distance(  # noqa: PLR0913
    x: Float,
    y: Float,
    x0: float,
    y0: float,
    res: float,
    cell_seg: NDArray[np.int64],
    seg_prev: NDArray[np.int64],
    seg_next: NDArray[np.int64],
    ax: Float,
    ay: Float,
    dx: Float,
    dy: Float,
    inv: Float,
    out: Float,
) -> bool:
    """Fill ``out`` (N,) with the distances [m] of points ``x``, ``y`` (N,) to the nearest of the
    coarse cell's segment (``cell_seg`` (H, W), -1 = none: segment 0 is used) and its lane
    neighbours; returns whether any point's cell had a segment (else the caller sets inf)."""
    h, w = cell_seg.shape
    found = False
    for n in range(x.shape[0]):
        i = min(max(int((y[n] - y0) / res), 0), h - 1)
        j = min(max(int((x[n] - x0) / res), 0), w - 1)
        seg = cell_seg[i, j]
        if seg >= 0:
            found = True
        else:
            seg = 0
        best = np.inf
        for r in range(3):
            s = seg if r == 0 else (seg_prev[seg] if r == 1 else seg_next[seg])
            px = x[n] - ax[s]
            py = y[n] - ay[s]
            sx, sy = dx[s], dy[s]
            u = min(max((px * sx + py * sy) * inv[s], 0.0), 1.0)
            px -= u * sx
            py -= u * sy
            d2 = px * px + py * py
            best = min(best, d2)
        out[n] = np.sqrt(best)
    return found


def navsim_multiple_lanes(
    rasters: SceneRasters, pose: EgoPose, length_m: float, width_m: float, candidates: Bool
) -> Bool:
    """(B, T) NAVSIM's "in several lanes": the four ego corners lie in at least two lane polygons
    and no single lane polygon holds all four. Only boxes where ``candidates`` (B, T) holds are
    tested (the harness rule's ``EgoAreas.multiple_lanes`` is a superset: it flags every box whose
    corners see two lanes); numba kernel :func:`_navsim_multi` over the cells' lane slots."""
    out = np.zeros(pose.shape, dtype=bool)
    fine = rasters.fine
    _navsim_multi(
        pose.x,
        pose.y,
        pose.cos,
        pose.sin,
        0.5 * length_m,
        0.5 * width_m,
        float(fine.origin_xy[0]),
        float(fine.origin_xy[1]),
        float(fine.resolution_m),
        rasters.lane_slots,
        np.ascontiguousarray(candidates),
        out,
    )
    return out


@njit
def _navsim_multi(  # noqa: PLR0913
    x: Float,
    y: Float,
    cos: Float,
    sin: Float,
    hl: float,
    hw: float,
    x0: float,
    y0: float,
    res: float,
    slots: NDArray[np.int32],
    candidates: Bool,
    out: Bool,
) -> None:
    """Fill ``out`` (B, T) per :func:`navsim_multiple_lanes` from the lane slots (H, W, S)."""
    h, w, n_slots = slots.shape
    seen = np.empty(4 * n_slots, dtype=np.int32)
    hits = np.empty(4 * n_slots, dtype=np.int32)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            if not candidates[b, t]:
                continue
            n_seen = 0
            c_l, s_l = cos[b, t] * hl, sin[b, t] * hl
            c_w, s_w = cos[b, t] * hw, sin[b, t] * hw
            for corner in range(4):
                su = 1.0 if corner < 2 else -1.0  # harness.boxes.Corner order
                sv = 1.0 if corner == 0 or corner == 3 else -1.0
                qx = (x[b, t] + su * c_l - sv * s_w - x0) / res
                qy = (y[b, t] + su * s_l + sv * c_w - y0) / res
                if not (qx >= 0.0 and qy >= 0.0 and qx < w and qy < h):
                    continue
                i, j = int(qy), int(qx)
                for k in range(n_slots):
                    lane = slots[i, j, k]
                    if lane < 0:
                        break
                    found = -1
                    for m in range(n_seen):
                        if seen[m] == lane:
                            found = m
                            break
                    if found < 0:
                        seen[n_seen] = lane
                        hits[n_seen] = 1
                        n_seen += 1
                    else:
                        hits[found] += 1
            holder = False
            for m in range(n_seen):
                if hits[m] == 4:
                    holder = True
            out[b, t] = n_seen > 1 and not holder


@njit
def _gather_flags(
    x: Float,
    y: Float,
    x0: float,
    y0: float,
    res: float,
    flags: NDArray[np.uint8],
    out: NDArray[np.uint8],
) -> None:
    """out (N,) = ``flags`` (H, W) at the cells of points ``x``, ``y`` (N,), 0 outside."""
    h, w = flags.shape
    for n in range(x.shape[0]):
        qx = np.floor((x[n] - x0) / res)
        qy = np.floor((y[n] - y0) / res)
        if qx >= 0.0 and qy >= 0.0 and qx < w and qy < h:
            out[n] = flags[int(qy), int(qx)]
        else:
            out[n] = 0
