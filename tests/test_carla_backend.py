"""The CARLA adapter: conversions checked offline with the real carla wheel; the live-server
conformance run is marked carla_server and skipped unless $CARLA_HOST names a reachable server."""

from __future__ import annotations

import math
import os
import socket
from typing import Any

import carla
import numpy as np
import pytest

from harness.sim.carla_convert import (
    actor_transform_for_box,
    box_pose,
    image_to_bgra,
    kind_of,
    signed_speed,
    to_carla_control,
)  # fmt: skip
from harness.world.control import VehicleControl
from harness.world.state import ActorKind


def test_box_pose_applies_the_bounding_box_offset_in_the_actor_frame() -> None:
    tf = carla.Transform(carla.Location(x=10.0, y=20.0, z=0.0), carla.Rotation(yaw=90.0))
    bb = carla.BoundingBox(carla.Location(x=1.0, y=0.0, z=0.7), carla.Vector3D(2.45, 1.06, 0.75))
    p = box_pose(tf, bb)
    # yaw 90 deg: the actor's +x points along world +y, so the 1 m offset moves the centre to y + 1
    assert (p.x, p.y, p.z) == pytest.approx((10.0, 21.0, 0.7), abs=1e-5)
    assert p.yaw == pytest.approx(math.pi / 2)
    assert (p.length, p.width, p.height) == pytest.approx((4.9, 2.12, 1.5), abs=1e-5)


def test_actor_transform_for_box_inverts_box_pose() -> None:
    bb = carla.BoundingBox(carla.Location(x=0.3, y=-0.2, z=0.7), carla.Vector3D(2.0, 1.0, 0.7))
    tf = actor_transform_for_box(carla, 5.0, -7.0, 0.0, 0.6, bb)
    p = box_pose(tf, bb)
    assert (p.x, p.y, p.yaw) == pytest.approx((5.0, -7.0, 0.6), abs=1e-5)


def test_kinds_from_blueprint_ids() -> None:
    assert kind_of("vehicle.lincoln.mkz_2017") == ActorKind.VEHICLE
    assert kind_of("vehicle.diamondback.century") == ActorKind.BICYCLE
    assert kind_of("vehicle.ford.ambulance") == ActorKind.EMERGENCY
    assert kind_of("walker.pedestrian.0012") == ActorKind.PEDESTRIAN
    assert kind_of("static.prop.constructioncone") == ActorKind.STATIC


def test_control_and_speed_conversions() -> None:
    c = to_carla_control(carla, VehicleControl(throttle=0.4, steer=-0.2, brake=0.1, reverse=True))
    assert isinstance(c, carla.VehicleControl)
    assert (c.throttle, c.steer, c.brake, c.reverse) == pytest.approx((0.4, -0.2, 0.1, True))
    assert signed_speed(carla.Vector3D(0.0, -3.0, 0.0), -math.pi / 2) == pytest.approx(3.0)
    assert signed_speed(carla.Vector3D(-2.0, 0.0, 0.0), 0.0) == pytest.approx(-2.0)


def test_image_bytes_become_bgra_hw4() -> None:
    raw = bytes(range(2 * 3 * 4))
    img = image_to_bgra(raw, 2, 3)
    assert img.shape == (2, 3, 4) and img.dtype == np.uint8 and img[1, 2, 3] == 23


def _server() -> tuple[str, int] | None:
    host = os.environ.get("CARLA_HOST")
    if not host:
        return None
    port = int(os.environ.get("CARLA_PORT", "2000"))
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return host, port
    except OSError:
        return None


