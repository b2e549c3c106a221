"""Crossing scenarios on their Bench2Drive routes: the walker waits at the ``direction`` roadside
``distance`` m after the trigger, starts only after the trigger, and crosses the ego's lane in
front of the ego."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.world.state import ActorKind, EventKind
from harness.world.timing import SIM_DT_S
from tests.test_scenarios_support import Run, drive


def _walkers(run: Run) -> list[int]:
    return sorted(aid for aid, a in run.actors[0].items() if a[0] == ActorKind.PEDESTRIAN)


def _crosses_in_front(run: Run, aid: int) -> bool:
    """Some tick has the walker inside the ego's lane (|lateral| < 1.5 m) ahead of the ego."""
    for t, a in enumerate(run.actors):
        if aid in a:
            s, lat = run.route_frame(a[aid][1], a[aid][2])
            if abs(lat) < 1.5 and s > run.ego_s[t] + 2.0:
                return True
    return False


@pytest.mark.parametrize(
    ("route_id", "kind"),
    [("24211", "DynamicObjectCrossing"), ("24206", "ParkingCrossingPedestrian")],
)
def test_walker_emerges_at_distance_and_crosses_in_front_of_the_ego(
    bench2drive_xml: Path, route_id: str, kind: str
) -> None:
    run = drive(bench2drive_xml, route_id, 220)
    assert run.config.type == kind
    distance = float(run.config.params["distance"]["value"])
    walkers = _walkers(run)
    assert len(walkers) == 1
    tr = run.track(walkers[0])
    s0, lat0 = run.route_frame(tr[0, 1], tr[0, 2])
    assert s0 == pytest.approx(run.scenario.trigger_s_m + distance, abs=4.0)
    assert lat0 > 2.0, "waits beyond the right edge of the ego's lane (direction right)"
    t0 = run.first_trigger_tick()
    moving = np.flatnonzero(tr[:, 4] > 0.1)
    assert moving.size and moving[0] > t0, "starts only after the trigger"
    assert _crosses_in_front(run, walkers[0])
    # CARLA's CollisionTest types a hit by type_id: ScenarioRunner's blocker here is a
    # static.prop (collisions_layout), its parked cars vehicle.* (collisions_vehicle)
    hiding = ActorKind.STATIC if kind == "DynamicObjectCrossing" else ActorKind.VEHICLE
    statics = [aid for aid, a in run.actors[0].items() if a[0] != ActorKind.PEDESTRIAN]
    assert statics, "a blocker / parked cars hide the walker"
    assert all(run.actors[0][aid][0] == hiding for aid in statics)
    for aid in statics:
        st = run.track(aid)
        s, lat = run.route_frame(st[0, 1], st[0, 2])
        assert lat > 1.0 and abs(s - s0) < 8.0 and np.all(st[:, 4] == 0.0)


def test_pedestrian_group_crosses_after_the_junction(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "27515", 260)
    walkers = _walkers(run)
    assert len(walkers) == 3
    scn = run.scenario
    t0 = run.first_trigger_tick()
    for aid in walkers:
        tr = run.track(aid)
        s, lat = run.route_frame(tr[0, 1], tr[0, 2])
        assert (
            s == pytest.approx(scn.cross_s, abs=3.0) and lat > 2.0
        )  # right sidewalk past the junction
        moving = np.flatnonzero(tr[:, 4] > 0.1)
        assert moving.size and moving[0] >= t0
        assert run.ego_s[int(moving[0])] >= scn.entry_s - 10.5, (
            "start when the ego nears the junction"
        )
    assert any(_crosses_in_front(run, aid) for aid in walkers)


@pytest.mark.parametrize("route_id", ["24211", "24224", "24206", "24294"])
@pytest.mark.parametrize("speed_mps", [5.0, 10.0])
def test_blind_constant_speed_ego_is_hit_by_the_crossing_walker(
    bench2drive_xml: Path, route_id: str, speed_mps: float
) -> None:
    """ScenarioRunner's timing (2.1 / 2.15 s + 0.1 s per 5 deg, or 6 m; the walk turned towards
    the ego) puts the walker in front of an ego that never brakes: the collision event fires."""
    run = drive(bench2drive_xml, route_id, 1)
    scn = run.scenario
    reach_m = scn.trigger_s_m + scn.distance_m + 10.0 - run.ego_s[0]
    run = drive(bench2drive_xml, route_id, int(reach_m / speed_mps / SIM_DT_S),
                cruise_mps=speed_mps, vehicles=0, blind=True)  # fmt: skip
    walker = run.scenario.walker_id
    hits = [
        e for st in run.states for e in st.events
        if e.kind == EventKind.COLLISION_PEDESTRIAN and e.other_id == walker
    ]  # fmt: skip
    assert hits, f"{run.config.type} at {speed_mps} m/s: the walker missed the blind ego"
    before = [float(st.actors.speed[0]) for st in run.states if st.frame < hits[0].frame]
    assert min(before) > 0.9 * speed_mps, "the ego kept its speed up to the hit"


def test_walker_trigger_time_grows_with_the_crossing_angle(bench2drive_xml: Path) -> None:
    run = drive(bench2drive_xml, "24211", 1)  # crossing_angle 8: one whole 5 deg step
    assert run.scenario.trigger_time_s == pytest.approx(2.2)
    run = drive(bench2drive_xml, "24294", 1)  # ParkingCrossingPedestrian, 12 deg: two steps
    assert run.scenario.trigger_time_s == pytest.approx(2.35)
