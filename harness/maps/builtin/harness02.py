"""Harness02: the built-in highway town, a 2 km divided motorway (3 lanes per direction) with two
interchanges of on- and off-ramps joining a ring of local roads, written as an OSM layout.

Layout metres, x east, y north. ``Motorway East`` (y = 0) and ``Motorway West`` (y = 40) are
one-way 3-lane motorways (100 km/h) from x = 0 to 2000; each starts and ends at a signalised
T-junction on the local ring (``West Rd`` x = -150, ``East Rd`` x = 2150, ``South Rd`` y = -200,
``North Rd`` y = 240; two-way, one lane per direction, 60 km/h), so the network has no dead end.
Each carriageway has two off-ramps and two on-ramps (one-lane ``motorway_link``, 60 km/h) to the
local road on its right-hand side: eastbound to ``South Rd`` (interchanges A at x = 500-1100 and
B at x = 1250-1850), westbound to ``North Rd`` (mirrored). Osm2Odr adds a fourth lane (acceleration
or deceleration lane) along the motorway where a ramp joins or leaves it; the ramp ends on the
local road are unsignalised T-junctions.
"""

from __future__ import annotations

from harness.maps.builtin.osm import Layout, Street

NAME = "Harness02"
MOTORWAY_X_M = (0.0, 2000.0)  # motorway start / end [m]
EASTBOUND_Y_M = 0.0  # eastbound carriageway [m]
WESTBOUND_Y_M = 40.0  # westbound carriageway [m]
RING_X_M = (-150.0, 2150.0)  # West Rd, East Rd [m]
RING_Y_M = (-200.0, 240.0)  # South Rd, North Rd [m]
MOTORWAY_LANES = 3  # per direction [-]
MOTORWAY_KPH = 100.0  # [km/h]
RAMP_KPH = 60.0  # [km/h]
LOCAL_KPH = 60.0  # [km/h]

# (motorway node, bend, bend, local-road node): eastbound ramps to South Rd
EB_OFF_RAMPS_M: tuple[tuple[tuple[float, float], ...], ...] = (
    ((500.0, 0.0), (600.0, -40.0), (680.0, -120.0), (720.0, -200.0)),
    ((1250.0, 0.0), (1350.0, -40.0), (1430.0, -120.0), (1470.0, -200.0)),
)
EB_ON_RAMPS_M: tuple[tuple[tuple[float, float], ...], ...] = (
    ((880.0, -200.0), (920.0, -120.0), (1000.0, -40.0), (1100.0, 0.0)),
    ((1630.0, -200.0), (1670.0, -120.0), (1750.0, -40.0), (1850.0, 0.0)),
)
# westbound ramps to North Rd (the eastbound ones mirrored about x = 1000, y = 20)
WB_OFF_RAMPS_M: tuple[tuple[tuple[float, float], ...], ...] = tuple(
    tuple((2000.0 - x, 40.0 - y) for x, y in ramp) for ramp in EB_OFF_RAMPS_M
)
WB_ON_RAMPS_M: tuple[tuple[tuple[float, float], ...], ...] = tuple(
    tuple((2000.0 - x, 40.0 - y) for x, y in ramp) for ramp in EB_ON_RAMPS_M
)
SIGNALISED_NODES_M: tuple[tuple[float, float], ...] = (
    (RING_X_M[0], EASTBOUND_Y_M),  # West Rd: the eastbound motorway starts
    (RING_X_M[0], WESTBOUND_Y_M),  # West Rd: the westbound motorway ends
    (RING_X_M[1], EASTBOUND_Y_M),  # East Rd: the eastbound motorway ends
    (RING_X_M[1], WESTBOUND_Y_M),  # East Rd: the westbound motorway starts
)


def _through(
    fixed: tuple[tuple[float, float], ...], extra: list[tuple[float, float]], axis: int, rev: bool
) -> tuple[tuple[float, float], ...]:
    """The street's points: its ends plus every node on it, ordered along ``axis``."""
    pts = sorted(set(fixed) | set(extra), key=lambda p: p[axis], reverse=rev)
    return tuple(pts)


def _motorway(
    name: str, points: tuple[tuple[float, float], ...], signals: tuple[tuple[float, float], ...]
) -> Street:
    return Street(name, points, "motorway", MOTORWAY_LANES, True, signals, MOTORWAY_KPH)


def _local(
    name: str,
    points: tuple[tuple[float, float], ...],
    signals: tuple[tuple[float, float], ...] = (),
) -> Street:
    return Street(name, points, "secondary", 2, False, signals, LOCAL_KPH)


def layout() -> Layout:
    """The Harness02 layout; pure data, same every call."""
    (x0, x1), (wx, ex), (sy, ny) = MOTORWAY_X_M, RING_X_M, RING_Y_M
    eb_y, wb_y = EASTBOUND_Y_M, WESTBOUND_Y_M
    eb_nodes = [r[0] for r in EB_OFF_RAMPS_M] + [r[-1] for r in EB_ON_RAMPS_M]
    wb_nodes = [r[0] for r in WB_OFF_RAMPS_M] + [r[-1] for r in WB_ON_RAMPS_M]
    south_nodes = [r[-1] for r in EB_OFF_RAMPS_M] + [r[0] for r in EB_ON_RAMPS_M]
    north_nodes = [r[-1] for r in WB_OFF_RAMPS_M] + [r[0] for r in WB_ON_RAMPS_M]
    sig = SIGNALISED_NODES_M
    streets = [
        _motorway(
            "Motorway East",
            _through(((wx, eb_y), (x0, eb_y), (x1, eb_y), (ex, eb_y)), eb_nodes, 0, False),
            ((wx, eb_y), (ex, eb_y)),
        ),
        _motorway(
            "Motorway West",
            _through(((ex, wb_y), (x1, wb_y), (x0, wb_y), (wx, wb_y)), wb_nodes, 0, True),
            ((ex, wb_y), (wx, wb_y)),
        ),
        _local("South Rd", _through(((wx, sy), (ex, sy)), south_nodes, 0, False)),
        _local("North Rd", _through(((wx, ny), (ex, ny)), north_nodes, 0, False)),
        _local(
            "West Rd",
            ((wx, sy), (wx, eb_y), (wx, wb_y), (wx, ny)),
            tuple(p for p in sig if p[0] == wx),
        ),
        _local(
            "East Rd",
            ((ex, sy), (ex, eb_y), (ex, wb_y), (ex, ny)),
            tuple(p for p in sig if p[0] == ex),
        ),
    ]
    ramps = (
        ("Exit", EB_OFF_RAMPS_M + WB_OFF_RAMPS_M),
        ("Entry", EB_ON_RAMPS_M + WB_ON_RAMPS_M),
    )
    for word, group in ramps:
        for k, ramp in enumerate(group):
            streets.append(
                Street(
                    f"{word} {k + 1}", ramp, "motorway_link", 1, oneway=True, maxspeed_kph=RAMP_KPH
                )
            )
    return Layout(NAME, tuple(streets))
