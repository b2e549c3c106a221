"""Junction scenarios on their Bench2Drive routes: flows start at the trigger, are spaced by
``source_dist_interval`` and drive at ``flow_speed`` on a path that crosses (left turns) or joins
(enter flows) the ego's route at the junction; the red-light runner crosses the ego's path from
``direction``; the blocker stands in the ego's exit lane after the junction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.world.state import COLLISION_EVENTS, ActorKind, LightState
from harness.world.timing import SIM_DT_S
from scenarios.placement import path_s
from tests.test_scenarios_support import Run, drive

FLOW_CASES = [
    ("26990", "NonSignalizedJunctionLeftTurn", "opposite"),
    ("28087", "NonSignalizedJunctionLeftTurnEnterFlow", "enter"),
    ("28099", "SignalizedJunctionLeftTurnEnterFlow", "enter"),
    ("26956", "SignalizedJunctionRightTurn", "left"),
]


def _born(run: Run) -> dict[int, int]:
    out: dict[int, int] = {}
    for t, a in enumerate(run.actors):
        for aid in a:
            out.setdefault(aid, t)
    return out


@pytest.mark.parametrize(("route_id", "kind", "label"), FLOW_CASES)
def test_junction_flow_starts_at_trigger_spaced_and_at_flow_speed(
    bench2drive_xml: Path, route_id: str, kind: str, label: str
) -> None:
    run = drive(bench2drive_xml, route_id, 170)
    assert run.config.type == kind
    p = run.config.params
    speed = float(p.get("flow_speed", {"value": "10"})["value"])
    lo, hi = (
        (float(p["source_dist_interval"]["from"]), float(p["source_dist_interval"]["to"]))
        if "source_dist_interval" in p
        else (20.0, 50.0)
    )
    t0 = run.first_trigger_tick()
    born = _born(run)
    assert born and min(born.values()) >= t0, "no flow vehicle before the trigger"
    path = run.scenario.paths[label]
    s_path = path_s(path)
    first = run.actors[min(born.values()) + 1]
    s_veh = []
    for a in first.values():  # the vehicles on this flow's path (T_Junction has two flows)
        d_path = np.hypot(*(path - np.array(a[1:3])).T)
        if d_path.min() < 0.3:
            s_veh.append(float(s_path[int(np.argmin(d_path))]))
    s_veh.sort()
    gaps = np.diff(s_veh)
    assert gaps.size >= 1 and np.all(gaps >= lo - 1.5) and np.all(gaps <= hi + 1.5)
    later = run.actors[-1]
    assert later and max(a[4] for a in later.values()) == pytest.approx(speed, abs=0.3)
    # the flow's path meets the ego's route in the junction (crosses it or joins its exit lane)
    scn = run.scenario
    route_j = run.ctx.planned.xy[scn.first : scn.last + 15]
    d = np.hypot(path[:, None, 0] - route_j[None, :, 0], path[:, None, 1] - route_j[None, :, 1])
    assert d.min() < 1.5


def test_red_light_runner_crosses_from_the_right_after_the_trigger(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "26944", 220)
    assert run.config.params["direction"]["value"] == "right"
    runner = run.scenario.runner_id
    tr = run.track(runner)
    t0 = run.first_trigger_tick()
    assert np.all(tr[tr[:, 0] <= t0, 4] == 0.0), "waits until the trigger"
    scn = run.scenario
    fwd = np.array([np.cos(scn.entry_yaw), np.sin(scn.entry_yaw)])
    rel = tr[0, 1:3] - run.ctx.planned.xy[scn.first]
    assert (
        -np.sin(scn.entry_yaw) * rel[0] + np.cos(scn.entry_yaw) * rel[1] > 5.0
    )  # from the ego's right
    assert abs(float(fwd @ rel)) < 40.0
    assert tr[:, 4].max() == pytest.approx(60.0 / 3.6, abs=0.3)
    # it drives across the ego's path in the junction, unless it hits the ego first (a vehicle
    # hit by the ego stops there: collision physics), which only a runner crossing its path can
    route_j = run.ctx.planned.xy[scn.first : scn.last + 1]
    d = np.hypot(tr[:, None, 1] - route_j[None, :, 0], tr[:, None, 2] - route_j[None, :, 1])
    hit = any(
        e.other_id == runner and e.kind in COLLISION_EVENTS for s in run.states for e in s.events
    )
    assert d.min() < 1.5 or hit, "drives across the ego's path in the junction"


def test_blocked_intersection_blocker_stands_in_the_exit_lane(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "27494", 200)
    scn = run.scenario
    tr = run.track(scn.blocker_id)
    s, lat = run.route_frame(tr[0, 1], tr[0, 2])
    assert s == pytest.approx(scn.exit_s + 8.0, abs=1.0) and abs(lat) < 0.3
    assert np.all(tr[:, 4] == 0.0), "it does not move while the ego has not waited behind it"
    assert run.ctx.town.lanes.junction_id[run.ctx.planned.lane[scn.last + 1]] < 0


def _lateral_from_entry(run: Run, xy: np.ndarray) -> float:
    """Offset [m, + right] of ``xy`` from the ego's junction entry, across its entry heading."""
    scn = run.scenario
    rel = np.asarray(xy) - run.ctx.planned.xy[scn.first]
    return float(-np.sin(scn.entry_yaw) * rel[0] + np.cos(scn.entry_yaw) * rel[1])


