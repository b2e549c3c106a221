"""Hazard scenarios on their Bench2Drive routes: ControlLoss perturbs the ego's control only
after the trigger; HardBreakRoute's lead appears ahead after the trigger and brakes to a stop;
the emergency vehicle appears ``distance`` m behind the trigger point at the ego's speed + 25
m/s, keeps behind the ego and, when the ego does not yield, a YIELD_EMERGENCY_VEHICLE infraction is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from py_trees.common import Status

from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import RouteCriteria
from harness.world.state import ActorKind
from harness.world.timing import SIM_DT_S
from scenarios.context import ScenarioContext
from scenarios.traffic_behaviours import YieldToEmergencyVehicleTest
from tests.test_scenarios_support import drive


def test_control_loss_perturbs_only_after_the_trigger(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "24784", 140)
    t0 = run.first_trigger_tick()
    assert all(raw == out for raw, out in run.controls[: t0 + 1])
    window = run.controls[t0 + 1 : t0 + 25]
    assert any(raw.steer != out.steer for raw, out in window)
    assert all(out.throttle <= raw.throttle + 1e-12 for raw, out in window)
    assert not any(run.actors), "ControlLoss spawns nothing"


def test_hard_break_lead_appears_ahead_and_brakes_to_a_stop(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "24781", 180)
    t0 = run.first_trigger_tick()
    assert all(not a for a in run.actors[: t0 + 1])
    (lead,) = run.ids_seen()
    tr = run.track(lead)
    t_first = int(tr[0, 0])
    s, lat = run.route_frame(tr[0, 1], tr[0, 2])
    assert s - run.ego_s[t_first] == pytest.approx(20.0, abs=1.5) and abs(lat) < 0.3
    assert tr[0, 4] >= 6.0
    stops = np.flatnonzero(tr[:, 4] < 0.05)
    assert stops.size, "it brakes to a standstill"
    brake_ticks = stops[0] - np.flatnonzero(tr[:, 4] < tr[0, 4] - 0.5)[0]
    assert brake_ticks * 0.05 < tr[0, 4] / 6.0, "hard braking (> 6 m/s2)"


def test_emergency_vehicle_approaches_from_behind_faster_than_the_ego(
    bench2drive_xml: Path,
) -> None:
    run = drive(bench2drive_xml, "25378", 120)
    distance = float(run.config.params["distance"]["value"])
    t0 = run.first_trigger_tick()
    assert all(not a for a in run.actors[: t0 + 1])
    (ev,) = run.ids_seen()
    tr = run.track(ev)
    t_first = int(tr[0, 0])
    assert run.actors[t_first][ev][0] == ActorKind.EMERGENCY
    s, lat = run.route_frame(tr[0, 1], tr[0, 2])
    # ScenarioRunner: ``distance`` m behind the trigger point (reference_waypoint.previous); first
    # seen after one tick of driving
    behind = run.scenario.trigger_s_m - s + tr[0, 4] * SIM_DT_S
    assert behind == pytest.approx(distance, abs=0.5) and abs(lat) < 0.5
    ego_v = run.states[t_first].actors.speed[0]
    assert tr[0, 4] > ego_v + 5.0
    # within 10 m + its speed [m/s] behind the ego it takes the ego's speed at once (the
    # ConstantVelocityAgent's hazard), so it closes in to about that gap and never hits the ego
    slowed = [t for t in range(t_first + 1, int(tr[-1, 0]) + 1)
              if run.actors[t][ev][4] == pytest.approx(run.states[t].actors.speed[0], abs=0.6)]  # fmt: skip
    assert slowed
    assert not [e for st in run.states for e in st.events if e.other_id == ev]


def test_ego_that_does_not_yield_is_reported(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "25378", 400, cruise_mps=3.0)
    keys = [inf.key for inf in run.ctx.criteria.reported]
    assert keys == [InfractionKey.YIELD_EMERGENCY_VEHICLE_INFRACTIONS]


@pytest.mark.parametrize("speed_mps", [4.0, 8.0])
def test_emergency_vehicle_at_ego_speed_plus_25_and_the_verdict_10_s_after_it_is_near(
    bench2drive_xml: Path, speed_mps: float
) -> None:
    """ScenarioRunner: the EV drives at the ego's speed + 25 m/s; the scenario ends 10 s after the
    EV first comes within 50 m; an ego still ahead of it (it kept its lane) then failed to yield."""
    run = drive(bench2drive_xml, "25378", 500, cruise_mps=speed_mps, vehicles=0, blind=True)
    (ev,) = run.ids_seen()
    tr = run.track(ev)
    t_first = int(tr[0, 0])
    ego_v = float(run.states[t_first].actors.speed[0])
    assert tr[0, 4] == pytest.approx(ego_v + 25.0, abs=0.5)
    near = next(
        t for t in range(t_first, len(run.states))
        if ev in run.actors[t] and np.hypot(run.actors[t][ev][1] - run.states[t].actors.x[0],
                                            run.actors[t][ev][2] - run.states[t].actors.y[0]) < 50.0
    )  # fmt: skip
    (inf,) = run.ctx.criteria.reported
    assert inf.key == InfractionKey.YIELD_EMERGENCY_VEHICLE_INFRACTIONS
    assert inf.time_s - run.states[near].time_s == pytest.approx(10.0, abs=0.15)
    assert run.scenario.finished and ev not in run.actors[-1]


class _EgoBehind:
    """A stand-in EmergencyApproach whose EV has the ego behind it (the ego made room)."""

    ev_id = 1

    def __init__(self, ahead: bool) -> None:
        self.ahead = ahead

    def ego_ahead(self) -> bool:
        return self.ahead


@pytest.mark.parametrize(("ahead", "reported"), [(False, 0), (True, 1)])
def test_yield_criterion_judges_the_last_tick_before_the_scenario_ends(
    ahead: bool, reported: int
) -> None:
    crit = RouteCriteria(RouteGeometry.from_arrays(np.array([[0.0, 0.0], [100.0, 0.0]])))
    fake = cast(Any, None)
    ctx = ScenarioContext(fake, fake, fake, fake, crit, np.random.default_rng(0))
    approach = _EgoBehind(True)
    test = YieldToEmergencyVehicleTest(ctx, cast(Any, approach))
    test.tick_once()  # the ego was ahead for a while ...
    approach.ahead = ahead  # ... and at the end it is behind the EV (made room) or not
    test.tick_once()
    test.stop(Status.INVALID)  # the scenario's parallel ended
    test.stop(Status.INVALID)  # py_trees may stop twice: reported once
    assert len(crit.reported) == reported
