"""Shared driver of the scenario tests (a real Bench2Drive route, the embedded simulator with few
background vehicles, the privileged RouteFollower as the ego) and the registry tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps import load_town
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.routes.model import RouteConfig, ScenarioConfig
from harness.routes.xml_io import read_routes
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import ActorRole, WorldState
from harness.world.timing import SIM_DT_S
from scenarios.context import ScenarioContext
from scenarios.registry import SCENARIO_CLASSES
from scenarios.route_scenario import RouteScenario

B2D_TOWNS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06")


@lru_cache(maxsize=1)
def _routes(xml: str) -> dict[str, RouteConfig]:
    return {r.id: r for r in read_routes(Path(xml))}


def route_frame(planned: PlannedRoute, x: float, y: float) -> tuple[float, float]:
    """(route arc length [m], lateral offset [m, + right]) of a point, nearest route point."""
    k = int(np.argmin(np.hypot(planned.xy[:, 0] - x, planned.xy[:, 1] - y)))
    yaw = planned.yaw_rad[k]
    d = np.array([x, y]) - planned.xy[k]
    return float(planned.s_m[k] + np.cos(yaw) * d[0] + np.sin(yaw) * d[1]), float(
        -np.sin(yaw) * d[0] + np.cos(yaw) * d[1]
    )


@dataclass
class Run:
    """One driven episode: per tick the state, the ego's route progress, whether the scenario
    had triggered, and the scenario actors {id: (kind, x, y, yaw, speed)}."""

    route: RouteConfig
    rs: RouteScenario
    ctx: ScenarioContext
    states: list[WorldState] = field(default_factory=list)
    ego_s: list[float] = field(default_factory=list)
    triggered: list[bool] = field(default_factory=list)
    actors: list[dict[int, tuple[int, float, float, float, float]]] = field(default_factory=list)
    controls: list[tuple[VehicleControl, VehicleControl]] = field(default_factory=list)

    @property
    def scenario(self) -> Any:
        return self.rs.scenarios[0]

    @property
    def config(self) -> ScenarioConfig:
        return self.route.scenarios[0]

    def first_trigger_tick(self) -> int:
        return self.triggered.index(True)

    def route_frame(self, x: float, y: float) -> tuple[float, float]:
        return route_frame(self.ctx.planned, x, y)

    def ids_seen(self) -> set[int]:
        return set().union(*[set(a) for a in self.actors])

    def track(self, aid: int) -> np.ndarray:
        """(T, 5) [tick, x, y, yaw, speed] of one actor while it exists."""
        rows = [(t, *a[aid][1:]) for t, a in enumerate(self.actors) if aid in a]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)


def drive(
    xml: Path,
    route_id: str,
    ticks: int,
    *,
    cruise_mps: float = 8.0,
    vehicles: int = 2,
    stop_ego: bool = False,
    blind: bool = False,
) -> Run:
    """Plan the route, reset with few background vehicles, drive the RouteFollower ego for
    ``ticks`` with RouteScenario ticking after every tick (the runner's call order). ``blind``:
    the ego starts at ``cruise_mps`` and keeps it, seeing no other actor and no light."""
    route = _routes(str(xml))[route_id]
    town = load_town(route.town)
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    criteria = RouteCriteria(RouteGeometry.from_arrays(planned.xy, planned.yaw_rad))
    ctx = ScenarioContext(sim, town, planned, route, criteria, np.random.default_rng(0))
    rs = RouteScenario(ctx)
    start = rs.ego_start_override() or (
        float(planned.xy[0, 0]),
        float(planned.xy[0, 1]),
        0.0,
        float(planned.yaw_rad[0]),
    )
    state = sim.reset(
        EpisodeSpec(route.town, start, route_xy=planned.xy,
                    traffic=TrafficConfig(vehicles=vehicles, pedestrians=0, seed=0), seed=0,
                    ego_speed_mps=cruise_mps if blind else 0.0)
    )  # fmt: skip
    rs.setup()
    follower = RouteFollower.for_route(planned, town, cruise_mps)
    run = Run(route, rs, ctx)
    for _ in range(ticks):
        seen = _ego_only(state) if blind else state
        raw = VehicleControl(brake=1.0) if stop_ego else follower.control(seen, SIM_DT_S)
        control = rs.perturb(raw)
        run.controls.append((raw, control))
        state = sim.tick(control)
        rs.tick(state)
        criteria.update(state)
        a = state.actors
        rows = np.flatnonzero(a.valid & (a.role == ActorRole.SCENARIO))
        run.states.append(state)
        run.ego_s.append(ctx.board.ego_s_m)
        run.triggered.append(rs.scenarios[0].triggered if rs.scenarios else False)
        run.actors.append(
            {int(a.actor_id[r]): (int(a.kind[r]), float(a.x[r]), float(a.y[r]), float(a.yaw[r]), float(a.speed[r]))
             for r in rows}
        )  # fmt: skip
    return run


def _ego_only(state: WorldState) -> WorldState:
    """The state as a blind driver sees it: no actor but itself, no traffic light."""
    a = state.actors
    valid = a.valid & (np.arange(a.valid.shape[0]) == 0)
    return replace(state, actors=replace(a, valid=valid), light_state=np.zeros(0, np.int8))


def route_ids_of(xml: Path, scenario_type: str) -> list[str]:
    """Bench2Drive routes on Town01-06 that use ``scenario_type``."""
    return [
        r.id for r in _routes(str(xml)).values()
        if r.town in B2D_TOWNS and any(s.type == scenario_type for s in r.scenarios)
    ]  # fmt: skip


# ---------------------------------------------------------------------- registry tests
def test_registry_covers_every_bench2drive_type_on_town01_06(bench2drive_xml: Path) -> None:
    types = {
        s.type
        for r in _routes(str(bench2drive_xml)).values()
        if r.town in B2D_TOWNS
        for s in r.scenarios
    }
    assert len(types) == 25
    assert types <= set(SCENARIO_CLASSES)
    assert all(SCENARIO_CLASSES[t].__name__ == t for t in types)


def test_unknown_type_is_skipped_with_a_warning(
    bench2drive_xml: Path, caplog: pytest.LogCaptureFixture
) -> None:
    route = _routes(str(bench2drive_xml))["24816"]
    odd = ScenarioConfig("odd_1", "NoSuchScenario", route.scenarios[0].trigger)
    route = replace(route, scenarios=(odd, *route.scenarios))
    town = load_town(route.town)
    planned = plan_route(town, route.keypoints, route.id)
    criteria = RouteCriteria(RouteGeometry.from_arrays(planned.xy, planned.yaw_rad))
    ctx = ScenarioContext(
        EmbeddedSimulator(), town, planned, route, criteria, np.random.default_rng(0)
    )
    with caplog.at_level("WARNING"):
        rs = RouteScenario(ctx)
    assert "NoSuchScenario" in caplog.text
    status = rs.status()
    assert [s.type for s in status] == ["Accident", "NoSuchScenario"]
    assert status[1].skipped and not status[0].skipped


def test_scenarios_are_built_only_when_the_ego_approaches(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "24816", 1)
    s = run.scenario
    assert s.built == (s.trigger_s_m - run.ego_s[0] <= 70.0)
