"""The teachers' reactive check (teachers/reactive.py) on hand-built scenes on the built-in
Harness01 town: one straight lane of over 100 m, the ego at 8 m/s, other vehicles placed on the same
lane. Teachers are built along the lane centreline from closed-form speed profiles."""

from __future__ import annotations

import numpy as np
import pytest

from harness.boxes import boxes_overlap, make_boxes
from harness.dynamics.lqr import N_STATE, NUM_POSES, StateIndex
from harness.maps import load_town
from harness.maps.town import Town
from harness.sim.embedded.lanetables import LaneTables
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import ActorKind
from teachers.reactive import ReactiveConfig, reactive_flags, reactive_setup
from teachers.scene import PAST_POSES, Scene

TOWN = "Harness01"
T = np.arange(1, NUM_POSES) * 0.1  # teacher times [s]
EGO_S = 40.0  # ego position along the lane [m]
V0 = 8.0  # ego speed [m/s]


@pytest.fixture(scope="module")
def town() -> Town:
    return load_town(TOWN)


@pytest.fixture(scope="module")
def lane(town: Town) -> int:
    """A long, fairly straight lane outside junctions without a stop line."""
    t = LaneTables.build(town)
    lanes = town.lanes
    for i in np.flatnonzero((t.length_m > 100.0) & ~t.in_junction & np.isnan(t.stop_s_m) & t.ok):
        yaw = lanes.yaw_rad[lanes.lane_points(int(i))]
        if np.ptp(np.unwrap(yaw)) < 0.2:
            return int(i)
    pytest.skip("Harness01 has no long straight lane")


def along(town: Town, lane: int, s: np.ndarray) -> np.ndarray:
    """Poses (..., 3) [x, y, yaw] on the lane centreline at arc lengths s."""
    xy, yaw = town.lanes.position(np.full(np.shape(s), lane), np.asarray(s, dtype=np.float64))
    return np.concatenate([np.asarray(xy), np.asarray(yaw)[..., None]], axis=-1)


def make_scene(town: Town, lane: int, agents: list[tuple[float, float]]) -> Scene:
    """Ego at EGO_S moving at V0; each agent (s0 [m], speed [m/s]) a car on the same lane whose
    recorded future is constant speed along the lane (non-reactive)."""
    ego = along(town, lane, np.array(EGO_S))
    past = np.zeros((PAST_POSES, N_STATE))
    ps = EGO_S - V0 * 0.1 * np.arange(PAST_POSES)[::-1]
    past[:, :3] = along(town, lane, ps)
    past[:, StateIndex.SPEED] = V0
    t41 = np.arange(NUM_POSES) * 0.1
    boxes = np.zeros((len(agents), NUM_POSES, 5))
    speed = np.zeros((len(agents), NUM_POSES))
    for i, (s0, v) in enumerate(agents):
        boxes[i, :, :3] = along(town, lane, s0 + v * t41)
        boxes[i, :, 3:] = (4.9, 2.1)
        speed[i] = v
    route = along(town, lane, np.arange(0.0, 100.0, 1.0))[:, :2]
    return Scene(
        town_name=TOWN, ego_pose=ego, ego_speed_mps=V0, ego_accel_mps2=0.0,
        ego_yaw_rate_radps=0.0, ego_past=past, agent_boxes=boxes,
        agent_kind=np.full(len(agents), int(ActorKind.VEHICLE)),
        agent_valid=np.ones((len(agents), NUM_POSES), bool), agent_speed_mps=speed,
        light_lanes=np.zeros((0, 1), np.int64), light_lanes_valid=np.zeros((0, 1), bool),
        light_state=np.zeros((0, NUM_POSES), np.int64), route_xy=route,
        route_lanes=np.array([lane]),
    )  # fmt: skip


def cruise(town: Town, lane: int) -> np.ndarray:
    """Lane following at V0: 32 m in 4 s."""
    return along(town, lane, EGO_S + V0 * T)


def stop_within(town: Town, lane: int, dist_m: float) -> np.ndarray:
    """A constant-deceleration stop after ``dist_m`` (decel V0^2 / (2 d))."""
    a = V0 * V0 / (2.0 * dist_m)
    te = np.minimum(T, V0 / a)
    return along(town, lane, EGO_S + V0 * te - 0.5 * a * te * te)


