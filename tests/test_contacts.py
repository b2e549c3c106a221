"""Collision response of the embedded simulator: the ego stops at what it hits, hit vehicles stop
and stay stopped, hit walkers fall and stay down, nothing interpenetrates the ego, and the road's
edge (the layout stand-in) stops a car driven off the road with a layout collision."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from harness.boxes import boxes_overlap
from harness.leaderboard.criteria import RouteGeometry
from harness.leaderboard.route_criteria import CriteriaConfig, RouteCriteria
from harness.maps import load_town
from harness.planning.route_follower import RouteFollower
from harness.routes.generate import generate_routes
from harness.routes.interpolate import plan_route
from harness.sim.embedded.contacts import (
    KERB_MARGIN_M,
    VEHICLE_HIT_HOLD_S,
    WALKER_DOWN_HEIGHT_M,
    contact_rows,
    overlaps_any,
)
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import (
    ActorCommand,
    ActorSpec,
    EpisodeSpec,
    TrafficConfig,
    TrafficVehicleSpec,
)
from harness.world.control import VehicleControl
from harness.world.state import ActorKind, EventKind, WorldState
from harness.world.timing import SIM_DT_S

TOWN = "Harness01"  # built in
CAR = (4.8, 2.1)  # [m] length, width of the hit cars


@pytest.fixture(scope="module")
def route() -> np.ndarray:
    town = load_town(TOWN)
    r = generate_routes(town, 1, 600.0, seed=3)[0]
    return plan_route(town, r.keypoints, r.id).xy


def _spec(route_xy: np.ndarray, **kw: object) -> EpisodeSpec:
    d = route_xy[1] - route_xy[0]
    base = dict(
        town=TOWN,
        ego_start=(
            float(route_xy[0, 0]),
            float(route_xy[0, 1]),
            0.0,
            float(np.arctan2(d[1], d[0])),
        ),
        route_xy=route_xy,
        traffic=TrafficConfig(vehicles=0, pedestrians=0),
    )
    base.update(kw)
    return EpisodeSpec(**base)  # type: ignore[arg-type]


def _row(state: WorldState, actor_id: int) -> int:
    return int(np.flatnonzero(state.actors.actor_id == actor_id)[0])


def _bumper_gap(state: WorldState, row: int) -> float:
    """Centre distance minus both half-lengths [m] (the cars are in line)."""
    a = state.actors
    return float(
        np.hypot(a.x[row] - a.x[0], a.y[row] - a.y[0]) - 0.5 * (a.length[0] + a.length[row])
    )


def _interpenetrating(state: WorldState) -> list[int]:
    """Actor ids whose box, shrunk by 1 mm, still overlaps the ego's (also shrunk): harness.boxes
    as the independent oracle (closed boxes, so resting contacts need the shrink)."""
    a = state.actors
    boxes = a.boxes.copy()
    boxes[:, 3:] -= 0.002
    others = np.flatnonzero(a.valid)[1:]
    hit = boxes_overlap(boxes[0], boxes[others])
    return a.actor_id[others[hit]].tolist()


def test_contact_kernels_agree_with_the_box_module() -> None:
    rng = np.random.default_rng(5)
    boxes = np.column_stack([
        rng.uniform(-6, 6, 400), rng.uniform(-6, 6, 400), rng.uniform(-np.pi, np.pi, 400),
        rng.uniform(0.3, 5.0, 400), rng.uniform(0.3, 2.5, 400),
    ])  # fmt: skip
    boxes[0] = (0.0, 0.0, 0.3, 4.8, 2.1)
    valid = np.ones(400, dtype=bool)
    rows, code = contact_rows(*boxes.T, valid, 0, 0.0)
    expected = np.flatnonzero(boxes_overlap(boxes[0], boxes))[1:]
    assert rows.tolist() == expected.tolist() and (code == 2).all()
    for j in range(1, 60):
        assert overlaps_any(boxes[0], boxes[j : j + 1]) == bool(boxes_overlap(boxes[0], boxes[j]))


def test_parked_car_stops_the_ego_at_its_bumper_and_the_route_ends_blocked(
    route: np.ndarray,
) -> None:
    """A blind agent (route steering, constant throttle, never brakes) drives into a parked car
    30 m ahead: it stops touching the bumper, one collision counts, and after Bench2Drive's
    60 s blocked timeout the route fails 'Agent got blocked'."""
    sim = EmbeddedSimulator()
    state = sim.reset(_spec(route))
    yaw = float(state.actors.yaw[0])
    ahead = np.array([state.actors.x[0], state.actors.y[0]]) + 30.0 * np.array(
        [np.cos(yaw), np.sin(yaw)]
    )
    car = sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, float(ahead[0]), float(ahead[1]), yaw, *CAR))
    crit = RouteCriteria(RouteGeometry.from_arrays(route), CriteriaConfig.bench2drive())
    follower = RouteFollower(route)
    impact_speed, impact_s, ticks = 0.0, 0.0, 0
    while not crit.done[0] and ticks < 100.0 / SIM_DT_S:
        steer = follower.control(sim.state, SIM_DT_S).steer
        state = sim.tick(VehicleControl(throttle=0.6, steer=steer))
        crit.update(state)
        ticks += 1
        if state.events:
            impact_speed, impact_s = float(state.actors.speed[0]), state.time_s
        assert not _interpenetrating(state)
    out = crit.summary()
    assert out.status == "Failed - Agent got blocked"
    assert len(out.messages()["collisions_vehicle"]) == 1
    assert 0.0 <= _bumper_gap(state, _row(state, car)) < 0.01
    assert state.actors.speed[0] == 0.0
    assert impact_speed > 8.0  # the impact tick reports the speed the ego hit with
    assert ticks * SIM_DT_S - impact_s == pytest.approx(60.0, abs=0.2)  # blocked from the impact


def test_rear_end_at_10_mps_stops_both_and_the_hit_car_stays_stopped(route: np.ndarray) -> None:
    """The ego at 10 m/s runs into a background car crawling at 2 m/s ahead on its lane: both
    stand still right after the impact; the hit car stands for VEHICLE_HIT_HOLD_S, then drives on."""
    town = load_town(TOWN)
    sim = EmbeddedSimulator()
    state = sim.reset(_spec(route, ego_speed_mps=10.0))
    yaw = float(state.actors.yaw[0])
    at = np.array([state.actors.x[0], state.actors.y[0]]) + 20.0 * np.array(
        [np.cos(yaw), np.sin(yaw)]
    )
    proj = town.lanes.project(at, yaw)
    vid = sim.spawn_traffic_vehicle(
        TrafficVehicleSpec(int(proj.lane), float(proj.s_m), 2.0, 2.0, *CAR)
    )
    speeds: list[tuple[float, float]] = []
    hit_tick = None
    for k in range(400):  # 20 s, throttle holding ~10 m/s until the impact, then braking
        v = float(sim.state.actors.speed[0])
        if hit_tick is None:
            state = sim.tick(VehicleControl(throttle=0.45 if v < 10.0 else 0.2))
        else:
            state = sim.tick(VehicleControl(brake=1.0))
        if any(e.kind == EventKind.COLLISION_VEHICLE for e in state.events):
            hit_tick = k
            assert state.actors.speed[0] > 9.0  # reported at impact
        speeds.append((float(state.actors.speed[0]), float(state.actors.speed[_row(state, vid)])))
        assert not _interpenetrating(state)
    assert hit_tick is not None and hit_tick < 60
    hold = int(round(VEHICLE_HIT_HOLD_S / SIM_DT_S))
    after = np.array(speeds[hit_tick + 1 :])
    assert after[0, 0] == 0.0  # the ego stopped at the impact
    assert (after[: hold - 1, 1] == 0.0).all()  # the hit car stands for the hold ...
    assert after[hold + 40, 1] > 0.5  # ... and then drives on
    assert _bumper_gap(state, _row(state, vid)) > 2.0


def test_hit_walker_falls_and_stays_down_and_the_ego_goes_on(route: np.ndarray) -> None:
    sim = EmbeddedSimulator()
    state = sim.reset(_spec(route, ego_speed_mps=8.0))
    x0, y0, yaw = (float(v) for v in (state.actors.x[0], state.actors.y[0], state.actors.yaw[0]))
    fwd, right = np.array([np.cos(yaw), np.sin(yaw)]), np.array([-np.sin(yaw), np.cos(yaw)])
    start = np.array([x0, y0]) + 20.0 * fwd + 4.0 * right  # crosses the ego's path 20 m ahead
    path = np.array([start, start - 8.0 * right])
    walker = sim.spawn_actor(
        ActorSpec(
            ActorKind.PEDESTRIAN,
            *start,
            float(np.arctan2(-right[1], -right[0])),
            0.375,
            0.375,
            height=1.86,
        )
    )
    sim.command_actor(walker, ActorCommand(path_xy=path, target_speed_mps=1.6, max_accel_mps2=20.0))
    events, poses = [], []
    for _ in range(120):
        v = float(sim.state.actors.speed[0])
        state = sim.tick(VehicleControl(throttle=0.4 if v < 8.0 else 0.0))
        events += [e for e in state.events if e.kind == EventKind.COLLISION_PEDESTRIAN]
        r = _row(state, walker)
        poses.append(
            (state.actors.x[r], state.actors.y[r], state.actors.height[r], state.actors.speed[r])
        )
        assert not _interpenetrating(state)
    assert len(events) == 1 and events[0].other_id == walker
    k = int(round(events[0].time_s / SIM_DT_S)) - 1
    down = np.array(poses[k:])
    assert (down[:, 2] == WALKER_DOWN_HEIGHT_M).all() and (down[:, 3] == 0.0).all()
    assert np.ptp(down[:, 0]) == 0.0 and np.ptp(down[:, 1]) == 0.0  # lies where it fell
    assert state.actors.speed[0] > 6.0  # a walker does not stop a car
    travelled = float(np.dot(np.array([state.actors.x[0], state.actors.y[0]]) - [x0, y0], fwd))
    assert travelled > 40.0


def test_nothing_interpenetrates_the_ego_in_random_traffic_and_runs_repeat(
    route: np.ndarray,
) -> None:
    """A blind ego (route steering, constant throttle) in dense traffic with walkers for 90 s:
    it hits things, but no box ever overlaps its own; the same seed gives the same episode."""
    finals = []
    for _ in range(2):
        sim = EmbeddedSimulator()
        sim.reset(
            _spec(
                route,
                seed=11,
                traffic=TrafficConfig(vehicles=60, pedestrians=40, spawn_radius_m=120.0),
            )
        )
        follower = RouteFollower(route)
        hits = 0
        for _ in range(int(90.0 / SIM_DT_S)):
            steer = follower.control(sim.state, SIM_DT_S).steer
            state = sim.tick(VehicleControl(throttle=0.5, steer=steer))
            hits += sum(e.kind == EventKind.COLLISION_VEHICLE for e in state.events)
            assert not _interpenetrating(state), state.frame
        assert hits >= 1  # the run did test contacts
        finals.append(state.actors.boxes)
    np.testing.assert_array_equal(finals[0], finals[1])


def test_kerb_stand_in_stops_a_car_driven_off_the_road(shared_maps: object) -> None:
    """On Town01, a car started across its lane towards the right-hand kerb and driven straight
    stops with a layout collision where its front corners are KERB_MARGIN_M beyond the road's
    surface (drivable area joined with the sidewalks), and goes no farther."""
    town = load_town("Town01")
    lanes = town.lanes
    lane = int(np.argmax(np.where(lanes.junction_id < 0, np.bincount(lanes.lane_of_point), 0)))
    i = int(lanes.start[lane] + lanes.count[lane] // 2)
    x, y, yaw = float(lanes.xy[i, 0]), float(lanes.xy[i, 1]), float(lanes.yaw_rad[i]) + np.pi / 2
    sim = EmbeddedSimulator()
    sim.reset(
        EpisodeSpec(
            town="Town01",
            ego_start=(x, y, 0.0, yaw),
            traffic=TrafficConfig(vehicles=0, pedestrians=0),
        )
    )
    events = []
    for _ in range(200):
        state = sim.tick(VehicleControl(throttle=0.5))
        events += state.events
    layout = [e for e in events if e.kind == EventKind.COLLISION_STATIC]
    assert len(layout) == 1 and layout[0].other_id == -1
    assert state.actors.speed[0] == 0.0
    road = shapely.union(town.area.drivable, town.area.sidewalks)
    a = state.actors
    c, s, hl, hw = np.cos(a.yaw[0]), np.sin(a.yaw[0]), 0.5 * a.length[0], 0.5 * a.width[0]
    front = [(a.x[0] + c * hl - s * sw * hw, a.y[0] + s * hl + c * sw * hw) for sw in (1.0, -1.0)]
    beyond = max(float(shapely.distance(road, shapely.Point(p))) for p in front)
    assert beyond == pytest.approx(KERB_MARGIN_M, abs=0.05)
    assert not town.area.contains(np.array(front)).any()  # it did leave the drivable area


def test_background_walker_knocked_down_lies_still_and_a_respawn_stands_up() -> None:
    from harness.sim.embedded.pedestrians import PedestrianModel

    town = load_town(TOWN)
    walkers = PedestrianModel(town, np.random.default_rng(2))
    walkers.spawn(6)
    assert walkers.n == 6
    walkers.knock_down(0, float(walkers.x[0]) + 0.5, float(walkers.y[0]), 1.0)
    pose = (walkers.x[0], walkers.y[0], walkers.yaw[0])
    others = walkers.boxes[1:, :2].copy()
    for _ in range(100):
        walkers.step(SIM_DT_S)
    assert (walkers.x[0], walkers.y[0], walkers.yaw[0]) == pose
    assert walkers.height[0] == WALKER_DOWN_HEIGHT_M and walkers.height[1] > 1.0
    assert np.hypot(*(walkers.boxes[1:, :2] - others).T).min() > 1.0  # the others walked on
    walkers.evict(np.array(pose[:2]), 0.1, np.array(pose[:2]), 300.0)  # re-placed: a new walker
    assert not walkers.down[0] and walkers.height[0] > 1.0


def test_actor_spawned_onto_the_ego_drives_out_of_it(route: np.ndarray) -> None:
    """A scenario car spawned overlapping the standing ego (as a junction flow can) has no step
    to undo: it is neither frozen nor held, and drives off along its path."""
    sim = EmbeddedSimulator()
    state = sim.reset(_spec(route))
    x, y, yaw = (float(v) for v in (state.actors.x[0], state.actors.y[0], state.actors.yaw[0]))
    fwd = np.array([np.cos(yaw), np.sin(yaw)])
    start = np.array([x, y]) + 2.0 * fwd  # overlaps the ego by ~2.8 m
    path = start + np.outer(np.linspace(0.0, 60.0, 61), fwd)
    car = sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, *start, yaw, *CAR))
    sim.command_actor(car, ActorCommand(path_xy=path, target_speed_mps=5.0, max_accel_mps2=2.5))
    for _ in range(100):  # 5 s: 2 s accelerating to 5 m/s (5 m), 3 s at 5 m/s (15 m)
        state = sim.tick(VehicleControl(brake=1.0))
    r = _row(state, car)
    moved = float(np.dot(np.array([state.actors.x[r], state.actors.y[r]]) - start, fwd))
    assert moved == pytest.approx(20.0, abs=0.3) and state.actors.speed[r] == pytest.approx(5.0)
    assert not _interpenetrating(state)


def test_car_driving_into_the_standing_ego_is_a_collision_and_stops_touching_it(
    route: np.ndarray,
) -> None:
    """A scenario car that ignores other vehicles (a red-light runner, a flow) drives at 10 m/s
    square into the side of the standing ego: one vehicle collision, and it stops where it
    touched the ego's side (not a step short of it, ~0.5 m at 10 m/s, where no contact would be
    reported), held for VEHICLE_HIT_HOLD_S."""
    sim = EmbeddedSimulator()
    state = sim.reset(_spec(route))
    x, y, yaw = (float(v) for v in (state.actors.x[0], state.actors.y[0], state.actors.yaw[0]))
    left = np.array([-np.sin(yaw), np.cos(yaw)])  # the ego's left (CARLA frame: y to the right)
    start = np.array([x, y]) + 20.0 * left
    path = start - np.outer(np.linspace(0.0, 40.0, 41), left)  # straight at the ego's side
    car = sim.spawn_actor(ActorSpec(ActorKind.VEHICLE, *start, float(yaw - np.pi / 2), *CAR))
    sim.command_actor(
        car,
        ActorCommand(path_xy=path, target_speed_mps=10.0, max_accel_mps2=8.0, ignore_others=True),
    )
    hits = []
    for k in range(120):  # 6 s; ego braked
        state = sim.tick(VehicleControl(brake=1.0))
        hits += [k for e in state.events if e.kind == EventKind.COLLISION_VEHICLE]
        assert not _interpenetrating(state)
    assert len(hits) == 1  # reported once
    r = _row(state, car)
    a = state.actors
    # side gap: centre distance across minus the ego's half-width and the car's half-length
    gap = float(np.hypot(a.x[r] - a.x[0], a.y[r] - a.y[0]) - 0.5 * a.width[0] - 0.5 * a.length[r])
    assert gap == pytest.approx(0.0, abs=0.03)
    assert a.speed[r] == 0.0 and hits[0] * SIM_DT_S + VEHICLE_HIT_HOLD_S > 5.9
