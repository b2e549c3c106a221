"""Vehicle parameters: body box, wheelbase, steering, powertrain and actuator lags.

All poses in the harness refer to the centre of the bounding box; the kinematic bicycle turns about
the rear axle, which sits ``rear_axle_to_center_m`` behind that centre along the heading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from harness.errors import ConfigError

GRAVITY_MPS2 = 9.81  # [m/s2]
AIR_DENSITY_KGPM3 = 1.225  # [kg/m3] sea level, 15 degC


@dataclass(frozen=True)
class BoxDims:
    """Size of an agent's bounding box (CARLA extent x 2); length along the heading."""

    length_m: float
    width_m: float
    height_m: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigError(
                    f"BoxDims.{f.name} must be a positive finite number, got {value!r}"
                )


@dataclass(frozen=True)
class VehicleParams:
    """Geometry, powertrain and actuator model of one vehicle (SI units, see field suffixes).

    Longitudinal model: traction accel ``throttle * min(max_accel_mps2, power_per_mass_wpkg / |v|)``;
    brake decel ``brake * max_brake_mps2``; resistance ``rolling_resistance_mps2 + drag_per_m * v^2``
    always opposing motion. Commands reach the vehicle through first-order lags (tau_*).
    """

    length_m: float  # bounding-box length (CARLA extent.x * 2)
    width_m: float  # bounding-box width (CARLA extent.y * 2)
    height_m: float  # bounding-box height (CARLA extent.z * 2)
    wheelbase_m: float  # front axle to rear axle
    rear_axle_to_center_m: float  # rear axle to box centre, along the heading (>= 0)
    max_steer_rad: float  # effective road-wheel angle at steer = +-1
    max_steer_rate_radps: float  # road-wheel angle rate limit (inf = none)
    max_accel_mps2: float  # traction limit at low speed (a0)
    power_per_mass_wpkg: float  # wheel power / mass: traction accel <= P/m / v above a0
    max_brake_mps2: float  # decel at brake = 1
    hand_brake_mps2: float  # decel with the hand brake (rear wheels locked)
    rolling_resistance_mps2: float  # c_rr * g
    drag_per_m: float  # 0.5 rho Cd A / m: drag decel = drag_per_m * v^2
    top_speed_mps: float  # forward speed cap
    max_reverse_speed_mps: float  # backward speed cap (magnitude)
    tau_accel_s: float  # first-order lag of the realised acceleration
    tau_steer_s: float  # first-order lag of the road-wheel angle

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if math.isnan(value) or value < 0.0:
                raise ConfigError(f"VehicleParams.{f.name} must be >= 0, got {value!r}")
        for name in ("length_m", "width_m", "height_m", "wheelbase_m", "max_steer_rad"):
            if not (0.0 < getattr(self, name) < math.inf):
                raise ConfigError(f"VehicleParams.{name} must be positive and finite")
        if self.max_steer_rad >= math.pi / 2:
            raise ConfigError("VehicleParams.max_steer_rad must be below pi/2 (a road-wheel angle)")
        if self.tau_accel_s <= 0.0 or self.tau_steer_s <= 0.0:
            raise ConfigError("VehicleParams lags tau_accel_s and tau_steer_s must be positive")

    @property
    def dims(self) -> BoxDims:
        """The bounding box as :class:`BoxDims`."""
        return BoxDims(self.length_m, self.width_m, self.height_m)

    @property
    def min_turn_radius_m(self) -> float:
        """Rear-axle turning radius at full lock: wheelbase / tan(max_steer)."""
        return self.wheelbase_m / math.tan(self.max_steer_rad)


_MKZ_MASS_KG = 1700.0  # [kg] MKZ 2017 2.0T curb weight + driver
_MKZ_CD_A_M2 = 0.30 * 2.3  # [m2] drag coefficient ~0.30 x frontal area ~2.3 m2

LINCOLN_MKZ_2017 = VehicleParams(
    # CARLA vehicle.lincoln.mkz_2017 bounding box extent (2.4508, 1.0641, 0.7553) m.
    length_m=4.9016,
    width_m=2.1282,
    height_m=1.5106,
    wheelbase_m=2.85,  # real MKZ: 112.2 in
    # Real MKZ rear overhang ~44 in (1.13 m): the rear axle is 2.45 - 1.13 = 1.32 m behind centre.
    rear_axle_to_center_m=1.32,
    # CARLA's wheel max_steer_angle is 70 deg, but the road-wheel angle reached is lower; 0.61 rad
    # (35 deg) reproduces the MKZ's 11.4 m curb-to-curb turning circle (rear-axle radius 4.1 m).
    max_steer_rad=0.61,
    # ~1 rad/s road wheel ~ 860 deg/s at the steering wheel (ratio ~15:1): brisk evasive steering.
    max_steer_rate_radps=1.0,
    max_accel_mps2=3.8,  # traction-limited launch, ~0.39 g
    # 245 hp (183 kW) engine, ~75 % reaching the wheels, / 1700 kg.
    power_per_mass_wpkg=80.0,
    max_brake_mps2=8.0,  # ~0.82 g, dry asphalt with ABS
    hand_brake_mps2=5.0,  # rear axle locked: ~45 % of the weight x mu ~1.1
    rolling_resistance_mps2=0.015 * GRAVITY_MPS2,  # c_rr 0.015
    drag_per_m=0.5 * AIR_DENSITY_KGPM3 * _MKZ_CD_A_M2 / _MKZ_MASS_KG,  # ~2.5e-4 1/m
    top_speed_mps=50.0,  # 180 km/h governed
    max_reverse_speed_mps=8.0,  # ~29 km/h
    tau_accel_s=0.2,  # powertrain / brake-pressure build-up
    tau_steer_s=0.1,  # steering actuator
)
"""Default CARLA ego (vehicle.lincoln.mkz_2017)."""

CARLA_DEFAULT_CAR = VehicleParams(
    length_m=4.5,
    width_m=2.0,
    height_m=1.5,
    wheelbase_m=2.7,
    rear_axle_to_center_m=1.3,
    max_steer_rad=0.61,
    max_steer_rate_radps=1.0,
    max_accel_mps2=3.5,
    power_per_mass_wpkg=70.0,
    max_brake_mps2=8.0,
    hand_brake_mps2=5.0,
    rolling_resistance_mps2=0.015 * GRAVITY_MPS2,
    drag_per_m=0.5 * AIR_DENSITY_KGPM3 * 0.32 * 2.2 / 1500.0,
    top_speed_mps=45.0,
    max_reverse_speed_mps=8.0,
    tau_accel_s=0.2,
    tau_steer_s=0.1,
)
"""A generic background car (~4.5 x 2.0 m compact sedan) for agents whose blueprint is unknown."""

WALKER = BoxDims(length_m=0.375, width_m=0.375, height_m=1.86)
"""CARLA walker box: CARLA derives it from the collision capsule (radius ~0.19 m, half height
~0.93 m), so it is square in plan and does not follow the limbs."""

# Reference launch figures of LINCOLN_MKZ_2017 at full throttle from rest (initial lagged accel 0),
# from integrating dv/dt = a, da/dt = (a_cmd(v) - a) / tau_accel (scipy RK45, rtol 1e-10)
# (tests/test_dynamics.py re-derives them with scipy and checks the 20 Hz bicycle against them).
MKZ_TIME_0_TO_100_KMH_S = 8.214  # [s]
MKZ_SPEED_AFTER_5S_MPS = 17.426  # [m/s]
