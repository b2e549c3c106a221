"""The simulator backend protocol: what scenarios, the runner, metrics and teachers may ask of a
simulator. The embedded simulator implements it; the CARLA adapter does too. Consumers see only
this protocol and the project's own types (never ``carla.*`` objects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from harness.maps.town import Town
from harness.world.control import VehicleControl
from harness.world.state import ActorKind, LightState, WorldState


@dataclass(frozen=True)
class TrafficConfig:
    """Background traffic of an episode."""

    vehicles: int = 30  # background vehicles spawned around the ego
    pedestrians: int = 20  # background pedestrians on sidewalks
    spawn_radius_m: float = 150.0  # spawn within this distance of the route
    seed: int = 0


@dataclass(frozen=True)
class EpisodeSpec:
    """What a reset needs: the town, where the ego starts (at rest unless ``ego_speed_mps`` /
    ``ego_accel_mps2`` say otherwise), the route it should follow (for the deviation event), the
    sensors the agent declared, and traffic settings."""

    town: str
    ego_start: tuple[float, float, float, float]  # x [m], y [m], z [m], yaw [rad]
    route_xy: NDArray[np.float64] | None = None  # (M, 2) dense route, for route deviation
    sensors: tuple[dict[str, Any], ...] = ()  # the agent's sensors() list
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    seed: int = 0
    ego_speed_mps: float = 0.0  # initial ego speed along its heading (re-simulating a scene)
    ego_accel_mps2: float = 0.0  # initial realised ego acceleration
    start_frame: int = 0  # first frame; lights follow frame time, so replays see recorded lights


@dataclass(frozen=True)
class ActorSpec:
    """A scenario actor to spawn: kind, box and pose (box centre, world frame)."""

    kind: ActorKind
    x: float
    y: float
    yaw: float
    length: float
    width: float
    height: float = 1.5
    speed: float = 0.0
    z: float = 0.0


@dataclass(frozen=True)
class ActorCommand:
    """What a scenario actor should do until told otherwise: follow ``path_xy`` (M, 2) at
    ``target_speed_mps`` with acceleration bounded by ``max_accel_mps2``; an empty path means
    hold position (braking at ``max_decel_mps2``)."""

    path_xy: NDArray[np.float64]
    target_speed_mps: float
    max_accel_mps2: float = 3.0
    max_decel_mps2: float = 6.0
    ignore_others: bool = True  # scenario actors by default do not yield (they create situations)


@dataclass(frozen=True)
class TrafficVehicleSpec:
    """A background vehicle placed by hand (re-simulating a recorded scene): it starts on lane
    ``lane`` at ``s_m`` [m] along it with ``speed_mps``, cruises at up to ``desired_speed_mps``
    under the backend's traffic rules (it reacts to the ego and to lights), first following
    ``lane_plan`` (lane indices of the town's LaneSet, in driving order) and then choosing on
    its own; ``length_m`` x ``width_m`` is its box."""

    lane: int
    s_m: float
    speed_mps: float
    desired_speed_mps: float
    length_m: float
    width_m: float
    lane_plan: tuple[int, ...] = ()


class SimulatorBackend(Protocol):
    """A simulator the harness can drive closed loop at 20 Hz."""

    def reset(self, spec: EpisodeSpec) -> WorldState:
        """Load the town if needed, place the ego, spawn traffic; return the first state."""
        ...

    def tick(self, control: VehicleControl) -> WorldState:
        """Apply the ego control for one 0.05 s step and return the new state."""
        ...

    def sensor_data(self) -> dict[str, tuple[int, Any]]:
        """The agent's sensors for the current tick, leaderboard input_data form."""
        ...

    def spawn_actor(self, spec: ActorSpec) -> int:
        """Add a scenario actor; returns its id."""
        ...

    def spawn_traffic_vehicle(self, spec: TrafficVehicleSpec) -> int:
        """Add a reactive background vehicle; returns its id."""
        ...

    def command_actor(self, actor_id: int, command: ActorCommand) -> None:
        """Set what a scenario actor does from the next tick on."""
        ...

    def destroy_actor(self, actor_id: int) -> None:
        """Remove an actor."""
        ...

    def force_lights(
        self, lights: Sequence[int], state: LightState, duration_s: float | None = None
    ) -> None:
        """Hold traffic lights (indices of ``town.signals``) at ``state`` from the next tick on,
        for ``duration_s`` of simulation time or, with None, until released; afterwards they run
        their own cycle again (ScenarioRunner's TrafficLightFreezer: ``carla.TrafficLight``
        set_state with its green / yellow / red times stretched over the hold)."""
        ...

    def release_lights(self, lights: Sequence[int]) -> None:
        """End the holds of ``lights`` (ScenarioRunner restores them when its freezer ends)."""
        ...

    def clear_area(self, center_xy: tuple[float, float], radius_m: float) -> int:
        """Move background vehicles and pedestrians out of a circle (a scenario's set-up area);
        returns how many were moved."""
        ...

    @property
    def state(self) -> WorldState:
        """The current tick's state."""
        ...

    @property
    def town(self) -> Town:
        """The loaded town."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
