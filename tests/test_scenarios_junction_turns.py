"""The junction-turn types of scenarios.junction_turns on real Town01-06 junctions. Bench2Drive
places these types on Town07/12/13 only, so each test takes a Bench2Drive route of Town01-06 whose
junction fits (its turn, its lights) and puts the type under test at that route's trigger point,
with the parameters Bench2Drive's own routes give it. The stop-sign type runs on Town01 with one
junction's lights turned into stop signs in the OpenDRIVE file (the shared towns carry none).

Checked against ScenarioRunner's files: where the actors appear relative to the trigger and the
junction, their speeds, the forced lights per step, when the scenario ends; and at agent level:
the expert gets through without an infraction, a blind constant-speed driver (no lights, no other
actors) runs the red light / the stop sign or is hit by the vehicle taking priority."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from harness.geometry import wrap_angle
from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import RouteCriteria
from harness.leaderboard.traffic_rules import SignalGeometry
from harness.maps import load_town
from harness.planning import ExpertPlanner
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig, ScenarioConfig
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import COLLISION_EVENTS, ActorKind, ActorRole, LightState
from harness.world.timing import SIM_DT_S
from scenarios.context import ScenarioContext
from scenarios.placement import junction_on_route, path_s, route_index, route_pose
from scenarios.route_scenario import RouteScenario
from tests.conftest import SHARED_ROUTES
from tests.test_scenarios_support import Run, _ego_only, _routes

BLIND_MPS = 8.0  # [m/s] the blind driver's constant speed
EXPERT_START_MPS = 5.0  # [m/s] the expert starts rolling (shorter episodes)
TICKS_PER_S = round(1.0 / SIM_DT_S)
B2D_LEFT_TURN = {"flow_speed": {"value": "9"},
                 "source_dist_interval": {"from": "18", "to": "28"}}  # route 4683 # fmt: skip
B2D_RIGHT_TURN = {"flow_speed": {"value": "8"},
                  "source_dist_interval": {"from": "21", "to": "26"}}  # route 2115 # fmt: skip


@dataclass
class TurnRun:
    """One driven episode (per-tick records in ``run``), the route criteria and every light
    call the scenario made: (time [s], 'force' | 'release', lights, state, duration [s])."""

    run: Run
    criteria: RouteCriteria
    light_calls: list[tuple[float, str, tuple[int, ...], int, float | None]] = field(
        default_factory=list
    )

    def infraction_keys(self) -> list[InfractionKey]:
        return [i.key for i in self.criteria.infractions()]

    def hits(self) -> set[int]:
        """Ids of the actors the ego collided with."""
        return {e.other_id for s in self.run.states for e in s.events if e.kind in COLLISION_EVENTS}


def route_with(
    xml: Path, base_id: str, kind: str, params: dict[str, dict[str, str]],
    *, town: str | None = None, trigger_before_entry_m: float | None = None,
) -> RouteConfig:  # fmt: skip
    """Bench2Drive route ``base_id`` with its scenario replaced by ``kind``: at the route's own
    trigger point, or ``trigger_before_entry_m`` before the first junction after it."""
    base = _routes(str(xml))[base_id]
    trig = base.scenarios[0].trigger
    if trigger_before_entry_m is not None:
        planned = plan_route(load_town(base.town), base.keypoints, base.id)
        k = route_index(planned, base.scenarios[0].trigger_xy, float(np.deg2rad(trig[3])))
        span = junction_on_route(planned, load_town(base.town), float(planned.s_m[k]) - 10.0)
        assert span is not None
        xy, yaw, _ = route_pose(planned, float(planned.s_m[span[0]]) - trigger_before_entry_m)
        trig = (float(xy[0]), float(xy[1]), 0.0, float(np.rad2deg(yaw)))
    cfg = ScenarioConfig(f"{kind}_1", kind, trig, params)
    return replace(base, scenarios=(cfg,), town=town or base.town)


def drive_route(route: RouteConfig, ticks: int, agent: str) -> TurnRun:
    """The runner's call order (agent -> tick -> RouteScenario -> criteria with the town's lights
    and stop signs) without background traffic. ``agent``: 'expert'; 'blind' (the route follower
    at BLIND_MPS from the start, seeing neither actors nor lights); 'stop' (brakes throughout)."""
    town = load_town(route.town)
    planned = plan_route(town, route.keypoints, route.id)
    sim = EmbeddedSimulator()
    criteria = RouteCriteria(
        RouteGeometry.from_arrays(planned.xy, planned.yaw_rad),
        signals=SignalGeometry.from_town(town),
    )
    ctx = ScenarioContext(sim, town, planned, route, criteria, np.random.default_rng(0))
    rs = RouteScenario(ctx)
    start = (float(planned.xy[0, 0]), float(planned.xy[0, 1]), 0.0, float(planned.yaw_rad[0]))
    state = sim.reset(
        EpisodeSpec(route.town, start, route_xy=planned.xy,
                    traffic=TrafficConfig(vehicles=0, pedestrians=0, seed=0), seed=0,
                    ego_speed_mps={"blind": BLIND_MPS, "expert": EXPERT_START_MPS}.get(agent, 0.0))
    )  # fmt: skip
    out = TurnRun(Run(route, rs, ctx), criteria)
    force, release = sim.force_lights, sim.release_lights

    def forced(lights: Sequence[int], st: LightState, duration_s: float | None = None) -> None:
        out.light_calls.append((ctx.board.time_s, "force", tuple(lights), int(st), duration_s))
        force(lights, st, duration_s)

    def released(lights: Sequence[int]) -> None:
        out.light_calls.append((ctx.board.time_s, "release", tuple(lights), -1, None))
        release(lights)

    sim.force_lights = forced  # type: ignore[method-assign]
    sim.release_lights = released  # type: ignore[method-assign]
    rs.setup()
    expert = ExpertPlanner(town, planned) if agent == "expert" else None
    follower = RouteFollower(planned.xy, BLIND_MPS)  # no stop lines: it ignores signs too
    run = out.run
    for _ in range(ticks):
        if expert is not None:
            control = expert.step(state)
        elif agent == "stop":
            control = VehicleControl(brake=1.0)
        else:
            control = follower.control(_ego_only(state), SIM_DT_S)
        state = sim.tick(control)
        rs.tick(state)
        criteria.update(state)
        a = state.actors
        rows = np.flatnonzero(a.valid & (a.role == ActorRole.SCENARIO))
        run.states.append(state)
        run.ego_s.append(ctx.board.ego_s_m)
        run.triggered.append(rs.scenarios[0].triggered)
        run.actors.append(
            {int(a.actor_id[r]): (int(a.kind[r]), float(a.x[r]), float(a.y[r]), float(a.yaw[r]), float(a.speed[r]))
             for r in rows}
        )  # fmt: skip
    return out


def _finished_tick(run: Run) -> int | None:
    """First tick after which the scenario's tree had finished (its actors gone, lights free)."""
    scn = run.scenario
    if not scn.finished:
        return None
    ends = [t for t, s in enumerate(run.ego_s) if s >= scn.end_s_m()]
    return ends[0] if ends else None


