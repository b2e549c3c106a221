"""Top-down ground texture of a town (class map), drawn once per town and shared by the camera and
BEV renderers: both only gather pixels from it per frame, which is what makes them fast."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
import shapely
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from harness.maps.area import polygon_parts

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION_M = 0.2  # [m/px] raster cell size
MARGIN_M = 60.0  # [m] grass drawn around the town's extent
MARKING_WIDTH_M = 0.15  # [m] painted line width
DOUBLE_LINE_GAP_M = 0.3  # [m] centre-to-centre distance of a double marking
DASH_LENGTH_M = 3.0  # [m] painted part of a broken line
DASH_GAP_M = 6.0  # [m] gap of a broken line
STOP_LINE_WIDTH_M = 0.4  # [m]


class GroundClass(IntEnum):
    """Values of the raster's class map (ordered as they are painted, later over earlier)."""

    TERRAIN = 0  # grass / ground outside roads and sidewalks, also outside the raster
    SIDEWALK = 1
    ROAD = 2
    WHITE_MARKING = 3
    YELLOW_MARKING = 4
    STOP_LINE = 5


class MarkingLike(Protocol):
    """A painted lane marking: polyline ``xy`` (N, 2) [m], ``kind`` e.g. 'solid', 'broken',
    'solid_solid', ``color`` 'white' or 'yellow'."""

    @property
    def xy(self) -> NDArray[np.float64]: ...
    @property
    def kind(self) -> str: ...
    @property
    def color(self) -> str: ...


class SignalsLike(Protocol):
    """The parts of the maps layer's SignalSet the sensors use (T lights, S stop lines)."""

    @property
    def light_xy(self) -> NDArray[np.float64]: ...  # (T, 2) [m]
    @property
    def light_yaw(self) -> NDArray[np.float64]: ...  # (T,) [rad]
    @property
    def stop_a(self) -> NDArray[np.float64]: ...  # (S, 2) [m] one end of each stop line
    @property
    def stop_b(self) -> NDArray[np.float64]: ...  # (S, 2) [m] the other end
    @property
    def stop_owner(self) -> NDArray[np.int64]: ...  # (S,) owning light or sign per stop_kind


def _ensure_geometry(geom: Any) -> shapely.Geometry:
    if geom is None:
        return shapely.Polygon()
    if isinstance(geom, shapely.Geometry):
        return geom
    return shapely.union_all(list(geom))


def _polygons(geom: shapely.Geometry) -> list[shapely.Polygon]:
    """The polygon parts of any geometry, largest first (so islands inside holes paint last)."""
    return sorted(polygon_parts(geom), key=lambda p: -p.area)


