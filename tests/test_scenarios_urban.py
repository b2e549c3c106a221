"""Urban scenarios (scenarios/urban.py) and ConstructionObstacleTwoWays against ScenarioRunner's
numbers, on hand-made routes of Town01 (no Bench2Drive route of Town01-06 names these types):
a right turn 84 -> 36 and a left turn 35 -> 83 at the T-junction 87 (signalised), and the
straight lane 83 (two-way road, lanes 4 m wide, oncoming lane 84 at y - 4). Each type: where its
actors appear relative to the trigger, how they move and when, lights, the end, and the agent
level (the expert gets through without a collision; a blind ego does not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pytest

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps import load_town
from harness.maps.signals import STOP_LIGHT
from harness.planning import ExpertPlanner
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig, ScenarioConfig
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import COLLISION_EVENTS, ActorKind, ActorRole, LightState, WorldState
from harness.world.timing import SIM_DT_S
from scenarios.context import ScenarioContext
from scenarios.route_scenario import RouteScenario
from tests.test_scenarios_support import _ego_only, route_frame

pytestmark = pytest.mark.usefixtures("shared_maps")

LANE_W_M = 4.0  # [m] Town01's lane width
RIGHT_TURN = ((84, 100.0), (84, 200.0), (36, 60.0)), (84, 160.0)  # keypoints, trigger (lane, s)
LEFT_TURN = ((35, 10.0), (35, 60.0), (83, 80.0)), (35, 40.0)
STRAIGHT = ((83, 10.0), (83, 200.0)), (83, 30.0)


@dataclass
class Episode:
    """Per tick: state, ego route progress, triggered flag, scenario actors {id: (kind, x, y,
    yaw, speed, width)}; the route scenario and its context."""

    rs: RouteScenario
    ctx: ScenarioContext
    states: list[WorldState] = field(default_factory=list)
    ego_s: list[float] = field(default_factory=list)
    triggered: list[bool] = field(default_factory=list)
    actors: list[dict[int, tuple[float, ...]]] = field(default_factory=list)
    wrong_direction: list[bool] = field(default_factory=list)
    finished_tick: int | None = None

    @property
    def scn(self):  # noqa: ANN201 - the scenario under test (its class varies)
        return self.rs.scenarios[0]

    def collisions(self) -> list[int]:
        return [int(e.kind) for s in self.states for e in s.events if e.kind in COLLISION_EVENTS]

    def frame(self, x: float, y: float) -> tuple[float, float]:
        """(route arc length [m], lateral [m, + right]) of a point."""
        return route_frame(self.ctx.planned, x, y)

    def born(self, aid: int) -> int:
        return next(t for t, a in enumerate(self.actors) if aid in a)

    def track(self, aid: int) -> np.ndarray:
        """(T, 6) [tick, x, y, yaw, speed, width] while the actor exists."""
        rows = [(t, *a[aid][1:]) for t, a in enumerate(self.actors) if aid in a]
        return np.array(rows, dtype=np.float64).reshape(-1, 6)

    def of_kind(self, kind: ActorKind) -> list[int]:
        return sorted({i for a in self.actors for i, v in a.items() if v[0] == kind})

    def ego_xy(self, t: int) -> np.ndarray:
        a = self.states[t].actors
        return np.array([a.x[0], a.y[0]])


def _pose(lane: int, s: float) -> tuple[float, float, float]:
    xy, yaw = load_town("Town01").lanes.position(lane, s)
    return float(xy[0]), float(xy[1]), float(np.rad2deg(yaw))


def make_route(
    geometry: tuple[tuple[tuple[int, float], ...], tuple[int, float]],
    kind: str,
    params: dict[str, dict[str, str]] | None = None,
) -> RouteConfig:
    keypoints, trigger = geometry
    kp = np.array([[*_pose(lane, s)[:2], 0.0] for lane, s in keypoints])
    x, y, yaw = _pose(*trigger)
    scenario = ScenarioConfig(f"{kind}_1", kind, (x, y, 0.0, yaw), params or {})
    return RouteConfig(kind, "Town01", kp, scenarios=(scenario,))


def drive(route: RouteConfig, ticks: int, agent: str = "expert") -> Episode:
    """The runner's call order without background traffic: agent -> tick -> RouteScenario ->
    criteria. ``agent``: the privileged expert, or ``blind`` (the route follower at 8 m/s from
    the start, seeing no actor and no light)."""
    town = load_town(route.town)
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    criteria = RouteCriteria(RouteGeometry.from_arrays(planned.xy, planned.yaw_rad))
    ctx = ScenarioContext(sim, town, planned, route, criteria, np.random.default_rng(0))
    rs = RouteScenario(ctx)
    blind = agent == "blind"
    start = (float(planned.xy[0, 0]), float(planned.xy[0, 1]), 0.0, float(planned.yaw_rad[0]))
    state = sim.reset(
        EpisodeSpec(route.town, start, route_xy=planned.xy, traffic=TrafficConfig(0, 0, seed=0),
                    seed=0, ego_speed_mps=8.0 if blind else 0.0)
    )  # fmt: skip
    rs.setup()
    expert = ExpertPlanner(town, planned)
    follower = RouteFollower.for_route(planned, town, 8.0)
    ep = Episode(rs, ctx)
    for t in range(ticks):
        control: VehicleControl = (
            follower.control(_ego_only(state), SIM_DT_S) if blind else expert.step(state)
        )
        state = sim.tick(rs.perturb(control))
        rs.tick(state)
        criteria.update(state)
        a = state.actors
        rows = np.flatnonzero(a.valid & (a.role == ActorRole.SCENARIO))
        ep.states.append(state)
        ep.ego_s.append(ctx.board.ego_s_m)
        ep.triggered.append(ep.scn.triggered)
        ep.wrong_direction.append(criteria.outside_lanes.wrong_direction_active)
        ep.actors.append(
            {int(a.actor_id[r]): (int(a.kind[r]), float(a.x[r]), float(a.y[r]), float(a.yaw[r]),
                                  float(a.speed[r]), float(a.width[r])) for r in rows}
        )  # fmt: skip
        if ep.finished_tick is None and ep.scn.finished:
            ep.finished_tick = t
    return ep


@cache
def episode(kind: str, geometry_name: str, ticks: int, agent: str = "expert") -> Episode:
    """One episode per (type, geometry, length, agent), shared by the tests that read it."""
    geometry = {"right": RIGHT_TURN, "left": LEFT_TURN, "straight": STRAIGHT}[geometry_name]
    return drive(make_route(geometry, kind, PARAMS.get(kind)), ticks, agent)


def _flow_start() -> dict[str, str]:
    """A point 2.6 m right of lane 84 (the bike lane beside the lane that crosses the left
    turn's path at junction 87), 44 m before the lane's end."""
    town = load_town("Town01")
    xy, yaw = town.lanes.position(84, float(town.lanes.length_m[84]) - 44.0)
    p = np.asarray(xy) + 2.6 * np.array([-np.sin(yaw), np.cos(yaw)])
    return {"x": str(p[0]), "y": str(p[1]), "z": "0"}


PARAMS: dict[str, dict[str, dict[str, str]]] = {
    "InvadingTurn": {"distance": {"value": "60"}, "offset": {"value": "0.27"}},
    "VehicleOpensDoorTwoWays": {"distance": {"value": "50"},
                                "frequency": {"from": "36", "to": "89"}},
    "ConstructionObstacleTwoWays": {"distance": {"value": "60"},
                                    "frequency": {"from": "20", "to": "40"}},
}  # fmt: skip


def exit_s(ep: Episode) -> float:
    """Route arc length of the first point after the junction the route crosses (computed from
    the lanes' junction ids, independently of the scenario)."""
    p, town = ep.ctx.planned, ep.ctx.town
    inside = town.lanes.junction_id[p.lane] >= 0
    first = int(np.argmax(inside))
    return float(p.s_m[first + int(np.argmax(~inside[first:]))])


def _start_tick(ep: Episode, aid: int) -> int:
    tr = ep.track(aid)
    return int(tr[np.flatnonzero(tr[:, 4] > 0.05)[0], 0])


# ------------------------------------------------------------------ VehicleTurningRoute
@pytest.mark.slow
def test_cyclist_waits_on_the_right_sidewalk_11_m_past_the_turn_and_crosses_at_1_8() -> None:
    ep = episode("VehicleTurningRoute", "right", 1100)
    (bike,) = ep.of_kind(ActorKind.BICYCLE)
    tr = ep.track(bike)
    s, lat = ep.frame(tr[0, 1], tr[0, 2])
    assert s == pytest.approx(exit_s(ep) + 11.0, abs=0.6)  # _start_distance past the exit
    assert 0.5 * LANE_W_M + 1.0 < lat < 0.5 * LANE_W_M + 4.0  # beyond the lane, on the sidewalk
    t0 = _start_tick(ep, bike)
    coll = ep.scn.collision_xy
    d = float(np.hypot(*(ep.ego_xy(t0) - coll)))
    v = float(ep.states[t0].actors.speed[0])
    assert d / v <= 1.8 + 0.15 or d <= 6.0  # InTimeToArrival 1.8 s or 6 m, not earlier ...
    d_before = float(np.hypot(*(ep.ego_xy(t0 - 2) - coll)))
    v_before = float(ep.states[t0 - 2].actors.speed[0])
    assert d_before / v_before > 1.8 - 0.1 and d_before > 6.0  # ... than that
    moving = tr[(tr[:, 0] > t0 + 5)]
    assert np.allclose(moving[:, 4], 1.8, atol=0.05)
    _, lat_end = ep.frame(moving[-1, 1], moving[-1, 2])
    # twice its distance to the lane centre, leftwards
    assert lat_end == pytest.approx(-lat, abs=0.5)
    # removed after the crossing; the scenario ends once the ego drove 40 m more
    gone = int(tr[-1, 0]) + 1
    assert ep.finished_tick is not None
    assert ep.ego_s[ep.finished_tick] - ep.ego_s[gone] == pytest.approx(40.0, abs=1.5)
    assert not ep.collisions()


@pytest.mark.slow
def test_a_blind_ego_runs_into_the_turning_cyclist() -> None:
    ep = episode("VehicleTurningRoute", "right", 700, "blind")
    assert ep.collisions(), "a blind ego at 8 m/s reaches the cyclist's line with it"


# ------------------------------------------------------------------ VehicleTurningRoutePedestrian
def test_walker_side_follows_the_turn_direction() -> None:
    """Right turn: the walker starts on the left sidewalk; left turn: on the right one; it
    walks across the whole road (sidewalk to sidewalk) at 1.8 m/s."""
    for geometry, sign in (("right", -1.0), ("left", 1.0)):
        ep = drive(make_route(RIGHT_TURN if geometry == "right" else LEFT_TURN,
                              "VehicleTurningRoutePedestrian"), 1)  # fmt: skip
        scn = ep.scn
        scn.build()
        walk = scn.walk
        s0, lat0 = ep.frame(*walk[0])
        s1, lat1 = ep.frame(*walk[1])
        assert s0 == pytest.approx(exit_s(ep) + 0.5, abs=0.6)
        assert sign * lat0 > 0.5 * LANE_W_M + 1.0  # a sidewalk on that side
        assert -sign * lat1 > 0.5 * LANE_W_M  # ... to the other one
        assert scn.reaction_time_s == 2.2


@pytest.mark.slow
def test_expert_stops_for_the_walker_after_its_right_turn() -> None:
    ep = episode("VehicleTurningRoutePedestrian", "right", 1000)
    (walker,) = ep.of_kind(ActorKind.PEDESTRIAN)
    t0 = _start_tick(ep, walker)
    d = float(np.hypot(*(ep.ego_xy(t0) - ep.scn.collision_xy)))
    v = float(ep.states[t0].actors.speed[0])
    assert d / v <= 2.2 + 0.15 or d <= 6.0
    assert np.allclose(ep.track(walker)[5:, 4][ep.track(walker)[5:, 0] > t0 + 5], 1.8, atol=0.05)
    assert not ep.collisions()
    assert ep.finished_tick is not None


# ------------------------------------------------------------------ CrossingBicycleFlow
def _cbf_route() -> RouteConfig:
    params = {"start_actor_flow": _flow_start(), "flow_speed": {"value": "5"},
              "source_dist_interval": {"from": "15", "to": "29"}}  # fmt: skip
    return make_route(LEFT_TURN, "CrossingBicycleFlow", params)


@cache
def _cbf() -> Episode:
    return drive(_cbf_route(), 1000)


@pytest.mark.slow
def test_bicycle_flow_rides_the_bike_lane_through_the_junction_at_flow_speed() -> None:
    ep = _cbf()
    bikes = ep.of_kind(ActorKind.BICYCLE)
    t0 = ep.triggered.index(True)
    assert len(bikes) >= 4 and all(ep.born(b) >= t0 for b in bikes)
    town = ep.ctx.town
    snap = ep.actors[t0 + 20]
    on84 = []
    for b in bikes:
        if b in snap:
            _, x, y, _, v, w = snap[b]
            assert v == pytest.approx(5.0, abs=0.1) and w < 1.0
            proj = town.lanes.project(np.array([[x, y]]))
            if int(proj.lane[0]) == 84:  # before the junction: 2.6 m right of the lane centre
                assert float(proj.lateral_m[0]) == pytest.approx(2.6, abs=0.1)
                on84.append(float(proj.s_m[0]))
    gaps = np.diff(sorted(on84))
    assert gaps.size and np.all(gaps >= 15.0 - 1.0) and np.all(gaps <= 29.0 + 1.0)


@pytest.mark.slow
def test_bicycle_flow_lights_red_then_the_egos_green() -> None:
    ep = _cbf()
    town = ep.ctx.town
    sig = town.signals
    lights = np.flatnonzero(sig.light_junction == ep.scn.junction_id)
    in_lane = int(
        ep.ctx.planned.lane[int(np.argmax(town.lanes.junction_id[ep.ctx.planned.lane] >= 0)) - 1]
    )
    ego_light = int(sig.stop_owner[(sig.stop_lane == in_lane) & (sig.stop_kind == STOP_LIGHT)][0])
    t0 = ep.triggered.index(True)
    red = int(LightState.RED)
    for dt_s, ego_state in (
        (1.0, red),
        (4.5, red),
        (5.5, int(LightState.GREEN)),
        (10.0, int(LightState.GREEN)),
    ):
        st = ep.states[t0 + int(dt_s / SIM_DT_S)].light_state
        assert st[ego_light] == ego_state
        assert all(st[k] == red for k in lights if k != ego_light)


@pytest.mark.slow
def test_expert_crosses_the_bicycle_flow_and_the_scenario_ends_at_the_junction_exit() -> None:
    ep = _cbf()
    assert not ep.collisions()
    assert ep.finished_tick is not None
    assert ep.ego_s[ep.finished_tick] == pytest.approx(exit_s(ep), abs=1.5)  # WaitEndIntersection


# ------------------------------------------------------------------ InvadingTurn
@pytest.mark.slow
def test_invading_flow_cuts_into_the_egos_lane_and_cones_line_the_far_edge() -> None:
    ep = episode("InvadingTurn", "straight", 800)
    scn = ep.scn
    distance, offset = 60.0, 0.27
    cones = ep.of_kind(ActorKind.STATIC)
    # cones every 5 m over half the distance, from 15 m past the source, on the far edge
    assert len(cones) == 6
    s_cones = sorted(ep.frame(*ep.track(c)[0, 1:3])[0] for c in cones)
    source_s = scn.trigger_s_m + distance + 30.0
    assert np.allclose(np.diff(s_cones), 5.0, atol=0.2)
    assert s_cones[-1] == pytest.approx(source_s - 15.0, abs=0.5)
    for c in cones:
        assert ep.frame(*ep.track(c)[0, 1:3])[1] == pytest.approx(-1.4 * LANE_W_M, abs=0.1)
    cars = ep.of_kind(ActorKind.VEHICLE)
    assert len(cars) >= 2 and min(ep.born(c) for c in cars) >= ep.triggered.index(True)
    first = ep.track(cars[0])
    s0, _ = ep.frame(first[0, 1], first[0, 2])
    assert s0 == pytest.approx(source_s, abs=1.0)  # the source: distance + 30 m ahead
    # the cars drive towards the ego shifted offset + w/2 - 0.7 m towards it: their centre is
    # w/2 + 0.7 - offset left of the ego's lane centre; at the lane limit (30 km/h)
    mid = first[len(first) // 2]
    assert ep.frame(mid[1], mid[2])[1] == pytest.approx(-(0.5 * LANE_W_M + 0.7 - offset), abs=0.1)
    assert mid[4] == pytest.approx(30.0 / 3.6, abs=0.2)
    born = sorted(ep.born(c) for c in cars)
    assert np.all(np.diff(born) * SIM_DT_S * 30.0 / 3.6 == pytest.approx(40.0, abs=2.0))
    assert not ep.collisions()
    assert ep.finished_tick is not None
    assert ep.ego_s[ep.finished_tick] == pytest.approx(source_s, abs=1.5)


# ------------------------------------------------------------------ VehicleOpensDoorTwoWays
@pytest.mark.slow
def test_door_opens_into_the_lane_at_3_s_then_oncoming_traffic_after_5_s() -> None:
    ep = episode("VehicleOpensDoorTwoWays", "straight", 700)
    scn = ep.scn
    car, *door = sorted(ep.of_kind(ActorKind.VEHICLE), key=ep.born)[:2]
    tc = ep.track(car)
    s, lat = ep.frame(tc[0, 1], tc[0, 2])
    assert s == pytest.approx(scn.trigger_s_m + 50.0, abs=0.6)
    # beside the lane on the right, its inner side at most a few dm into the ego's lane
    assert 0.5 * LANE_W_M - 0.5 < lat - 1.0 < 0.5 * LANE_W_M + 0.2
    (d_id,) = door
    t_door = ep.born(d_id) - 1  # spawned during this tick's scenario update
    d = float(np.hypot(*(ep.ego_xy(t_door) - scn.front_xy)))
    v = float(ep.states[t_door].actors.speed[0])
    assert d / v <= 3.0 + 0.1 or d <= 10.0
    assert (
        float(np.hypot(*(ep.ego_xy(t_door - 2) - scn.front_xy)))
        / float(ep.states[t_door - 2].actors.speed[0])
        > 3.0 - 0.1
    )
    _, lat_door = ep.frame(*ep.track(d_id)[0, 1:3])
    assert lat_door < 0.5 * LANE_W_M - 0.6  # the open door reaches into the ego's lane
    others = [c for c in ep.of_kind(ActorKind.VEHICLE) if c not in (car, d_id)]
    assert others, "oncoming traffic"
    t_flow = min(ep.born(c) for c in others)
    assert (t_flow - t_door) * SIM_DT_S == pytest.approx(5.0, abs=0.2)
    assert ep.wrong_direction[t_flow - 2] and not ep.wrong_direction[t_flow]
    for c in others:
        tr = ep.track(c)
        assert ep.frame(tr[0, 1], tr[0, 2])[1] == pytest.approx(-LANE_W_M, abs=0.3)
    assert not ep.collisions()
    assert ep.finished_tick is not None
    assert ep.ego_s[ep.finished_tick] == pytest.approx(scn.trigger_s_m + 100.0, abs=1.5)
    assert ep.wrong_direction[-1], "back on after the scenario"


@pytest.mark.slow
def test_a_blind_ego_hits_the_open_door() -> None:
    ep = episode("VehicleOpensDoorTwoWays", "straight", 400, "blind")
    assert ep.collisions()


# ------------------------------------------------------------------ ConstructionObstacleTwoWays
@pytest.mark.slow
def test_construction_two_ways_oncoming_flow_waits_for_the_ego_near_the_construction() -> None:
    """construction_crash_vehicle.py: the opposite flow and the wrong-direction switch start
    once the ego is 30 m from the construction point and 5 s more have passed, not at the
    trigger; the flow comes from 75 m (1.5 x 30 km/h + 30 m) beyond the point."""
    ep = episode("ConstructionObstacleTwoWays", "straight", 450)
    scn = ep.scn
    point = ep.ctx.planned.xy[int(np.argmin(np.abs(ep.ctx.planned.s_m - (scn.trigger_s_m + 60.0))))]
    near = next(t for t in range(len(ep.states)) if np.hypot(*(ep.ego_xy(t) - point)) < 30.0)
    cars = ep.of_kind(ActorKind.VEHICLE)
    assert cars
    t_flow = min(ep.born(c) for c in cars)
    assert (t_flow - near) * SIM_DT_S == pytest.approx(5.0, abs=0.2)
    assert ep.wrong_direction[t_flow - 2] and not ep.wrong_direction[t_flow]
    s_src, lat = ep.frame(*ep.track(cars[0])[0, 1:3])
    assert s_src == pytest.approx(scn.trigger_s_m + 60.0 + 75.0, abs=1.0)
    assert lat == pytest.approx(-LANE_W_M, abs=0.2)
    assert scn.end_s_m() == pytest.approx(scn.trigger_s_m + 60.0 + 50.0, abs=0.5)
