"""A ``carla.World`` facade over the harness's world state, for leaderboard agent files on the
embedded backend: ``CarlaDataProvider.get_world()`` returns it, and it answers with real
``carla`` value types from the wheel (``Transform``, ``Location``, ``Rotation``, ``Vector3D``,
``BoundingBox``, ``VehicleControl``, ``TrafficLightState``, ``Timestamp``, the town's offline
``carla.Map``).

Actors are live handles, as CARLA's: each call reads the latest state from ``source()``.
Ids: an actor's id is its harness ``actor_id`` + 1 (the ego is 1), a traffic light's
``LIGHT_ID_OFFSET`` + its index in ``town.signals``. Poses: ``get_transform().location`` is the
state's (x, y, z), the bounding box sits ``height / 2`` above it (CARLA's vehicle origin is at
the ground); yaw in degrees; velocity along the heading; acceleration ``a_lon * forward +
speed * yaw_rate * right``; angular velocity (0, 0, yaw rate in deg/s), as CARLA reports it.
The type ids of the embedded actors are generic (``EMBEDDED_TYPE_IDS``): the embedded
simulator has boxes, not blueprints. Write access (spawning, ticking, settings) is not offered:
the harness owns the actors and the clock.

Also here: the conversions between carla and project types that the agent driver uses
(``to_carla_control``, ``carla_transform``, the dense global plan ``dense_global_plan``).
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import carla
import numpy as np

from harness.dynamics.vehicle import LINCOLN_MKZ_2017
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute, RoadOption
from harness.world.control import VehicleControl
from harness.world.state import ActorArrays, ActorKind, ActorRole, WorldState
from harness.world.timing import SIM_DT_S

EGO_TYPE_ID = "vehicle.lincoln.mkz_2020"  # the leaderboard's default ego blueprint
EMBEDDED_TYPE_IDS = {
    ActorKind.VEHICLE: "vehicle.harness.car",
    ActorKind.PEDESTRIAN: "walker.pedestrian.harness",
    ActorKind.BICYCLE: "vehicle.harness.bicycle",
    ActorKind.STATIC: "static.prop.harness",
    ActorKind.EMERGENCY: "vehicle.harness.emergency",
}
ROLE_NAMES = {
    ActorRole.EGO: "hero",  # the leaderboard's ego role
    ActorRole.BACKGROUND: "background",  # the leaderboard's background activity
    ActorRole.SCENARIO: "scenario",  # ScenarioRunner's scenario actors
    ActorRole.PEDESTRIAN: "pedestrian",
}
TRAFFIC_LIGHT_TYPE_ID = "traffic.traffic_light"
LIGHT_ID_OFFSET = 1_000_000  # carla ids of traffic lights: offset + light index
LIGHT_BOX_HALF_M = (0.5, 0.5, 2.5)  # [m] extent of a traffic-light box (pole)
TRIGGER_HALF_DEPTH_M = 1.5  # [m] half depth (along the traffic) of a light's trigger volume


def carla_transform(x_m: float, y_m: float, z_m: float, yaw_rad: float) -> carla.Transform:
    """A world pose as ``carla.Transform`` (yaw in degrees; pitch and roll 0)."""
    return carla.Transform(
        carla.Location(x=float(x_m), y=float(y_m), z=float(z_m)),
        carla.Rotation(pitch=0.0, yaw=math.degrees(float(yaw_rad)), roll=0.0),
    )


def to_carla_control(control: VehicleControl) -> carla.VehicleControl:
    """Our VehicleControl as ``carla.VehicleControl`` (field by field)."""
    return carla.VehicleControl(
        throttle=control.throttle, steer=control.steer, brake=control.brake,
        hand_brake=control.hand_brake, reverse=control.reverse,
        manual_gear_shift=control.manual_gear_shift, gear=control.gear,
    )  # fmt: skip


def road_option_type() -> Any:
    """The RoadOption enum the plan carries: CARLA's (``agents.navigation.local_planner``) when
    its PythonAPI is importable, so agents comparing with it match; else the harness's IntEnum
    with the same values."""
    try:
        from agents.navigation.local_planner import RoadOption as CarlaRoadOption
    except ImportError:  # no CARLA PythonAPI on sys.path (the usual case)
        return RoadOption
    return CarlaRoadOption


def dense_global_plan(
    planned: PlannedRoute, town: Town
) -> tuple[list[tuple[dict[str, float], Any]], list[tuple[carla.Transform, Any]]]:
    """The route as the leaderboard hands it to ``set_global_plan``: every route point (~1 m),
    GPS ``({'lat', 'lon', 'z'}, RoadOption)`` and world ``(carla.Transform, RoadOption)``."""
    option_type = road_option_type()
    xyz = np.column_stack([planned.xy, planned.z])
    gps = np.asarray(town.geo.to_gps(xyz), dtype=np.float64).reshape(-1, 3)
    options = [option_type(int(o)) for o in planned.option]
    world = [
        (carla_transform(x, y, z, yaw), o)
        for (x, y, z), yaw, o in zip(xyz, planned.yaw_rad, options, strict=True)
    ]
    gps_route = [
        ({"lat": float(la), "lon": float(lo), "z": float(al)}, o)
        for (la, lo, al), o in zip(gps, options, strict=True)
    ]
    return gps_route, world


def start_state(pose: tuple[float, float, float, float]) -> WorldState:
    """The world before the backend's reset: the hero alone at ``pose`` (x, y, z [m], yaw [rad]),
    as the leaderboard spawns the ego before it constructs the agent."""
    a = ActorArrays.empty(1)
    dims = LINCOLN_MKZ_2017
    for name, value in (("x", pose[0]), ("y", pose[1]), ("z", pose[2]), ("yaw", pose[3]),
                        ("length", dims.length_m), ("width", dims.width_m),
                        ("height", dims.height_m)):  # fmt: skip
        getattr(a, name)[0] = value
    a.actor_id[0] = 0
    a.valid[0] = True
    a.kind[0] = int(ActorKind.VEHICLE)
    a.role[0] = int(ActorRole.EGO)
    return WorldState(
        frame=0, time_s=0.0, actors=a,
        light_state=np.zeros(0, np.int8), light_elapsed_s=np.zeros(0, np.float64),
    )  # fmt: skip


class CarlaActor:
    """A live handle on one harness actor, answering as ``carla.Actor`` / ``carla.Vehicle`` /
    ``carla.Walker`` do for reading."""

    def __init__(self, world: CarlaWorld, actor_id: int, kind: int, role: int) -> None:
        self._world = world
        self._hid = actor_id
        self.id = actor_id + 1
        ego = role == int(ActorRole.EGO)
        self.type_id = EGO_TYPE_ID if ego else EMBEDDED_TYPE_IDS[ActorKind(kind)]
        wheels = {ActorKind.BICYCLE: "2", ActorKind.VEHICLE: "4", ActorKind.EMERGENCY: "4"}
        self.attributes: dict[str, str] = {"role_name": ROLE_NAMES[ActorRole(role)]}
        if ActorKind(kind) in wheels:
            self.attributes["number_of_wheels"] = wheels[ActorKind(kind)]
        if kind == int(ActorKind.EMERGENCY):
            self.attributes["special_type"] = "emergency"
        self.parent = None
        self._last: tuple[float, ...] = (0.0,) * 8

    def __repr__(self) -> str:
        return f"Actor(id={self.id}, type={self.type_id})"

    def _row(self) -> tuple[float, ...]:
        """(x, y, z, yaw, speed, accel, yaw_rate, height) now, or the last known values."""
        a, i = self._world._lookup(self._hid)
        if i >= 0:
            self._last = tuple(
                float(getattr(a, f)[i])
                for f in ("x", "y", "z", "yaw", "speed", "accel", "yaw_rate", "height")
            )
        return self._last

    @property
    def is_alive(self) -> bool:
        return self._world._lookup(self._hid)[1] >= 0

    @property
    def bounding_box(self) -> carla.BoundingBox:
        a, i = self._world._lookup(self._hid)
        if i < 0:
            return carla.BoundingBox()
        half = (float(a.length[i]) / 2, float(a.width[i]) / 2, float(a.height[i]) / 2)
        return carla.BoundingBox(carla.Location(0.0, 0.0, half[2]), carla.Vector3D(*half))

    def get_world(self) -> CarlaWorld:
        return self._world

    def get_transform(self) -> carla.Transform:
        x, y, z, yaw = self._row()[:4]
        return carla_transform(x, y, z, yaw)

    def get_location(self) -> carla.Location:
        x, y, z = self._row()[:3]
        return carla.Location(x=x, y=y, z=z)

    def get_velocity(self) -> carla.Vector3D:
        _, _, _, yaw, v = self._row()[:5]
        return carla.Vector3D(v * math.cos(yaw), v * math.sin(yaw), 0.0)

    def get_acceleration(self) -> carla.Vector3D:
        _, _, _, yaw, v, acc, rate = self._row()[:7]
        lat = v * rate
        c, s = math.cos(yaw), math.sin(yaw)
        return carla.Vector3D(acc * c - lat * s, acc * s + lat * c, 0.0)

    def get_angular_velocity(self) -> carla.Vector3D:
        return carla.Vector3D(0.0, 0.0, math.degrees(self._row()[6]))

    def get_control(self) -> carla.VehicleControl:
        """The hero's last applied control (others: a released control)."""
        if self._hid == 0 and self._world.hero_control is not None:
            return to_carla_control(self._world.hero_control)
        return carla.VehicleControl()


