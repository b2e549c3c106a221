"""GPS conversion of CARLA world points, with the CARLA leaderboard's Mercator convention.

The leaderboard (`leaderboard/utils/route_manipulation.py: _location_to_gps`) turns world x, y, z
into latitude, longitude, altitude around the OpenDRIVE header's `+lat_0 +lon_0` reference; agents
receive GNSS readings and GPS route plans in that convention, so it is the contract here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_EQUA_M = 6378137.0  # [m] equatorial radius used by the leaderboard
DEFAULT_LAT0_DEG = 42.0  # [deg] CARLA / leaderboard default when the file has no geoReference
DEFAULT_LON0_DEG = 2.0  # [deg]

_GEO_REFERENCE = re.compile(r"<geoReference>(.*?)</geoReference>", re.DOTALL)
_LAT0 = re.compile(r"\+lat_0=([-+0-9.eE]+)")
_LON0 = re.compile(r"\+lon_0=([-+0-9.eE]+)")


@dataclass(frozen=True)
class GeoReference:
    """Reference latitude/longitude (degrees) of the world origin and the leaderboard's conversion."""

    lat0_deg: float = DEFAULT_LAT0_DEG
    lon0_deg: float = DEFAULT_LON0_DEG

    @classmethod
    def from_xodr(cls, xodr_text: str) -> GeoReference:
        """Read `+lat_0=.. +lon_0=..` from the first <geoReference>; defaults where a value is absent."""
        match = _GEO_REFERENCE.search(xodr_text)
        text = match.group(1) if match else ""
        lat = _LAT0.search(text)
        lon = _LON0.search(text)
        return cls(
            lat0_deg=float(lat.group(1)) if lat else DEFAULT_LAT0_DEG,
            lon0_deg=float(lon.group(1)) if lon else DEFAULT_LON0_DEG,
        )

    @property
    def _scale(self) -> float:
        return float(np.cos(np.deg2rad(self.lat0_deg)))

    def _origin_mercator(self) -> tuple[float, float]:
        """Mercator (mx, my) [m] of the reference point, scaled by cos(lat0) as the leaderboard does."""
        scale, r = self._scale, EARTH_RADIUS_EQUA_M
        mx = scale * self.lon0_deg * np.pi * r / 180.0
        my = scale * r * np.log(np.tan((90.0 + self.lat0_deg) * np.pi / 360.0))
        return float(mx), float(my)

    def to_gps(self, xyz: ArrayLike) -> NDArray[np.float64]:
        """World points (..., 3) [m] -> (..., 3) [lat deg, lon deg, alt m] (leaderboard formula)."""
        p = np.asarray(xyz, dtype=np.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"to_gps expects (..., 3) x, y, z points, got shape {p.shape}")
        scale, r = self._scale, EARTH_RADIUS_EQUA_M
        mx0, my0 = self._origin_mercator()
        mx = mx0 + p[..., 0]
        my = my0 - p[..., 1]  # CARLA's +y points south
        lon = mx * 180.0 / (np.pi * r * scale)
        lat = 360.0 * np.arctan(np.exp(my / (r * scale))) / np.pi - 90.0
        return np.stack([lat, lon, p[..., 2]], axis=-1)

    def from_gps(self, lat_lon_alt: ArrayLike) -> NDArray[np.float64]:
        """Exact inverse of :meth:`to_gps`: (..., 3) [lat deg, lon deg, alt m] -> (..., 3) x, y, z [m]."""
        g = np.asarray(lat_lon_alt, dtype=np.float64)
        if g.shape[-1] != 3:
            raise ValueError(f"from_gps expects (..., 3) lat, lon, alt, got shape {g.shape}")
        scale, r = self._scale, EARTH_RADIUS_EQUA_M
        mx0, my0 = self._origin_mercator()
        mx = g[..., 1] * np.pi * r * scale / 180.0
        my = scale * r * np.log(np.tan((90.0 + g[..., 0]) * np.pi / 360.0))
        return np.stack([mx - mx0, my0 - my, g[..., 2]], axis=-1)