def _born(run: Run) -> dict[int, int]:
    out: dict[int, int] = {}
    for t, a in enumerate(run.actors):
        for aid in a:
            out.setdefault(aid, t)
    return out


def _rel_yaw(a: float, b: float) -> float:
    return float(wrap_angle(a - b))


def _lane_end(run: Run, lane: int) -> tuple[np.ndarray, float]:
    town = run.ctx.town
    xy, yaw = town.lanes.position(lane, town.lanes.length_m[lane])
    return np.asarray(xy, dtype=np.float64), float(yaw)


def _arc_to(path: np.ndarray, xy: np.ndarray) -> float:
    """Arc length [m] along ``path`` to its point nearest ``xy``."""
    return float(path_s(path)[int(np.argmin(np.hypot(*(path - xy).T)))])


def _flow_spacing(run: Run, path: np.ndarray, tick: int) -> np.ndarray:
    """Arc-length gaps [m] between the flow vehicles on ``path`` at ``tick``."""
    s = sorted(_arc_to(path, np.array(a[1:3])) for a in run.actors[tick].values()
               if np.hypot(*(path - np.array(a[1:3])).T).min() < 0.5)  # fmt: skip
    return np.diff(s)


def _lights_at(run: Run, tick: int, lights: list[int]) -> list[int]:
    return [int(run.states[tick].light_state[k]) for k in lights]


