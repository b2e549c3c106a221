"""The CARLA backend: the same SimulatorBackend protocol on a live CARLA server (0.9.16 API).

Synchronous mode at 20 Hz (fixed_delta_seconds 0.05) like the leaderboard, the server's settings
restored on close; background traffic through CARLA's Traffic Manager on its own port (hybrid
physics, seeded), walkers with their AI controllers; the ego is ``vehicle.lincoln.mkz_2020`` (the
leaderboard's hero) with role_name 'hero'; the agent's sensors are spawned with the attributes the
leaderboard's agent wrapper sets and delivered in its input_data formats. World states, events and
sensor data come back in the harness's own types (consumers never see ``carla.*``): ego
collisions come from a ``sensor.other.collision`` on the ego, the other events from the same
:class:`harness.sim.events.EventDetector` as on the embedded backend, so metrics mean the same.
Scenario actors commanded along a path are driven by the harness's pure pursuit + PID tracker.
Everything spawned is destroyed on close and when a reset fails.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.errors import ConfigError
from harness.maps.town import Town
from harness.sim.carla_convert import (
    BLUEPRINT_BY_KIND,
    EGO_BLUEPRINT,
    LIGHT_STATE_FROM_CARLA,
    CollisionHit,
    actor_transform_for_box,
    box_pose,
    collision_events,
    image_to_bgra,
    kind_of,
    lidar_points,
    radar_detections,
    sensor_attributes,
    sensor_transform,
    signed_speed,
    to_carla_control,
)  # fmt: skip
from harness.sim.carla_server import CarlaConnectionError
from harness.sim.events import EventDetector
from harness.sim.sensors.basic import opendrive_reading
from harness.sim.sensors.spec import (
    CAMERA_RGB,
    GNSS,
    IMU,
    LIDAR,
    OPENDRIVE_MAP,
    RADAR,
    SPEEDOMETER,
    validate_sensors,
)
from harness.world.backend import ActorCommand, ActorSpec, EpisodeSpec, TrafficVehicleSpec
from harness.world.control import VehicleControl
from harness.world.state import (
    COLLISION_EVENTS,
    ActorArrays,
    ActorKind,
    ActorRole,
    LightState,
    WorldState,
)
from harness.world.timing import SIM_DT_S

log = logging.getLogger(__name__)

SENSOR_WAIT_S = 10.0  # [s] how long sensor_data waits for this frame's readings
LIGHT_MATCH_M = 20.0  # [m] a town light matches the nearest CARLA light within this distance
SPAWN_Z_M = 0.5  # [m] actors are dropped from this height
HOLD_FOREVER_S = 1.0e6  # [s] a light held until released gets its times stretched this long
PHYSICAL_SENSORS = (CAMERA_RGB, LIDAR, RADAR, GNSS, IMU)  # spawned on the server; the rest are pseudo-sensors
COLLISION_SENSOR = "sensor.other.collision"


_SERVER_TOWNS: dict[tuple[str, str], Town] = {}  # (server address, town) -> its Town, per process


def load_server_town(client: Any, name: str, address: str = "") -> Town:
    """The town ``name`` as the server at ``address`` has it: loaded there when another map is
    up (as the leaderboard does before a route), then built from ``get_map().to_opendrive()``;
    cached per process (a server's map of a town does not change)."""
    key = (address, name)
    if key not in _SERVER_TOWNS:
        world = client.get_world()
        if world.get_map().name.split("/")[-1] != name:
            world = client.load_world(name)
        loaded = world.get_map().name.split("/")[-1]
        if loaded != name:
            raise ConfigError(f"the CARLA server at {address} loaded {loaded}, not {name}")
        _SERVER_TOWNS[key] = Town.from_xodr(name, world.get_map().to_opendrive(), origin="carla-server")
    return _SERVER_TOWNS[key]


@dataclass
class _Hold:
    """One forced light: the carla.TrafficLight, what it was before (state, green, yellow and
    red times [s]) and when the hold ends [s] (inf: until released)."""

    light: Any
    previous: tuple[Any, float, float, float]
    until_s: float


class LightHolds:
    """Forced traffic lights on a CARLA server, done as ScenarioRunner's TrafficLightFreezer does:
    remember the light's state and times, ``set_state`` and stretch its green / yellow / red times
    over the hold (so the light's own cycle does not move on), restore all of it at the end.
    ``carla`` is the carla module (a stand-in in unit tests)."""

    def __init__(self, carla: Any) -> None:
        self._carla = carla
        self.holds: dict[int, _Hold] = {}

    def force(
        self, index: int, light: Any, state: LightState, now_s: float, duration_s: float | None
    ) -> None:
        """Hold ``light`` (the town light ``index``) at ``state`` from ``now_s``."""
        old = self.holds.get(index)
        previous = old.previous if old is not None else (
            light.get_state(), float(light.get_green_time()), float(light.get_yellow_time()),
            float(light.get_red_time()),
        )  # fmt: skip
        hold_s = HOLD_FOREVER_S if duration_s is None else float(duration_s)
        stretched = hold_s + float(light.get_elapsed_time())
        light.set_state(getattr(self._carla.TrafficLightState, state.name.capitalize()))
        light.set_green_time(stretched)
        light.set_yellow_time(stretched)
        light.set_red_time(stretched)
        until = math.inf if duration_s is None else now_s + hold_s
        self.holds[index] = _Hold(light, previous, until)

    def release(self, index: int) -> None:
        """Give the light back its previous state and times (no-op when not held)."""
        hold = self.holds.pop(index, None)
        if hold is None:
            return
        state, green, yellow, red = hold.previous
        hold.light.set_state(state)
        hold.light.set_green_time(green)
        hold.light.set_yellow_time(yellow)
        hold.light.set_red_time(red)

    def expire(self, now_s: float) -> None:
        """Release every hold whose time is up at ``now_s``."""
        for index in [i for i, h in self.holds.items() if now_s >= h.until_s]:
            self.release(index)

    def release_all(self) -> None:
        for index in list(self.holds):
            self.release(index)


@dataclass
class _Scripted:
    """A scenario actor and what it was told to do."""

    actor: Any
    kind: ActorKind
    command: ActorCommand | None = None
    pid: PIDState | None = None


class CarlaBackend:
    """SimulatorBackend on a CARLA server at host:port (Traffic Manager at tm_port)."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 2000,
        tm_port: int = 8000,
        timeout_s: float = 60.0,
        *,
        ego_blueprint: str = EGO_BLUEPRINT,
        privileged: bool = False,
        client: Any = None,
    ) -> None:
        """Connect to host:port (``client``: an already made carla.Client, or a stand-in)."""
        try:
            import carla
        except ImportError as exc:  # pragma: no cover - carla is a dependency
            raise ConfigError(
                "the CARLA backend needs the 'carla' package (pip install carla==0.9.16)"
            ) from exc
        self._carla = carla
        self._client = client if client is not None else carla.Client(host, port)
        self._client.set_timeout(timeout_s)
        try:
            self._world = self._client.get_world()
        except RuntimeError as exc:
            raise CarlaConnectionError(
                f"no CARLA server at {host}:{port} ({exc}); start CarlaUE4.sh or use the embedded backend"
            ) from exc
        self._ego_blueprint = ego_blueprint
        self._address = f"{host}:{port}"
        self._privileged = privileged
        self._collisions: list[CollisionHit] = []
        self._tm: Any = None
        self._tm_port = tm_port
        self._town: Town | None = None
        self._actors: list[Any] = []  # everything we spawned, destroyed on close/reset
        self._scripted: dict[int, _Scripted] = {}
        self._sensors: dict[str, Any] = {}
        self._readings: dict[str, tuple[int, Any]] = {}
        self._specs: tuple[Any, ...] = ()
        self._ego: Any = None
        self._state: WorldState | None = None
        self._detector: EventDetector | None = None
        self._frame0 = 0
        self._frame = 0
        self._light_actors: list[Any | None] = []
        self._holds = LightHolds(carla)
        self._original_settings: Any = None
        self._tracker = PurePursuitPID()

    # ------------------------------------------------------------------ protocol
    @property
    def town(self) -> Town:
        if self._town is None:
            raise ConfigError("no town loaded: call reset(EpisodeSpec(town=...)) first")
        return self._town

    @property
    def state(self) -> WorldState:
        if self._state is None:
            raise ConfigError("no episode: call reset() first")
        return self._state

    def reset(self, spec: EpisodeSpec) -> WorldState:
        """Load the town when the server has another, go synchronous at 20 Hz, spawn the ego,
        traffic and sensors, tick once. On any failure everything spawned is destroyed."""
        try:
            return self._reset(spec)
        except BaseException:
            self._destroy_all()
            raise

    def _reset(self, spec: EpisodeSpec) -> WorldState:
        carla = self._carla
        self._destroy_all()
        if self._world.get_map().name.split("/")[-1] != spec.town:
            if self._original_settings is not None:  # load_world keeps them; give the old back first
                self._world.apply_settings(self._original_settings)
                self._original_settings = None
            self._world = self._client.load_world(spec.town)
        world = self._world
        if self._original_settings is None:
            self._original_settings = world.get_settings()
        settings = world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = SIM_DT_S
        world.apply_settings(settings)
        world.reset_all_traffic_lights()
        tm = self._client.get_trafficmanager(self._tm_port)
        self._tm = tm
        tm.set_synchronous_mode(True)
        tm.set_hybrid_physics_mode(True)
        tm.set_random_device_seed(spec.seed)
        world.set_pedestrians_seed(spec.seed)
        self._town = load_server_town(self._client, spec.town, self._address)
        self._specs = validate_sensors(list(spec.sensors), privileged=self._privileged)
        library = world.get_blueprint_library()
        x, y, z, yaw = spec.ego_start
        bp = library.find(self._ego_blueprint)
        bp.set_attribute("role_name", "hero")
        ego = world.spawn_actor(
            bp,
            carla.Transform(
                carla.Location(x=x, y=y, z=z + SPAWN_Z_M), carla.Rotation(yaw=math.degrees(yaw))
            ),
        )
        self._ego = ego
        self._actors.append(ego)
        self._spawn_traffic(spec, library, tm)
        self._attach_sensors(library)
        frame = world.tick()
        self._frame0 = self._frame = frame
        self._match_lights()
        self._detector = EventDetector(self._town, spec.route_xy)
        self._state = None
        return self._commit()

    def tick(self, control: VehicleControl) -> WorldState:
        self._require_episode().apply_control(to_carla_control(self._carla, control))
        self._drive_scripted()
        self._frame = self._world.tick()
        self._holds.expire((self._frame - self._frame0) * SIM_DT_S)
        return self._commit()

    def sensor_data(self) -> dict[str, tuple[int, Any]]:
        """Wait for every declared sensor's reading of this frame (leaderboard input_data)."""
        deadline = time.monotonic() + SENSOR_WAIT_S
        wanted = [s.id for s in self._specs if s.type in PHYSICAL_SENSORS]
        while any(self._readings.get(k, (-1, None))[0] < self._frame for k in wanted):
            if time.monotonic() > deadline:
                raise CarlaConnectionError(
                    f"sensor data for frame {self._frame} did not arrive within {SENSOR_WAIT_S} s"
                )
            time.sleep(0.001)
        frame = self._frame - self._frame0  # frames count from the episode's reset, as on the embedded backend
        out: dict[str, tuple[int, Any]] = {k: (frame, self._readings[k][1]) for k in wanted}
        for s in self._specs:
            if s.type == SPEEDOMETER:
                out[s.id] = (frame, {"speed": float(self.state.actors.speed[0])})
            elif s.type == OPENDRIVE_MAP:
                out[s.id] = (frame, opendrive_reading(self.town.xodr))
        return out

    def spawn_actor(self, spec: ActorSpec) -> int:
        carla = self._carla
        bp = self._world.get_blueprint_library().find(BLUEPRINT_BY_KIND[spec.kind])
        probe = carla.BoundingBox(
            carla.Location(0.0, 0.0, spec.height / 2),
            carla.Vector3D(spec.length / 2, spec.width / 2, spec.height / 2),
        )
        transform = actor_transform_for_box(
            carla, spec.x, spec.y, spec.z + SPAWN_Z_M, spec.yaw, probe
        )
        actor = self._world.try_spawn_actor(bp, transform)
        if actor is None:
            raise ConfigError(
                f"CARLA could not spawn {spec.kind.name} at ({spec.x:.1f}, {spec.y:.1f}): the place is occupied"
            )
        self._actors.append(actor)
        self._scripted[int(actor.id)] = _Scripted(actor, spec.kind)
        return int(actor.id)

    def spawn_traffic_vehicle(self, spec: TrafficVehicleSpec) -> int:
        """A Traffic Manager vehicle at (lane, s) of the town's LaneSet, driving at up to the
        desired speed and following the lane plan's centreline points (``set_path``) first."""
        carla = self._carla
        lanes = self.town.lanes
        xy, yaw = lanes.position(np.array([spec.lane]), np.array([spec.s_m]))
        library = self._world.get_blueprint_library()
        bp = library.find(BLUEPRINT_BY_KIND[ActorKind.VEHICLE])
        transform = carla.Transform(
            carla.Location(x=float(xy[0, 0]), y=float(xy[0, 1]), z=SPAWN_Z_M),
            carla.Rotation(yaw=math.degrees(float(yaw[0]))),
        )
        actor = self._world.try_spawn_actor(bp, transform)
        if actor is None:
            raise ConfigError(
                f"CARLA could not spawn a traffic vehicle on lane {spec.lane} at s={spec.s_m:.1f} m: "
                "the place is occupied"
            )
        self._actors.append(actor)
        actor.set_autopilot(True, self._tm_port)
        tm = self._client.get_trafficmanager(self._tm_port)
        tm.set_desired_speed(actor, 3.6 * spec.desired_speed_mps)  # [km/h]
        if spec.lane_plan:
            path = [
                carla.Location(x=float(p[0]), y=float(p[1]), z=0.0)
                for lane in spec.lane_plan
                for p in lanes.xy[lanes.start[lane] : lanes.start[lane] + lanes.count[lane] : 5]
            ]
            tm.set_path(actor, path)
        heading = carla.Vector3D(
            x=spec.speed_mps * math.cos(float(yaw[0])), y=spec.speed_mps * math.sin(float(yaw[0]))
        )
        actor.set_target_velocity(heading)
        return int(actor.id)

    def command_actor(self, actor_id: int, command: ActorCommand) -> None:
        entry = self._scripted.get(actor_id)
        if entry is None:
            raise ConfigError(f"no scenario actor with id {actor_id}")
        entry.command, entry.pid = command, PIDState()

    def destroy_actor(self, actor_id: int) -> None:
        entry = self._scripted.pop(actor_id, None)
        if entry is None:
            raise ConfigError(f"no scenario actor with id {actor_id}")
        entry.actor.destroy()
        self._actors = [a for a in self._actors if int(a.id) != actor_id]

    def force_lights(
        self, lights: Sequence[int], state: LightState, duration_s: float | None = None
    ) -> None:
        """Hold town lights at ``state`` (see :class:`LightHolds`); lights with no CARLA actor
        matched are skipped with a warning."""
        now = self.state.time_s
        for i in lights:
            actor = self._light_actor(int(i))
            if actor is not None:
                self._holds.force(int(i), actor, state, now, duration_s)

    def release_lights(self, lights: Sequence[int]) -> None:
        for i in lights:
            self._holds.release(int(i))

    def _light_actor(self, index: int) -> Any | None:
        if not 0 <= index < len(self._light_actors):
            raise ConfigError(
                f"light index {index} outside the town's {len(self._light_actors)} lights"
            )
        actor = self._light_actors[index]
        if actor is None:
            log.warning("town light %d has no CARLA traffic light; not forced", index)
        return actor

    def clear_area(self, center_xy: tuple[float, float], radius_m: float) -> int:
        """Destroy Traffic Manager vehicles and walkers inside the circle (as the leaderboard's
        background activity does for a scenario's area)."""
        cx, cy = center_xy
        scripted = set(self._scripted)
        gone = 0
        for a in list(self._actors):
            if (
                a is self._ego
                or int(a.id) in scripted
                or not a.type_id.startswith(("vehicle.", "walker."))
            ):
                continue
            loc = a.get_location()
            if math.hypot(loc.x - cx, loc.y - cy) <= radius_m:
                a.destroy()
                self._actors.remove(a)
                gone += 1
        return gone

    def close(self) -> None:
        """Destroy everything spawned and give the server back its settings (idempotent)."""
        try:
            self._destroy_all()
        finally:
            if self._tm is not None:
                self._tm.set_synchronous_mode(False)
                self._tm.set_hybrid_physics_mode(False)
                self._tm = None
            if self._original_settings is not None:
                self._world.apply_settings(self._original_settings)
                self._original_settings = None

    # ------------------------------------------------------------------ internals
    def _require_episode(self) -> Any:
        if self._ego is None:
            raise ConfigError("no episode: call reset() first")
        return self._ego

    def _spawn_traffic(self, spec: EpisodeSpec, library: Any, tm: Any) -> None:
        carla = self._carla
        rng = np.random.default_rng(spec.traffic.seed)
        x, y = spec.ego_start[0], spec.ego_start[1]
        points = [p for p in self._world.get_map().get_spawn_points()
                  if 10.0 < math.hypot(p.location.x - x, p.location.y - y) < spec.traffic.spawn_radius_m]  # fmt: skip
        cars = [
            b for b in library.filter("vehicle.*") if int(b.get_attribute("number_of_wheels")) == 4
        ]
        for k in rng.permutation(len(points))[: spec.traffic.vehicles].tolist():
            bp = cars[int(rng.integers(len(cars)))]
            actor = self._world.try_spawn_actor(bp, points[k])
            if actor is not None:
                actor.set_autopilot(True, self._tm_port)
                self._actors.append(actor)
        walkers = library.filter("walker.pedestrian.*")
        controller_bp = library.find("controller.ai.walker")
        for _ in range(spec.traffic.pedestrians):
            loc = self._world.get_random_location_from_navigation()
            if loc is None:
                continue
            w = self._world.try_spawn_actor(
                walkers[int(rng.integers(len(walkers)))], carla.Transform(loc)
            )
            if w is None:
                continue
            c = self._world.spawn_actor(controller_bp, carla.Transform(), attach_to=w)
            self._actors.extend([w, c])
            c.start()
            c.go_to_location(self._world.get_random_location_from_navigation())

    def _attach_sensors(self, library: Any) -> None:
        """The agent's physical sensors with the leaderboard's attributes, and the collision
        sensor that feeds the ego's collision events."""
        self._sensors.clear()
        self._readings.clear()
        self._collisions.clear()
        for s in self._specs:
            if s.type not in PHYSICAL_SENSORS:
                continue  # speedometer and opendrive_map are pseudo-sensors, computed on read
            bp = library.find(s.type)
            for key, value in sensor_attributes(s).items():
                bp.set_attribute(key, value)
            sensor = self._world.spawn_actor(
                bp, sensor_transform(self._carla, s), attach_to=self._ego
            )
            self._actors.append(sensor)
            self._sensors[s.id] = sensor
            sensor.listen(self._callback(s.id, s.type))
        collision = self._world.spawn_actor(
            library.find(COLLISION_SENSOR), self._carla.Transform(), attach_to=self._ego
        )
        self._actors.append(collision)
        self._sensors[COLLISION_SENSOR] = collision
        collision.listen(self._on_collision)

    def _on_collision(self, event: Any) -> None:
        other = event.other_actor
        self._collisions.append(CollisionHit(
            int(event.frame), int(other.id) if other is not None else -1,
            str(other.type_id) if other is not None else "",
        ))  # fmt: skip

    def _callback(self, sensor_id: str, kind: str) -> Any:
        def store(data: Any) -> None:
            if kind == CAMERA_RGB:
                value: Any = image_to_bgra(data.raw_data, data.height, data.width)
            elif kind == LIDAR:
                value = lidar_points(data.raw_data)
            elif kind == RADAR:
                value = radar_detections(data.raw_data)
            elif kind == GNSS:
                value = np.array([data.latitude, data.longitude, data.altitude], dtype=np.float64)
            else:
                a, g = data.accelerometer, data.gyroscope
                value = np.array([a.x, a.y, a.z, g.x, g.y, g.z, data.compass], dtype=np.float64)
            self._readings[sensor_id] = (int(data.frame), value)

        return store

    def _match_lights(self) -> None:
        """Pair each light of town.signals with the nearest CARLA traffic light actor."""
        tls = list(self._world.get_actors().filter("traffic.traffic_light"))
        xy = np.array([[t.get_location().x, t.get_location().y] for t in tls]).reshape(-1, 2)
        self._light_actors = []
        for p in self.town.signals.light_xy:
            d = np.hypot(*(xy - p).T) if len(xy) else np.zeros(0)
            self._light_actors.append(
                tls[int(np.argmin(d))] if d.size and d.min() < LIGHT_MATCH_M else None
            )

    def _drive_scripted(self) -> None:
        carla = self._carla
        for entry in self._scripted.values():
            c = entry.command
            if c is None:
                continue
            a = entry.actor
            tf = a.get_transform()
            yaw = math.radians(tf.rotation.yaw)
            speed = signed_speed(a.get_velocity(), yaw)
            path = np.asarray(c.path_xy, dtype=np.float64).reshape(-1, 2)
            if entry.kind == ActorKind.PEDESTRIAN:
                if len(path) == 0:
                    a.apply_control(carla.WalkerControl(speed=0.0))
                    continue
                d = np.hypot(*(path - [tf.location.x, tf.location.y]).T)
                k = min(int(np.argmin(d)) + 1, len(path) - 1)
                v = path[k] - [tf.location.x, tf.location.y]
                n = float(np.hypot(*v)) or 1.0
                a.apply_control(
                    carla.WalkerControl(
                        direction=carla.Vector3D(v[0] / n, v[1] / n, 0.0), speed=c.target_speed_mps
                    )
                )
                continue
            if len(path) < 2:
                a.apply_control(carla.VehicleControl(brake=1.0))
                continue
            yaw_path = np.arctan2(np.gradient(path[:, 1]), np.gradient(path[:, 0]))
            plan = PlannedTrajectory(
                np.column_stack([path, yaw_path]),
                dt_s=0.1,
                speeds_mps=np.full(len(path), c.target_speed_mps),
            )
            assert entry.pid is not None
            ctrl = self._tracker.control(
                entry.pid, [tf.location.x, tf.location.y, yaw], speed, plan, SIM_DT_S
            )
            a.apply_control(to_carla_control(carla, ctrl))

    def _commit(self) -> WorldState:
        state = self._assemble()
        assert self._detector is not None
        detected = self._detector.detect(self._state, state)
        a = state.actors
        now = [h for h in list(self._collisions) if h.frame <= self._frame]  # callbacks arrive late
        self._collisions = [h for h in self._collisions if h.frame > self._frame]
        events = tuple(e for e in detected if e.kind not in COLLISION_EVENTS) + collision_events(
            now, state.frame, state.time_s, (float(a.x[0]), float(a.y[0]))
        )
        state = replace(state, events=events) if events else state
        self._state = state
        return state

    def _assemble(self) -> WorldState:
        ego = self._require_episode()
        rows: list[tuple[Any, ...]] = []
        scripted = set(self._scripted)
        for a in [ego] + [a for a in self._world.get_actors() if a.id != ego.id]:
            tid = a.type_id
            if not tid.startswith(("vehicle.", "walker.pedestrian", "static.prop")):
                continue
            tf = a.get_transform()
            p = box_pose(tf, a.bounding_box)
            speed = signed_speed(a.get_velocity(), p.yaw)
            acc = a.get_acceleration()
            accel = float(acc.x) * math.cos(p.yaw) + float(acc.y) * math.sin(p.yaw)
            yaw_rate = math.radians(float(a.get_angular_velocity().z))
            role = ActorRole.EGO if a.id == ego.id else ActorRole.SCENARIO if a.id in scripted else (
                ActorRole.PEDESTRIAN if tid.startswith("walker.") else ActorRole.BACKGROUND)  # fmt: skip
            aid = 0 if a.id == ego.id else int(a.id)
            rows.append(
                (
                    aid,
                    int(kind_of(tid)),
                    int(role),
                    p.x,
                    p.y,
                    p.z,
                    p.yaw,
                    speed,
                    accel,
                    yaw_rate,
                    p.length,
                    p.width,
                    p.height,
                )
            )
        table = np.array(rows, dtype=np.float64)
        f = {name: table[:, k] for k, name in enumerate(
            ("actor_id", "kind", "role", "x", "y", "z", "yaw", "speed", "accel", "yaw_rate", "length", "width", "height"))}  # fmt: skip
        actors = ActorArrays(
            actor_id=f.pop("actor_id").astype(np.int64), kind=f.pop("kind").astype(np.int8),
            role=f.pop("role").astype(np.int8), valid=np.ones(len(rows), dtype=np.bool_), **f,
        )  # fmt: skip
        states = [LIGHT_STATE_FROM_CARLA.get(int(t.get_state()), LightState.OFF) if t is not None else LightState.OFF
                  for t in self._light_actors]  # fmt: skip
        elapsed = [
            float(t.get_elapsed_time()) if t is not None else 0.0 for t in self._light_actors
        ]
        frame = self._frame - self._frame0
        return WorldState(frame=frame, time_s=frame * SIM_DT_S, actors=actors,
                          light_state=np.array(states, dtype=np.int8), light_elapsed_s=np.array(elapsed))  # fmt: skip

    def _destroy_all(self) -> None:
        self._holds.release_all()
        for s in self._sensors.values():
            if s.is_listening:
                s.stop()
        for a in reversed(self._actors):
            if a.is_alive:
                a.destroy()
        self._actors.clear()
        self._sensors.clear()
        self._scripted.clear()
        self._ego = None
