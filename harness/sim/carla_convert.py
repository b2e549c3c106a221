"""Pure conversions between CARLA client objects and the harness's own types. The only module
besides the CARLA backend that touches ``carla.*``; everything here works without a server
(the ``carla`` wheel builds transforms, controls and bounding boxes offline)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.world.control import VehicleControl
from harness.world.state import ActorKind, Event, EventKind, LightState

# Blueprint ids the backend spawns for each actor kind (CARLA 0.9.16 ids).
EGO_BLUEPRINT = "vehicle.lincoln.mkz_2020"  # the leaderboard's / Bench2Drive's hero
BLUEPRINT_BY_KIND: dict[ActorKind, str] = {
    ActorKind.VEHICLE: "vehicle.lincoln.mkz_2017",
    ActorKind.PEDESTRIAN: "walker.pedestrian.0001",
    ActorKind.BICYCLE: "vehicle.diamondback.century",
    ActorKind.STATIC: "static.prop.constructioncone",
    ActorKind.EMERGENCY: "vehicle.dodge.charger_police_2020",
}
BICYCLE_TYPE_IDS = (
    "vehicle.bh.crossbike",
    "vehicle.diamondback.century",
    "vehicle.gazelle.omafiets",
)
EMERGENCY_TYPE_IDS = ("vehicle.dodge.charger_police", "vehicle.dodge.charger_police_2020",
                      "vehicle.ford.ambulance", "vehicle.carlamotors.firetruck")  # fmt: skip
LIGHT_STATE_FROM_CARLA = {
    0: LightState.RED,
    1: LightState.YELLOW,
    2: LightState.GREEN,
    3: LightState.OFF,
}


@dataclass(frozen=True)
class BoxPose:
    """An actor's bounding-box centre pose [m, rad] and box size [m] in the CARLA world frame."""

    x: float
    y: float
    z: float
    yaw: float
    length: float
    width: float
    height: float


def kind_of(type_id: str) -> ActorKind:
    """ActorKind for a CARLA blueprint / actor type id."""
    if type_id.startswith("walker."):
        return ActorKind.PEDESTRIAN
    if type_id in BICYCLE_TYPE_IDS or type_id.startswith(
        ("vehicle.bh.", "vehicle.diamondback.", "vehicle.gazelle.")
    ):
        return ActorKind.BICYCLE
    if type_id in EMERGENCY_TYPE_IDS:
        return ActorKind.EMERGENCY
    if type_id.startswith("vehicle."):
        return ActorKind.VEHICLE
    return ActorKind.STATIC


def box_pose(transform: Any, bounding_box: Any) -> BoxPose:
    """World pose of an actor's bounding-box centre: ``transform`` is the actor transform and
    ``bounding_box`` its local box (CARLA puts the box centre at bounding_box.location)."""
    centre = transform.transform(bounding_box.location)
    e = bounding_box.extent
    return BoxPose(float(centre.x), float(centre.y), float(centre.z), math.radians(transform.rotation.yaw),
                   2.0 * float(e.x), 2.0 * float(e.y), 2.0 * float(e.z))  # fmt: skip


def actor_transform_for_box(
    carla: Any, x: float, y: float, z: float, yaw_rad: float, bounding_box: Any
) -> Any:
    """The actor transform that puts its bounding-box centre at (x, y) with heading yaw (inverse
    of :func:`box_pose` in the plane; z is the ground height the actor is dropped onto)."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    bx, by = float(bounding_box.location.x), float(bounding_box.location.y)
    ox, oy = x - (c * bx - s * by), y - (s * bx + c * by)
    return carla.Transform(
        carla.Location(x=ox, y=oy, z=z), carla.Rotation(yaw=math.degrees(yaw_rad))
    )


def to_carla_control(carla: Any, control: VehicleControl) -> Any:
    """Our VehicleControl as a carla.VehicleControl (same fields)."""
    return carla.VehicleControl(
        throttle=float(control.throttle), steer=float(control.steer), brake=float(control.brake),
        hand_brake=bool(control.hand_brake), reverse=bool(control.reverse),
        manual_gear_shift=bool(control.manual_gear_shift), gear=int(control.gear),
    )  # fmt: skip


def signed_speed(velocity: Any, yaw_rad: float) -> float:
    """Speed [m/s] along the heading (negative when reversing) from a carla.Vector3D velocity."""
    return float(velocity.x) * math.cos(yaw_rad) + float(velocity.y) * math.sin(yaw_rad)


def image_to_bgra(raw: bytes | memoryview, height: int, width: int) -> NDArray[np.uint8]:
    """A carla.Image's raw_data as the leaderboard gives it: uint8 (H, W, 4) BGRA."""
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4).copy()