# ---------------------------------------------------------------- SignalizedJunctionLeftTurn
@pytest.fixture(scope="module")
def left_turn(bench2drive_xml: Path) -> TurnRun:
    """Town03 route 26990 turns left at a signalised cross junction."""
    route = route_with(bench2drive_xml, "26990", "SignalizedJunctionLeftTurn", B2D_LEFT_TURN)
    return drive_route(route, 16 * TICKS_PER_S, "expert")


def test_left_turn_flow_comes_from_the_opposite_arm_empty_at_the_source(left_turn: TurnRun) -> None:
    run = left_turn.run
    scn = run.scenario
    t0 = run.first_trigger_tick()
    born = _born(run)
    assert born and min(born.values()) == t0 + 1, "the flow starts at the trigger (next state)"
    t0 += 1
    path = scn.paths["opposite"]
    first = min(born, key=lambda aid: born[aid])
    assert np.hypot(*(np.array(run.actors[t0][first][1:3]) - path[0])) < 0.5, (
        "one car at the source"
    )
    assert len(run.actors[t0]) == 1, "no initial actors (ActorFlow without initial_actors)"
    for aid, t in born.items():  # every later car appears at the source too
        assert np.hypot(*(np.array(run.actors[t][aid][1:3]) - path[0])) < 1.0
    # the source lane ends at the junction heading against the ego: the opposite arm
    end_xy, end_yaw = _lane_end(run, scn.source_lane)
    assert abs(abs(_rel_yaw(end_yaw, scn.entry_yaw)) - np.pi) < 0.4
    # source 4 x flow_speed before the junction, sink 2.5 x flow_speed past the connector
    assert _arc_to(path, end_xy) == pytest.approx(4.0 * 9.0, abs=1.0)
    town = run.ctx.town
    conn = int(town.graph.successors(scn.source_lane)[0])
    on_conn = [c for c in town.graph.successors(scn.source_lane)
               if np.hypot(*(path - _lane_end(run, int(c))[0]).T).min() < 0.3]  # fmt: skip
    assert on_conn, conn
    assert path_s(path)[-1] - _arc_to(path, _lane_end(run, int(on_conn[0]))[0]) == pytest.approx(
        2.5 * 9.0, abs=1.0
    )
    # flow_speed and source_dist_interval
    later = [a[4] for a in run.actors[-1].values()]
    assert later and max(later) == pytest.approx(9.0, abs=0.2)
    gaps = np.concatenate([_flow_spacing(run, path, t) for t in range(t0, len(run.actors), 20)])
    assert gaps.size >= 10 and np.all(gaps > 18.0 - 1.0) and np.all(gaps < 28.0 + 1.0)


def test_left_turn_lights_as_the_traffic_light_freezer(left_turn: TurnRun) -> None:
    """init: ego red, source green, others red for 5 s; then ego and source green, others red."""
    run = left_turn.run
    scn = run.scenario
    ego, src = scn.light_of(scn.in_lane), scn.light_of(scn.source_lane)
    assert ego is not None and src is not None and ego != src
    others = [k for k in scn.junction_lights() if k not in (ego, src)]
    assert others
    t0 = run.first_trigger_tick()
    five = 5 * TICKS_PER_S
    for t in range(t0 + 2, t0 + five - 1):
        assert _lights_at(run, t, [ego, src, *others]) == [0, 2] + [0] * len(others)
    for t in range(t0 + five + 2, len(run.states)):
        assert _lights_at(run, t, [ego, src, *others]) == [2, 2] + [0] * len(others)
    assert scn.timeout_s == 240.0 and scn.end_s_m() == pytest.approx(scn.exit_s + 10.0)


def test_left_turn_expert_waits_for_the_oncoming_flow_a_blind_driver_is_hit(
    left_turn: TurnRun, bench2drive_xml: Path
) -> None:
    """The flow's light is green with the ego's, and its cars ignore the ego: at B2D's spacing
    (2-3 s) the expert never finds its gap and waits before the junction (the scenario's
    timeout would end it); a driver that turns without looking is hit."""
    run = left_turn.run
    assert not left_turn.hits()
    assert max(run.ego_s) < run.scenario.entry_s
    route = route_with(bench2drive_xml, "26990", "SignalizedJunctionLeftTurn", B2D_LEFT_TURN)
    blind = drive_route(route, 9 * TICKS_PER_S, "blind")
    flow = set(_born(blind.run))
    assert blind.hits() & flow