def test_right_turn_flow_comes_from_the_left_and_lights_are_forced(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "26956", 330)
    scn = run.scenario
    t0 = run.first_trigger_tick()
    born = _born(run)
    flow_ids = set(born)
    path = scn.paths["left"]
    # the source lies on the ego's left and the flow drives across towards its right
    assert _lateral_from_entry(run, path[0]) < -5.0
    town = run.ctx.town
    end_xy, end_yaw = town.lanes.position(scn.source_lane, town.lanes.length_m[scn.source_lane])
    assert _lateral_from_entry(run, np.asarray(end_xy)) < -5.0
    assert abs(float(np.angle(np.exp(1j * (end_yaw - scn.entry_yaw - np.pi / 2))))) < 0.3
    first = min(born.values())
    for aid, t in born.items():  # cars born later appear at the source; none near the ego
        a = run.actors[t][aid]
        if t > first:
            assert float(np.hypot(a[1] - path[0, 0], a[2] - path[0, 1])) < 3.0
        ego = run.states[t].actors
        assert float(np.hypot(a[1] - ego.x[0], a[2] - ego.y[0])) > 10.0
    hits = [
        e for t, st in enumerate(run.states) for e in st.events
        if e.kind in COLLISION_EVENTS and e.other_id in flow_ids and t - born[e.other_id] < 5
    ]  # fmt: skip
    assert not hits, "no flow car spawns on top of the ego"
    # ScenarioRunner's lights: the ego's red for 5 s from the trigger, then green; the flow's
    # light green; every other light of the junction red
    ego_light = scn.light_of(scn.in_lane)
    src_light = scn.light_of(scn.source_lane)
    assert ego_light is not None and src_light is not None and ego_light != src_light
    others = [k for k in scn.junction_lights() if k not in (ego_light, src_light)]
    five = round(5.0 / SIM_DT_S)
    for t in range(t0 + 2, min(t0 + five, len(run.states))):
        ls = run.states[t].light_state
        assert ls[ego_light] == LightState.RED and ls[src_light] == LightState.GREEN
        assert all(ls[k] == LightState.RED for k in others)
    for t in range(t0 + five + 2, len(run.states)):
        if scn.finished:
            break
        ls = run.states[t].light_state
        if run.ego_s[t] < scn.end_s_m() - 1.0:
            assert ls[ego_light] == LightState.GREEN and ls[src_light] == LightState.GREEN


