"""Validate a route file against the towns at hand: plannable, keypoints on lanes, scenarios on route.

Routes whose town cannot be found are reported as not runnable (not as problems): a route file
for Town12 is valid even on a machine that only has Town01-06. Scenarios whose type has no
implementation (the caller passes the implemented type names: the registry lives above this layer)
are listed apart, not as problems: such a route runs, without that scenario.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import HarnessError, MapLoadError, RoutePlanningError, UnknownTownError
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.routes.model import RouteConfig, triggers_near_route
from harness.routes.xml_io import read_route_file

if TYPE_CHECKING:
    from harness.maps import Town

log = logging.getLogger(__name__)

KEYPOINT_MAX_OFFSET_M = 1.0  # [m] a keypoint must land this close to a driving-lane centerline
DETOUR_FACTOR = 2.0  # [-] a leg driving more than DETOUR_FACTOR x the straight distance ...
DETOUR_SLACK_M = 30.0  # [m] ... plus this is a detour (a loop round a block: wrong lane direction?)


@dataclass(frozen=True)
class RouteProblem:
    """One problem of one route: `kind` in unplannable / keypoint_off_lane / detour /
    scenario_off_route / town_unloadable; `where` names the keypoint or scenario (e.g. 'keypoint 3')."""

    route_id: str
    kind: str
    where: str
    message: str


@dataclass(frozen=True)
class RouteStatus:
    """Outcome for one route: runnable (its town resolves), planned length [m] (NaN if unplanned)."""

    route_id: str
    town: str
    runnable: bool
    length_m: float
    num_keypoints: int
    num_scenarios: int


@dataclass(frozen=True)
class UnimplementedScenario:
    """A scenario of a route whose ``type`` no scenario class implements: the route runs without it."""

    route_id: str
    name: str
    type: str


def unimplemented_scenarios(
    routes: Sequence[RouteConfig], implemented: Collection[str]
) -> tuple[UnimplementedScenario, ...]:
    """Every scenario of ``routes`` whose type is not in ``implemented``, in file order."""
    return tuple(
        UnimplementedScenario(r.id, sc.name, sc.type)
        for r in routes
        for sc in r.scenarios
        if sc.type not in implemented
    )


def unimplemented_by_type(
    found: Sequence[UnimplementedScenario],
) -> dict[str, tuple[int, list[str]]]:
    """Type -> (scenario count, ids of the routes naming it, first-seen order), types sorted."""
    out: dict[str, tuple[int, list[str]]] = {}
    for u in sorted(found, key=lambda u: u.type):
        n, ids = out.get(u.type, (0, []))
        out[u.type] = (n + 1, ids if u.route_id in ids else [*ids, u.route_id])
    return out


@dataclass(frozen=True)
class CheckReport:
    """Result of `check_route_file`: one status per route, every problem found, and the scenarios
    of unimplemented types (empty when no implemented set was given)."""

    path: Path
    routes: tuple[RouteStatus, ...]
    problems: tuple[RouteProblem, ...]
    unimplemented: tuple[UnimplementedScenario, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no runnable route has a problem."""
        return not self.problems

    @property
    def runnable(self) -> tuple[RouteStatus, ...]:
        """Routes whose town was found."""
        return tuple(r for r in self.routes if r.runnable)


TownLoader = Callable[[str], "Town"]


def _default_loader(name: str) -> Town:
    from harness.maps import load_town

    return load_town(name)


def check_route(route: RouteConfig, town: Town) -> tuple[PlannedRoute | None, list[RouteProblem]]:
    """Plan one route on its town and list its problems (keypoints off lane, scenarios off route)."""
    try:
        planned = plan_route(town, route.keypoints, route.id)
    except RoutePlanningError as exc:
        return None, [RouteProblem(route.id, "unplannable", "route", str(exc))]
    problems = []
    offset = planned.keypoint_offset_m
    for i in np.flatnonzero(offset > KEYPOINT_MAX_OFFSET_M):
        x, y = route.keypoints[i, :2]
        problems.append(
            RouteProblem(
                route.id,
                "keypoint_off_lane",
                f"keypoint {i}",
                f"keypoint {i} at ({x:.1f}, {y:.1f}) is {offset[i]:.2f} m from its lane centerline "
                f"(limit {KEYPOINT_MAX_OFFSET_M} m)",
            )
        )
    leg = np.diff(planned.s_m[planned.keypoint_index])
    chord = np.linalg.norm(np.diff(route.keypoints[:, :2], axis=0), axis=1)
    for i in np.flatnonzero(leg > DETOUR_FACTOR * chord + DETOUR_SLACK_M):
        problems.append(
            RouteProblem(
                route.id,
                "detour",
                f"keypoint {i + 1}",
                f"keypoints {i} and {i + 1} are {chord[i]:.1f} m apart but the lane path between them "
                f"is {leg[i]:.1f} m (a loop): no direct lane connects them in this direction",
            )
        )
    if route.scenarios:
        triggers = np.array([sc.trigger for sc in route.scenarios], dtype=np.float64)
        hit, _ = triggers_near_route(triggers, planned.xy, planned.yaw_rad)
        for sc, ok, trig in zip(route.scenarios, hit, triggers, strict=True):
            if ok:
                continue
            d = np.linalg.norm(planned.xy - trig[:2], axis=1)
            j = int(np.argmin(d))
            dyaw = (trig[3] - np.degrees(planned.yaw_rad[j]) + 180.0) % 360.0 - 180.0
            problems.append(
                RouteProblem(
                    route.id,
                    "scenario_off_route",
                    f"scenario {sc.name}",
                    f"scenario {sc.name} ({sc.type}) trigger at ({trig[0]:.1f}, {trig[1]:.1f}, yaw "
                    f"{trig[3]:.1f}) is {d[j]:.2f} m / {abs(dyaw):.1f} deg from the nearest route point "
                    "(the leaderboard needs < 2 m and < 10 deg; it would drop this scenario)",
                )
            )
    return planned, problems


def check_route_file(
    path: str | os.PathLike[str],
    loader: TownLoader | None = None,
    implemented: Collection[str] | None = None,
) -> CheckReport:
    """Read a route file (Leaderboard 2.0 or 1.0 XML) and check every route whose town resolves;
    with ``implemented`` (scenario type names), list every scenario of another type."""
    load = loader or _default_loader
    routes = read_route_file(path)
    towns: dict[str, Town | None] = {}
    statuses: list[RouteStatus] = []
    problems: list[RouteProblem] = []
    for route in routes:
        if route.town not in towns:
            try:
                towns[route.town] = load(route.town)
            except UnknownTownError:
                log.info("town %s not available: its routes are not runnable here", route.town)
                towns[route.town] = None
            except MapLoadError as exc:
                towns[route.town] = None
                problems.append(
                    RouteProblem(route.id, "town_unloadable", f"town {route.town}", str(exc))
                )
        town = towns[route.town]
        length = float("nan")
        if town is not None:
            try:
                planned, found = check_route(route, town)
            except HarnessError as exc:
                planned, found = None, [RouteProblem(route.id, "unplannable", "route", str(exc))]
            problems += found
            length = planned.length_m if planned is not None else length
        statuses.append(
            RouteStatus(
                route.id,
                route.town,
                town is not None,
                length,
                route.num_keypoints,
                len(route.scenarios),
            )
        )
    missing = unimplemented_scenarios(routes, implemented) if implemented is not None else ()
    return CheckReport(Path(path), tuple(statuses), tuple(problems), missing)
