"""Sensors of the embedded simulator: leaderboard sensor-spec validation, a software RGB camera,
a privileged BEV raster, the leaderboard's lidar and radar (rays against actor boxes and the
ground), GNSS / IMU / speedometer / OpenDRIVE readers, and the suite that turns a WorldState into
the agent's ``input_data``."""

from harness.sim.sensors.basic import (
    LEADERBOARD_NOISE,
    SensorNoise,
    compass_rad,
    gnss_reading,
    imu_reading,
    opendrive_reading,
    speedometer_reading,
)
from harness.sim.sensors.bev import BevChannel, BevRenderer, bev_to_rgb
from harness.sim.sensors.camera import CameraRenderer
from harness.sim.sensors.lidar import LEADERBOARD_LIDAR, Lidar, LidarConfig
from harness.sim.sensors.radar import LEADERBOARD_RADAR, Radar, RadarConfig
from harness.sim.sensors.raster import GroundClass, TownRaster, town_raster
from harness.sim.sensors.spec import SENSOR_LIMITS, SensorSpec, parse_sensor, validate_sensors
from harness.sim.sensors.suite import SensorSuite

__all__ = [
    "LEADERBOARD_LIDAR",
    "LEADERBOARD_NOISE",
    "LEADERBOARD_RADAR",
    "SENSOR_LIMITS",
    "BevChannel",
    "BevRenderer",
    "CameraRenderer",
    "GroundClass",
    "Lidar",
    "LidarConfig",
    "Radar",
    "RadarConfig",
    "SensorNoise",
    "SensorSpec",
    "SensorSuite",
    "TownRaster",
    "bev_to_rgb",
    "compass_rad",
    "gnss_reading",
    "imu_reading",
    "opendrive_reading",
    "parse_sensor",
    "speedometer_reading",
    "town_raster",
    "validate_sensors",
]
