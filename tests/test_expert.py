"""The privileged expert closed loop on real towns (EmbeddedSimulator + scripted actors): route
following in traffic, red lights, passing stopped cars (same-direction lane and opposite lane
with oncoming traffic), a crossing pedestrian, a hard-braking lead; plus the agent file."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.leaderboard.agent import LiveWorldView, checked_plan, is_privileged
from harness.maps import load_town
from harness.maps.town import Town
from harness.planning import ExpertPlanner
from harness.planning.paths import STOP_KIND_LIGHT
from harness.routes.generate import generate_routes
from harness.routes.interpolate import PlannedRoute, global_plan, plan_route
from harness.sim.embedded.lights import LightSchedule
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import ActorCommand, ActorSpec, EpisodeSpec, TrafficConfig
from harness.world.state import ActorKind, EventKind, LightState, WorldState
from harness.world.timing import SIM_DT_S

AGENT_FILE = Path(__file__).resolve().parents[1] / "agents" / "expert_agent.py"
STRAIGHT_TWO_WAY = ("Town01", 88)  # 309 m straight lane; its left neighbour runs the other way
STRAIGHT_TWO_LANE = ("Town03", 253)  # 119 m straight lane with a same-direction left lane
BAD_EVENTS = {
    EventKind.COLLISION_VEHICLE,
    EventKind.COLLISION_PEDESTRIAN,
    EventKind.COLLISION_STATIC,
    EventKind.RED_LIGHT,
    EventKind.STOP_SIGN,
    EventKind.OFF_DRIVABLE,
}
CAR: dict[str, float] = {"length": 4.8, "width": 2.0, "height": 1.6}


def _lane_route(town: Town, lane: int, s_from: float, s_to: float) -> PlannedRoute:
    s = np.linspace(s_from, s_to, 6)
    xy, _ = town.lanes.position(np.full(s.shape, lane), s)
    return plan_route(town, np.column_stack([xy, np.zeros(len(s))]), f"lane{lane}")


def _episode(
    town_name: str, planned: PlannedRoute, vehicles: int = 0, pedestrians: int = 0, seed: int = 0
) -> tuple[EmbeddedSimulator, WorldState]:
    sim = EmbeddedSimulator()
    x, y = planned.xy[0]
    state = sim.reset(
        EpisodeSpec(
            town=town_name, ego_start=(float(x), float(y), 0.0, float(planned.yaw_rad[0])),
            route_xy=planned.xy, traffic=TrafficConfig(vehicles, pedestrians, seed=seed), seed=seed,
        )
    )  # fmt: skip
    return sim, state


def _drive(
    sim: EmbeddedSimulator, expert: ExpertPlanner, state: WorldState, ticks: int,
    hook: Callable[[int, WorldState], None] | None = None,
) -> tuple[list[WorldState], list[EventKind]]:  # fmt: skip
    states, events = [state], []
    for k in range(ticks):
        if hook is not None:
            hook(k, state)
        state = sim.tick(expert.step(state))
        states.append(state)
        events += [e.kind for e in state.events]
    return states, events


def _frenet(expert: ExpertPlanner, states: list[WorldState], actor_id: int = 0) -> np.ndarray:
    """(len, 2) station and lateral offset of actor ``actor_id`` along the expert's route."""
    ctx = expert.ctx
    rows = [int(np.flatnonzero(s.actors.actor_id == actor_id)[0]) for s in states]
    xy = np.array([[s.actors.x[r], s.actors.y[r]] for s, r in zip(states, rows, strict=True)])
    st, lat = ctx.project_many(xy, 0, ctx.n)
    return np.column_stack([st, lat])


def _lane_point(town: Town, lane: int, s: float) -> tuple[float, float, float]:
    xy, yaw = town.lanes.position(lane, s)
    return float(xy[0]), float(xy[1]), float(yaw)


def test_follows_a_route_in_traffic_without_infractions() -> None:
    town = load_town("Town01")
    r = generate_routes(town, 1, 220.0, seed=4)[0]
    planned = plan_route(town, r.keypoints, r.id)
    sim, state = _episode("Town01", planned, vehicles=30, pedestrians=10, seed=4)
    expert = ExpertPlanner(town, planned)
    states, events = _drive(sim, expert, state, 900)
    assert not BAD_EVENTS & set(events), events
    assert expert.station_index >= expert.ctx.end_station - 3.0
    speeds = np.array([s.actors.speed[0] for s in states])
    assert speeds.max() > 5.0  # it actually drives, not crawls
    times = np.array(expert.plan_times_s)
    assert times.size == pytest.approx(len(states) / 2, abs=2)  # plans at 10 Hz


