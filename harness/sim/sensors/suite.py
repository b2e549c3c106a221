"""The embedded simulator's sensor rig: built once per episode from validated specs, then read
every tick into the leaderboard's ``input_data`` form {sensor_id: (frame, data)}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from harness.errors import SensorConfigError
from harness.sim.sensors.basic import (
    NO_NOISE,
    SensorNoise,
    gnss_reading,
    imu_reading,
    opendrive_reading,
    speedometer_reading,
)
from harness.sim.sensors.bev import BevRenderer
from harness.sim.sensors.camera import CameraRenderer
from harness.sim.sensors.lidar import Lidar
from harness.sim.sensors.radar import Radar
from harness.sim.sensors.raster import DEFAULT_RESOLUTION_M, TownRaster, town_raster
from harness.sim.sensors.spec import (
    BEV,
    CAMERA_RGB,
    GNSS,
    IMU,
    LIDAR,
    OPENDRIVE_MAP,
    RADAR,
    SPEEDOMETER,
    SensorSpec,
    validate_sensors,
)
from harness.world.state import WorldState

log = logging.getLogger(__name__)

RAY_STREAM = 7  # second SeedSequence word of the lidar / radar generator (noise uses the seed alone)


class TownLike(Protocol):
    """What the sensors read from a maps-layer Town."""

    @property
    def name(self) -> str: ...
    @property
    def xodr(self) -> str: ...
    @property
    def area(self) -> Any: ...  # DrivableArea: drivable, sidewalks, markings
    @property
    def signals(self) -> Any: ...  # SignalSet
    @property
    def geo(self) -> Any: ...  # GeoReference: to_gps(xyz)


class SensorSuite:
    """All sensors of one agent on the embedded simulator. Cameras and BEVs share the town's
    raster (built once per process); lidars and radars cast rays against the actor boxes and the
    flat ground (their drop-off and ray directions drawn from a generator seeded by ``seed``)."""

    def __init__(
        self,
        town: TownLike,
        specs: Sequence[SensorSpec],
        *,
        route_xy: NDArray[np.float64] | None = None,
        noise: SensorNoise = NO_NOISE,
        seed: int = 0,
        raster_resolution_m: float = DEFAULT_RESOLUTION_M,
        raster: TownRaster | None = None,
    ):
        self.town, self.specs = town, tuple(specs)
        self.route_xy = route_xy
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self._ray_rng = np.random.default_rng([seed, RAY_STREAM])  # lidar / radar only
        needs_raster = any(s.type in (CAMERA_RGB, BEV) for s in specs)
        self.raster = (
            raster
            if raster is not None or not needs_raster
            else town_raster(town, raster_resolution_m)
        )
        self._cameras: dict[str, CameraRenderer] = {}
        self._bevs: dict[str, BevRenderer] = {}
        self._lidars = {s.id: Lidar(s) for s in specs if s.type == LIDAR}
        self._radars = {s.id: Radar(s) for s in specs if s.type == RADAR}
        signals = getattr(town, "signals", None)
        for s in specs:
            if s.type == CAMERA_RGB and self.raster is not None:
                self._cameras[s.id] = CameraRenderer(self.raster, s, signals)
            elif s.type == BEV and self.raster is not None:
                self._bevs[s.id] = BevRenderer(
                    self.raster, signals, s.height, s.width, s.resolution_m
                )
        log.debug("sensor suite: %d sensors (%d cameras)", len(specs), len(self._cameras))

    @classmethod
    def from_sensor_dicts(
        cls,
        town: TownLike,
        sensors: Sequence[Mapping[str, Any]],
        *,
        privileged: bool = False,
        **kwargs: Any,
    ) -> SensorSuite:
        """Validate an agent's sensors() list (leaderboard rules) and build the suite."""
        return cls(town, validate_sensors(sensors, privileged=privileged), **kwargs)

    def read(self, state: WorldState) -> dict[str, tuple[int, Any]]:
        """Every sensor for this tick: {id: (frame, data)} with the leaderboard's data formats."""
        frame = int(state.frame)
        noisy = self._rng if self.noise.enabled else None
        out: dict[str, tuple[int, Any]] = {}
        for s in self.specs:
            data: Any
            if s.type == CAMERA_RGB:
                data = self._cameras[s.id].render(state)
            elif s.type == GNSS:
                data = gnss_reading(state, s, self.town.geo, self.noise, noisy)
            elif s.type == IMU:
                data = imu_reading(state, s, self.noise, noisy)
            elif s.type == SPEEDOMETER:
                data = speedometer_reading(state)
            elif s.type == OPENDRIVE_MAP:
                data = opendrive_reading(self.town.xodr)
            elif s.type == BEV:
                data = self._bevs[s.id].render(state, self.route_xy)
            elif s.type == LIDAR:
                data = self._lidars[s.id].read(state, self._ray_rng)
            elif s.type == RADAR:
                data = self._radars[s.id].read(state, self._ray_rng)
            else:
                raise SensorConfigError(
                    f"sensor '{s.id}': type {s.type} is not produced by the embedded simulator"
                )
            out[s.id] = (frame, data)
        return out
