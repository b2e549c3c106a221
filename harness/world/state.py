"""World-state types shared by every simulator backend and every consumer (scenarios, metrics,
teachers). Arrays are padded to a fixed actor capacity with a ``valid`` mask; the ego is always
row 0. CARLA world frame, SI units; poses refer to the centre of the actor's bounding box."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

EGO_INDEX = 0  # row of the ego in ActorArrays


class ActorKind(IntEnum):
    """What an actor is; decides collision categories and rendering."""

    VEHICLE = 0
    PEDESTRIAN = 1
    BICYCLE = 2
    STATIC = 3  # props, parked obstacles, cones, construction, accident debris
    EMERGENCY = 4  # an emergency vehicle (a vehicle for collisions; yield rules apply)


class ActorRole(IntEnum):
    """Who drives an actor."""

    EGO = 0
    BACKGROUND = 1  # background traffic (lane following, IDM)
    SCENARIO = 2  # created and commanded by a scenario
    PEDESTRIAN = 3  # background pedestrian


class LightState(IntEnum):
    """Traffic-light state; same order as carla.TrafficLightState's Red, Yellow, Green, Off."""

    RED = 0
    YELLOW = 1
    GREEN = 2
    OFF = 3


@dataclass(frozen=True, eq=False)
class ActorArrays:
    """All actors of one tick, padded to capacity N; row 0 is the ego.

    Every field has shape (N,). Poses are box centres in the CARLA world frame [m, rad];
    ``speed_mps`` is signed along the heading; ``accel_mps2`` is longitudinal.
    """

    actor_id: NDArray[np.int64]  # stable id for the episode (ego 0), -1 on invalid rows
    kind: NDArray[np.int8]  # ActorKind
    role: NDArray[np.int8]  # ActorRole
    valid: NDArray[np.bool_]
    x: NDArray[np.float64]  # [m]
    y: NDArray[np.float64]  # [m]
    z: NDArray[np.float64]  # [m]
    yaw: NDArray[np.float64]  # [rad]
    speed: NDArray[np.float64]  # [m/s]
    accel: NDArray[np.float64]  # [m/s2]
    yaw_rate: NDArray[np.float64]  # [rad/s]
    length: NDArray[np.float64]  # [m]
    width: NDArray[np.float64]  # [m]
    height: NDArray[np.float64]  # [m]

    def __post_init__(self) -> None:
        n = self.valid.shape
        for name in self.__dataclass_fields__:
            arr = getattr(self, name)
            if arr.shape != n:
                raise ValueError(f"ActorArrays.{name} has shape {arr.shape}, expected {n}")

    @property
    def n(self) -> int:
        return int(self.valid.shape[0])

    @property
    def xy(self) -> NDArray[np.float64]:
        """(N, 2) box centres."""
        return np.stack([self.x, self.y], axis=-1)

    @property
    def velocity(self) -> NDArray[np.float64]:
        """(N, 2) velocity vectors [m/s] (kinematic: along the heading)."""
        return np.stack([self.speed * np.cos(self.yaw), self.speed * np.sin(self.yaw)], axis=-1)

    @property
    def boxes(self) -> NDArray[np.float64]:
        """(N, 5) [x, y, yaw, length, width], the layout harness.boxes takes."""
        return np.stack([self.x, self.y, self.yaw, self.length, self.width], axis=-1)

    @staticmethod
    def empty(capacity: int) -> ActorArrays:
        """Capacity rows, all invalid."""
        f = np.zeros(capacity, dtype=np.float64)
        return ActorArrays(
            actor_id=np.full(capacity, -1, dtype=np.int64),
            kind=np.zeros(capacity, dtype=np.int8),
            role=np.zeros(capacity, dtype=np.int8),
            valid=np.zeros(capacity, dtype=np.bool_),
            x=f.copy(), y=f.copy(), z=f.copy(), yaw=f.copy(), speed=f.copy(), accel=f.copy(),
            yaw_rate=f.copy(), length=f.copy(), width=f.copy(), height=f.copy(),
        )  # fmt: skip


class EventKind(IntEnum):
    """Typed events a tick can raise (consumed by criteria and metrics)."""

    COLLISION_VEHICLE = 0
    COLLISION_PEDESTRIAN = 1
    COLLISION_STATIC = 2  # static props and the road layout
    OFF_DRIVABLE = 3
    RED_LIGHT = 4
    STOP_SIGN = 5
    ROUTE_DEVIATION = 6


COLLISION_EVENTS = (
    EventKind.COLLISION_VEHICLE,
    EventKind.COLLISION_PEDESTRIAN,
    EventKind.COLLISION_STATIC,
)
"""The event kinds that are ego collisions."""


@dataclass(frozen=True)
class Event:
    """One event at one tick. ``other_id`` is the other actor (-1 for layout / none);
    ``ref`` is a light index, stop-line index or similar where it applies, else -1."""

    kind: EventKind
    frame: int
    time_s: float
    x: float  # [m] where the ego was
    y: float  # [m]
    other_id: int = -1
    ref: int = -1
    detail: str = ""


@dataclass(frozen=True, eq=False)
class WorldState:
    """Everything a consumer may read about one tick."""

    frame: int
    time_s: float  # [s] simulation time since reset
    actors: ActorArrays
    light_state: NDArray[np.int8]  # (T,) LightState per light of town.signals
    light_elapsed_s: NDArray[np.float64]  # (T,) [s] time spent in the current state
    events: tuple[Event, ...] = field(default=())

    @property
    def ego(self) -> ActorArrays:
        """The ego as a length-1 ActorArrays view (row 0)."""
        a = self.actors
        return ActorArrays(**{k: getattr(a, k)[:1] for k in a.__dataclass_fields__})
