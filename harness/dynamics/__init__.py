"""Vehicle dynamics: parameters, driver controls, the batched kinematic bicycle and trackers."""

from harness.dynamics.bicycle import BicycleState, step
from harness.dynamics.control import control_to_command
from harness.dynamics.lqr import NAVSIM_BICYCLE, LQRConfig, StateIndex, lqr_rollout
from harness.dynamics.tracking import (
    PIDState,
    PlannedTrajectory,
    PurePursuitPID,
    PurePursuitPIDConfig,
)
from harness.dynamics.vehicle import (
    CARLA_DEFAULT_CAR,
    LINCOLN_MKZ_2017,
    MKZ_SPEED_AFTER_5S_MPS,
    MKZ_TIME_0_TO_100_KMH_S,
    WALKER,
    BoxDims,
    VehicleParams,
)
from harness.world.control import VehicleControl

__all__ = [
    "CARLA_DEFAULT_CAR",
    "LINCOLN_MKZ_2017",
    "MKZ_SPEED_AFTER_5S_MPS",
    "MKZ_TIME_0_TO_100_KMH_S",
    "NAVSIM_BICYCLE",
    "WALKER",
    "BicycleState",
    "BoxDims",
    "LQRConfig",
    "PIDState",
    "PlannedTrajectory",
    "PurePursuitPID",
    "PurePursuitPIDConfig",
    "StateIndex",
    "VehicleControl",
    "VehicleParams",
    "control_to_command",
    "lqr_rollout",
    "step",
]
