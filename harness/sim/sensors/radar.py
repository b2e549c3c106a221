"""The embedded ``sensor.other.radar``: CARLA's radar cast against the actor boxes and the flat
ground. Each tick casts points_per_second x dt rays (the leaderboard sets 1500 points/s and a
100 m range; the agent gives horizontal_fov and vertical_fov) towards random points of the
ellipse (range, r cos a tan(hfov/2) range, r sin a tan(vfov/2) range) in the sensor frame, r and a
uniform, as CARLA's Radar.cpp does. A hit gives a detection [velocity, azimuth, altitude, depth]:
relative velocity (v_target - v_radar) along the ray [m/s] (negative when closing in), azimuth and
altitude of the ray [rad] (azimuth positive to the right), distance [m]. The leaderboard reverses
the columns before handing them to the agent: input_data holds [depth, altitude, azimuth,
velocity] as float32 (N, 4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.sim.sensors.raycast import (
    GROUND_HIT,
    NO_HIT,
    boxes_in_reach,
    cast_rays,
    ego_frame_boxes,
)
from harness.sim.sensors.spec import SensorSpec
from harness.world.state import EGO_INDEX, WorldState
from harness.world.timing import SIM_DT_S


@dataclass(frozen=True)
class RadarConfig:
    """Radar blueprint attributes the leaderboard sets (the fovs come from the agent's spec)."""

    range_m: float = 100.0  # [m]
    points_per_second: int = 1500

    @property
    def rays_per_tick(self) -> int:
        return int(self.points_per_second * SIM_DT_S)


LEADERBOARD_RADAR = RadarConfig()


def detections_to_input_data(detections: NDArray[np.float32]) -> NDArray[np.float32]:
    """CARLA's raw detection rows [velocity, azimuth, altitude, depth] in the column order the
    leaderboard's sensor interface delivers (np.flip over the columns)."""
    return np.ascontiguousarray(np.flip(detections, 1))


class Radar:
    """One radar on the ego (``spec``: mount and horizontal_fov / vertical_fov [deg])."""

    def __init__(self, spec: SensorSpec, config: RadarConfig = LEADERBOARD_RADAR) -> None:
        self.spec, self.config = spec, config
        self._rotation = spec.rotation
        self._position = spec.position
        self._max_y = np.tan(np.radians(spec.horizontal_fov) / 2.0) * config.range_m
        self._max_z = np.tan(np.radians(spec.vertical_fov) / 2.0) * config.range_m

    def ray_directions(self, radius: NDArray[np.float64], angle: NDArray[np.float64]) -> NDArray[np.float64]:
        """(N, 3) unit directions in the sensor frame for ellipse coordinates r in [0, 1) and
        a [rad]."""
        end = np.stack([
            np.full(radius.shape, self.config.range_m),
            self._max_y * radius * np.cos(angle),
            self._max_z * radius * np.sin(angle),
        ], -1)  # fmt: skip
        return end / np.linalg.norm(end, axis=1, keepdims=True)

    def detect(self, state: WorldState, d_sensor: NDArray[np.float64]) -> NDArray[np.float32]:
        """Raw CARLA detections float32 (M, 4) [velocity, azimuth, altitude, depth] of rays
        ``d_sensor`` (N, 3) (sensor frame); rays that hit nothing give none."""
        cfg = self.config
        boxes = boxes_in_reach(ego_frame_boxes(state), self._position, cfg.range_m)
        d_ego = d_sensor @ self._rotation.T
        dist, hit = cast_rays(self._position, d_ego, cfg.range_m, boxes)
        keep = hit != NO_HIT
        a = state.actors
        ego_v = np.array([float(a.speed[EGO_INDEX]), 0.0, 0.0])  # ego frame, along its heading
        target_v = np.zeros((len(hit), 3))
        on_box = keep & (hit != GROUND_HIT)
        target_v[on_box, 0] = boxes.vx[hit[on_box]]
        target_v[on_box, 1] = boxes.vy[hit[on_box]]
        velocity = np.einsum("ij,ij->i", target_v - ego_v, d_ego)
        azimuth = np.arctan2(d_sensor[:, 1], d_sensor[:, 0])
        altitude = np.arctan2(d_sensor[:, 2], np.hypot(d_sensor[:, 0], d_sensor[:, 1]))
        return np.stack([velocity, azimuth, altitude, dist], -1)[keep].astype(np.float32)

    def read(self, state: WorldState, rng: np.random.Generator) -> NDArray[np.float32]:
        """This tick's detections as the agent receives them ([depth, altitude, azimuth, velocity])."""
        n = self.config.rays_per_tick
        radius = rng.random(n)
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        return detections_to_input_data(self.detect(state, self.ray_directions(radius, angle)))
