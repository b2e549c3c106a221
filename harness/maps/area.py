"""Drivable area: lane polygons, their union, sidewalks and lane markings as shapely geometry.

Lane polygons are the sampled centerline offset by +-width/2; the drivable area is their union.
Used by metrics (drivable-area compliance), the embedded simulator and rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from harness.maps.lanes import (
    MARKING_COLOR_NAMES,
    MARKING_NONE,
    MARKING_TYPE_NAMES,
    LaneSet,
    lane_sections,
    sample_section,
)

SIDEWALK_SPACING_M = 2.0  # [m] sidewalk centerline sample spacing
MAX_NEIGHBOUR_STEPS = 8  # lanes walked sideways from a driving lane when looking for sidewalks
SIDEWALK_TYPE = "Sidewalk"  # str(carla.LaneType.Sidewalk)
UNION_SIMPLIFY_M = 0.02  # [m] polygons are simplified this much before the union (about 4x faster)


def polygon_parts(geom: Any) -> list[shapely.Polygon]:
    """The non-empty polygons of a shapely geometry (Polygon, Multi*, collections, nested; lines
    and points, which lane polygons may hold after clipping, are skipped)."""
    out: list[shapely.Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, shapely.Polygon):
            if not part.is_empty:
                out.append(part)
        elif hasattr(part, "geoms"):
            out.extend(polygon_parts(part))
    return out


def polygon_exteriors(geom: Any) -> list[NDArray[np.float64]]:
    """The exterior rings (K, 2) [m] of every polygon part of a shapely geometry
    (:func:`polygon_parts`). For drawing."""
    return [np.asarray(p.exterior.coords, dtype=np.float64)[:, :2] for p in polygon_parts(geom)]


def _union(polys: NDArray[np.object_]) -> shapely.Geometry:
    """Polygonal union of strips; degenerate (zero-width) strips drop out.

    buffer(0) of the collection is GEOS's fast overlay union here (about 4x union_all on towns).
    """
    if len(polys) == 0:
        return shapely.MultiPolygon()
    return shapely.buffer(
        shapely.GeometryCollection(list(shapely.simplify(polys, UNION_SIMPLIFY_M))), 0.0
    )


@dataclass(frozen=True)
class LaneMarking:
    """One painted line: xy (N, 2) [m] world-frame polyline, kind ('solid', 'broken',
    'solid_solid', ...: carla.LaneMarkingType in snake case) and color ('white', 'yellow', ...)."""

    xy: NDArray[np.float64]
    kind: str
    color: str


@dataclass(frozen=True, eq=False)
class DrivableArea:
    """Shapely geometry of a town: `lane_polygons` aligned with lane indices, `drivable` (union of
    the driving-lane polygons), `sidewalks` (union of sidewalk polygons) and `markings`."""

    lane_polygons: list[shapely.Geometry]
    drivable: shapely.Geometry
    sidewalks: shapely.Geometry
    markings: list[LaneMarking]
    _tree: shapely.STRtree = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.drivable)
        shapely.prepare(self.sidewalks)
        object.__setattr__(self, "_tree", shapely.STRtree(self.lane_polygons))

    def contains(self, xy: ArrayLike) -> NDArray[np.bool_]:
        """Whether world points (..., 2) [m] lie inside the drivable area (boundary excluded)."""
        p = np.asarray(xy, dtype=np.float64)
        return np.asarray(shapely.contains_xy(self.drivable, p[..., 0], p[..., 1]), dtype=bool)

    def on_sidewalk(self, xy: ArrayLike) -> NDArray[np.bool_]:
        """Whether world points (..., 2) [m] lie on a sidewalk."""
        p = np.asarray(xy, dtype=np.float64)
        return np.asarray(shapely.contains_xy(self.sidewalks, p[..., 0], p[..., 1]), dtype=bool)

    def lanes_at(self, xy: ArrayLike) -> list[list[int]]:
        """For each point of (N, 2), the sorted indices of the lane polygons containing it."""
        p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        point_idx, lane_idx = self._tree.query(shapely.points(p), predicate="intersects")
        order = np.lexsort((lane_idx, point_idx))
        point_idx, lane_idx = point_idx[order], lane_idx[order]
        splits = np.searchsorted(point_idx, np.arange(1, p.shape[0]))
        return [part.tolist() for part in np.split(lane_idx, splits)]


def _strip_polygons(
    xy: NDArray[np.float64],
    yaw: NDArray[np.float64],
    width: NDArray[np.float64],
    start: NDArray[np.int64],
    count: NDArray[np.int64],
) -> NDArray[np.object_]:
    """One polygon per strip (centerline +- width/2), built in one vectorised shapely call."""
    normal = np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1) * (0.5 * width)[:, None]
    right, left = xy + normal, xy - normal
    strip = np.repeat(np.arange(len(count)), count)
    # ring per strip: right edge forward, then left edge backward
    rev = (2 * start + count - 1)[strip] - np.arange(len(strip))
    coords = np.concatenate([right, left[rev]])
    ring_of = np.concatenate([strip, strip[rev]])
    order = np.argsort(ring_of, kind="stable")
    rings = shapely.linearrings(coords[order], indices=ring_of[order])
    polys = shapely.polygons(rings)
    bad = ~shapely.is_valid(polys)
    if bad.any():  # tight curves wider than their radius self-intersect: repair those few
        polys[bad] = shapely.make_valid(polys[bad])
    return np.asarray(polys, dtype=object)


def _sidewalks(
    cmap: Any, lanes: LaneSet, sections: dict[int, NDArray[np.float64]]
) -> shapely.Geometry:
    """Union of the sidewalk lanes found by walking sideways from every non-junction driving lane."""
    found: dict[tuple[int, int, int], None] = {}
    for lane in np.flatnonzero(lanes.junction_id < 0).tolist():
        i = int(lanes.start[lane] + lanes.count[lane] // 2)
        wp = cmap.get_waypoint(_location(lanes.xy[i], lanes.z_m[i]), project_to_road=True)
        if wp is None or wp.road_id != lanes.road_id[lane]:
            continue
        for step in ("get_right_lane", "get_left_lane"):
            w = wp
            for _ in range(MAX_NEIGHBOUR_STEPS):
                w = getattr(w, step)()
                if w is None:
                    break
                if str(w.lane_type) == SIDEWALK_TYPE:
                    found[(w.road_id, w.section_id, w.lane_id)] = None
    xy: list[tuple[float, float]] = []
    yaw: list[float] = []
    width: list[float] = []
    counts: list[int] = []
    for road, section, lane_id in found:
        bounds = sections.get(road)
        if bounds is None or section + 1 >= len(bounds):
            continue
        wps = sample_section(
            cmap,
            road,
            lane_id,
            float(bounds[section]),
            float(bounds[section + 1]),
            SIDEWALK_SPACING_M,
        )
        if len(wps) < 2:
            continue
        counts.append(len(wps))
        for w in wps:
            tr = w.transform
            xy.append((tr.location.x, tr.location.y))
            yaw.append(tr.rotation.yaw)
            width.append(w.lane_width)
    if not counts:
        return shapely.MultiPolygon()
    count = np.array(counts, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    polys = _strip_polygons(np.array(xy), np.deg2rad(np.array(yaw)), np.array(width), start, count)
    return _union(polys)


def _location(xy: NDArray[np.float64], z: float) -> Any:
    import carla  # the maps layer is the one place allowed to build carla objects

    return carla.Location(x=float(xy[0]), y=float(xy[1]), z=float(z))


def _markings(lanes: LaneSet) -> list[LaneMarking]:
    """Marking polylines along lane edges, split where type or color changes; junctions skipped.

    Each shared line is drawn once: right edges always, left edges only for the innermost lane of a
    direction (the centre line is drawn from the negative-id side when both sides exist).
    """
    sign = np.sign(lanes.lane_id)
    has_left_neighbour = lanes.lookup(lanes.road_id, lanes.section_id, lanes.lane_id - sign) >= 0
    centre_drawn_by_other = (lanes.lane_id == 1) & (
        lanes.lookup(lanes.road_id, lanes.section_id, -1) >= 0
    )
    draw_left = (lanes.junction_id < 0) & ~has_left_neighbour & ~centre_drawn_by_other
    draw_right = lanes.junction_id < 0
    normal = (
        np.stack([-np.sin(lanes.yaw_rad), np.cos(lanes.yaw_rad)], axis=-1)
        * (0.5 * lanes.width_m)[:, None]
    )
    out: list[LaneMarking] = []
    for side, edge, draw in ((0, lanes.xy - normal, draw_left), (1, lanes.xy + normal, draw_right)):
        kind = lanes.marking_type[:, side].astype(np.int64)
        color = lanes.marking_color[:, side].astype(np.int64)
        code = kind * 16 + color
        lane_of = lanes.lane_of_point
        brk = np.flatnonzero((np.diff(code) != 0) | (np.diff(lane_of) != 0)) + 1
        run_start = np.concatenate([[0], brk])
        run_end = np.concatenate([brk, [len(code)]])
        keep = (
            draw[lane_of[run_start]]
            & (kind[run_start] != MARKING_NONE)
            & (run_end - run_start >= 2)
        )
        for a, b in zip(run_start[keep].tolist(), run_end[keep].tolist(), strict=True):
            out.append(
                LaneMarking(
                    xy=edge[a:b].copy(),
                    kind=MARKING_TYPE_NAMES.get(int(kind[a]), "other"),
                    color=MARKING_COLOR_NAMES.get(int(color[a]), "other"),
                )
            )
    return out


def build_area(cmap: Any, lanes: LaneSet, xodr_text: str) -> DrivableArea:
    """Lane polygons, drivable union, sidewalks and markings of a town."""
    polys = _strip_polygons(lanes.xy, lanes.yaw_rad, lanes.width_m, lanes.start, lanes.count)
    return DrivableArea(
        lane_polygons=list(polys),
        drivable=_union(polys),
        sidewalks=_sidewalks(cmap, lanes, lane_sections(xodr_text)),
        markings=_markings(lanes),
    )