class CarlaTrafficLight:
    """A live handle on one of the town's traffic lights (``carla.TrafficLight`` for reading)."""

    type_id = TRAFFIC_LIGHT_TYPE_ID

    def __init__(self, world: CarlaWorld, index: int) -> None:
        self._world = world
        self._index = index
        self.id = LIGHT_ID_OFFSET + index
        self.attributes: dict[str, str] = {}
        self.parent = None
        self.is_alive = True

    def __repr__(self) -> str:
        return f"TrafficLight(id={self.id}, opendrive_id={self.get_opendrive_id()})"

    @property
    def state(self) -> carla.TrafficLightState:
        return self.get_state()

    def get_state(self) -> carla.TrafficLightState:
        s = self._world.state.light_state
        return (
            carla.TrafficLightState.values[int(s[self._index])]
            if s.size
            else (carla.TrafficLightState.Unknown)
        )

    def get_elapsed_time(self) -> float:
        e = self._world.state.light_elapsed_s
        return float(e[self._index]) if e.size else 0.0

    def get_opendrive_id(self) -> str:
        return str(self._world.town.signals.light_id[self._index])

    @property
    def bounding_box(self) -> carla.BoundingBox:
        hx, hy, hz = LIGHT_BOX_HALF_M
        return carla.BoundingBox(carla.Location(0.0, 0.0, hz), carla.Vector3D(hx, hy, hz))

    @property
    def trigger_volume(self) -> carla.BoundingBox:
        """The box (in the light's frame) over the stop lines it controls, as CARLA's trigger
        volume: centred on their mean midpoint, ``TRIGGER_HALF_DEPTH_M`` deep along the traffic,
        as wide as the lines span; a small box at the pole for a light without stop lines."""
        sig = self._world.town.signals
        mine = np.flatnonzero((sig.stop_owner == self._index) & (sig.stop_kind == 0))
        if not len(mine):
            return carla.BoundingBox(carla.Location(), carla.Vector3D(*LIGHT_BOX_HALF_M))
        ends = np.concatenate([sig.stop_a[mine], sig.stop_b[mine]])
        mid = ends.mean(axis=0) - sig.light_xy[self._index]
        yaw = float(sig.light_yaw[self._index])
        c, s = math.cos(yaw), math.sin(yaw)
        local = (mid[0] * c + mid[1] * s, -mid[0] * s + mid[1] * c)
        across = (ends - sig.light_xy[self._index]) @ np.array([-s, c])
        half_width = max(float(np.ptp(across)) / 2.0, 0.5)
        return carla.BoundingBox(
            carla.Location(x=float(local[0]), y=float(local[1]), z=0.0),
            carla.Vector3D(TRIGGER_HALF_DEPTH_M, half_width, 1.0),
        )

    def get_world(self) -> CarlaWorld:
        return self._world

    def get_transform(self) -> carla.Transform:
        sig = self._world.town.signals
        x, y = sig.light_xy[self._index]
        return carla_transform(x, y, 0.0, sig.light_yaw[self._index])

    def get_location(self) -> carla.Location:
        return self.get_transform().location

    def get_velocity(self) -> carla.Vector3D:
        return carla.Vector3D()


