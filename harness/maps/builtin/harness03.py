"""Harness03: the built-in interurban town, 1.4 km x 0.9 km of two-way rural roads (one lane per
direction, 50-90 km/h) with long straights, curves, T-junctions and crossings, signalised,
unsignalised and with stop signs, written as an OSM layout.

Layout metres, x east, y north. East-west: ``Route 1`` (y = 0, 90 km/h, 1.4 km straight),
``Middle Rd`` (y = 450, 80 km/h, straight), ``Route 2`` (y = 900, 70 km/h, curving up to 50 m
north between x = 400 and 800 and 35 m between 1100 and 1400). North-south: ``County Rd W`` and
``County Rd E`` (x = 0 and 1400, 60 km/h), ``Farm Rd`` (x = 400, 50 km/h), ``Cross Rd`` (x = 800,
70 km/h), ``Mill Rd`` (x = 1100, 50 km/h). The inner crossings (x = 400, 800, 1100 on Middle Rd)
are 4-way junctions and the other meetings T-junctions: 3 crossings and 8 T-junctions; at the four
corners, where roads of different speed limits meet, Osm2Odr writes a 2-arm junction (a bend). Traffic signals at Cross Rd x Route 1 (T), Cross Rd x Middle Rd
(crossing) and County Rd E x Middle Rd (T). Stop signs (a two-way stop on the minor road): Farm Rd
at Route 1 and at Middle Rd (both approaches), Middle Rd at County Rd W, Cross Rd at Route 2.
Mill Rd's junctions and Farm Rd x Route 2 are unsignalised without signs. Osm2Odr writes no
parking or shoulder lanes, so the rural roads have none.
"""

from __future__ import annotations

from harness.maps.builtin.osm import Layout, StopSign, Street

NAME = "Harness03"
WEST_X_M, FARM_X_M, CROSS_X_M, MILL_X_M, EAST_X_M = 0.0, 400.0, 800.0, 1100.0, 1400.0  # [m]
SOUTH_Y_M, MIDDLE_Y_M, NORTH_Y_M = 0.0, 450.0, 900.0  # [m]

ROUTE2_M: tuple[tuple[float, float], ...] = (
    (WEST_X_M, NORTH_Y_M), (FARM_X_M, NORTH_Y_M),
    (480.0, 930.0), (560.0, 950.0), (640.0, 950.0), (720.0, 930.0),  # curve north
    (CROSS_X_M, NORTH_Y_M), (MILL_X_M, NORTH_Y_M),
    (1200.0, 935.0), (1300.0, 935.0),  # curve north
    (EAST_X_M, NORTH_Y_M),
)  # fmt: skip

SIGNALISED_NODES_M: tuple[tuple[float, float], ...] = (
    (CROSS_X_M, SOUTH_Y_M),  # Cross Rd x Route 1 (T)
    (CROSS_X_M, MIDDLE_Y_M),  # Cross Rd x Middle Rd (crossing)
    (EAST_X_M, MIDDLE_Y_M),  # County Rd E x Middle Rd (T)
)
STOP_SIGNS: tuple[StopSign, ...] = (
    StopSign((FARM_X_M, SOUTH_Y_M), (FARM_X_M, MIDDLE_Y_M)),  # Farm Rd southbound at Route 1
    StopSign((FARM_X_M, MIDDLE_Y_M), (FARM_X_M, SOUTH_Y_M)),  # Farm Rd northbound at Middle Rd
    StopSign((FARM_X_M, MIDDLE_Y_M), (FARM_X_M, NORTH_Y_M)),  # Farm Rd southbound at Middle Rd
    StopSign((WEST_X_M, MIDDLE_Y_M), (FARM_X_M, MIDDLE_Y_M)),  # Middle Rd westbound at County W
    StopSign((CROSS_X_M, NORTH_Y_M), (CROSS_X_M, MIDDLE_Y_M)),  # Cross Rd northbound at Route 2
)
UNSIGNALISED_NODES_M: tuple[tuple[float, float], ...] = (
    (MILL_X_M, SOUTH_Y_M),  # T
    (MILL_X_M, MIDDLE_Y_M),  # crossing
    (MILL_X_M, NORTH_Y_M),  # T
    (FARM_X_M, NORTH_Y_M),  # T
)


def _road(name: str, points: tuple[tuple[float, float], ...], highway: str, kph: float) -> Street:
    sig = tuple(p for p in points if p in SIGNALISED_NODES_M)
    return Street(name, points, highway, 2, False, sig, kph)


def _north_south(x: float) -> tuple[tuple[float, float], ...]:
    return ((x, SOUTH_Y_M), (x, MIDDLE_Y_M), (x, NORTH_Y_M))


def layout() -> Layout:
    """The Harness03 layout; pure data, same every call."""
    xs = (WEST_X_M, FARM_X_M, CROSS_X_M, MILL_X_M, EAST_X_M)
    streets = (
        _road("Route 1", tuple((x, SOUTH_Y_M) for x in xs), "secondary", 90.0),
        _road("Middle Rd", tuple((x, MIDDLE_Y_M) for x in xs), "secondary", 80.0),
        _road("Route 2", ROUTE2_M, "tertiary", 70.0),
        _road("County Rd W", _north_south(WEST_X_M), "tertiary", 60.0),
        _road("County Rd E", _north_south(EAST_X_M), "tertiary", 60.0),
        _road("Farm Rd", _north_south(FARM_X_M), "unclassified", 50.0),
        _road("Cross Rd", _north_south(CROSS_X_M), "tertiary", 70.0),
        _road("Mill Rd", _north_south(MILL_X_M), "unclassified", 50.0),
    )
    return Layout(NAME, streets, STOP_SIGNS)
