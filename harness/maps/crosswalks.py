"""Crosswalks of a town as walking lines: the two kerb-side ends of each crosswalk polygon that
the OpenDRIVE defines (``carla.Map.get_crosswalks``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon


def crosswalk_lines(cmap: Any) -> NDArray[np.float64]:
    """(C, 2, 2) [m] the two ends of each crosswalk of a carla.Map (the long axis of each
    crosswalk polygon from ``get_crosswalks``); empty when the map has none."""
    pts = [(p.x, p.y) for p in cmap.get_crosswalks()]
    out: list[NDArray[np.float64]] = []
    i = 0
    while i < len(pts):  # polygons are listed one after another, each closed by its first point
        j = pts.index(pts[i], i + 1) if pts[i] in pts[i + 1 :] else len(pts) - 1
        poly = Polygon(pts[i : j + 1])
        i = j + 1
        if poly.area <= 0.0:
            continue
        rect = np.asarray(poly.minimum_rotated_rectangle.exterior.coords)[:4]
        e = np.diff(np.vstack([rect, rect[:1]]), axis=0)
        k = int(np.argmin(np.hypot(e[:, 0], e[:, 1])))  # short edges are the two kerb-side ends
        out.append(np.stack([rect[k] + 0.5 * e[k], rect[(k + 2) % 4] + 0.5 * e[(k + 2) % 4]]))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2, 2)
