"""Non-imaging sensors in the leaderboard's input_data formats: GNSS [lat, lon, alt], IMU
[acc x, y, z, gyro x, y, z, compass], speedometer {'speed'} and the OpenDRIVE map {'opendrive'}.
Computed analytically from the ego's kinematic state; optional seeded Gaussian noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.geometry import TWO_PI
from harness.sim.sensors.spec import SensorSpec
from harness.world.state import EGO_INDEX, WorldState

GRAVITY_MPS2 = 9.81  # [m/s2] CARLA's IMU adds +9.81 on the world z axis


class GeoLike(Protocol):
    """The maps layer's GeoReference: world (..., 3) [m] -> (..., 3) [lat deg, lon deg, alt m]."""

    def to_gps(self, xyz: ArrayLike) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class SensorNoise:
    """Gaussian noise standard deviations; all zero (off) by default. ``LEADERBOARD_NOISE`` holds
    the values the leaderboard's agent wrapper sets on CARLA's sensors."""

    gnss_latlon_deg: float = 0.0  # [deg]
    gnss_alt_m: float = 0.0  # [m]
    accel_mps2: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [m/s2] x, y, z
    gyro_radps: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [rad/s] x, y, z

    @property
    def enabled(self) -> bool:
        return bool(
            self.gnss_latlon_deg or self.gnss_alt_m or any(self.accel_mps2) or any(self.gyro_radps)
        )


NO_NOISE = SensorNoise()
LEADERBOARD_NOISE = SensorNoise(
    gnss_latlon_deg=5e-6,
    gnss_alt_m=5e-6,
    accel_mps2=(0.001, 0.001, 0.015),
    gyro_radps=(0.001, 0.001, 0.001),
)


def _ego_pose(state: WorldState) -> tuple[float, float, float, float]:
    a = state.actors
    return (
        float(a.x[EGO_INDEX]),
        float(a.y[EGO_INDEX]),
        float(a.z[EGO_INDEX]),
        float(a.yaw[EGO_INDEX]),
    )


def sensor_location(state: WorldState, spec: SensorSpec) -> NDArray[np.float64]:
    """(3,) world position [m] of a sensor mounted at spec (x fwd, y right, z up) on the ego; the
    ego's z is taken as its origin height (flat embedded world: the road surface)."""
    x, y, z, yaw = _ego_pose(state)
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([x + c * spec.x - s * spec.y, y + s * spec.x + c * spec.y, z + spec.z])


def gnss_reading(
    state: WorldState,
    spec: SensorSpec,
    geo: GeoLike,
    noise: SensorNoise = NO_NOISE,
    rng: np.random.Generator | None = None,
) -> NDArray[np.float64]:
    """(3,) float64 [lat deg, lon deg, alt m] of the sensor's world position (leaderboard GPS)."""
    out = np.asarray(geo.to_gps(sensor_location(state, spec)[None, :]), dtype=np.float64).reshape(3)
    if rng is not None and noise.enabled:
        out += rng.normal(0.0, 1.0, 3) * (
            noise.gnss_latlon_deg,
            noise.gnss_latlon_deg,
            noise.gnss_alt_m,
        )
    return out


def compass_rad(yaw_rad: ArrayLike) -> NDArray[np.float64]:
    """CARLA's compass [rad] in [0, 2 pi): 0 = north (-y), pi/2 = east (+x), pi = south, 3 pi/2 = west;
    equal to CARLA's acos(north . forward) with the cross-product side test."""
    return np.mod(np.asarray(yaw_rad, dtype=np.float64) + np.pi / 2.0, TWO_PI)


def imu_reading(
    state: WorldState,
    spec: SensorSpec,
    noise: SensorNoise = NO_NOISE,
    rng: np.random.Generator | None = None,
) -> NDArray[np.float64]:
    """(7,) float64 [acc x, y, z [m/s2], gyro x, y, z [rad/s], compass [rad]] like CARLA's IMU.

    Ego-frame acceleration of the kinematic model: longitudinal ``accel``, lateral speed*yaw_rate
    (to the right for a right turn), +9.81 on z; expressed in the sensor frame (rotation of the
    mount). Gyro: (0, 0, yaw_rate) with yaw_rate = d(yaw)/dt (positive turning right, CARLA's
    frame), rotated by the mount as CARLA does. Lever-arm effects of an off-centre mount are ignored.
    """
    a = state.actors
    speed, accel, yaw_rate = (
        float(a.speed[EGO_INDEX]),
        float(a.accel[EGO_INDEX]),
        float(a.yaw_rate[EGO_INDEX]),
    )
    mount = spec.rotation  # sensor -> ego
    acc = mount.T @ np.array([accel, speed * yaw_rate, GRAVITY_MPS2])
    gyro = mount @ np.array([0.0, 0.0, yaw_rate])
    if rng is not None and noise.enabled:
        acc = acc + rng.normal(0.0, 1.0, 3) * np.asarray(noise.accel_mps2)
        gyro = gyro + rng.normal(0.0, 1.0, 3) * np.asarray(noise.gyro_radps)
    forward_ego = mount[:, 0]
    heading = float(a.yaw[EGO_INDEX]) + float(np.arctan2(forward_ego[1], forward_ego[0]))
    return np.concatenate([acc, gyro, [float(compass_rad(heading))]])


def speedometer_reading(state: WorldState) -> dict[str, float]:
    """{'speed': m/s}: the ego's signed speed along its heading, as the leaderboard's SpeedometerReader."""
    return {"speed": float(state.actors.speed[EGO_INDEX])}


def opendrive_reading(xodr: str) -> dict[str, str]:
    """{'opendrive': the town's OpenDRIVE text}, as the leaderboard's OpenDriveMapReader."""
    return {"opendrive": xodr}