def sensor_transform(carla: Any, spec: Any) -> Any:
    """carla.Transform of a sensor mount (SensorSpec: metres and degrees, vehicle frame)."""
    return carla.Transform(
        carla.Location(x=spec.x, y=spec.y, z=spec.z),
        carla.Rotation(pitch=spec.pitch, roll=spec.roll, yaw=spec.yaw),
    )


# Blueprint attributes the leaderboard's agent wrapper sets per sensor type (strings, as
# ActorBlueprint.set_attribute wants them); cameras and radars add values from the agent's spec.
LIDAR_ATTRIBUTES: dict[str, str] = {
    "range": "85", "rotation_frequency": "10", "channels": "64", "upper_fov": "10",
    "lower_fov": "-30", "points_per_second": "600000", "atmosphere_attenuation_rate": "0.004",
    "dropoff_general_rate": "0.45", "dropoff_intensity_limit": "0.8", "dropoff_zero_intensity": "0.4",
}  # fmt: skip
RADAR_ATTRIBUTES: dict[str, str] = {"points_per_second": "1500", "range": "100"}
GNSS_ATTRIBUTES: dict[str, str] = {
    "noise_alt_stddev": "5e-06", "noise_lat_stddev": "5e-06", "noise_lon_stddev": "5e-06",
    "noise_alt_bias": "0.0", "noise_lat_bias": "0.0", "noise_lon_bias": "0.0",
}  # fmt: skip
IMU_ATTRIBUTES: dict[str, str] = {
    "noise_accel_stddev_x": "0.001", "noise_accel_stddev_y": "0.001", "noise_accel_stddev_z": "0.015",
    "noise_gyro_stddev_x": "0.001", "noise_gyro_stddev_y": "0.001", "noise_gyro_stddev_z": "0.001",
}  # fmt: skip


def sensor_attributes(spec: Any) -> dict[str, str]:
    """The blueprint attributes the leaderboard sets for a SensorSpec (empty for pseudo-sensors)."""
    if spec.type == "sensor.camera.rgb":
        return {"image_size_x": str(spec.width), "image_size_y": str(spec.height), "fov": str(spec.fov)}
    if spec.type == "sensor.lidar.ray_cast":
        return dict(LIDAR_ATTRIBUTES)
    if spec.type == "sensor.other.radar":
        return {"horizontal_fov": str(spec.horizontal_fov), "vertical_fov": str(spec.vertical_fov),
                **RADAR_ATTRIBUTES}  # fmt: skip
    if spec.type == "sensor.other.gnss":
        return dict(GNSS_ATTRIBUTES)
    if spec.type == "sensor.other.imu":
        return dict(IMU_ATTRIBUTES)
    return {}


def lidar_points(raw: bytes | memoryview) -> NDArray[np.float32]:
    """A carla.LidarMeasurement's raw_data as the leaderboard gives it: float32 (N, 4)
    [x, y, z, intensity] in the sensor frame."""
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 4).copy()


def radar_detections(raw: bytes | memoryview) -> NDArray[np.float32]:
    """A carla.RadarMeasurement's raw_data ([velocity, azimuth, altitude, depth] per detection)
    with the columns reversed, as the leaderboard's sensor interface hands it to agents."""
    return np.ascontiguousarray(np.flip(np.frombuffer(raw, dtype=np.float32).reshape(-1, 4), 1))


def collision_kind(type_id: str) -> EventKind:
    """The event kind of an ego collision with an actor of ``type_id`` (the leaderboard's
    CollisionTest: vehicles, walkers, everything else is the layout / a prop)."""
    if type_id.startswith("vehicle."):
        return EventKind.COLLISION_VEHICLE
    if type_id.startswith("walker."):
        return EventKind.COLLISION_PEDESTRIAN
    return EventKind.COLLISION_STATIC


@dataclass(frozen=True)
class CollisionHit:
    """One carla.CollisionEvent reduced to plain values: the server frame, the other actor's id
    (-1 when none) and its type id."""

    frame: int
    other_id: int
    type_id: str


def collision_events(
    hits: list[CollisionHit], frame: int, time_s: float, ego_xy: tuple[float, float]
) -> tuple[Event, ...]:
    """The ego's collision events of one tick from the collision sensor's reports of it: one per
    other actor (the sensor reports a contact on every physics sub-step), in report order."""
    seen: set[int] = set()
    out: list[Event] = []
    for h in hits:
        if h.other_id in seen:
            continue
        seen.add(h.other_id)
        out.append(Event(collision_kind(h.type_id), frame, time_s, ego_xy[0], ego_xy[1],
                         other_id=h.other_id, detail=h.type_id))  # fmt: skip
    return tuple(out)