def _red_then_green_stop(town: Town) -> tuple[int, float, float]:
    """A light stop line with a long straight approach whose light is red from t = 0 and turns
    green between 8 and 30 s: (stop line index, its s on the lane, green time [s])."""
    sig, lanes = town.signals, town.lanes
    sched = LightSchedule(sig)
    times = np.arange(0.0, 40.0, 0.5)
    states = np.array([sched.states_at(t)[0] for t in times])  # (T, lights)
    for i in np.flatnonzero(sig.stop_kind == STOP_KIND_LIGHT).tolist():
        lane, s = int(sig.stop_lane[i]), float(sig.stop_s_m[i])
        if s < 45.0 or lanes.junction_id[lane] >= 0:
            continue
        col = states[:, sig.stop_owner[i]]
        green = np.flatnonzero(col == LightState.GREEN)
        if (
            col[0] == LightState.RED
            and green.size
            and 8.0 <= times[green[0]] <= 30.0
            and np.all(col[: green[0]] == LightState.RED)
        ):
            return i, s, float(times[green[0]])
    raise AssertionError("no suitable traffic light")


def test_stops_at_red_light_and_goes_on_green() -> None:
    town = load_town("Town01")
    i, s_line, t_green = _red_then_green_stop(town)
    lane = int(town.signals.stop_lane[i])
    nxt = town.graph.successors(lane)[0]
    after = town.graph.successors(nxt)[0]
    pts = [town.lanes.position(lane, s)[0] for s in (s_line - 40.0, s_line - 20.0, s_line - 1.0)]
    pts.append(town.lanes.position(after, 15.0)[0])
    planned = plan_route(town, np.column_stack([np.array(pts), np.zeros(4)]), "red")
    sim, state = _episode("Town01", planned)
    expert = ExpertPlanner(town, planned)
    ticks = int((t_green + 8.0) / SIM_DT_S)
    states, events = _drive(sim, expert, state, ticks)
    assert EventKind.RED_LIGHT not in events and not BAD_EVENTS & set(events)
    fr = _frenet(expert, states)
    line = float(expert.ctx.stop_station[expert.ctx.stop_owner == town.signals.stop_owner[i]][0])
    front = fr[:, 0] + 0.5 * expert.config.ego.length_m
    t = np.array([s.time_s for s in states])
    red = t < t_green
    assert front[red].max() < line  # never past the line while red
    speed = np.array([s.actors.speed[0] for s in states])
    assert speed[red & (t > t_green - 2.0)].max() < 0.1  # standing at the line
    assert line - front[red][-1] < 5.0  # ... close to it
    assert front[-1] > line + 10.0  # drove on after green


def _pass_stopped_car(
    town_name: str, lane: int, s_obstacle: float, ticks: int,
    oncoming_s: float | None = None,
) -> tuple[ExpertPlanner, list[WorldState], list[EventKind], float, int]:  # fmt: skip
    town = load_town(town_name)
    planned = _lane_route(town, lane, 3.0, town.lanes.length_m[lane] - 3.0)
    sim, state = _episode(town_name, planned)
    x, y, yaw = _lane_point(town, lane, s_obstacle)
    sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, x, y, yaw, **CAR))
    oncoming = -1
    if oncoming_s is not None:  # on the opposite lane abreast of oncoming_s, driving toward the ego
        opp = int(town.graph.left_opposite[lane])
        xy_o, _ = town.lanes.position(lane, oncoming_s)
        sl = town.lanes.lane_points(opp)
        start = int(np.argmin(np.hypot(*(town.lanes.xy[sl] - xy_o).T)))
        path = town.lanes.xy[sl][start:]
        yaw_o = float(town.lanes.yaw_rad[sl][start])
        px, py = float(path[0, 0]), float(path[0, 1])
        aid = sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, px, py, yaw_o, speed=8.0, **CAR))
        sim.command_actor(aid, ActorCommand(path, 8.0))
        oncoming = aid
    expert = ExpertPlanner(town, planned)
    states, events = _drive(sim, expert, sim.state, ticks)
    line = float(np.asarray(planned.s_m)[-1])
    return expert, states, events, line, oncoming


def test_changes_to_the_free_same_direction_lane_and_comes_back() -> None:
    expert, states, events, _, _ = _pass_stopped_car(*STRAIGHT_TWO_LANE, 35.0, 360)
    assert not BAD_EVENTS & set(events), events
    fr = _frenet(expert, states)
    assert fr[:, 1].min() < -2.5  # moved into the left lane
    assert fr[-1, 0] > 35.0 + 15.0  # got past the car
    assert abs(fr[-1, 1]) < 0.7  # and back in the route lane


