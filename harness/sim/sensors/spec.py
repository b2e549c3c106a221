"""Sensor specifications parsed from an agent's ``sensors()`` list, checked against the leaderboard
rules before anything is built, so a bad list fails at reset with a message saying what to fix."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import SensorConfigError

CAMERA_RGB = "sensor.camera.rgb"
LIDAR = "sensor.lidar.ray_cast"
RADAR = "sensor.other.radar"
GNSS = "sensor.other.gnss"
IMU = "sensor.other.imu"
SPEEDOMETER = "sensor.speedometer"
OPENDRIVE_MAP = "sensor.opendrive_map"
BEV = "harness.bev"  # privileged top-down raster; never allowed for leaderboard agents

# Per-type instance limits of the leaderboard (agent_wrapper.SENSORS_LIMITS for cameras, lidar and
# radar; one of each pseudo/positional sensor, as our issue specifies).
SENSOR_LIMITS: dict[str, int] = {
    CAMERA_RGB: 8,
    LIDAR: 2,
    RADAR: 4,
    GNSS: 1,
    IMU: 1,
    SPEEDOMETER: 1,
    OPENDRIVE_MAP: 1,
}
PRIVILEGED_LIMITS: dict[str, int] = {BEV: 4}
MAX_MOUNT_RADIUS_M = 3.0  # [m] leaderboard: sqrt(x^2 + y^2 + z^2) <= 3, z included
MAX_IMAGE_SIDE_PX = 4096  # [px] beyond this a software renderer is pointless
MIN_FOV_DEG = 1.0  # [deg]
MAX_FOV_DEG = 179.0  # [deg] a pinhole camera cannot reach 180
MAX_RADAR_FOV_DEG = 179.0  # [deg] the radar's ray ellipse uses tan(fov / 2)
DEFAULT_BEV_SIZE_PX = 256  # [px]
DEFAULT_BEV_RESOLUTION_M = 0.25  # [m/px]


@dataclass(frozen=True)
class SensorSpec:
    """One declared sensor. The mount (x, y, z [m]; roll, pitch, yaw [deg], CARLA's Rotation
    convention) is relative to the ego's actor origin, which for CARLA vehicles is the bounding-box
    centre projected to the ground: x forward, y right, z up from the road surface. Cameras carry
    width/height [px] and horizontal fov [deg]; BEV specs reuse width/height and ``resolution_m``;
    radars carry ``horizontal_fov`` / ``vertical_fov`` [deg] (the lidar's attributes are the
    leaderboard's fixed ones, see :mod:`harness.sim.sensors.lidar`)."""

    type: str
    id: str
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    width: int = 0
    height: int = 0
    fov: float = 0.0
    reading_frequency: float = 20.0  # [Hz]
    resolution_m: float = DEFAULT_BEV_RESOLUTION_M  # [m/px] BEV only
    horizontal_fov: float = 0.0  # [deg] radar only
    vertical_fov: float = 0.0  # [deg] radar only

    @property
    def position(self) -> NDArray[np.float64]:
        """(3,) mount position in the ego frame [m]."""
        return np.array([self.x, self.y, self.z], dtype=np.float64)

    @property
    def rotation(self) -> NDArray[np.float64]:
        """(3, 3) sensor-to-ego rotation; columns are the sensor's x (forward), y (right), z (up)
        axes in the ego frame, the same matrix as ``carla.Transform.get_matrix()``."""
        return rotation_matrix(self.roll, self.pitch, self.yaw)


def rotation_matrix(roll_deg: float, pitch_deg: float, yaw_deg: float) -> NDArray[np.float64]:
    """CARLA/Unreal rotation (degrees) as a 3x3 matrix acting on column vectors (x fwd, y right, z up)."""
    r, p, y = np.radians([roll_deg, pitch_deg, yaw_deg])
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array(
        [
            [cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr],
            [cp * sy, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr],
            [sp, -cp * sr, cp * cr],
        ],
        dtype=np.float64,
    )


def _number(entry: Mapping[str, Any], key: str, sid: str, default: float | None = None) -> float:
    """A finite float field of a sensor dict, or SensorConfigError naming the sensor."""
    if key not in entry:
        if default is None:
            raise SensorConfigError(f"sensor '{sid}' ({entry.get('type')}) needs a '{key}' value")
        return default
    try:
        value = float(entry[key])
    except (TypeError, ValueError) as exc:
        raise SensorConfigError(
            f"sensor '{sid}': '{key}' must be a number, got {entry[key]!r}"
        ) from exc
    if not math.isfinite(value):
        raise SensorConfigError(f"sensor '{sid}': '{key}' must be finite, got {value}")
    return value


def _image_side(entry: Mapping[str, Any], key: str, sid: str) -> int:
    value = _number(entry, key, sid)
    if value != int(value) or not 1 <= value <= MAX_IMAGE_SIDE_PX:
        raise SensorConfigError(
            f"sensor '{sid}': '{key}' must be an integer in [1, {MAX_IMAGE_SIDE_PX}] px, got {entry[key]!r}"
        )
    return int(value)


def parse_sensor(entry: Mapping[str, Any]) -> SensorSpec:
    """One sensors() dict to a SensorSpec (type-specific required fields are checked here)."""
    sid = entry.get("id")
    if not isinstance(sid, str) or not sid:
        raise SensorConfigError(f"every sensor needs a non-empty string 'id'; got {entry!r}")
    stype = entry.get("type")
    allowed = sorted(SENSOR_LIMITS) + sorted(PRIVILEGED_LIMITS)
    if stype not in allowed:
        raise SensorConfigError(
            f"sensor '{sid}' has unknown type {stype!r}; allowed types are {', '.join(allowed)}"
        )
    pose: dict[str, Any] = {
        k: _number(entry, k, sid, 0.0) for k in ("x", "y", "z", "roll", "pitch", "yaw")
    }
    extra: dict[str, Any] = {}
    if stype == CAMERA_RGB:
        extra["width"] = _image_side(entry, "width", sid)
        extra["height"] = _image_side(entry, "height", sid)
        fov = _number(entry, "fov", sid)
        if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
            raise SensorConfigError(
                f"sensor '{sid}': fov must be in [{MIN_FOV_DEG}, {MAX_FOV_DEG}] degrees, got {fov}"
            )
        extra["fov"] = fov
    elif stype == RADAR:
        for key in ("horizontal_fov", "vertical_fov"):
            fov = _number(entry, key, sid)
            if not 0.0 < fov <= MAX_RADAR_FOV_DEG:
                raise SensorConfigError(
                    f"sensor '{sid}': {key} must be in (0, {MAX_RADAR_FOV_DEG}] degrees, got {fov}"
                )
            extra[key] = fov
    elif stype == OPENDRIVE_MAP:
        extra["reading_frequency"] = _number(entry, "reading_frequency", sid, 1.0)
    elif stype == BEV:
        extra["width"] = int(_number(entry, "width", sid, DEFAULT_BEV_SIZE_PX))
        extra["height"] = int(_number(entry, "height", sid, DEFAULT_BEV_SIZE_PX))
        extra["resolution_m"] = _number(entry, "resolution_m", sid, DEFAULT_BEV_RESOLUTION_M)
        if extra["resolution_m"] <= 0 or extra["width"] < 1 or extra["height"] < 1:
            raise SensorConfigError(
                f"sensor '{sid}': BEV needs width, height >= 1 and resolution_m > 0"
            )
    return SensorSpec(type=str(stype), id=sid, **pose, **extra)


def validate_sensors(
    sensors: Sequence[Mapping[str, Any]], *, privileged: bool = False
) -> tuple[SensorSpec, ...]:
    """Parse and check an agent's sensors() list against the leaderboard rules: known types,
    unique ids, per-type counts, mount radius sqrt(x^2+y^2+z^2) <= 3 m. ``privileged`` also allows
    the harness BEV sensor (teachers, debugging)."""
    specs = tuple(parse_sensor(entry) for entry in sensors)
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise SensorConfigError(
                f"duplicate sensor id '{spec.id}': give every sensor its own id"
            )
        seen.add(spec.id)
        if spec.type in PRIVILEGED_LIMITS and not privileged:
            raise SensorConfigError(
                f"sensor '{spec.id}' of type {spec.type} is privileged; agents may use only "
                f"{', '.join(sorted(SENSOR_LIMITS))}"
            )
        radius = math.sqrt(spec.x**2 + spec.y**2 + spec.z**2)
        if radius > MAX_MOUNT_RADIUS_M:
            raise SensorConfigError(
                f"sensor '{spec.id}' is mounted {radius:.2f} m from the vehicle origin; the leaderboard "
                f"allows at most {MAX_MOUNT_RADIUS_M} m (sqrt(x^2 + y^2 + z^2)): move it closer"
            )
    counts = Counter(spec.type for spec in specs)
    limits = {**SENSOR_LIMITS, **PRIVILEGED_LIMITS}
    for stype, count in counts.items():
        if count > limits[stype]:
            raise SensorConfigError(
                f"too many {stype} sensors: {count} declared, at most {limits[stype]} allowed"
            )
    return specs
