"""Harness01: the built-in 390 m x 330 m grid town (arterials, a one-way street, signalised and
unsignalised junctions), written as an OSM layout.

Streets (layout metres, x east, y north): four east-west and four north-south streets on a grid.
Two four-lane arterials (2 lanes per direction) cross in the middle; ``One Way`` runs north on two
lanes; the rest are two-way single-lane-per-direction streets. Traffic signals sit at the arterial
crossings and two arterial T-junctions; the other crossings and T-junctions are unsignalised, and
the 2-street corners become plain bends.
"""

from __future__ import annotations

from harness.maps.builtin.osm import Layout, Street

NAME = "Harness01"
GRID_X_M = (0.0, 130.0, 260.0, 390.0)  # north-south street positions [m]
GRID_Y_M = (0.0, 110.0, 220.0, 330.0)  # east-west street positions [m]

SIGNALISED_NODES_M: tuple[tuple[float, float], ...] = (
    (130.0, 110.0),  # One Way x Arterial A (cross)
    (260.0, 110.0),  # Arterial B x Arterial A (cross)
    (260.0, 220.0),  # Arterial B x Market St (cross)
    (0.0, 110.0),  # West St x Arterial A (T)
    (260.0, 0.0),  # Arterial B x South St (T)
)


def _east_west(y: float) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for x in GRID_X_M)


def _north_south(x: float) -> tuple[tuple[float, float], ...]:
    return tuple((x, y) for y in GRID_Y_M)


def layout() -> Layout:
    """The Harness01 layout; pure data, same every call."""
    sig = SIGNALISED_NODES_M

    def on(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        return tuple(p for p in points if p in sig)

    x0, x1, x2, x3 = GRID_X_M
    y0, y1, y2, y3 = GRID_Y_M
    streets = (
        Street("South St", _east_west(y0), "residential", 2, signals=on(_east_west(y0))),
        Street("Arterial A", _east_west(y1), "primary", 4, signals=on(_east_west(y1))),
        Street("Market St", _east_west(y2), "secondary", 2, signals=on(_east_west(y2))),
        Street("North St", _east_west(y3), "residential", 2),
        Street("West St", _north_south(x0), "residential", 2, signals=on(_north_south(x0))),
        Street(
            "One Way", _north_south(x1), "tertiary", 2, oneway=True, signals=on(_north_south(x1))
        ),
        Street("Arterial B", _north_south(x2), "primary", 4, signals=on(_north_south(x2))),
        Street("East St", _north_south(x3), "residential", 2),
    )
    return Layout(NAME, streets)
