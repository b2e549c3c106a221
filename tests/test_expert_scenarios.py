"""The expert against ScenarioRunner-faithful scenarios on real Bench2Drive routes (the route's
own scenario, played by RouteScenario as the runner does) and hand-built situations: it goes
around a lane-closing construction site without touching it, lets a car pulling out of a
parking spot in, and leaves the lane of an emergency vehicle coming from behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps import load_town
from harness.planning import ExpertPlanner
from harness.routes.interpolate import plan_route
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import ActorCommand, ActorSpec, EpisodeSpec, TrafficConfig
from harness.world.state import ActorKind, EventKind, WorldState
from scenarios.context import ScenarioContext
from scenarios.route_scenario import RouteScenario
from tests.test_scenarios_support import _routes

COLLISIONS = {EventKind.COLLISION_VEHICLE, EventKind.COLLISION_STATIC,
              EventKind.COLLISION_PEDESTRIAN}  # fmt: skip
EV_CORRIDOR_M = 1.6  # [m] ScenarioRunner's EV takes the ego's speed while the ego's centre is
# this close to its path (scenarios.traffic_behaviours.EV_CORRIDOR_M)


@dataclass
class ExpertRun:
    """One expert episode on a route with its scenario: states, events and the criteria."""

    expert: ExpertPlanner
    criteria: RouteCriteria
    rs: RouteScenario
    states: list[WorldState] = field(default_factory=list)
    events: list[EventKind] = field(default_factory=list)

    def infraction_keys(self) -> list[InfractionKey]:
        return [i.key for i in self.criteria.infractions()]


def drive_expert(xml: Path, route_id: str, ticks: int) -> ExpertRun:
    """The runner's call order without background traffic: expert -> tick -> RouteScenario ->
    criteria, for ``ticks``."""
    route = _routes(str(xml))[route_id]
    town = load_town(route.town)
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    criteria = RouteCriteria(RouteGeometry.from_arrays(planned.xy, planned.yaw_rad))
    ctx = ScenarioContext(sim, town, planned, route, criteria, np.random.default_rng(0))
    rs = RouteScenario(ctx)
    start = rs.ego_start_override() or (
        float(planned.xy[0, 0]), float(planned.xy[0, 1]), 0.0, float(planned.yaw_rad[0])
    )  # fmt: skip
    state = sim.reset(
        EpisodeSpec(route.town, start, route_xy=planned.xy,
                    traffic=TrafficConfig(vehicles=0, pedestrians=0, seed=0), seed=0)
    )  # fmt: skip
    rs.setup()
    run = ExpertRun(ExpertPlanner(town, planned), criteria, rs)
    for _ in range(ticks):
        state = sim.tick(rs.perturb(run.expert.step(state)))
        rs.tick(state)
        criteria.update(state)
        run.states.append(state)
        run.events += [e.kind for e in state.events]
    return run


def _ego_frenet(run: ExpertRun) -> np.ndarray:
    """(T, 2) route station [m] and lateral offset [m, + right] of the ego per tick."""
    ctx = run.expert.ctx
    xy = np.array([[s.actors.x[0], s.actors.y[0]] for s in run.states])
    st, lat = ctx.project_many(xy, 0, ctx.n)
    return np.column_stack([st, lat])


@pytest.mark.slow
def test_goes_around_a_lane_closing_construction_site(bench2drive_xml: Path) -> None:
    """Bench2Drive 24785 (Town04): the construction closes the whole lane 41 m after the
    trigger; the same-direction left lane is free. The expert must change lanes early enough
    to pass without touching the warning board or the cones (it used to swerve too late and
    hit the board)."""
    run = drive_expert(bench2drive_xml, "24785", 300)
    assert not COLLISIONS & set(run.events), run.events
    scn = run.rs.scenarios[0]
    fr = _ego_frenet(run)
    board_s = scn.trigger_s_m + scn.distance_m - 5.0  # the board stands 5 m before the point
    assert fr[:, 0].max() > board_s + 10.0  # got past it
    near = np.abs(fr[:, 0] - (board_s - 8.0)) < 1.0  # 8 m before the board (centre station)
    assert near.any() and fr[near, 1].min() < -1.5  # already well into the left lane


@pytest.mark.slow
def test_lets_a_car_pulling_out_of_a_parking_spot_in(bench2drive_xml: Path) -> None:
    """Bench2Drive 24759 (Town05) ParkingCutIn: the front parked car pulls out into the ego's
    lane at 20 km/h when the ego is 2.35 s away; the expert must brake as soon as the car moves
    off its spot, not when its heading already points into the lane (it used to hit it)."""
    run = drive_expert(bench2drive_xml, "24759", 340)
    assert not COLLISIONS & set(run.events), run.events
    fr = _ego_frenet(run)
    scn = run.rs.scenarios[0]
    assert fr[:, 0].max() > scn.trigger_s_m + 35.0  # drove on behind it


@pytest.mark.slow
@pytest.mark.usefixtures("shared_maps")
def test_leaves_the_lane_of_an_emergency_vehicle_from_behind() -> None:
    """Town03 lane 253 has a same-direction left lane and no right one: an emergency vehicle
    coming from behind in the ego's lane (keeping its gap, as ScenarioRunner's does while the
    ego blocks it) only passes once the ego's centre is EV_CORRIDOR_M off its path - the
    expert must move to the left lane (an in-lane nudge is not enough) and let it by."""
    town = load_town("Town03")
    lane = 253
    s = np.linspace(30.0, town.lanes.length_m[lane] - 3.0, 6)
    xy, _ = town.lanes.position(np.full(s.shape, lane), s)
    planned = plan_route(town, np.column_stack([xy, np.zeros(len(s))]), "ev")
    sim = EmbeddedSimulator()
    state = sim.reset(EpisodeSpec(
        "Town03", (float(planned.xy[0, 0]), float(planned.xy[0, 1]), 0.0,
                   float(planned.yaw_rad[0])),
        route_xy=planned.xy, traffic=TrafficConfig(0, 0, seed=0), seed=0,
    ))  # fmt: skip
    pts = town.lanes.xy[town.lanes.lane_points(lane)]
    k0 = int(np.argmin(np.abs(town.lanes.s_m[town.lanes.lane_points(lane)] - 4.0)))
    path = pts[k0:]
    yaw0 = float(town.lanes.yaw_rad[town.lanes.lane_points(lane)][k0])
    ev = sim.spawn_actor(ActorSpec(ActorKind.EMERGENCY, float(path[0, 0]), float(path[0, 1]),
                                   yaw0, 5.2, 2.1, 2.5, speed=12.0))  # fmt: skip
    sim.command_actor(ev, ActorCommand(path, 12.0, ignore_others=False))
    expert = ExpertPlanner(town, planned)
    states, events = [state], []
    for _ in range(300):
        state = sim.tick(expert.step(state))
        states.append(state)
        events += [e.kind for e in state.events]
    assert not COLLISIONS & set(events), events
    ctx = expert.ctx
    ego_xy = np.array([[s.actors.x[0], s.actors.y[0]] for s in states])
    st, lat = ctx.project_many(ego_xy, 0, ctx.n)
    assert lat.min() < -EV_CORRIDOR_M  # left the EV's lane (to the left: no lane on the right)
    row = [int(np.flatnonzero(s.actors.actor_id == ev)[0]) for s in states[-1:]][0]
    ev_st, _ = ctx.project_many(np.array([[states[-1].actors.x[row], states[-1].actors.y[row]]]),
                                0, ctx.n)  # fmt: skip
    assert ev_st[0] > st[-1] + 5.0  # the EV got past the ego