class ActorList:
    """``carla.ActorList``: iterable, ``len``, indexable, ``filter(wildcard on type_id)``,
    ``find(id)``."""

    def __init__(self, actors: list[Any]) -> None:
        self._actors = actors

    def __iter__(self) -> Iterator[Any]:
        return iter(self._actors)

    def __len__(self) -> int:
        return len(self._actors)

    def __getitem__(self, i: int) -> Any:
        return self._actors[i]

    def filter(self, wildcard_pattern: str) -> ActorList:
        return ActorList([a for a in self._actors if fnmatch.fnmatch(a.type_id, wildcard_pattern)])

    def find(self, actor_id: int) -> Any:
        return next((a for a in self._actors if a.id == actor_id), None)


class WorldSnapshot:
    """``carla.WorldSnapshot`` of one tick: ``frame``, ``timestamp`` (carla.Timestamp), ``find``."""

    def __init__(self, world: CarlaWorld, state: WorldState) -> None:
        self._world = world
        self.frame = int(state.frame)
        self.id = self.frame
        self.timestamp = carla.Timestamp(self.frame, float(state.time_s), SIM_DT_S, time.time())

    def find(self, actor_id: int) -> Any:
        return self._world.get_actors().find(actor_id)


class CarlaWorld:
    """The ``carla.World`` facade (see the module docstring). ``source()`` returns the latest
    WorldState or None before the backend's reset (then the hero stands at ``start_pose``)."""

    def __init__(
        self,
        source: Callable[[], WorldState | None],
        town: Town,
        start_pose: tuple[float, float, float, float],
    ) -> None:
        self._source = source
        self.town = town
        self._start = start_state(start_pose)
        self.hero_control: VehicleControl | None = None  # the agent driver sets it every tick
        self._actors: dict[int, CarlaActor] = {}
        self._lights = [CarlaTrafficLight(self, i) for i in range(len(town.signals.light_id))]
        self._index_frame = -2
        self._index: dict[int, int] = {}
        self._index_state: WorldState | None = None

    @property
    def state(self) -> WorldState:
        """The latest world state (the start state before the reset)."""
        state = self._source()
        return self._start if state is None else state

    def _lookup(self, actor_id: int) -> tuple[ActorArrays, int]:
        """(actors, row of ``actor_id``) in the latest state, row -1 when it is gone."""
        state = self.state
        if state is not self._index_state:
            a = state.actors
            rows = np.flatnonzero(a.valid)
            self._index = {int(a.actor_id[r]): int(r) for r in rows}
            self._index_state = state
        return state.actors, self._index.get(actor_id, -1)

    # ------------------------------------------------------------------ carla.World (reading)
    def get_map(self) -> carla.Map:
        return self.town.cmap

    def get_settings(self) -> carla.WorldSettings:
        """Synchronous at the harness's fixed step (0.05 s), as the leaderboard runs CARLA."""
        settings = carla.WorldSettings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = SIM_DT_S
        return settings

    def get_snapshot(self) -> WorldSnapshot:
        return WorldSnapshot(self, self.state)

    def get_actors(self, actor_ids: list[int] | None = None) -> ActorList:
        """Every live actor of the state plus the town's traffic lights (or those of
        ``actor_ids``)."""
        a = self.state.actors
        out: list[Any] = []
        for r in np.flatnonzero(a.valid):
            hid = int(a.actor_id[r])
            actor = self._actors.get(hid)
            if actor is None:
                actor = self._actors[hid] = CarlaActor(self, hid, int(a.kind[r]), int(a.role[r]))
            out.append(actor)
        out += self._lights
        if actor_ids is not None:
            wanted = {int(i) for i in actor_ids}
            out = [x for x in out if x.id in wanted]
        return ActorList(out)

    def get_actor(self, actor_id: int) -> Any:
        return self.get_actors().find(actor_id)

    def get_traffic_lights(self) -> ActorList:
        return ActorList(list(self._lights))


def carla_timestamp(frame: int, time_s: float) -> carla.Timestamp:
    """``carla.Timestamp`` of the tick ``frame`` at simulation time ``time_s`` [s]."""
    return carla.Timestamp(int(frame), float(time_s), SIM_DT_S, time.time())
