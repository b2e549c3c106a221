"""NAVSIM's PDMS thresholds in one place, below both scorers that read them: the teacher scorer
(:mod:`teachers.scoring`) and the expert's light proposal scorer (:mod:`harness.planning.scoring`).

Comfort bounds (C, NAVSIM v1; REFERENCE.md section 2) are strict: a signal passes when it lies
inside the open interval. The EC limits (NAVSIM v2) bound the RMS differences between two
consecutive plans over their overlap. The remaining constants are the PDMS rules both scorers
share: the speed at which a vehicle counts as stopped, the TTC look-ahead, EP's minimum progress
and the weights of the PDMS weighted mean.
"""

from __future__ import annotations

# C: bounds on the filtered signals of a simulated trajectory
MIN_LON_ACCEL_MPS2 = -4.05  # [m/s2] longitudinal acceleration, lower bound
MAX_LON_ACCEL_MPS2 = 2.40  # [m/s2] longitudinal acceleration, upper bound
MAX_ABS_LAT_ACCEL_MPS2 = 4.89  # [m/s2] |lateral acceleration|
MAX_ABS_JERK_MPS3 = 8.37  # [m/s3] |jerk|, magnitude of the acceleration's derivative
MAX_ABS_LON_JERK_MPS3 = 4.13  # [m/s3] |longitudinal jerk|
MAX_ABS_YAW_RATE_RADPS = 0.95  # [rad/s] |yaw rate|
MAX_ABS_YAW_ACCEL_RADPS2 = 1.93  # [rad/s2] |yaw acceleration|

# EC: RMS differences between the current plan and the previous one over their overlap
EC_ACCEL_RMS_MPS2 = 0.7  # [m/s2] acceleration magnitude
EC_JERK_RMS_MPS3 = 0.5  # [m/s3] jerk magnitude
EC_YAW_RATE_RMS_RADPS = 0.1  # [rad/s] yaw rate
EC_YAW_ACCEL_RMS_RADPS2 = 0.1  # [rad/s2] yaw acceleration

# PDMS rules shared by both scorers
STOPPED_SPEED_MPS = 0.05  # [m/s] at or below this speed a vehicle counts as stopped (nuPlan's)
TTC_HORIZON_S = 0.9  # [s] longest TTC projection of the ego box
EP_MIN_PROGRESS_M = 5.0  # [m] below this best progress every proposal gets EP = 1
EP_WEIGHT = 5.0  # [-] weight of EP in the PDMS weighted mean
TTC_WEIGHT = 5.0  # [-] weight of TTC
COMFORT_WEIGHT = 2.0  # [-] weight of C
