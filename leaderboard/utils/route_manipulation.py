"""Route helpers of the leaderboard: ``downsample_route`` (the rule the agent base class cuts the
dense global plan with), GPS conversion of routes (``location_route_to_gps``, the map's
geoReference via ``_get_latlon_ref``) and ``interpolate_trajectory`` (needs CARLA's PythonAPI
``agents`` package for its GlobalRoutePlanner).

Route entries are ``(carla.Transform, RoadOption)``; RoadOption may be CARLA's enum
(``agents.navigation.local_planner``) or the harness's IntEnum with the same values."""

from __future__ import annotations

import math
import re
from typing import Any

EARTH_RADIUS_EQUA_M = 6378137.0  # [m] equatorial radius of the leaderboard's Mercator projection
DEFAULT_LAT_REF = 42.0  # [deg] geoReference fallbacks of the leaderboard
DEFAULT_LON_REF = 2.0  # [deg]
CHANGELANELEFT, CHANGELANERIGHT = 5, 6  # RoadOption values of lane changes


def _option_value(option: Any) -> int:
    """The integer value of a RoadOption of either kind (CARLA's Enum or an IntEnum)."""
    return int(getattr(option, "value", option))


def _location_to_gps(lat_ref: float, lon_ref: float, location: Any) -> dict[str, float]:
    """World location -> {'lat', 'lon', 'z'}: Mercator around (lat_ref, lon_ref); CARLA's y axis
    points south, so +y lowers the latitude."""
    scale = math.cos(math.radians(lat_ref))
    mx = scale * math.radians(lon_ref) * EARTH_RADIUS_EQUA_M + location.x
    my = scale * EARTH_RADIUS_EQUA_M * math.log(math.tan(math.radians(90.0 + lat_ref) / 2.0))
    my -= location.y
    lon = math.degrees(mx / (EARTH_RADIUS_EQUA_M * scale))
    lat = math.degrees(2.0 * math.atan(math.exp(my / (EARTH_RADIUS_EQUA_M * scale)))) - 90.0
    return {"lat": lat, "lon": lon, "z": location.z}


def location_route_to_gps(
    route: list[tuple[Any, Any]], lat_ref: float, lon_ref: float
) -> list[tuple[dict[str, float], Any]]:
    """[(transform, option)] -> [({'lat', 'lon', 'z'}, option)]."""
    return [(_location_to_gps(lat_ref, lon_ref, t.location), opt) for t, opt in route]


def _get_latlon_ref(world: Any) -> tuple[float, float]:
    """(lat_0, lon_0) of the world map's OpenDRIVE geoReference (+lat_0= / +lon_0= of its proj
    string), 42.0 / 2.0 where it gives none."""
    lat_ref, lon_ref = DEFAULT_LAT_REF, DEFAULT_LON_REF
    match = re.search(r"<geoReference>(.*?)</geoReference>", world.get_map().to_opendrive(), re.S)
    if match:
        text = match.group(1).replace("<![CDATA[", " ").replace("]]>", " ")
        for item in text.split():
            if item.startswith("+lat_0="):
                lat_ref = float(item.split("=", 1)[1])
            elif item.startswith("+lon_0="):
                lon_ref = float(item.split("=", 1)[1])
    return lat_ref, lon_ref


def downsample_route(route: list[tuple[Any, Any]], sample_factor: float) -> list[int]:
    """Indices of the route points an agent keeps: every lane-change point, the first point of
    each new option (unless it follows a lane change), a point once more than ``sample_factor``
    metres were travelled since the last kept one, and the last point."""
    keep: list[int] = []
    prev: int | None = None
    dist = 0.0
    lane_change = (CHANGELANELEFT, CHANGELANERIGHT)
    last = len(route) - 1
    for i, (transform, option) in enumerate(route):
        cur = _option_value(option)
        changed = prev != cur and prev not in lane_change
        if cur in lane_change or changed or dist > sample_factor or i == last:
            keep.append(i)
            dist = 0.0
        else:
            dist += transform.location.distance(route[i - 1][0].location)
        prev = cur
    return keep


def interpolate_trajectory(
    waypoints_trajectory: list[Any], hop_resolution: float = 1.0
) -> tuple[list[tuple[dict[str, float], Any]], list[tuple[Any, Any]]]:
    """Dense (GPS route, world route) between keypoint Locations with CARLA's GlobalRoutePlanner
    (from the PythonAPI ``agents`` package, which must be importable)."""
    try:
        from agents.navigation.global_route_planner import GlobalRoutePlanner
    except ImportError as exc:  # CARLA's PythonAPI is not on sys.path
        raise ImportError(
            "interpolate_trajectory needs CARLA's PythonAPI 'agents' package "
            "(add $CARLA_ROOT/PythonAPI/carla to PYTHONPATH); the harness hands agents the "
            "dense route itself"
        ) from exc
    from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

    grp = GlobalRoutePlanner(CarlaDataProvider.get_map(), hop_resolution)
    route: list[tuple[Any, Any]] = []
    for a, b in zip(waypoints_trajectory[:-1], waypoints_trajectory[1:], strict=True):
        route += [(wp.transform, option) for wp, option in grp.trace_route(a, b)]
    lat_ref, lon_ref = _get_latlon_ref(CarlaDataProvider.get_world())
    return location_route_to_gps(route, lat_ref, lon_ref), route
