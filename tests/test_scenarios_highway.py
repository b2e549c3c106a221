"""Highway and interurban scenarios (scenarios/highway.py) on Town04's highway and its rural
junctions, with route entries built from the lane graph the way Bench2Drive writes them (a
trigger on the route, flow start / end points on lane centres): where ScenarioRunner puts the
actors, how fast they go, when the scenario ends, and what the expert / a stopped or blind ego
makes of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pytest

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps import load_town
from harness.maps.town import Town
from harness.planning import ExpertPlanner
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig, ScenarioConfig
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import ActorRole, EventKind, WorldState
from harness.world.timing import SIM_DT_S
from scenarios.context import ScenarioContext
from scenarios.highway import (
    SEQUENTIAL_DRIVE_M,
    junction_exit_lane,
    same_direction_lanes,
    side_lane,
)
from scenarios.route_scenario import RouteScenario

COLLISIONS = {EventKind.COLLISION_VEHICLE, EventKind.COLLISION_STATIC}


@pytest.fixture(scope="module")
def town04(shared_maps: object) -> Town:
    return _town04()


@lru_cache(maxsize=1)
def _town04() -> Town:
    return load_town("Town04")


def lane_of(town: Town, road: int, lane_id: int) -> int:
    """The (first section's) lane index of OpenDRIVE road / lane id."""
    rows = np.flatnonzero((town.lanes.road_id == road) & (town.lanes.lane_id == lane_id))
    assert rows.size, f"Town04 has no driving lane {lane_id} on road {road}"
    return int(rows[0])


def at(town: Town, lane: int, s_m: float) -> tuple[float, float, float]:
    """(x, y, yaw_deg) of a lane point."""
    xy, yaw = town.lanes.position(lane, s_m)
    return float(xy[0]), float(xy[1]), float(np.degrees(yaw))


def loc(p: tuple[float, float, float]) -> dict[str, str]:
    return {"x": f"{p[0]:.2f}", "y": f"{p[1]:.2f}", "z": "0.0"}


def route_with(
    town: Town,
    keypoints: list[tuple[float, float, float]],
    kind: str,
    trigger: tuple[float, float, float],
    params: dict[str, dict[str, str]],
) -> RouteConfig:
    kp = np.array([[p[0], p[1], 0.0] for p in keypoints])
    sc = ScenarioConfig(f"{kind}_1", kind, (trigger[0], trigger[1], 0.0, trigger[2]), params)
    return RouteConfig("h1", "Town04", kp, scenarios=(sc,))


@dataclass
class Run:
    """One episode: states, scenario actors per tick {id: (x, y, yaw, speed)}, trigger flags."""

    rs: RouteScenario
    ctx: ScenarioContext
    criteria: RouteCriteria
    states: list[WorldState] = field(default_factory=list)
    actors: list[dict[int, tuple[float, float, float, float]]] = field(default_factory=list)
    triggered: list[bool] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    events: list[EventKind] = field(default_factory=list)

    @property
    def scenario(self) -> Any:
        return self.rs.scenarios[0]

    def t_trigger(self) -> int:
        return self.triggered.index(True)

    def t_end(self) -> int:
        return self.finished.index(True)

    def ego(self, t: int) -> np.ndarray:
        a = self.states[t].actors
        return np.array([a.x[0], a.y[0]])

    def track(self, aid: int) -> np.ndarray:
        """(T, 5) [tick, x, y, yaw, speed] of one actor while it exists."""
        rows = [(t, *a[aid]) for t, a in enumerate(self.actors) if aid in a]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)

    def ids(self) -> list[int]:
        return sorted(set().union(*[set(a) for a in self.actors]))


