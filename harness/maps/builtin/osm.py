"""Street layouts written as OpenStreetMap XML and converted to OpenDRIVE with ``carla.Osm2Odr``.

A layout is a list of streets in local metres (x east, y north, the OSM convention); the OSM text
places them on the ellipsoid around a fixed origin so Osm2Odr's transverse Mercator projection gives
back the same metres. The OpenDRIVE output is normalised (fixed date, name, geoReference) so the same
layout always yields the same text.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import NDArray

from harness.errors import MapLoadError

log = logging.getLogger(__name__)

WGS84_A_M = 6378137.0  # WGS84 semi-major axis [m]
WGS84_E2 = 6.69437999014e-3  # WGS84 first eccentricity squared [-]
LAT0_DEG = 42.0  # layout origin latitude [deg] (the leaderboard's default geoReference)
LON0_DEG = 2.0  # layout origin longitude [deg]
DEFAULT_LANE_WIDTH_M = 3.5  # Osm2Odr lane width [m]
OSM_FIXED_DATE = "Thu Jan  1 00:00:00 1970"  # replaces Osm2Odr's wall-clock header date


@dataclass(frozen=True)
class Street:
    """One OSM way: a polyline through layout nodes (metres, x east / y north) with its tags.

    ``signals`` lists the nodes of this street that carry ``highway=traffic_signals``.
    """

    name: str
    points: tuple[tuple[float, float], ...]
    highway: str = "residential"
    lanes: int = 2
    oneway: bool = False
    signals: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Layout:
    """A town as streets; ``name`` becomes the OpenDRIVE header name."""

    name: str
    streets: tuple[Street, ...]


def local_to_latlon(xy_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Local metres (N, 2) (x east, y north) -> (N, 2) [lat, lon] degrees on WGS84 around the origin.

    Uses the meridian and prime-vertical radii at the origin latitude, which is what a transverse
    Mercator projection centred there inverts to within millimetres over a few hundred metres.
    """
    phi = np.radians(LAT0_DEG)
    w = 1.0 - WGS84_E2 * np.sin(phi) ** 2
    meridian_m = WGS84_A_M * (1.0 - WGS84_E2) / w**1.5
    prime_m = WGS84_A_M / np.sqrt(w)
    xy = np.asarray(xy_m, dtype=np.float64)
    lat = LAT0_DEG + np.degrees(xy[:, 1] / meridian_m)
    lon = LON0_DEG + np.degrees(xy[:, 0] / (prime_m * np.cos(phi)))
    return np.stack([lat, lon], axis=-1)


def layout_to_osm(layout: Layout) -> str:
    """The OSM XML text of a layout: shared nodes where streets meet, signal tags on chosen nodes."""
    node_ids: dict[tuple[float, float], int] = {}
    signal_nodes: set[tuple[float, float]] = set()
    for street in layout.streets:
        for p in street.points:
            node_ids.setdefault(p, len(node_ids) + 1)
        signal_nodes.update(street.signals)
    unknown = signal_nodes - node_ids.keys()
    if unknown:
        raise MapLoadError(f"layout {layout.name}: signal nodes {sorted(unknown)} are on no street")
    pts = np.array(list(node_ids.keys()), dtype=np.float64)
    latlon = local_to_latlon(pts)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="harness">']
    for (p, nid), (lat, lon) in zip(node_ids.items(), latlon, strict=True):
        head = f'  <node id="{nid}" lat="{lat:.10f}" lon="{lon:.10f}" version="1" visible="true"'
        if p in signal_nodes:
            lines.append(head + '>\n    <tag k="highway" v="traffic_signals"/>\n  </node>')
        else:
            lines.append(head + "/>")
    for wi, street in enumerate(layout.streets):
        lines.append(f'  <way id="{1000 + wi}" version="1" visible="true">')
        lines += [f'    <nd ref="{node_ids[p]}"/>' for p in street.points]
        tags = {"highway": street.highway, "lanes": str(street.lanes), "name": street.name}
        if street.oneway:
            tags["oneway"] = "yes"
        lines += [f'    <tag k="{k}" v={quoteattr(v)}/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@contextmanager
def _quiet_native_output() -> Iterator[None]:
    """Route the C++ converter's stdout/stderr chatter (SUMO warnings, PROJ notes) into the log."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            chatter = sink.read().decode("utf-8", "replace").strip()
            if chatter:
                log.debug("Osm2Odr output:\n%s", chatter)


def osm_to_xodr(osm_text: str, name: str) -> str:
    """Convert OSM text with ``carla.Osm2Odr`` (traffic lights only at tagged nodes), normalised.

    The leading SUMO-configuration comment (it carries a timestamp) is dropped, the header's
    wall-clock date replaced by a fixed one and the name set; the projection string carries
    ``+lat_0 +lon_0`` so ``carla.Map`` parses the geoReference (it rejects a bare ``+proj=tmerc``).
    """
    import carla  # local import: importing the package must not load the CARLA wheel

    settings = carla.Osm2OdrSettings()
    settings.generate_traffic_lights = True
    settings.all_junctions_with_traffic_lights = False
    settings.default_lane_width = DEFAULT_LANE_WIDTH_M
    settings.proj_string = f"+proj=tmerc +lat_0={LAT0_DEG} +lon_0={LON0_DEG}"
    with _quiet_native_output():
        xodr: str = carla.Osm2Odr.convert(osm_text, settings)
    if "<road " not in xodr:
        raise MapLoadError(f"Osm2Odr produced no roads for built-in town {name}; check its layout")
    xodr = re.sub(r"<!--.*?-->\s*", "", xodr, count=1, flags=re.S)  # SUMO config, with a timestamp
    xodr = re.sub(r'date="[^"]*"', f'date="{OSM_FIXED_DATE}"', xodr, count=1)
    xodr = re.sub(r'(<header\b[^>]*?)\bname="[^"]*"', rf'\1name="{name}"', xodr, count=1)
    return xodr


def xodr_offset(xodr: str) -> tuple[float, float]:
    """The header ``<offset x y>`` Osm2Odr applied: layout (x, y) maps to CARLA (x + ox, -(y + oy))."""
    m = re.search(r'<offset\s+x="([-0-9.eE+]+)"\s+y="([-0-9.eE+]+)"', xodr)
    return (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)


def layout_to_world(xy_m: NDArray[np.float64], xodr: str) -> NDArray[np.float64]:
    """Layout metres (N, 2) (x east, y north) -> CARLA world (N, 2) for the converted town."""
    ox, oy = xodr_offset(xodr)
    xy = np.asarray(xy_m, dtype=np.float64)
    return np.stack([xy[:, 0] + ox, -(xy[:, 1] + oy)], axis=-1)
