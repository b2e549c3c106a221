"""The CARLA backend's lifecycle against stand-in client / world / Traffic Manager objects (no
server) with the real carla value types: synchronous 20 Hz settings applied and restored, the
Traffic Manager on its own port in hybrid physics and seeded, the mkz_2020 hero, the agent's
sensors spawned with the leaderboard's attributes and delivered in its input_data formats,
collision-sensor events, and everything spawned destroyed on close and when a reset fails."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import Any

import carla
import numpy as np
import pytest

from harness.errors import ConfigError
from harness.maps import load_town
from harness.sim.carla_backend import CarlaBackend, load_server_town
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import EventKind

TOWN = "Harness01"
SENSORS = (
    {"type": "sensor.lidar.ray_cast", "id": "LIDAR", "x": 0.7, "y": -0.4, "z": 1.6, "roll": 0.0,
     "pitch": 0.0, "yaw": -45.0},
    {"type": "sensor.other.radar", "id": "RADAR", "x": 0.7, "y": -0.4, "z": 1.6, "roll": 0.0,
     "pitch": 0.0, "yaw": -45.0, "horizontal_fov": 35, "vertical_fov": 20},
    {"type": "sensor.speedometer", "id": "SPEED", "reading_frequency": 20},
)  # fmt: skip


class Blueprint:
    def __init__(self, bp_id: str) -> None:
        self.id, self.attributes = bp_id, {}

    def set_attribute(self, key: str, value: str) -> None:
        assert isinstance(value, str)
        self.attributes[key] = value


class Actor:
    _ids = itertools.count(100)

    def __init__(self, world: World, bp: Blueprint, transform: Any, parent: Actor | None) -> None:
        self.world, self.id, self.type_id = world, next(Actor._ids), bp.id
        self.attributes, self.parent, self.transform = dict(bp.attributes), parent, transform
        self.is_alive, self.is_listening, self.callback = True, False, None
        self.bounding_box = carla.BoundingBox(carla.Location(0, 0, 0.75), carla.Vector3D(2.4, 1.0, 0.75))
        self.controls: list[Any] = []

    def destroy(self) -> bool:
        assert self.is_alive, f"{self.type_id} destroyed twice"
        self.is_alive = False
        return True

    def listen(self, callback: Any) -> None:
        self.is_listening, self.callback = True, callback

    def stop(self) -> None:
        self.is_listening = False

    def get_transform(self) -> Any:
        return self.transform

    def get_location(self) -> Any:
        return self.transform.location

    def get_velocity(self) -> Any:
        return carla.Vector3D(0.0, 0.0, 0.0)

    get_acceleration = get_angular_velocity = get_velocity

    def apply_control(self, control: Any) -> None:
        self.controls.append(control)


class ActorList(list):  # type: ignore[type-arg]
    def filter(self, pattern: str) -> ActorList:
        return ActorList(a for a in self if a.type_id.startswith(pattern.rstrip("*")))


class World:
    def __init__(self, town_name: str, xodr: str) -> None:
        self.frame = 1000
        self.settings = SimpleNamespace(synchronous_mode=False, fixed_delta_seconds=None, tag="original")
        self.applied: list[Any] = []
        self.actors: list[Actor] = []
        self.map = SimpleNamespace(name=f"Carla/Maps/{town_name}", to_opendrive=lambda: xodr,
                                   get_spawn_points=lambda: [])  # fmt: skip
        self.fail_on: str | None = None
        self.pedestrians_seed: int | None = None

    def get_map(self) -> Any:
        return self.map

    def get_settings(self) -> Any:
        return SimpleNamespace(**vars(self.settings))

    def apply_settings(self, settings: Any) -> None:
        self.applied.append(settings)
        self.settings = settings

    def reset_all_traffic_lights(self) -> None:
        pass

    def set_pedestrians_seed(self, seed: int) -> None:
        self.pedestrians_seed = seed

    def get_blueprint_library(self) -> Any:
        return SimpleNamespace(find=Blueprint, filter=lambda _p: [])

    def spawn_actor(self, bp: Blueprint, transform: Any, attach_to: Actor | None = None) -> Actor:
        if self.fail_on == bp.id:
            raise RuntimeError(f"spawn of {bp.id} failed")
        actor = Actor(self, bp, transform, attach_to)
        self.actors.append(actor)
        return actor

    try_spawn_actor = spawn_actor

    def get_actors(self) -> ActorList:
        return ActorList(a for a in self.actors if a.is_alive)

    def get_random_location_from_navigation(self) -> None:
        return None

    def tick(self) -> int:
        """Advance one frame and deliver every listening sensor's measurement of it."""
        self.frame += 1
        for s in self.actors:
            if not (s.is_alive and s.is_listening):
                continue
            if s.type_id == "sensor.lidar.ray_cast":
                raw = np.arange(8, dtype=np.float32).tobytes()  # two points
                s.callback(SimpleNamespace(frame=self.frame, raw_data=raw))
            elif s.type_id == "sensor.other.radar":
                raw = np.array([-3.0, 0.1, 0.02, 8.0], dtype=np.float32).tobytes()
                s.callback(SimpleNamespace(frame=self.frame, raw_data=raw))
        return self.frame