def drive(route: RouteConfig, ticks: int, agent: str = "expert", until_end: bool = True) -> Run:
    """The runner's call order without background traffic (agent -> tick -> RouteScenario ->
    criteria). ``agent``: 'expert', 'stop' (brakes) or 'blind' (RouteFollower at 12 m/s seeing
    nothing). Stops ``until_end`` a second after the scenario finished."""
    town = _town04()
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    criteria = RouteCriteria(RouteGeometry.from_arrays(planned.xy, planned.yaw_rad))
    ctx = ScenarioContext(sim, town, planned, route, criteria, np.random.default_rng(0))
    rs = RouteScenario(ctx)
    start = (float(planned.xy[0, 0]), float(planned.xy[0, 1]), 0.0, float(planned.yaw_rad[0]))
    blind_mps = 12.0
    state = sim.reset(
        EpisodeSpec("Town04", start, route_xy=planned.xy,
                    traffic=TrafficConfig(vehicles=0, pedestrians=0, seed=0), seed=0,
                    ego_speed_mps=blind_mps if agent == "blind" else 0.0)
    )  # fmt: skip
    rs.setup()
    expert = ExpertPlanner(town, planned) if agent == "expert" else None
    follower = RouteFollower.for_route(planned, town, blind_mps)
    run = Run(rs, ctx, criteria)
    done_at: int | None = None
    for t in range(ticks):
        if expert is not None:
            control = expert.step(state)
        elif agent == "blind":
            a = state.actors
            only = np.arange(a.valid.shape[0]) == 0
            seen = replace(state, actors=replace(a, valid=a.valid & only))
            control = follower.control(seen, SIM_DT_S)
        else:
            control = VehicleControl(brake=1.0)
        state = sim.tick(rs.perturb(control))
        rs.tick(state)
        criteria.update(state)
        a = state.actors
        rows = np.flatnonzero(a.valid & (a.role == ActorRole.SCENARIO))
        run.states.append(state)
        run.actors.append(
            {int(a.actor_id[r]): (float(a.x[r]), float(a.y[r]), float(a.yaw[r]), float(a.speed[r]))
             for r in rows}
        )  # fmt: skip
        run.triggered.append(run.scenario.triggered)
        run.finished.append(run.scenario.finished)
        run.events += [e.kind for e in state.events]
        if until_end and run.scenario.finished:
            done_at = t if done_at is None else done_at
            if t - done_at >= 20:
                break
    return run


# ---------------------------------------------------------------------- the places (Town04)
# the highway heading +x between x = -360 and 130 (lanes 3..6 of roads 40 -> 39 -> 38, lane 6
# the rightmost), its entry ramp (road 44) joining lane 6 in junction 1176 and its exit ramp
# (road 1101) leaving lane 6 in junction 1082; the rural cross junction 1452 (no lights).
def cut_in_route(town: Town) -> RouteConfig:
    """Bench2Drive's HighwayCutIn layout: the ego in lane 5, the cutter on the entry ramp
    ~40 m ahead and ~25 m to the right (Town12's routes: 21-28 m ahead, 12-14 m right)."""
    ego, ramp, on = lane_of(town, 40, 5), lane_of(town, 44, 2), lane_of(town, 39, 5)
    return route_with(
        town, [at(town, ego, 60.0), at(town, on, 120.0)], "HighwayCutIn", at(town, ego, 200.0),
        {"other_actor_location": loc(at(town, ramp, 160.0)),
         "end_location": loc(at(town, on, 60.0))},
    )  # fmt: skip


def exit_route(town: Town) -> RouteConfig:
    """HighwayExit (route 23658's parameters): the ego in lane 5 must cut into a 14 m/s flow
    in lane 6 to take the exit ramp; the flow starts 26 m behind the trigger."""
    l5_in, l5, l6 = lane_of(town, 40, 5), lane_of(town, 39, 5), lane_of(town, 39, 6)
    beyond, after_ramp = lane_of(town, 38, 6), lane_of(town, 31, 2)
    return route_with(
        town, [at(town, l5_in, 150.0), at(town, l5, 70.0), at(town, after_ramp, 30.0)],
        "HighwayExit",
        at(town, l5, 60.0),
        {"start_actor_flow": loc(at(town, l6, 34.0)), "end_actor_flow": loc(at(town, beyond, 10.0)),
         "flow_speed": {"value": "14"}, "source_dist_interval": {"from": "17", "to": "36"}},
    )  # fmt: skip


