"""`EgoPose`: the per-step ego quantities every metric reads, extracted once per scoring call.

The rollout returns states (B, T, N_STATE) whose columns are contiguous (41, B) blocks; the
metrics read x, y, yaw, speed and cos/sin of yaw many times, so they are computed once here as
(B, T) planes (views where possible) instead of once per metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import StateIndex

Float = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class EgoPose:
    """Ego box-centre pose per candidate and step, every field a C-contiguous (B, T) plane (flat
    index b * T + t): ``x``, ``y`` [m, world
    frame], ``yaw`` [rad], ``cos``/``sin`` of the yaw, ``speed`` [m/s]."""

    x: Float
    y: Float
    yaw: Float
    cos: Float
    sin: Float
    speed: Float

    @classmethod
    def of(cls, states: Float) -> EgoPose:
        """The pose planes of states (B, T, N_STATE)."""
        yaw = np.ascontiguousarray(states[..., StateIndex.YAW])
        return cls(
            x=np.ascontiguousarray(states[..., StateIndex.X]),
            y=np.ascontiguousarray(states[..., StateIndex.Y]),
            yaw=yaw,
            cos=np.cos(yaw),
            sin=np.sin(yaw),
            speed=np.ascontiguousarray(states[..., StateIndex.SPEED]),
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """(B, T)."""
        return self.x.shape
