"""Road semantics of CARLA towns: find and load OpenDRIVE maps, lanes, lane graph, drivable area,
junctions, signals and GPS conversion (see docs/DESIGN.md, "Maps layer")."""

from harness.maps.town import Town
from harness.maps.towns import TownFile, available_towns, load_town, resolve_town

__all__ = ["Town", "TownFile", "available_towns", "load_town", "resolve_town"]