def test_passes_through_the_opposite_lane_only_after_oncoming_car() -> None:
    expert, states, events, _, oncoming = _pass_stopped_car(
        *STRAIGHT_TWO_WAY, 45.0, 640, oncoming_s=140.0
    )
    assert not BAD_EVENTS & set(events), events
    ego = _frenet(expert, states)
    onc = _frenet(expert, states[1:], oncoming)
    ego = ego[1:]
    approaching = onc[:, 0] > ego[:, 0]  # the oncoming car is still ahead of the ego
    assert approaching[0] and not approaching[-1]
    assert ego[approaching, 1].min() > -1.0  # stayed in its lane while it came
    assert ego[approaching, 0].max() < 45.0 - 2.4  # behind the stopped car
    assert ego[:, 1].min() < -2.5  # then used the opposite lane
    assert ego[-1, 0] > 45.0 + 15.0 and abs(ego[-1, 1]) < 0.7  # passed and came back


def test_stops_for_a_crossing_pedestrian() -> None:
    town_name, lane = STRAIGHT_TWO_WAY
    town = load_town(town_name)
    planned = _lane_route(town, lane, 5.0, 150.0)
    sim, state = _episode(town_name, planned)
    x, y, yaw = _lane_point(town, lane, 40.0)
    right = np.array([-np.sin(yaw), np.cos(yaw)])
    start = np.array([x, y]) + 3.0 * right  # at the kerb
    end = np.array([x, y]) - 9.0 * right
    aid = sim.spawn_actor(
        ActorSpec(ActorKind.PEDESTRIAN, float(start[0]), float(start[1]), yaw - np.pi / 2, 0.5, 0.5)
    )

    started: list[int] = []

    def walk(k: int, st: WorldState) -> None:
        near = np.hypot(st.actors.x[0] - start[0], st.actors.y[0] - start[1]) < 20.0
        if near and not started:  # steps out when the ego is 20 m away
            sim.command_actor(aid, ActorCommand(np.stack([start, end]), 1.0))
            started.append(k)

    expert = ExpertPlanner(town, planned)
    states, events = _drive(sim, expert, sim.state, 420, walk)
    assert EventKind.COLLISION_PEDESTRIAN not in events and not BAD_EVENTS & set(events)
    fr = _frenet(expert, states)
    speed = np.array([s.actors.speed[0] for s in states])
    assert started and fr[:, 0][speed < 0.1].max() < 40.0 - 3.0  # stood still before it
    assert speed[started[0] :].min() < 0.1
    assert fr[-1, 0] > 60.0  # went on once the pedestrian had crossed


def test_brakes_behind_a_hard_braking_lead_without_hitting_it() -> None:
    town_name, lane = STRAIGHT_TWO_WAY
    town = load_town(town_name)
    planned = _lane_route(town, lane, 5.0, 300.0)
    sim, state = _episode(town_name, planned)
    x, y, yaw = _lane_point(town, lane, 25.0)
    path = town.lanes.xy[town.lanes.lane_points(lane)]
    aid = sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, x, y, yaw, speed=6.0, **CAR))
    sim.command_actor(aid, ActorCommand(path, 6.0))

    def brake(k: int, st: WorldState) -> None:
        if k == 240:
            sim.command_actor(aid, ActorCommand(np.zeros((0, 2)), 0.0, max_decel_mps2=8.0))

    expert = ExpertPlanner(town, planned)
    states, events = _drive(sim, expert, sim.state, 320, brake)
    assert not BAD_EVENTS & set(events), events
    gap = _frenet(expert, states[1:], aid)[:, 0] - _frenet(expert, states[1:])[:, 0] - 4.8
    speed = np.array([s.actors.speed[0] for s in states[1:]])
    assert speed[200:240].min() > 4.0 and gap[200:240].max() < 35.0  # following
    halt = 240 + int(np.argmax(speed[240:] < 0.05))
    assert halt > 240 and gap[: halt + 1].min() > 1.0  # then stopped behind the lead


def test_agent_file_drives_through_the_leaderboard_interface() -> None:
    spec = importlib.util.spec_from_file_location("expert_agent", AGENT_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, module.get_entry_point())
    assert is_privileged(cls)
    town = load_town("Town01")
    planned = _lane_route(town, STRAIGHT_TWO_WAY[1], 5.0, 200.0)
    sim, _ = _episode("Town01", planned)
    agent = cls()
    gp = global_plan(planned, town, 50.0)
    agent.set_global_plan(gp.gps, gp.world)
    agent.set_world(LiveWorldView(lambda: sim.state, town))
    agent.setup("")
    assert [s["type"] for s in agent.sensors()] == ["sensor.speedometer"]
    for _ in range(40):
        sim.tick(agent.run_step(sim.sensor_data(), sim.state.time_s))
    plan = checked_plan(agent.planned_trajectory())
    assert plan is not None and plan.shape == (40, 3)
    assert sim.state.actors.speed[0] > 1.0
