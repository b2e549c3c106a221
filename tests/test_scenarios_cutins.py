"""Cut-in scenarios on their Bench2Drive routes: vehicles stand beside the ego's lane on the
``direction`` side, one cuts into the ego's lane ahead of it after the trigger; ParkingExit moves
the ego's start between two parked cars ``front/behind_vehicle_distance`` m away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.world.state import ActorKind
from tests.test_scenarios_support import drive


@pytest.mark.parametrize(
    ("route_id", "kind", "min_lat"), [("24759", "ParkingCutIn", 1.5), ("25358", "StaticCutIn", 2.5)]
)
def test_vehicle_cuts_in_from_the_side_after_the_trigger(
    bench2drive_xml: Path, route_id: str, kind: str, min_lat: float
) -> None:
    run = drive(bench2drive_xml, route_id, 200)
    assert run.config.type == kind and run.config.params["direction"]["value"] == "right"
    scn = run.scenario
    cutter = scn.cutter if kind == "ParkingCutIn" else scn.queue[0]
    if kind == "StaticCutIn":
        s0, _ = run.route_frame(*run.track(cutter)[0, 1:3])
        assert s0 == pytest.approx(
            scn.trigger_s_m + float(run.config.params["distance"]["value"]), abs=1.5
        )
    for aid in run.actors[0]:
        _, lat = run.route_frame(*run.actors[0][aid][1:3])
        assert lat > min_lat, "beside the ego's lane on the right"
    tr = run.track(cutter)
    t0 = run.first_trigger_tick()
    moving = np.flatnonzero(tr[:, 4] > 0.1)
    assert moving.size and tr[moving[0], 0] > t0
    in_lane = [
        int(t)
        for t, x, y, *_ in tr
        if abs(run.route_frame(x, y)[1]) < 0.5
        and run.route_frame(x, y)[0] > run.ego_s[int(t)] + 3.0
    ]
    assert in_lane, "the cutter ends up in the ego's lane ahead of it"
    for aid in run.actors[0]:
        if aid != cutter:
            assert np.all(run.track(aid)[:, 4] == 0.0)


def test_parking_exit_ego_starts_between_parked_cars(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "26393", 40)
    p = run.config.params
    front, behind = (
        float(p["front_vehicle_distance"]["value"]),
        float(p["behind_vehicle_distance"]["value"]),
    )
    start = run.rs.ego_start_override()
    assert start is not None
    _, lat = run.route_frame(start[0], start[1])
    assert lat > 1.5, "parked at the right road edge"
    assert run.triggered[0]
    cars = sorted(run.actors[0])
    assert len(cars) == 2
    d = sorted(
        float(np.hypot(run.actors[0][c][1] - start[0], run.actors[0][c][2] - start[1]))
        for c in cars
    )
    # placed along the road (ScenarioRunner's waypoint.next / previous), so on a bend the
    # straight-line distance differs a little from the distance along the lane
    assert d == pytest.approx(sorted([front, behind]), abs=0.5)
    for c in cars:
        assert np.all(run.track(c)[:, 4] == 0.0)
        assert run.actors[0][c][0] == ActorKind.VEHICLE  # vehicle.* in ScenarioRunner


def test_parking_cut_in_as_scenario_runner(bench2drive_xml: Path) -> None:
    """Cars parked 28 m and 35 m after the trigger; the front one leaves when the ego is 2.35 s
    (time to arrival) or 10 m from the route point beside it, at 20 km/h, and both are removed
    once it has driven 30 m."""
    run = drive(bench2drive_xml, "24759", 400)
    scn = run.scenario
    s_parked = sorted(
        run.route_frame(*run.actors[0][aid][1:3])[0] - scn.trigger_s_m for aid in scn.parked
    )
    assert s_parked == pytest.approx([28.0, 35.0], abs=0.6)
    tr = run.track(scn.cutter)
    go = int(tr[np.flatnonzero(tr[:, 4] > 0.05)[0], 0])
    xy = scn.collision_xy  # the route 35 m after the trigger
    assert run.route_frame(*xy)[0] - scn.trigger_s_m == pytest.approx(35.0, abs=0.1)

    def tta(t: int) -> tuple[float, float]:
        e = run.states[t].actors
        d = float(np.hypot(e.x[0] - xy[0], e.y[0] - xy[1]))
        return d, d / max(float(e.speed[0]), 1e-3)

    d1, t1 = tta(go - 1)
    d0, t0 = tta(go - 2)
    assert (d1 < 10.0 or t1 < 2.35) and not (d0 < 10.0 - 0.3 or t0 < 2.35 - 0.06)
    assert tr[:, 4].max() == pytest.approx(20.0 / 3.6, abs=0.2)
    gone = int(tr[-1, 0]) + 1
    assert gone < len(run.actors) and not run.actors[gone], "both cars removed after 30 m"
    driven = float(np.sum(np.hypot(*np.diff(tr[:, 1:3], axis=0).T)))
    assert driven == pytest.approx(30.0, abs=1.5)