# ------------------------------------------------------------ NonSignalizedJunctionRightTurn
def right_turn_route(xml: Path) -> RouteConfig:
    """Route 28087's approach to its unsignalised Town04 cross junction, turning right there
    (connector 355 into lane 171) instead of left, with the scenario 20 m before the junction."""
    base = _routes(str(xml))["28087"]
    town = load_town(base.town)
    planned = plan_route(town, base.keypoints, base.id)
    span = junction_on_route(planned, town, 0.0)
    assert span is not None and int(planned.lane[span[0] - 1]) == 60
    before = base.keypoints[base.keypoints[:, 0] < planned.xy[span[0] - 3, 0]]
    turn = [town.lanes.position(lane, s)[0] for lane, s in ((355, 5.0), (171, 10.0), (171, 40.0))]
    keypoints = np.vstack([before, np.column_stack([np.array(turn), np.zeros(3)])])
    xy, yaw, _ = route_pose(planned, float(planned.s_m[span[0]]) - 20.0)
    cfg = ScenarioConfig(
        "NonSignalizedJunctionRightTurn_1", "NonSignalizedJunctionRightTurn",
        (float(xy[0]), float(xy[1]), 0.0, float(np.rad2deg(yaw))), B2D_RIGHT_TURN,
    )  # fmt: skip
    return replace(base, keypoints=keypoints, scenarios=(cfg,))


@pytest.fixture(scope="module")
def right_turn(bench2drive_xml: Path) -> TurnRun:
    return drive_route(right_turn_route(bench2drive_xml), 12 * TICKS_PER_S, "expert")


def test_right_turn_flow_from_the_left_filled_and_no_light_control(right_turn: TurnRun) -> None:
    run = right_turn.run
    scn = run.scenario
    t0 = run.first_trigger_tick()
    path = scn.paths["left"]
    assert right_turn.light_calls == [], "the non-signalised version forces no light"
    # filled at the trigger (initial_actors=True) along the path, spaced by the interval
    assert min(_born(run).values()) == t0 + 1 and len(run.actors[t0 + 1]) >= 3
    t0 += 1
    gaps = _flow_spacing(run, path, t0)
    assert gaps.size >= 2 and np.all(gaps > 21.0 - 1.0) and np.all(gaps < 26.0 + 1.0)
    # the rightmost lane of the arm on the ego's left, 5 x flow_speed before the junction
    end_xy, end_yaw = _lane_end(run, scn.source_lane)
    assert _rel_yaw(end_yaw, scn.entry_yaw) == pytest.approx(np.pi / 2, abs=0.4)
    rel = end_xy - run.ctx.planned.xy[scn.first]
    assert -np.sin(scn.entry_yaw) * rel[0] + np.cos(scn.entry_yaw) * rel[1] < -5.0  # left
    assert scn.source_lane == scn.rightmost(scn.incoming_from(np.pi / 2))
    assert _arc_to(path, end_xy) == pytest.approx(5.0 * 8.0, abs=1.0)
    assert max(a[4] for a in run.actors[t0 + 10].values()) == pytest.approx(8.0, abs=0.2)
    assert scn.timeout_s == 240.0


def test_right_turn_expert_waits_for_a_gap_without_touching_the_flow(right_turn: TurnRun) -> None:
    """The flow ignores the ego; at B2D's 2.6-3.3 s headways the expert's gap acceptance (it
    plans with PDM's 1.5 m/s2 acceleration) finds no gap and waits before the junction."""
    run = right_turn.run
    assert not right_turn.hits() and right_turn.infraction_keys() == []
    assert max(run.ego_s) < run.scenario.entry_s
    speeds = np.array([s.actors.speed[0] for s in run.states])
    assert speeds[-TICKS_PER_S:].max() < 0.1


# -------------------------------------------------------------- OppositeVehicleTakingPriority
@pytest.fixture(scope="module")
def priority(bench2drive_xml: Path) -> TurnRun:
    """Town04 route 26944 crosses an unsignalised junction straight on; the blind driver."""
    route = route_with(bench2drive_xml, "26944", "OppositeVehicleTakingPriority",
                       {"direction": {"value": "right"}})  # fmt: skip
    return drive_route(route, 8 * TICKS_PER_S, "blind")


