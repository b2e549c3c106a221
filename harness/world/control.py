"""The ego's driver input for one tick, as ``carla.VehicleControl`` carries it: the value every
agent returns and every backend applies."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class VehicleControl:
    """One tick of driver input, as ``carla.VehicleControl``: values outside the ranges are clipped
    (as CARLA does); NaN is rejected. ``manual_gear_shift`` and ``gear`` are carried for the CARLA
    backend; the embedded model has an automatic gearbox and ignores them."""

    throttle: float = 0.0  # 0..1
    steer: float = 0.0  # -1..1, > 0 turns right (positive yaw rate)
    brake: float = 0.0  # 0..1
    hand_brake: bool = False
    reverse: bool = False
    manual_gear_shift: bool = False
    gear: int = 0

    def __post_init__(self) -> None:
        for name, lo in (("throttle", 0.0), ("steer", -1.0), ("brake", 0.0)):
            value = float(getattr(self, name))
            if math.isnan(value):
                raise ConfigError(
                    f"VehicleControl.{name} is NaN; the agent must return finite controls "
                    "(check its run_step output)"
                )
            object.__setattr__(self, name, min(max(value, lo), 1.0))
        for name in ("hand_brake", "reverse", "manual_gear_shift"):
            object.__setattr__(self, name, bool(getattr(self, name)))
        object.__setattr__(self, "gear", int(self.gear))