def _dashes(xy: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    """Split a polyline into DASH_LENGTH_M pieces every DASH_LENGTH_M + DASH_GAP_M of arc length."""
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return []
    period = DASH_LENGTH_M + DASH_GAP_M
    starts = np.arange(0.0, s[-1], period)
    out = []
    for s0 in starts:
        s1 = min(s0 + DASH_LENGTH_M, s[-1])
        inner = (s > s0) & (s < s1)
        ss = np.concatenate([[s0], s[inner], [s1]])
        out.append(np.stack([np.interp(ss, s, xy[:, 0]), np.interp(ss, s, xy[:, 1])], axis=-1))
    return out


def _offset(xy: NDArray[np.float64], d: float) -> NDArray[np.float64]:
    """The polyline shifted sideways by d metres (positive to the right in CARLA's frame)."""
    tangent = np.gradient(xy, axis=0)
    norm = np.linalg.norm(tangent, axis=1, keepdims=True)
    tangent = tangent / np.maximum(norm, 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=-1)
    return xy + d * normal


@dataclass(frozen=True, eq=False)
class TownRaster:
    """Ground class map of a town, rows along +y and columns along +x (CARLA's top view).

    ``classes`` (H, W) uint8 GroundClass; pixel (row, col) covers world x in
    [x0 + col res, x0 + (col+1) res) and y in [y0 + row res, y0 + (row+1) res) [m].
    """

    classes: NDArray[np.uint8]
    x0: float  # [m] world x of the left edge of column 0
    y0: float  # [m] world y of the top edge of row 0
    resolution_m: float  # [m/px]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.classes.shape[0]), int(self.classes.shape[1]))

    def world_to_pixel(self, xy: NDArray[np.floating]) -> NDArray[np.float64]:
        """(..., 2) world [m] -> (..., 2) continuous (col, row) pixel coordinates."""
        p = np.asarray(xy, dtype=np.float64)
        return np.stack([(p[..., 0] - self.x0), (p[..., 1] - self.y0)], axis=-1) / self.resolution_m

    def pixel_to_world(self, colrow: NDArray[np.floating]) -> NDArray[np.float64]:
        """(..., 2) continuous (col, row) -> world (x, y) [m]; pixel centres are at +0.5."""
        p = np.asarray(colrow, dtype=np.float64) * self.resolution_m
        return np.stack([p[..., 0] + self.x0, p[..., 1] + self.y0], axis=-1)

    def lookup(self, xy: NDArray[np.floating]) -> NDArray[np.uint8]:
        """Class of the cell holding each world point (..., 2); TERRAIN outside the raster."""
        cr = np.floor(self.world_to_pixel(xy)).astype(np.int64)
        h, w = self.shape
        inside = (cr[..., 0] >= 0) & (cr[..., 0] < w) & (cr[..., 1] >= 0) & (cr[..., 1] < h)
        out = np.full(cr.shape[:-1], GroundClass.TERRAIN, dtype=np.uint8)
        out[inside] = self.classes[cr[..., 1][inside], cr[..., 0][inside]]
        return out

    @staticmethod
    def build(
        drivable: Any,
        sidewalks: Any = None,
        markings: Sequence[MarkingLike] = (),
        stop_lines: Iterable[tuple[NDArray[np.float64], NDArray[np.float64]]] = (),
        resolution_m: float = DEFAULT_RESOLUTION_M,
        margin_m: float = MARGIN_M,
    ) -> TownRaster:
        """Paint terrain, sidewalks, road, markings and stop lines from shapely geometries."""
        road = _ensure_geometry(drivable)
        walk = _ensure_geometry(sidewalks)
        both = shapely.union_all([road, walk])
        if both.is_empty:
            raise ValueError("TownRaster.build needs a non-empty drivable area")
        minx, miny, maxx, maxy = both.bounds
        x0, y0 = minx - margin_m, miny - margin_m
        w = int(np.ceil((maxx + margin_m - x0) / resolution_m))
        h = int(np.ceil((maxy + margin_m - y0) / resolution_m))
        img = Image.new("L", (w, h), int(GroundClass.TERRAIN))
        draw = ImageDraw.Draw(img)

        def px(xy: NDArray[np.floating]) -> list[tuple[float, float]]:
            a = (
                np.asarray(xy, dtype=np.float64) - (x0, y0)
            ) / resolution_m - 0.5  # PIL: centres at ints
            return [(float(c), float(r)) for c, r in a]

        def paint(geom: shapely.Geometry, cls: GroundClass) -> None:
            mask = Image.new("1", (w, h), 0)
            mdraw = ImageDraw.Draw(mask)
            for poly in _polygons(geom):
                mdraw.polygon(px(np.asarray(poly.exterior.coords)), fill=1)
                for hole in poly.interiors:
                    mdraw.polygon(px(np.asarray(hole.coords)), fill=0)
            img.paste(int(cls), mask=mask)

        paint(walk, GroundClass.SIDEWALK)
        paint(road, GroundClass.ROAD)
        line_px = max(1, round(MARKING_WIDTH_M / resolution_m))
        for m in markings:
            cls = GroundClass.YELLOW_MARKING if m.color == "yellow" else GroundClass.WHITE_MARKING
            styles = [k for k in str(m.kind).split("_") if k in ("solid", "broken")]
            if not styles or len(m.xy) < 2:
                continue
            offsets = [0.0] if len(styles) == 1 else [-DOUBLE_LINE_GAP_M / 2, DOUBLE_LINE_GAP_M / 2]
            for style, d in zip(styles, offsets, strict=False):
                line = _offset(np.asarray(m.xy, dtype=np.float64), d) if d else m.xy
                pieces = _dashes(line) if style == "broken" else [line]
                for piece in pieces:
                    if len(piece) >= 2:
                        draw.line(px(piece), fill=int(cls), width=line_px)
        stop_px = max(1, round(STOP_LINE_WIDTH_M / resolution_m))
        for a, b in stop_lines:
            draw.line(px(np.stack([a, b])), fill=int(GroundClass.STOP_LINE), width=stop_px)
        classes = np.asarray(img, dtype=np.uint8).copy()
        log.debug("town raster %dx%d px at %.2f m/px", w, h, resolution_m)
        return TownRaster(classes=classes, x0=x0, y0=y0, resolution_m=resolution_m)


_CACHE: dict[tuple[str, str, float], TownRaster] = {}


def town_raster(town: Any, resolution_m: float = DEFAULT_RESOLUTION_M) -> TownRaster:
    """The raster of a maps-layer Town (area + signals), built once per town and resolution per
    process; rasters are immutable so sharing them is safe."""
    key = (str(town.name), str(getattr(town, "sha256", "")), float(resolution_m))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    area = town.area
    signals = getattr(town, "signals", None)
    stops: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
    if signals is not None and len(signals.stop_a):
        stops = list(zip(np.asarray(signals.stop_a), np.asarray(signals.stop_b), strict=True))
    raster = TownRaster.build(
        area.drivable, area.sidewalks, list(area.markings), stops, resolution_m=resolution_m
    )
    _CACHE[key] = raster
    return raster