def merger_route(town: Town) -> RouteConfig:
    """MergerIntoSlowTraffic (route 2273's parameters): the ego comes down the entry ramp into
    a 9 m/s flow in lane 6."""
    ramp, l6_in, l6 = lane_of(town, 44, 2), lane_of(town, 40, 6), lane_of(town, 39, 6)
    return route_with(
        town, [at(town, ramp, 20.0), at(town, l6, 120.0)], "MergerIntoSlowTraffic",
        at(town, ramp, 100.0),
        {"start_actor_flow": loc(at(town, l6_in, 150.0)), "end_actor_flow": loc(at(town, l6, 100.0)),
         "flow_speed": {"value": "9"}, "source_dist_interval": {"from": "16", "to": "33"}},
    )  # fmt: skip


def lane_change_route(town: Town) -> RouteConfig:
    """SequentialLaneChange: from lane 3 to the exit ramp off lane 6 (three lane changes)."""
    l3, l4, l5 = lane_of(town, 40, 3), lane_of(town, 40, 4), lane_of(town, 40, 5)
    l6, after_ramp = lane_of(town, 39, 6), lane_of(town, 31, 2)
    keypoints = [at(town, l3, 10.0), at(town, l3, 50.0), at(town, l4, 110.0),
                 at(town, l5, 170.0), at(town, l6, 30.0), at(town, after_ramp, 30.0)]  # fmt: skip
    return route_with(town, keypoints, "SequentialLaneChange", at(town, l3, 30.0), {})


def _junction_1452(town: Town) -> tuple[int, int, int, int, int]:
    """(ego incoming, its left-turn connector, its exit, the near lane into the junction from
    the ego's left, that lane's straight exit on the right) at junction 1452."""
    for conn in town.junctions[[j.id for j in town.junctions].index(1452)].connector_lanes:
        pred, succ = town.graph.predecessors(conn), town.graph.successors(conn)
        y0, y1 = (
            town.lanes.position(conn, 0.0)[1],
            town.lanes.position(conn, town.lanes.length_m[conn])[1],
        )
        turn = float((y1 - y0 + np.pi) % (2 * np.pi) - np.pi)
        if turn < -1.2 and int(pred[0]) == lane_of(town, 18, 1):
            exit_ = int(succ[0])
            near = int(town.graph.left_opposite[exit_])
            out = junction_exit_lane(town, near)
            return int(pred[0]), int(conn), exit_, near, out
    raise AssertionError("junction 1452 has no left turn from road 18")


def interurban_route(town: Town) -> RouteConfig:
    """InterurbanActorFlow (route 23901's speed / spacing) at junction 1452: the ego turns left
    across a flow going straight through from the opposite arm (Town12/13's flow runs beside the
    ego's lane, a layout Town01-06 lack)."""
    ego, _, exit_, _, _ = _junction_1452(town)
    opposite_out = int(town.graph.left_opposite[ego])
    opposite_in = next(p for p in town.graph.predecessors(town.graph.predecessors(opposite_out)[0]))
    return route_with(
        town, [at(town, ego, 5.0), at(town, exit_, 45.0)], "InterurbanActorFlow",
        at(town, ego, 35.0),
        {"start_actor_flow": loc(at(town, opposite_in, 20.0)),
         "end_actor_flow": loc(at(town, opposite_out, 30.0)),
         "flow_speed": {"value": "16"}, "source_dist_interval": {"from": "53", "to": "78"}},
    )  # fmt: skip


def advanced_route(town: Town) -> RouteConfig:
    """InterurbanAdvancedActorFlow (route 23695's speed / spacing) at junction 1452: the ego
    turns left across the near lane's flow into the far lane's."""
    ego, _, exit_, near, out = _junction_1452(town)
    return route_with(
        town, [at(town, ego, 5.0), at(town, exit_, 45.0)], "InterurbanAdvancedActorFlow",
        at(town, ego, 35.0),
        {"direction": {"value": "right"}, "start_actor_flow": loc(at(town, near, 20.0)),
         "end_actor_flow": loc(at(town, out, 30.0)),
         "flow_speed": {"value": "17"}, "source_dist_interval": {"from": "42", "to": "84"}},
    )  # fmt: skip


@cache
def _run(which: str, agent: str, ticks: int) -> Run:
    """One cached episode per (place, agent): the tests of a type share it."""
    return drive(globals()[f"{which}_route"](_town04()), ticks, agent)