def test_red_light_runner_starts_at_2_2_s_or_12_m_with_the_lights_forced(
    bench2drive_xml: Path,
) -> None:
    run = drive(bench2drive_xml, "26950", 260)  # a signalised junction (26944's has no lights)
    scn = run.scenario
    tr = run.track(scn.runner_id)
    assert all(a[0] == ActorKind.EMERGENCY for a in run.actors[0].values())
    # it waits 30 m before its junction entry (the end of its incoming lane)
    town = run.ctx.town
    entry_xy = town.lanes.position(scn.runner_lane, town.lanes.length_m[scn.runner_lane])[0]
    s = path_s(scn.path)
    k_entry = int(np.argmin(np.hypot(*(scn.path - np.asarray(entry_xy)).T)))
    assert s[k_entry] == pytest.approx(30.0, abs=1.0)
    assert tr[:, 4].max() == pytest.approx(60.0 / 3.6, abs=0.3)
    moving = np.flatnonzero(tr[:, 4] > 0.1)
    go = int(tr[moving[0], 0])  # first tick it moves: the trigger fired on the tick before

    def tta(t: int) -> tuple[float, float]:
        ego = run.states[t].actors
        d = float(np.hypot(ego.x[0] - scn.conflict_xy[0], ego.y[0] - scn.conflict_xy[1]))
        return d, d / max(float(ego.speed[0]), 1e-3)

    d1, t1 = tta(go - 1)
    d0, t0_ = tta(go - 2)
    assert d1 < 12.0 or t1 < 2.2
    assert d0 >= 12.0 and t0_ >= 2.2 - 1e-9
    # lights from the scenario's trigger on: the ego's green, the junction's others red
    ego_light = scn.light_of(scn.in_lane)
    assert ego_light is not None
    trig = run.first_trigger_tick()
    for t in range(trig + 2, go + 20):
        ls = run.states[t].light_state
        assert ls[ego_light] == LightState.GREEN
        assert all(ls[k] == LightState.RED for k in scn.junction_lights() if k != ego_light)


def test_t_junction_has_no_actors_and_ends_200_m_after_the_trigger(bench2drive_xml: Path) -> None:
    """Bench2Drive's t_junction.py spawns nothing: the ego meets the junction's own lights /
    signs; the scenario ends after the ego drove 200 m (DriveDistance) or at 240 s."""
    run = drive(bench2drive_xml, "28035", 40)
    assert run.config.type == "T_Junction"
    assert not run.ids_seen()
    scn = run.scenario
    assert scn.end_s_m() == pytest.approx(scn.trigger_s_m + 200.0) and scn.timeout_s == 240.0


def test_red_light_runner_direction_opposite_comes_from_the_arm_ahead(
    bench2drive_xml: Path, tmp_path: Path
) -> None:
    # Bench2Drive's route files also use direction 'opposite' (ScenarioRunner's
    # filter_junction_wp_direction): the runner waits on the arm facing the ego's entry.
    import xml.etree.ElementTree as ET

    root = ET.parse(bench2drive_xml).getroot()
    route = next(r for r in root.iter("route") if r.get("id") == "26944")
    route.find(".//scenario/direction").set("value", "opposite")  # type: ignore[union-attr]
    one = ET.Element("routes")
    one.append(route)
    xml = tmp_path / "opposite.xml"
    ET.ElementTree(one).write(xml)
    run = drive(xml, "26944", 60)
    scn = run.scenario
    tr = run.track(scn.runner_id)
    rel = tr[0, 1:3] - run.ctx.planned.xy[scn.first]
    fwd = float(np.cos(scn.entry_yaw) * rel[0] + np.sin(scn.entry_yaw) * rel[1])
    assert fwd > 10.0, "waits beyond the junction, ahead of the ego"
    heading = float(np.arctan2(np.sin(tr[0, 3] - scn.entry_yaw), np.cos(tr[0, 3] - scn.entry_yaw)))
    assert abs(abs(heading) - np.pi) < 0.5, "faces the ego"
