"""The leaderboard's agent base class, as agent files of the CARLA leaderboard 2.0 and of
Bench2Drive expect it.

- ``set_global_plan(gps, world)`` receives the dense route (every route point:
  ``({'lat', 'lon', 'z'}, RoadOption)`` and ``(carla.Transform, RoadOption)``) and keeps the
  points ``downsample_route`` picks every ``global_plan_sample_m`` metres in ``_global_plan`` and
  ``_global_plan_world_coord``; Bench2Drive's ``_plan_gps_HACK`` keeps the dense GPS route.
  The leaderboard 2.0 cuts at 200 m and Bench2Drive at 50 m; the harness sets the distance of
  the run's mode (``--mode leaderboard`` / ``bench2drive``) before handing the plan over.
- ``__init__`` looks up the hero (role_name 'hero') in ``CarlaDataProvider.get_world()`` as
  Bench2Drive's does (``hero_actor``; None when no world is set); ``get_metric_info()`` reads it.
- ``__call__()`` collects the frame ``GameTime.get_frame()`` from ``sensor_interface`` and calls
  ``run_step(input_data, GameTime.get_time())``; the leaderboard prints its timing line every
  tick, this one logs it at DEBUG.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

import carla

from leaderboard.envs.sensor_interface import SensorInterface
from leaderboard.utils.route_manipulation import downsample_route
from srunner.scenariomanager.carla_data_provider import CarlaDataProvider
from srunner.scenariomanager.timer import GameTime

log = logging.getLogger(__name__)

BENCH2DRIVE_PLAN_SAMPLE_M = 50.0  # [m] Bench2Drive's cut of the global plan
LEADERBOARD_PLAN_SAMPLE_M = 200.0  # [m] the leaderboard 2.0's


class Track(Enum):
    """Leaderboard tracks (Bench2Drive's fork adds the qualifier tracks)."""

    SENSORS = "SENSORS"
    MAP = "MAP"
    SENSORS_QUALIFIER = "SENSORS_QUALIFIER"
    MAP_QUALIFIER = "MAP_QUALIFIER"


class AutonomousAgent:
    """Base class of leaderboard agents: override ``setup``, ``sensors``, ``run_step`` and
    ``destroy``."""

    def __init__(self, carla_host: Any, carla_port: Any, debug: bool = False) -> None:
        self.track = Track.SENSORS
        self._global_plan: list[tuple[dict[str, float], Any]] | None = None
        self._global_plan_world_coord: list[tuple[Any, Any]] | None = None
        self.sensor_interface = SensorInterface()
        self.wallclock_t0: Any = None
        self.global_plan_sample_m = BENCH2DRIVE_PLAN_SAMPLE_M
        self.get_hero()

    def setup(self, path_to_conf_file: str) -> None:
        """Load the agent's configuration; set ``self.track``."""

    def sensors(self) -> list[dict[str, Any]]:
        """The sensor suite: leaderboard sensor dicts (type, id, x, y, z, roll, pitch, yaw, ...)."""
        return []

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> Any:
        """One step: a released vehicle (no throttle, no brake, no steer)."""
        control = carla.VehicleControl()
        control.steer = 0.0
        control.throttle = 0.0
        control.brake = 0.0
        control.hand_brake = False
        return control

    def destroy(self) -> None:
        """Release what ``setup`` acquired."""

    def __call__(self) -> Any:
        """The evaluator's call each tick: this frame's sensor data -> ``run_step`` -> control
        with ``manual_gear_shift`` off."""
        input_data = self.sensor_interface.get_data(GameTime.get_frame())
        timestamp = GameTime.get_time()
        wallclock = GameTime.get_wallclocktime()
        if not self.wallclock_t0:
            self.wallclock_t0 = wallclock
        if wallclock is not None and self.wallclock_t0 is not None:
            wall_s = (wallclock - self.wallclock_t0).total_seconds()
            ratio = 0.0 if wall_s == 0 else timestamp / wall_s
            log.debug(
                "[Agent] wallclock %s, system time %.3f s, game time %.3f s, ratio %.3fx",
                wallclock, wall_s, timestamp, ratio,
            )  # fmt: skip
        control = self.run_step(input_data, timestamp)
        if isinstance(control, carla.VehicleControl):
            control.manual_gear_shift = False
        return control

    @staticmethod
    def get_ros_version() -> int:
        return -1

    def set_global_plan(
        self,
        global_plan_gps: list[tuple[dict[str, float], Any]],
        global_plan_world_coord: list[Any],
    ) -> None:
        """Keep the downsampled route (see the module docstring)."""
        ds_ids = downsample_route(global_plan_world_coord, self.global_plan_sample_m)
        self._global_plan_world_coord = [
            (global_plan_world_coord[i][0], global_plan_world_coord[i][1]) for i in ds_ids
        ]
        self._global_plan = [global_plan_gps[i] for i in ds_ids]
        self._plan_gps_HACK = global_plan_gps

    def get_hero(self) -> None:
        """``self.hero_actor``: the world's actor with role_name 'hero' (None without one)."""
        self.hero_actor = CarlaDataProvider.get_hero_actor()

    def get_metric_info(self) -> dict[str, list[float]]:
        """Bench2Drive's per-step record of the hero: acceleration, angular velocity, forward and
        right vectors, location, rotation [roll, pitch, yaw]."""

        def xyz(v: Any) -> list[float]:
            return [v.x, v.y, v.z]

        hero = self.hero_actor
        transform = hero.get_transform()
        rot = transform.rotation
        return {
            "acceleration": xyz(hero.get_acceleration()),
            "angular_velocity": xyz(hero.get_angular_velocity()),
            "forward_vector": xyz(transform.get_forward_vector()),
            "right_vector": xyz(transform.get_right_vector()),
            "location": xyz(transform.location),
            "rotation": [rot.roll, rot.pitch, rot.yaw],
        }
