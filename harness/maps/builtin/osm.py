"""Street layouts written as OpenStreetMap XML and converted to OpenDRIVE with ``carla.Osm2Odr``.

A layout is a list of streets in local metres (x east, y north, the OSM convention); the OSM text
places them on the ellipsoid around a fixed origin so Osm2Odr's transverse Mercator projection gives
back the same metres. The OpenDRIVE output is normalised (fixed date, name, geoReference) so the same
layout always yields the same text.

Osm2Odr (CARLA 0.9.16, SUMO netconvert inside) reads ``highway`` (motorway, motorway_link, trunk,
primary ... residential), ``lanes``, ``oneway``, ``maxspeed`` (written as each lane's ``<speed>``)
and ``highway=traffic_signals`` nodes (real OpenDRIVE lights); it guesses motorway ramps and adds an
acceleration / deceleration lane where a ``motorway_link`` joins or leaves a motorway. It writes
driving lanes only (no parking or shoulder lanes, whatever the tags) and ignores ``highway=stop``,
so stop signs are added afterwards as OpenDRIVE signals (type 206) on the approach lanes.
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
STOP_SIGN_TYPE = "206"  # OpenDRIVE signal type of a stop sign
STOP_SIGN_ID_BASE = 90000  # stop-sign signal ids start here (Osm2Odr's light ids are small) [-]
STOP_SIGN_PROBE_M = 25.0  # the approach lane is looked up this far before the junction node [m]
STOP_SIGN_CURB_M = 0.5  # sign post beyond the approach lane's outer edge [m]
STOP_SIGN_MIN_ALIGN = 0.7  # cos of the largest angle between approach lane and street [-]


@dataclass(frozen=True)
class Street:
    """One OSM way: a polyline through layout nodes (metres, x east / y north) with its tags.

    ``signals`` lists the nodes of this street that carry ``highway=traffic_signals``;
    ``maxspeed_kph`` [km/h] becomes the OSM ``maxspeed`` tag (Osm2Odr's per-type default if None).
    """

    name: str
    points: tuple[tuple[float, float], ...]
    highway: str = "residential"
    lanes: int = 2
    oneway: bool = False
    signals: tuple[tuple[float, float], ...] = ()
    maxspeed_kph: float | None = None


@dataclass(frozen=True)
class StopSign:
    """A stop sign for the traffic that drives from ``towards`` (a layout point on the approach
    street) into the junction at layout node ``junction``; its stop line is the approach lane's end."""

    junction: tuple[float, float]
    towards: tuple[float, float]


@dataclass(frozen=True)
class Layout:
    """A town as streets (and stop signs); ``name`` becomes the OpenDRIVE header name."""

    name: str
    streets: tuple[Street, ...]
    stop_signs: tuple[StopSign, ...] = ()


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
        if street.maxspeed_kph is not None:
            tags["maxspeed"] = f"{street.maxspeed_kph:g}"
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


def _right_of(u: NDArray[np.float64]) -> NDArray[np.float64]:
    """The unit vector to the driver's right of heading ``u`` (2,) in CARLA's left-handed frame."""
    return np.array([-u[1], u[0]])


def _signal_xml(sign_id: int, s_m: float, t_m: float, lane_id: int) -> str:
    orientation = "+" if lane_id < 0 else "-"
    return (
        f'        <signal id="{sign_id}" s="{s_m:.2f}" t="{t_m:.2f}" name="Stop" dynamic="no" '
        f'orientation="{orientation}" zOffset="0" country="OpenDRIVE" type="{STOP_SIGN_TYPE}" '
        'subtype="-1" value="-1" height="2" width="0.75" text="" hOffset="0" pitch="0" roll="0">\n'
        f'            <validity fromLane="{lane_id}" toLane="{lane_id}"/>\n'
        "        </signal>\n"
    )


def _insert_signals(xodr: str, road_id: int, signals: str) -> str:
    """``signals`` (signal elements) added to road ``road_id``'s ``<signals>``, made if absent."""
    m = re.search(rf'<road\b[^>]*\bid="{road_id}"[^>]*>', xodr)
    if m is None:
        raise MapLoadError(f"road {road_id} is missing from the converted OpenDRIVE")
    end = xodr.index("</road>", m.end())
    body = xodr[m.end() : end]
    if "<signals/>" in body:
        body = body.replace("<signals/>", f"<signals>\n{signals}        </signals>", 1)
    elif "</signals>" in body:
        body = body.replace("</signals>", f"{signals}        </signals>", 1)
    else:
        body += f"    <signals>\n{signals}        </signals>\n    "
    return xodr[: m.end()] + body + xodr[end:]


def add_stop_signs(xodr: str, name: str, signs: tuple[StopSign, ...]) -> str:
    """The OpenDRIVE text with one stop-sign signal per :class:`StopSign`, on the right-hand lane
    that drives into the junction (validity that lane only), at that lane's end (the stop line)."""
    if not signs:
        return xodr
    import carla  # local import: importing the package must not load the CARLA wheel

    cmap = carla.Map(name, xodr)
    nodes = layout_to_world(np.array([s.junction for s in signs], dtype=np.float64), xodr)
    froms = layout_to_world(np.array([s.towards for s in signs], dtype=np.float64), xodr)
    per_road: dict[int, str] = {}
    for k, (sign, node, src) in enumerate(zip(signs, nodes, froms, strict=True)):
        u = (node - src) / max(float(np.linalg.norm(node - src)), 1e-9)
        probe = node - STOP_SIGN_PROBE_M * u + 0.5 * DEFAULT_LANE_WIDTH_M * _right_of(u)
        wp = cmap.get_waypoint(
            carla.Location(x=float(probe[0]), y=float(probe[1])), lane_type=carla.LaneType.Driving
        )
        yaw = np.radians(wp.transform.rotation.yaw) if wp is not None else 0.0
        if (
            wp is None
            or wp.is_junction
            or float(u @ [np.cos(yaw), np.sin(yaw)]) < STOP_SIGN_MIN_ALIGN
        ):
            raise MapLoadError(
                f"layout {name}: no lane drives from {sign.towards} into the junction at "
                f"{sign.junction} for a stop sign; check the layout's stop signs"
            )
        last = ([wp, *wp.next_until_lane_end(1.0)])[-1]
        lane_id = int(last.lane_id)
        t_m = np.sign(lane_id) * (abs(lane_id) * float(last.lane_width) + STOP_SIGN_CURB_M)
        per_road[int(last.road_id)] = per_road.get(int(last.road_id), "") + _signal_xml(
            STOP_SIGN_ID_BASE + k, float(last.s), float(t_m), lane_id
        )
    for road_id, signals in sorted(per_road.items()):
        xodr = _insert_signals(xodr, road_id, signals)
    return xodr