def test_driving_into_a_stopped_car_is_flagged(town: Town, lane: int) -> None:
    # a car stands 25 m ahead (centre to centre; 20.1 m bumper gap): cruising at 8 m/s reaches it
    # after ~2.5 s; stopping within 12 m (2.7 m/s2) stays 8 m short of its rear bumper.
    scene = make_scene(town, lane, [(EGO_S + 25.0, 0.0)])
    flags = reactive_flags(
        scene, town, np.stack([cruise(town, lane), stop_within(town, lane, 12.0)])
    )
    assert flags.tolist() == [False, True]


def test_clean_lane_following_is_collision_free(town: Town, lane: int) -> None:
    # the lead car drives at the ego's speed 30 m ahead; cruising keeps the gap
    scene = make_scene(town, lane, [(EGO_S + 30.0, V0)])
    assert reactive_flags(scene, town, cruise(town, lane)[None]).tolist() == [True]


def test_reactive_follower_brakes_for_a_stopping_teacher(town: Town, lane: int) -> None:
    # a car 14 m behind at 8 m/s. Its recorded (non-reactive) future keeps 8 m/s, so the boxes of
    # a teacher stopping within 20 m would overlap it (it covers 32 m); reactive, the follower's
    # IDM brakes (b = 3 m/s2 comfortable, up to 8 m/s2) and the teacher is not hit.
    scene = make_scene(town, lane, [(EGO_S - 14.0, V0)])
    teacher = stop_within(town, lane, 20.0)
    x, y, yaw = teacher.T
    ego_boxes = make_boxes(x, y, yaw, scene.ego_length_m, scene.ego_width_m)
    assert boxes_overlap(ego_boxes, scene.agent_boxes[0, 1:]).any()  # non-reactive: hit
    assert reactive_flags(scene, town, teacher[None]).tolist() == [True]


def test_same_inputs_same_flags_and_setup(town: Town, lane: int) -> None:
    scene = make_scene(town, lane, [(EGO_S + 25.0, 0.0), (EGO_S - 14.0, V0)])
    teachers = np.stack([cruise(town, lane), stop_within(town, lane, 12.0)])
    a = reactive_flags(scene, town, teachers)
    b = reactive_flags(scene, town, teachers, ReactiveConfig())
    assert a.tolist() == b.tolist() == [False, True]
    setup = reactive_setup(scene, town, ReactiveConfig())
    assert setup.reactive.tolist() == [0, 1] and setup.scripted.size == 0
    assert np.all(setup.lane == lane)
    assert setup.s_m == pytest.approx([EGO_S + 25.0, EGO_S - 14.0], abs=0.05)


def test_empty_scene_and_no_teachers(town: Town, lane: int) -> None:
    scene = make_scene(town, lane, [])
    assert reactive_flags(scene, town, np.zeros((0, 40, 3))).shape == (0,)
    assert reactive_flags(scene, town, cruise(town, lane)[None]).tolist() == [True]


def test_episode_spec_initial_speed_and_frame(town: Town, lane: int) -> None:
    # the backwards-compatible EpisodeSpec fields: the ego starts at 8 m/s (not at rest) and the
    # episode at frame 400 (20 s: the light schedule's time)
    x, y, yaw = along(town, lane, np.array(EGO_S))
    sim = EmbeddedSimulator()
    spec = EpisodeSpec(
        town=TOWN, ego_start=(x, y, 0.0, yaw), traffic=TrafficConfig(vehicles=0, pedestrians=0),
        ego_speed_mps=V0, start_frame=400,
    )  # fmt: skip
    state = sim.reset(spec)
    assert state.frame == 400 and state.time_s == pytest.approx(20.0)
    assert state.actors.speed[0] == pytest.approx(V0)
    state = sim.tick(VehicleControl())  # coasting: still about 8 m/s, 0.4 m further
    assert state.frame == 401 and state.actors.speed[0] == pytest.approx(V0, abs=0.1)
    assert np.hypot(state.actors.x[0] - x, state.actors.y[0] - y) == pytest.approx(0.4, abs=0.02)
    assert EpisodeSpec(town=TOWN, ego_start=(x, y, 0.0, yaw)).ego_speed_mps == 0.0