def test_priority_taker_waits_then_crosses_from_the_right_at_60_kmh(priority: TurnRun) -> None:
    run = priority.run
    scn = run.scenario
    tr = run.track(scn.runner_id)
    assert run.actors[0][scn.runner_id][0] == ActorKind.EMERGENCY
    # 30 m before its junction entry, on the arm to the ego's right
    entry_xy, entry_yaw = _lane_end(run, scn.runner_lane)
    assert _arc_to(scn.path, entry_xy) == pytest.approx(30.0, abs=1.0)
    assert _rel_yaw(entry_yaw, scn.entry_yaw) == pytest.approx(-np.pi / 2, abs=0.4)
    go = int(tr[np.flatnonzero(tr[:, 4] > 0.1)[0], 0])

    def tta(t: int) -> tuple[float, float]:
        ego = run.states[t].actors
        d = float(np.hypot(ego.x[0] - scn.conflict_xy[0], ego.y[0] - scn.conflict_xy[1]))
        return d, d / max(float(ego.speed[0]), 1e-3)

    d1, t1 = tta(go - 1)
    d0, t0 = tta(go - 2)
    assert (d1 < 12.0 or t1 < 2.2) and d0 >= 12.0 and t0 >= 2.2 - 1e-9
    assert tr[:, 4].max() == pytest.approx(60.0 / 3.6, abs=0.3)
    assert priority.light_calls == [], "lights are left alone"
    assert scn.timeout_s is None and scn.end_s_m() == pytest.approx(scn.exit_s)


def test_priority_taker_hits_a_blind_driver(priority: TurnRun) -> None:
    assert priority.run.scenario.runner_id in priority.hits()
    assert InfractionKey.COLLISIONS_VEHICLE in priority.infraction_keys()


# --------------------------------------------------------------------- vanilla turns
@pytest.fixture(scope="module")
def vanilla(bench2drive_xml: Path) -> TurnRun:
    """Town04 route 28087 turns left at an unsignalised junction."""
    route = route_with(bench2drive_xml, "28087", "VanillaNonSignalizedTurn", {})
    return drive_route(route, 15 * TICKS_PER_S, "expert")


def test_vanilla_turn_has_no_actors_and_ends_10_m_past_the_junction(vanilla: TurnRun) -> None:
    run = vanilla.run
    scn = run.scenario
    assert not run.ids_seen() and vanilla.light_calls == []
    assert scn.timeout_s is None and scn.end_s_m() == pytest.approx(scn.exit_s + 10.0)
    done = _finished_tick(run)
    assert done is not None and vanilla.infraction_keys() == []


def _red_route(xml: Path, kind: str) -> RouteConfig:
    """Town03 route 26950 (right turn at a signalised junction), the trigger 20 m before it."""
    return route_with(xml, "26950", kind, {}, trigger_before_entry_m=20.0)


def test_red_light_turn_forces_red_then_green(bench2drive_xml: Path) -> None:
    """Expert: the ego's light red for 5 s from the trigger (the junction's others red), then
    green until the scenario ends; the expert stops at the line and then turns, no infraction."""
    res = drive_route(_red_route(bench2drive_xml, "VanillaSignalizedTurnEncounterRedLight"),
                      16 * TICKS_PER_S, "expert")  # fmt: skip
    run = res.run
    scn = run.scenario
    ego = scn.light_of(scn.in_lane)
    others = [k for k in scn.junction_lights() if k != ego]
    t0, five = run.first_trigger_tick(), 5 * TICKS_PER_S
    for t in range(t0 + 2, t0 + five - 1):
        assert _lights_at(run, t, [ego, *others]) == [0] * (1 + len(others))
    done = _finished_tick(run)
    assert done is not None
    for t in range(t0 + five + 2, done):
        assert _lights_at(run, t, [ego, *others]) == [2] + [0] * len(others)
    speeds = np.array([s.actors.speed[0] for s in run.states])
    assert speeds[t0 : t0 + five].min() < 0.1, "it stopped at the red light"
    assert res.infraction_keys() == []
    assert res.light_calls[-1][1] == "release", "lights back to their cycle at the end"


