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
from harness.world.state import ActorKind, LightState

# Blueprint ids the backend spawns for each actor kind (CARLA 0.9.16 ids).
EGO_BLUEPRINT = "vehicle.lincoln.mkz_2017"
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
