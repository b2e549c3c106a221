"""Hazard scenarios on their Bench2Drive routes: ControlLoss perturbs the ego's control only
after the trigger; HardBreakRoute's lead appears ahead after the trigger and brakes to a stop;
the emergency vehicle appears ``distance`` m behind the ego after the trigger, approaches faster
than the ego and, when the ego does not yield, a YIELD_EMERGENCY_VEHICLE infraction is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.leaderboard.outcome import InfractionKey
from harness.world.state import ActorKind
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
    assert run.ego_s[t_first] - s == pytest.approx(distance, abs=2.0) and abs(lat) < 0.5
    ego_v = run.states[t_first].actors.speed[0]
    assert tr[0, 4] > ego_v + 5.0
    gap_then = run.ego_s[t_first] - s
    s_end, _ = run.route_frame(tr[-1, 1], tr[-1, 2])
    assert run.ego_s[int(tr[-1, 0])] - s_end < gap_then - 10.0, "it closes in"


def test_ego_that_does_not_yield_is_reported(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "25378", 400, cruise_mps=3.0)
    keys = [inf.key for inf in run.ctx.criteria.reported]
    assert keys == [InfractionKey.YIELD_EMERGENCY_VEHICLE_INFRACTIONS]