def test_red_light_turn_blind_driver_runs_the_red(bench2drive_xml: Path) -> None:
    res = drive_route(_red_route(bench2drive_xml, "VanillaSignalizedTurnEncounterRedLight"),
                      6 * TICKS_PER_S, "blind")  # fmt: skip
    assert res.infraction_keys() == [InfractionKey.RED_LIGHT]


def test_green_light_turn_green_then_red_and_over_after_10_s(bench2drive_xml: Path) -> None:
    """An ego standing at the trigger (route 26950's start): its light green for 5 s, then red
    for 5 s (the others red), and the scenario ends with the light sequence, 10 s after the
    trigger, although the ego never passed; the lights then rejoin their cycle."""
    route = route_with(bench2drive_xml, "26950", "VanillaSignalizedTurnEncounterGreenLight", {},
                       trigger_before_entry_m=30.5)  # fmt: skip
    res = drive_route(route, 12 * TICKS_PER_S, "stop")
    run = res.run
    scn = run.scenario
    assert scn.trigger_s_m < 2.0 and scn.timeout_s is None
    ego = scn.light_of(scn.in_lane)
    others = [k for k in scn.junction_lights() if k != ego]
    t0, five = run.first_trigger_tick(), 5 * TICKS_PER_S
    for t in range(t0 + 2, t0 + five - 1):
        assert _lights_at(run, t, [ego, *others]) == [2] + [0] * len(others)
    for t in range(t0 + five + 2, t0 + 2 * five - 1):
        assert _lights_at(run, t, [ego, *others]) == [0] * (1 + len(others))
    assert scn.finished and max(run.ego_s) < scn.entry_s
    releases = [c for c in res.light_calls if c[1] == "release"]
    assert releases and releases[-1][0] == pytest.approx(10.0 + t0 * SIM_DT_S, abs=0.11)


def test_green_light_turn_is_passed_on_green(bench2drive_xml: Path) -> None:
    route = _red_route(bench2drive_xml, "VanillaSignalizedTurnEncounterGreenLight")
    for agent in ("blind", "expert"):
        res = drive_route(route, 12 * TICKS_PER_S, agent)
        assert res.infraction_keys() == [], agent
        assert _finished_tick(res.run) is not None, agent


# ------------------------------------------------------------ stop sign (edited Town02)
@pytest.fixture(scope="module")
def stop_town(tmp_path_factory: pytest.TempPathFactory, shared_maps: Path) -> Iterator[str]:
    """Town02 with the lights of route 28048's junction turned into stop signs ('206'), as
    Town02Stops in a maps folder put before the shared one."""
    town = load_town("Town02")
    route = _routes(str(SHARED_ROUTES / "bench2drive" / "bench2drive220.xml"))["28048"]
    planned = plan_route(town, route.keypoints, route.id)
    k = route_index(
        planned, route.scenarios[0].trigger_xy, np.deg2rad(route.scenarios[0].trigger[3])
    )
    span = junction_on_route(planned, town, float(planned.s_m[k]) - 10.0)
    assert span is not None
    jid = int(town.lanes.junction_id[planned.lane[span[0]]])
    text = town.xodr
    for sid in town.signals.light_id[town.signals.light_junction == jid].tolist():
        text = re.sub(rf'(<signal name="[^"]*" id="{sid}"[^>]*type=")1000001"', r'\g<1>206"', text)
    folder = tmp_path_factory.mktemp("maps")
    (folder / "Town02Stops.xodr").write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_MAPS", f"{folder}{os.pathsep}{shared_maps}")
        yield "Town02Stops"


def test_stop_sign_turn_expert_stops_blind_driver_does_not(
    stop_town: str, bench2drive_xml: Path
) -> None:
    kind = "VanillaNonSignalizedTurnEncounterStopsign"
    route = route_with(bench2drive_xml, "28048", kind, {}, town=stop_town)
    town = load_town(stop_town)
    assert town.signals.stop_signs_count >= 3
    res = drive_route(route, 16 * TICKS_PER_S, "expert")
    scn = res.run.scenario
    assert scn.light_of(scn.in_lane) is None and not res.run.ids_seen()
    assert scn.timeout_s is None and res.light_calls == []
    assert _finished_tick(res.run) is not None and res.infraction_keys() == []
    blind = drive_route(route, 8 * TICKS_PER_S, "blind")
    assert blind.infraction_keys() == [InfractionKey.STOP_INFRACTION]
