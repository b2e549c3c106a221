"""The embedded ``sensor.lidar.ray_cast``: CARLA's rotating lidar cast against the actor boxes
and the flat ground, with the attributes the leaderboard sets (agent_wrapper: 64 channels, 85 m,
10 Hz rotation, 600,000 points/s, fov +10 / -30 deg, CARLA's intensity and drop-off model).

At 20 Hz one tick scans rotation_frequency x dt x 360 = 180 deg: the first frame from 0 deg, each
next one where the last ended (as CARLA's Lidar.cpp does). The output is what the leaderboard
hands the agent: float32 (N, 4) [x, y, z, intensity] in the sensor frame (x forward, y right,
z up), channel by channel, each channel in scan order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.sim.sensors.raycast import NO_HIT, boxes_in_reach, cast_rays, ego_frame_boxes
from harness.sim.sensors.spec import SensorSpec
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S


@dataclass(frozen=True)
class LidarConfig:
    """Lidar blueprint attributes; the defaults are the values the leaderboard's agent wrapper
    sets for every ``sensor.lidar.ray_cast`` (the agent's own values are not used)."""

    channels: int = 64
    range_m: float = 85.0  # [m]
    rotation_frequency_hz: float = 10.0  # [Hz]
    points_per_second: int = 600_000
    upper_fov_deg: float = 10.0  # [deg]
    lower_fov_deg: float = -30.0  # [deg]
    atmosphere_attenuation_rate: float = 0.004  # [1/m] intensity = exp(-rate * distance)
    dropoff_general_rate: float = 0.45  # share of points dropped at random
    dropoff_intensity_limit: float = 0.8  # points above this intensity are never dropped
    dropoff_zero_intensity: float = 0.4  # keep probability of a zero-intensity point

    @property
    def points_per_channel(self) -> int:
        """Points one laser scans per tick (CARLA rounds half away from zero)."""
        return int(np.floor(self.points_per_second * SIM_DT_S / self.channels + 0.5))

    @property
    def tick_angle_deg(self) -> float:
        """[deg] horizontal angle swept in one tick."""
        return 360.0 * self.rotation_frequency_hz * SIM_DT_S

    @property
    def channel_angles_deg(self) -> NDArray[np.float64]:
        """(channels,) laser elevations [deg], upper fov first."""
        if self.channels == 1:
            return np.array([self.upper_fov_deg])
        return np.linspace(self.upper_fov_deg, self.lower_fov_deg, self.channels)


MAX_CACHED_PATTERNS = 8  # ray patterns kept per lidar (a rotation that is no divisor of 360 deg has many)

LEADERBOARD_LIDAR = LidarConfig()
NO_DROPOFF = {"dropoff_general_rate": 0.0, "dropoff_zero_intensity": 1.0}
"""LidarConfig overrides that keep every hit (geometry tests)."""


class Lidar:
    """One lidar mounted on the ego (``spec``: position [m] and rotation [deg], ego frame). The
    ray pattern in the sensor frame is built once; each read rotates it to the frame's start
    angle, casts, and applies the drop-off with the suite's generator."""

    def __init__(self, spec: SensorSpec, config: LidarConfig = LEADERBOARD_LIDAR) -> None:
        self.spec, self.config = spec, config
        n = config.points_per_channel
        self._step_rad = np.radians(config.tick_angle_deg / max(n, 1))
        elev = np.radians(config.channel_angles_deg)
        self._elev = np.repeat(elev, n)  # (channels * n,) channel-major
        self._index = np.tile(np.arange(n, dtype=np.float64), config.channels)
        self._rotation = spec.rotation
        self._position = spec.position
        self._patterns: dict[float, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}

    def start_angle_deg(self, frame: int) -> float:
        """[deg] horizontal angle where the scan of ``frame`` starts (0 on frame 0)."""
        return float((frame * self.config.tick_angle_deg) % 360.0)

    def directions(self, frame: int) -> NDArray[np.float64]:
        """(channels * points_per_channel, 3) unit ray directions in the sensor frame."""
        return self._pattern(frame)[0]

    def _pattern(self, frame: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The frame's ray directions in the sensor and in the ego frame, cached per start angle
        (at the leaderboard's 10 Hz rotation there are two: 0 and 180 deg)."""
        start = self.start_angle_deg(frame)
        cached = self._patterns.get(start)
        if cached is None:
            azimuth = np.radians(start) + self._step_rad * self._index
            ce = np.cos(self._elev)
            d = np.stack([ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(self._elev)], -1)
            cached = (d, np.ascontiguousarray(d @ self._rotation.T))
            if len(self._patterns) < MAX_CACHED_PATTERNS:
                self._patterns[start] = cached
        return cached

    def read(self, state: WorldState, rng: np.random.Generator | None) -> NDArray[np.float32]:
        """float32 (N, 4) [x, y, z, intensity] of this frame's hits (sensor frame); ``rng``
        drives the drop-off (None: no drop-off, every hit kept)."""
        cfg = self.config
        d_sensor, d_ego = self._pattern(int(state.frame))
        boxes = boxes_in_reach(ego_frame_boxes(state), self._position, cfg.range_m)
        dist, hit = cast_rays(self._position, d_ego, cfg.range_m, boxes)
        idx = np.flatnonzero(hit != NO_HIT)
        dist = dist[idx]
        intensity = np.exp(-cfg.atmosphere_attenuation_rate * dist)
        if rng is not None:
            u_general = rng.random(len(idx))
            u_intensity = rng.random(len(idx))
            alpha = (1.0 - cfg.dropoff_zero_intensity) / cfg.dropoff_intensity_limit
            keep = u_general >= cfg.dropoff_general_rate
            keep &= (intensity > cfg.dropoff_intensity_limit) | (
                u_intensity < alpha * intensity + cfg.dropoff_zero_intensity
            )
            idx, dist, intensity = idx[keep], dist[keep], intensity[keep]
        points = np.empty((len(idx), 4), dtype=np.float32)
        points[:, :3] = d_sensor[idx] * dist[:, None]
        points[:, 3] = intensity
        return points