class TrafficManager:
    def __init__(self, port: int) -> None:
        self.port, self.calls = port, []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, *args))


class Client:
    def __init__(self, world: World) -> None:
        self.world, self.tms = world, {}

    def set_timeout(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def get_world(self) -> World:
        return self.world

    def load_world(self, town: str) -> World:  # pragma: no cover - the stand-in has the town
        raise AssertionError("the town is already loaded")

    def get_trafficmanager(self, port: int) -> TrafficManager:
        return self.tms.setdefault(port, TrafficManager(port))


@pytest.fixture()
def stand_in() -> tuple[Client, World, EpisodeSpec]:
    town = load_town(TOWN)
    world = World(TOWN, town.xodr)
    xy, yaw = town.lanes.position(np.array([0]), np.array([5.0]))
    spec = EpisodeSpec(town=TOWN, ego_start=(float(xy[0, 0]), float(xy[0, 1]), 0.0, float(yaw[0])),
                       sensors=SENSORS, traffic=TrafficConfig(vehicles=0, pedestrians=0), seed=11)  # fmt: skip
    return Client(world), world, spec


def test_reset_tick_and_close(stand_in: tuple[Client, World, EpisodeSpec]) -> None:
    client, world, spec = stand_in
    backend = CarlaBackend("stand-in", tm_port=8123, client=client)
    state = backend.reset(spec)
    assert world.settings.synchronous_mode is True and world.settings.fixed_delta_seconds == 0.05
    tm = client.tms[8123]
    assert ("set_synchronous_mode", True) in tm.calls and ("set_hybrid_physics_mode", True) in tm.calls
    assert ("set_random_device_seed", 11) in tm.calls and world.pedestrians_seed == 11
    by_type = {a.type_id: a for a in world.actors}
    ego = by_type["vehicle.lincoln.mkz_2020"]
    assert ego.attributes["role_name"] == "hero"
    assert ego.transform.rotation.yaw == pytest.approx(math.degrees(spec.ego_start[3]), abs=1e-4)
    lidar, radar = by_type["sensor.lidar.ray_cast"], by_type["sensor.other.radar"]
    assert lidar.parent is ego and radar.parent is ego and by_type["sensor.other.collision"].parent is ego
    assert lidar.attributes["channels"] == "64" and lidar.attributes["range"] == "85"
    assert lidar.attributes["points_per_second"] == "600000" and lidar.attributes["upper_fov"] == "10"
    assert radar.attributes == {"horizontal_fov": "35.0", "vertical_fov": "20.0",
                                "points_per_second": "1500", "range": "100"}  # fmt: skip
    assert lidar.transform.rotation.yaw == pytest.approx(-45.0)
    assert "sensor.speedometer" not in by_type  # a pseudo-sensor, computed on read
    assert state.frame == 0 and state.actors.actor_id[0] == 0

    state = backend.tick(VehicleControl(throttle=0.3))
    assert state.frame == 1 and isinstance(ego.controls[-1], carla.VehicleControl)
    assert ego.controls[-1].throttle == pytest.approx(0.3)
    data = backend.sensor_data()
    assert data["LIDAR"][0] == 1 and data["LIDAR"][1].dtype == np.float32
    np.testing.assert_array_equal(data["LIDAR"][1], np.arange(8, dtype=np.float32).reshape(2, 4))
    np.testing.assert_allclose(data["RADAR"][1], [[8.0, 0.02, 0.1, -3.0]])  # reversed columns
    assert data["SPEED"] == (1, {"speed": 0.0})

    # a collision reported by the sensor becomes this tick's event, once per other actor
    other = world.spawn_actor(Blueprint("vehicle.audi.tt"), carla.Transform(carla.Location(5, 5, 0)))
    collision = by_type["sensor.other.collision"]
    for _ in range(3):  # one report per physics sub-step
        collision.callback(SimpleNamespace(frame=world.frame + 1, other_actor=other))
    state = backend.tick(VehicleControl(brake=1.0))
    hits = [e for e in state.events if e.kind == EventKind.COLLISION_VEHICLE]
    assert len(hits) == 1 and hits[0].other_id == other.id and hits[0].frame == 2
    assert not [e for e in backend.tick(VehicleControl()).events if e.kind == EventKind.COLLISION_VEHICLE]

    backend.close()
    spawned = [a for a in world.actors if a is not other]
    assert all(not a.is_alive for a in spawned) and all(not a.is_listening for a in spawned)
    assert world.settings.tag == "original" and world.settings.synchronous_mode is False
    assert ("set_synchronous_mode", False) in tm.calls and ("set_hybrid_physics_mode", False) in tm.calls
    backend.close()  # idempotent


def test_a_failed_reset_destroys_what_it_spawned(stand_in: tuple[Client, World, EpisodeSpec]) -> None:
    client, world, spec = stand_in
    world.fail_on = "sensor.other.radar"
    backend = CarlaBackend("stand-in", client=client)
    with pytest.raises(RuntimeError, match="radar"):
        backend.reset(spec)
    assert world.actors and all(not a.is_alive for a in world.actors)  # ego and lidar are gone
    backend.close()
    assert world.settings.tag == "original"


def test_the_ego_blueprint_is_configurable(stand_in: tuple[Client, World, EpisodeSpec]) -> None:
    client, world, spec = stand_in
    backend = CarlaBackend("stand-in", client=client, ego_blueprint="vehicle.lincoln.mkz_2017")
    backend.reset(spec)
    assert world.actors[0].type_id == "vehicle.lincoln.mkz_2017"
    backend.close()


def test_the_route_town_comes_from_the_server(stand_in: tuple[Client, World, EpisodeSpec]) -> None:
    client, world, spec = stand_in
    xodr = world.map.to_opendrive()
    world.map.name = "Carla/Maps/Town10HD_Opt"  # another map is up: the town gets loaded
    loads: list[str] = []

    def load_world(town: str) -> World:
        loads.append(town)
        world.map.name = f"Carla/Maps/{town}"
        return world

    client.load_world = load_world  # type: ignore[method-assign]
    town = load_server_town(client, TOWN, "stand-in:1")
    assert loads == [TOWN] and town.name == TOWN and town.origin == "carla-server"
    assert town.xodr == xodr
    assert load_server_town(client, TOWN, "stand-in:1") is town  # cached per server
    client.load_world = lambda t: world  # type: ignore[method-assign]
    world.map.name = "Carla/Maps/Town02"  # the server keeps another map
    with pytest.raises(ConfigError, match="loaded Town02, not Town01"):
        load_server_town(client, "Town01", "stand-in:2")