@pytest.mark.carla_server
def test_live_server_episode_conforms_to_the_protocol() -> None:
    server = _server()
    if server is None:
        pytest.skip(
            "no CARLA server: set CARLA_HOST (and CARLA_PORT) to a running CarlaUE4 to run this"
        )
    from harness.sim.carla_backend import CarlaBackend
    from harness.world.backend import EpisodeSpec, TrafficConfig

    backend = CarlaBackend(*server)
    try:
        spawn = carla.Client(*server).get_world().get_map().get_spawn_points()[0]
        spec = EpisodeSpec(town="Town01", ego_start=(spawn.location.x, spawn.location.y, spawn.location.z, math.radians(spawn.rotation.yaw)),
                           sensors=({"type": "sensor.camera.rgb", "id": "rgb", "x": 1.3, "y": 0.0, "z": 2.3, "roll": 0.0, "pitch": 0.0,
                                     "yaw": 0.0, "width": 128, "height": 64, "fov": 100},
                                    {"type": "sensor.lidar.ray_cast", "id": "lidar", "x": 1.3, "y": 0.0, "z": 2.5}),
                           traffic=TrafficConfig(vehicles=5, pedestrians=0))  # fmt: skip
        state = backend.reset(spec)
        assert state.actors.actor_id[0] == 0
        for _ in range(20):
            state = backend.tick(VehicleControl(throttle=0.5))
        assert state.frame == 20 and state.actors.speed[0] > 0.0
        frame, img = backend.sensor_data()["rgb"]
        assert img.shape == (64, 128, 4) and img.dtype == np.uint8
        points = backend.sensor_data()["lidar"][1]
        assert points.dtype == np.float32 and points.shape[1] == 4 and len(points) > 0
    finally:
        backend.close()


def test_collision_kinds_and_one_event_per_other_actor() -> None:
    from harness.sim.carla_convert import CollisionHit, collision_events, collision_kind
    from harness.world.state import EventKind

    assert collision_kind("vehicle.audi.tt") == EventKind.COLLISION_VEHICLE
    assert collision_kind("vehicle.bh.crossbike") == EventKind.COLLISION_VEHICLE  # leaderboard: a vehicle
    assert collision_kind("walker.pedestrian.0001") == EventKind.COLLISION_PEDESTRIAN
    assert collision_kind("static.prop.constructioncone") == EventKind.COLLISION_STATIC
    assert collision_kind("") == EventKind.COLLISION_STATIC  # the road layout
    hits = [CollisionHit(7, 42, "vehicle.audi.tt"), CollisionHit(7, 42, "vehicle.audi.tt"),
            CollisionHit(7, 43, "walker.pedestrian.0002")]  # fmt: skip
    events = collision_events(hits, 3, 0.15, (1.0, 2.0))
    assert [(e.kind, e.other_id, e.frame) for e in events] == [
        (EventKind.COLLISION_VEHICLE, 42, 3), (EventKind.COLLISION_PEDESTRIAN, 43, 3),
    ]  # fmt: skip


def test_lidar_and_radar_bytes_in_the_leaderboard_layout() -> None:
    from harness.sim.carla_convert import lidar_points, radar_detections

    raw = np.array([1, 2, 3, 0.5, 4, 5, 6, 0.25], dtype=np.float32).tobytes()
    np.testing.assert_array_equal(lidar_points(raw), [[1, 2, 3, 0.5], [4, 5, 6, 0.25]])
    det = np.array([-1.5, 0.2, 0.05, 30.0], dtype=np.float32).tobytes()  # velocity, azimuth, altitude, depth
    np.testing.assert_array_equal(radar_detections(det), np.array([[30.0, 0.05, 0.2, -1.5]], dtype=np.float32))


@pytest.mark.carla_server
def test_live_server_short_town05_route_with_the_expert(tmp_path: Any) -> None:
    server = _server()
    if server is None:
        pytest.skip("no CARLA server: set CARLA_HOST (and CARLA_PORT) to a running CarlaUE4 to run this")
    from pathlib import Path

    from harness.runner import RunConfig, run_evaluation
    from harness.runner.backends import BackendSpec

    routes = Path(__file__).resolve().parents[2] / "shared" / "data" / "routes" / "bench2drive" / "bench2drive220.xml"
    if not routes.is_file():
        pytest.skip(f"{routes} not found")
    config = RunConfig(agent="expert", routes_file=routes, out_dir=tmp_path / "out", subset="145",
                       backend=BackendSpec("carla", host=server[0], port=server[1]))  # fmt: skip
    result = run_evaluation(config)
    assert len(result.records) == 1 and "Simulation crashed" not in result.records[0].status
