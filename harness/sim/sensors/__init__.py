"""Sensors of the embedded simulator: leaderboard sensor-spec validation, a software RGB camera,
a privileged BEV raster, GNSS / IMU / speedometer / OpenDRIVE readers, and the suite that turns a
WorldState into the agent's ``input_data``."""

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
from harness.sim.sensors.raster import GroundClass, TownRaster, town_raster
from harness.sim.sensors.spec import SENSOR_LIMITS, SensorSpec, parse_sensor, validate_sensors
from harness.sim.sensors.suite import SensorSuite

__all__ = [
    "LEADERBOARD_NOISE",
    "SENSOR_LIMITS",
    "BevChannel",
    "BevRenderer",
    "CameraRenderer",
    "GroundClass",
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
