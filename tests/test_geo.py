"""GeoReference: the leaderboard's Mercator GPS convention, checked against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.maps.geo import EARTH_RADIUS_EQUA_M, GeoReference

# Web-Mercator northing of latitude 1 deg on the equatorial sphere: R * ln(tan(45.5 deg)) [m]
MERCATOR_Y_LAT1_M = 111325.14286638486
METRES_PER_DEG_LON_EQUATOR = EARTH_RADIUS_EQUA_M * math.pi / 180.0  # 111319.49 m


def test_origin_maps_to_reference() -> None:
    geo = GeoReference(49.0, 8.0)
    np.testing.assert_allclose(geo.to_gps([0.0, 0.0, 0.0]), [49.0, 8.0, 0.0], atol=1e-12)


def test_equator_known_offsets() -> None:
    geo = GeoReference(0.0, 0.0)
    # +x is east: one degree of longitude; CARLA's +y is south, so -y is north
    np.testing.assert_allclose(
        geo.to_gps([METRES_PER_DEG_LON_EQUATOR, 0.0, 3.0]), [0.0, 1.0, 3.0], atol=1e-12
    )
    np.testing.assert_allclose(
        geo.to_gps([0.0, -MERCATOR_Y_LAT1_M, 0.0]), [1.0, 0.0, 0.0], atol=1e-9
    )


def test_scaled_offset_at_lat49() -> None:
    geo = GeoReference(49.0, 8.0)
    lat, lon, _ = geo.to_gps([100.0, 0.0, 0.0])
    # leaderboard: lon changes by dx / (R * cos(lat0)) in radians; latitude stays
    assert lon == pytest.approx(
        8.0 + math.degrees(100.0 / (EARTH_RADIUS_EQUA_M * math.cos(math.radians(49.0)))), abs=1e-12
    )
    assert lat == pytest.approx(49.0, abs=1e-12)
    lat_s, _, _ = geo.to_gps([0.0, 100.0, 0.0])
    assert lat_s < 49.0  # +y is south


@pytest.mark.parametrize("shape", [(), (2, 1), (500,)])
def test_round_trip(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-3000.0, 3000.0, shape + (3,))
    geo = GeoReference(42.0, 2.0)
    gps = geo.to_gps(xyz)
    assert gps.shape == shape + (3,)
    np.testing.assert_allclose(geo.from_gps(gps), xyz, atol=1e-6)


def test_header_parsing_and_default(shared_maps: Path) -> None:
    assert GeoReference.from_xodr("<OpenDRIVE><header/></OpenDRIVE>") == GeoReference(42.0, 2.0)
    town05 = GeoReference.from_xodr((shared_maps / "Town05.xodr").read_text())
    assert (town05.lat0_deg, town05.lon0_deg) == (49.0, 8.0)
    town01 = GeoReference.from_xodr(
        (shared_maps / "Town01.xodr").read_text()
    )  # "+proj=tmerc +lat_0=0 ..."
    assert (town01.lat0_deg, town01.lon0_deg) == (0.0, 0.0)


def test_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError):
        GeoReference().to_gps(np.zeros((4, 2)))