def _param_xy(route: RouteConfig, name: str) -> np.ndarray:
    p = route.scenarios[0].params[name]
    return np.array([float(p["x"]), float(p["y"])])


def _flow_gaps(path: np.ndarray, cars: dict[int, tuple[float, float, float, float]]) -> np.ndarray:
    """Gaps [m] along ``path`` between consecutive cars (centre to centre)."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    at_s = sorted(float(s[int(np.argmin(np.hypot(*(path - np.array(c[:2])).T)))])
                  for c in cars.values())  # fmt: skip
    return np.diff(at_s)


def _collided_with_scenario(run: Run) -> bool:
    ids = set(run.ids())
    return any(e.kind in COLLISIONS and e.other_id in ids for s in run.states for e in s.events)


# ---------------------------------------------------------------------- lane helpers
def test_side_lanes_follow_opendrive_lane_ids(town04: Town) -> None:
    l3, l4, l5, l6 = (lane_of(town04, 39, k) for k in (3, 4, 5, 6))
    assert side_lane(town04, l5, "left") == l4 and side_lane(town04, l5, "right") == l6
    assert side_lane(town04, l6, "right") == -1  # the shoulder is no driving lane
    assert sorted(same_direction_lanes(town04, l5)) == sorted([l3, l4, l5, l6])
    # across the centre line the left lane is the opposite direction's (CARLA's get_left_lane)
    rural = lane_of(town04, 18, 1)
    assert side_lane(town04, rural, "left") == lane_of(town04, 18, -1)
    # straight through junction 1176 lane 5 of road 40 continues as lane 5 of road 39
    assert junction_exit_lane(town04, lane_of(town04, 40, 5)) == l5


# ---------------------------------------------------------------------- HighwayCutIn
def test_highway_cut_in_syncs_its_arrival_then_cuts_in_at_80_percent_of_the_ego_speed(
    town04: Town,
) -> None:
    run = _run("cut_in", "expert", 1200)
    scn, route = run.scenario, cut_in_route(town04)
    t0 = run.t_trigger()
    assert all(not a for a in run.actors[: t0 + 1]), "the cutter appears at the trigger"
    (aid,) = run.ids()
    tr = run.track(aid)
    assert tr[0, 0] == t0 + 1
    start = _param_xy(route, "other_actor_location")
    assert np.hypot(*(tr[0, 1:3] - start)) < 0.5  # on the lane centre at other_actor_location
    # SyncArrivalWithAgent: speed = its distance to its target / the ego's time to its own
    target = np.asarray(town04.lanes.position(lane_of(town04, 39, 6), 10.0)[0])
    ego_target = np.asarray(town04.lanes.position(lane_of(town04, 39, 5), 0.0)[0])
    t_sync = next(int(t) for t, x, y, _, _ in tr if np.hypot(x - target[0], y - target[1]) < 5.0)
    checked = 0
    for t in range(int(tr[0, 0]) + 1, t_sync):
        prev, car_prev = run.states[t - 1].actors, run.actors[t - 1][aid]
        d_ego = float(np.hypot(*(ego_target - run.ego(t - 1))))
        want = np.hypot(car_prev[0] - target[0], car_prev[1] - target[1]) * prev.speed[0] / d_ego
        assert run.actors[t][aid][3] == pytest.approx(want, abs=0.15)
        checked += 1
    assert checked > 50
    # CutIn: 80 % of the ego's speed, into the lane on its left (the ego's), for
    # (0.3 + 2 + 3) s x its own speed, then removed, which ends the scenario
    v_ego, v_car = float(run.states[t_sync].actors.speed[0]), run.actors[t_sync][aid][3]
    assert scn.cut_in.speed == pytest.approx(0.8 * v_ego, abs=1e-6)
    assert tr[-1, 4] == pytest.approx(0.8 * v_ego, abs=0.1)
    lane5_y = town04.lanes.position(lane_of(town04, 39, 5), 40.0)[0][1]
    assert abs(tr[-1, 2] - lane5_y) < 0.3
    after = tr[tr[:, 0] >= t_sync]
    driven = float(np.hypot(*np.diff(after[:, 1:3], axis=0).T).sum())
    assert driven == pytest.approx((0.3 + 2.0 + 3.0) * v_car, abs=2.0)
    assert run.t_end() == int(tr[-1, 0])  # removed in the tick that ends the scenario
    assert not scn.timed_out and scn.timeout_s is None
    # the expert lets it in
    assert not _collided_with_scenario(run)


def test_highway_cut_in_hits_a_blind_ego() -> None:
    assert _collided_with_scenario(_run("cut_in", "blind", 900))


# ---------------------------------------------------------------------- flows
def test_highway_exit_flow_is_filled_at_the_trigger_and_ends_past_the_exit_junction(
    town04: Town,
) -> None:
    run, route = _run("exit", "blind", 1200), exit_route(town04)
    scn = run.scenario
    path = scn.path
    assert np.hypot(*(path[0] - _param_xy(route, "start_actor_flow"))) < 1.0
    assert np.hypot(*(path[-1] - _param_xy(route, "end_actor_flow"))) < 1.0
    t0 = run.t_trigger()
    assert all(not a for a in run.actors[:t0])
    first = run.actors[t0 + 1]
    assert len(first) >= 4  # filled along its ~180 m path (initial_actors=True)
    gaps = _flow_gaps(path, first)
    assert np.all(gaps >= 17.0 - 1.5) and np.all(gaps <= 36.0 + 1.5)
    assert all(c[3] == pytest.approx(14.0, abs=0.1) for c in first.values())
    # WaitEndIntersection on the flow path's junction (1082, the exit's)
    t1 = run.t_end()
    lanes = town04.lanes
    jid = [int(lanes.junction_id[lanes.project(run.ego(t)[None]).lane[0]]) for t in (t1 - 1, t1)]
    assert jid == [1082, -1] and scn.timeout_s == 240.0
    assert _collided_with_scenario(run)  # a blind ego changing into the flow is hit


def test_merger_into_slow_traffic_ends_at_the_sink_of_any_lane(town04: Town) -> None:
    run, route = _run("merger", "blind", 1200), merger_route(town04)
    scn = run.scenario
    assert np.hypot(*(scn.path[0] - _param_xy(route, "start_actor_flow"))) < 1.0
    assert np.hypot(*(scn.path[-1] - _param_xy(route, "end_actor_flow"))) < 1.0
    t0 = run.t_trigger()
    first = run.actors[t0 + 1]
    gaps = _flow_gaps(scn.path, first)
    assert len(first) >= 4 and np.all(gaps >= 16.0 - 1.5) and np.all(gaps <= 33.0 + 1.5)
    assert all(c[3] == pytest.approx(9.0, abs=0.1) for c in first.values())
    # the sink points: the end point's lane (lane 6) and lanes 3-5 beside it
    sinks = scn.sink_points()
    assert len(sinks) == 4
    assert np.ptp(sinks[:, 0]) < 0.5 and np.allclose(
        np.sort(np.diff(np.sort(sinks[:, 1]))), 3.5, atol=0.1
    )
    t1 = run.t_end()
    d = [float(np.min(np.hypot(*(sinks - run.ego(t)).T))) for t in (t1 - 1, t1)]
    assert d[0] >= 2.0 > d[1]
    assert _collided_with_scenario(run)


def test_interurban_actor_flow_grows_from_its_source_and_ends_out_of_the_junction(
    town04: Town,
) -> None:
    run, route = _run("interurban", "blind", 600), interurban_route(town04)
    scn = run.scenario
    assert np.hypot(*(scn.path[0] - _param_xy(route, "start_actor_flow"))) < 1.0
    assert np.hypot(*(scn.path[-1] - _param_xy(route, "end_actor_flow"))) < 1.0
    t0 = run.t_trigger()
    first = run.actors[t0 + 1]
    assert len(first) == 1  # no initial actors: one car at the source
    (car,) = first.values()
    assert np.hypot(car[0] - scn.path[0, 0], car[1] - scn.path[0, 1]) < 1.0
    assert car[3] == pytest.approx(16.0, abs=0.1)
    t1 = run.t_end()
    lanes = town04.lanes
    jid = [int(lanes.junction_id[lanes.project(run.ego(t)[None]).lane[0]]) for t in (t1 - 1, t1)]
    assert jid == [1452, -1]
    assert _collided_with_scenario(run)


def test_interurban_advanced_flow_runs_two_opposite_flows_and_ends_ahead_of_the_second_sink(
    town04: Town,
) -> None:
    run = _run("advanced", "blind", 600)
    scn = run.scenario
    ego, _, exit_, near, out = _junction_1452(town04)
    # flow 2: from the lane left of flow 1's sink to the lane left of its source
    assert lane_of(town04, int(town04.lanes.road_id[out]), -int(town04.lanes.lane_id[out])) == (
        int(town04.lanes.project(scn.path2[:1]).lane[0])
    )
    assert int(town04.lanes.project(scn.path2[-1:]).lane[0]) == exit_
    t0 = run.t_trigger()
    first = sorted(run.actors[t0 + 1].values())
    assert len(first) == 2
    starts = [scn.path[0], scn.path2[0]]
    assert all(min(np.hypot(c[0] - p[0], c[1] - p[1]) for p in starts) < 1.0 for c in first)
    t1 = run.t_end()
    rel = run.ego(t1) - scn.sink2_xy
    fwd = np.array([np.cos(scn.sink2_yaw), np.sin(scn.sink2_yaw)])
    assert float(rel @ fwd) > 0.0 and float(np.hypot(*rel)) < 10.0
    rel0 = run.ego(t1 - 1) - scn.sink2_xy
    assert float(rel0 @ fwd) <= 0.0 or float(np.hypot(*rel0)) >= 10.0
    assert _collided_with_scenario(run)


# ---------------------------------------------------------------------- SequentialLaneChange
def test_sequential_lane_change_has_no_actors_and_ends_after_200_m() -> None:
    run = _run("lane_change", "expert", 900)
    t0, t1 = run.t_trigger(), run.t_end()
    assert not run.ids()
    xy = np.array([run.ego(t) for t in range(t0, t1 + 1)])
    steps = np.hypot(*np.diff(xy, axis=0).T)
    assert steps[:-1].sum() < SEQUENTIAL_DRIVE_M <= steps.sum() + 1.0
    assert run.scenario.timeout_s == 240.0 and not run.scenario.timed_out
    # the expert changes lanes three times without an infraction
    assert not run.criteria.infractions()
    lanes = town04_lane_ids(run)
    assert {3, 4, 5, 6} <= lanes


def town04_lane_ids(run: Run) -> set[int]:
    lanes = _town04().lanes
    xy = np.array([run.ego(t) for t in range(len(run.states))])
    return {abs(int(k)) for k in lanes.lane_id[lanes.project(xy).lane]}


def test_side_lane_left_crosses_to_the_oncoming_road_on_a_one_road_per_direction_town() -> None:
    # Osm2Odr writes each direction of a two-way street as its own road (the built-in towns):
    # CARLA's get_left_lane then finds nothing in the road, and the lane graph's oncoming lane
    # alongside stands in for it; it runs the other way, about one lane width to the left.
    from scenarios.highway import side_lane

    town = load_town("Harness03")
    lanes = town.lanes
    hits = 0
    for lane in range(lanes.n_lanes):
        if lanes.junction_id[lane] >= 0:
            continue
        left = side_lane(town, lane, "left")
        if left < 0:
            continue
        hits += 1
        xy, yaw = lanes.position(np.array([lane]), np.array([lanes.length_m[lane] / 2]))
        pts = slice(int(lanes.start[left]), int(lanes.start[left] + lanes.count[left]))
        d = np.hypot(*(lanes.xy[pts] - xy[0]).T)
        k = int(np.argmin(d))
        assert 2.0 < d[k] < 6.0, "the oncoming lane alongside, about a lane width away"
        assert np.cos(float(yaw[0]) - float(lanes.yaw_rad[pts][k])) < -0.9, "runs the other way"
        # it lies on the driver's left: CARLA's frame is left-handed, left = (sin yaw, -cos yaw)
        rel = lanes.xy[pts][k] - xy[0]
        assert rel @ np.array([np.sin(yaw[0]), -np.cos(yaw[0])]) > 0
    assert hits > 0
