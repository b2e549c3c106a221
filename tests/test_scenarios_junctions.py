"""Junction scenarios on their Bench2Drive routes: flows start at the trigger, are spaced by
``source_dist_interval`` and drive at ``flow_speed`` on a path that crosses (left turns) or joins
(enter flows) the ego's route at the junction; the red-light runner crosses the ego's path from
``direction``; the blocker stands in the ego's exit lane after the junction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios.placement import path_s
from tests.test_scenarios_support import Run, drive

FLOW_CASES = [
    ("26990", "NonSignalizedJunctionLeftTurn", "opposite"),
    ("28087", "NonSignalizedJunctionLeftTurnEnterFlow", "enter"),
    ("28099", "SignalizedJunctionLeftTurnEnterFlow", "enter"),
    ("26956", "SignalizedJunctionRightTurn", "enter"),
    ("28035", "T_Junction", "enter"),
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
    assert tr[:, 4].max() == pytest.approx(12.0, abs=0.3)
    route_j = run.ctx.planned.xy[scn.first : scn.last + 1]
    d = np.hypot(tr[:, None, 1] - route_j[None, :, 0], tr[:, None, 2] - route_j[None, :, 1])
    assert d.min() < 1.5, "drives across the ego's path in the junction"


def test_blocked_intersection_blocker_stands_in_the_exit_lane(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "27494", 200)
    scn = run.scenario
    tr = run.track(scn.blocker_id)
    s, lat = run.route_frame(tr[0, 1], tr[0, 2])
    assert s == pytest.approx(scn.exit_s + 8.0, abs=1.0) and abs(lat) < 0.3
    assert np.all(tr[:, 4] == 0.0), "it does not move while the ego has not waited behind it"
    assert run.ctx.town.lanes.junction_id[run.ctx.planned.lane[scn.last + 1]] < 0
