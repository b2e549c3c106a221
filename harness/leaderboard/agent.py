"""The leaderboard agent interface: the ``AutonomousAgent`` lifecycle of the CARLA leaderboard
(``set_global_plan`` -> ``setup`` -> ``sensors`` -> ``run_step`` per tick -> ``destroy``), kept
exactly so leaderboard agents port with an import change, plus two harness extensions:

- ``planned_trajectory()``: an optional hook through which an agent exposes its current plan
  (poses (T, 3) [x, y, yaw] world frame at 0.1 s) so the harness can score it with PDMS / EPDMS;
- ``PrivilegedAgent``: agents that read the true world state through ``set_world``. Only
  privileged experts (data collection, teachers, baselines) may use it; a leaderboard submission
  sees the world through its declared sensors only, and the evaluator marks privileged runs.

Route plans come as built by ``harness.routes.interpolate.global_plan``: world entries are
``((x_m, y_m, z_m, yaw_deg), RoadOption)`` tuples (the leaderboard hands ``carla.Transform``)
and GPS entries ``({'lat', 'lon', 'z'}, RoadOption)`` dicts, as the leaderboard's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from harness.errors import HarnessError
from harness.world.control import VehicleControl
from harness.world.state import WorldState

CONTROL_FIELDS = (
    "throttle",
    "steer",
    "brake",
    "hand_brake",
    "reverse",
    "manual_gear_shift",
    "gear",
)
REQUIRED_CONTROL_FIELDS = ("throttle", "steer", "brake")  # the rest default as carla's do

WorldPlanEntry = tuple[tuple[float, float, float, float], Any]
"""((x_m, y_m, z_m, yaw_deg), RoadOption) of the world-frame global plan."""
GpsPlanEntry = tuple[dict[str, float], Any]
"""({'lat': deg, 'lon': deg, 'z': m}, RoadOption) of the GPS global plan."""


class Track(Enum):
    """Leaderboard tracks: SENSORS (cameras, lidar, radar, GNSS, IMU, speedometer) or MAP (the
    same plus the OpenDRIVE map). Values are the leaderboard's strings."""

    SENSORS = "SENSORS"
    MAP = "MAP"


class AgentControlError(HarnessError):
    """An agent's run_step returned something that is not a vehicle control."""


def as_vehicle_control(control: Any) -> VehicleControl:
    """Convert what ``run_step`` returned into our ``VehicleControl``: ours passes through; any
    object with ``throttle``, ``steer`` and ``brake`` attributes (e.g. ``carla.VehicleControl``)
    is copied field by field, the optional fields taking carla's defaults."""
    if isinstance(control, VehicleControl):
        return control
    missing = [f for f in REQUIRED_CONTROL_FIELDS if not hasattr(control, f)]
    if missing:
        raise AgentControlError(
            f"run_step returned {type(control).__name__}, which lacks {', '.join(missing)}; "
            "return a harness.dynamics.control.VehicleControl or a carla.VehicleControl"
        )
    defaults = VehicleControl()
    values = {f: getattr(control, f, getattr(defaults, f)) for f in CONTROL_FIELDS}
    return VehicleControl(**values)


class AutonomousAgent:
    """Base class of leaderboard-style agents. Subclasses override ``setup``, ``sensors``,
    ``run_step`` and optionally ``destroy`` and ``planned_trajectory``.

    The evaluator calls, in order: ``__init__(host, port, debug)``, ``set_global_plan(gps,
    world)``, ``setup(path_to_conf_file)``, ``sensors()``, then ``run_step(input_data,
    timestamp)`` once per 0.05 s tick, and ``destroy()`` at the end of the route.
    """

    def __init__(
        self, carla_host: str | None = None, carla_port: int | None = None, debug: bool = False
    ) -> None:
        self.track: Track = Track.SENSORS
        self.carla_host = carla_host
        self.carla_port = carla_port
        self.debug = debug
        self._global_plan: list[GpsPlanEntry] | None = None
        self._global_plan_world_coord: list[WorldPlanEntry] | None = None
        self.wallclock_t0: float | None = None

    def setup(self, path_to_conf_file: str) -> None:
        """Load models / configuration; the base class has nothing to set up."""

    def sensors(self) -> list[dict[str, Any]]:
        """The sensor suite as leaderboard dicts (type, id, x, y, z, roll, pitch, yaw, ...);
        the base agent declares none."""
        return []

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> Any:
        """One tick: ``input_data`` {sensor_id: (frame, data)}, ``timestamp`` simulation time [s];
        returns a VehicleControl (ours or any object with carla.VehicleControl's fields)."""
        raise NotImplementedError(f"{type(self).__name__} must implement run_step")

    def destroy(self) -> None:
        """Release resources at the end of a route; the base agent holds none."""

    def set_global_plan(
        self,
        global_plan_gps: Sequence[GpsPlanEntry],
        global_plan_world_coord: Sequence[WorldPlanEntry],
    ) -> None:
        """Store the route (already downsampled by ``harness.routes.interpolate.global_plan``, where
        the leaderboard downsamples here) as ``_global_plan`` (GPS) and
        ``_global_plan_world_coord`` (world), the leaderboard's attribute names."""
        if len(global_plan_gps) != len(global_plan_world_coord):
            raise ValueError(
                f"GPS plan has {len(global_plan_gps)} entries but the world plan "
                f"{len(global_plan_world_coord)}; both must describe the same points"
            )
        self._global_plan = list(global_plan_gps)
        self._global_plan_world_coord = list(global_plan_world_coord)

    def planned_trajectory(self) -> NDArray[np.float64] | None:
        """The plan behind the last control: poses (T, 3) [x_m, y_m, yaw_rad] in the world frame
        at ``harness.world.timing.POSE_DT_S`` (0.1 s) spacing starting one step ahead, or None when
        the agent exposes no plan."""
        return None


@runtime_checkable
class ExposesPlan(Protocol):
    """An agent that exposes the plan behind its last control (see
    :meth:`AutonomousAgent.planned_trajectory`); leaderboard agents written for CARLA do not."""

    def planned_trajectory(self) -> NDArray[np.float64] | None: ...


def run_agent_step(
    agent: AutonomousAgent, input_data: dict[str, tuple[int, Any]], timestamp: float
) -> VehicleControl:
    """Call ``agent.run_step`` and convert its result (the leaderboard's AgentWrapper step)."""
    return as_vehicle_control(agent.run_step(input_data, timestamp))


def checked_plan(poses: Any) -> NDArray[np.float64] | None:
    """Validate a ``planned_trajectory()`` result: None, or finite (T, 3) float64 with T >= 1."""
    if poses is None:
        return None
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        raise AgentControlError(
            f"planned_trajectory() must return finite poses of shape (T, 3), got {arr.shape}"
        )
    return arr


@runtime_checkable
class WorldView(Protocol):
    """What a privileged agent may read: the current true state and the town."""

    @property
    def state(self) -> WorldState: ...

    @property
    def town(self) -> Any: ...  # harness.maps.Town


@dataclass(frozen=True)
class LiveWorldView:
    """A WorldView over a state source: ``source()`` returns the latest WorldState (the runner
    passes its simulator's current state), ``town`` the loaded town."""

    source: Callable[[], WorldState]
    town: Any  # harness.maps.Town

    @property
    def state(self) -> WorldState:
        return self.source()


class PrivilegedAgent(AutonomousAgent):
    """An agent that reads the true world (ego pose, other actors, lights, the town) through
    ``set_world``, called by the harness before ``setup``. For experts and baselines only:
    leaderboard submissions cannot use it (the real leaderboard offers no such access), and the
    harness records a privileged run as such in its outputs."""

    privileged: bool = True

    def __init__(
        self, carla_host: str | None = None, carla_port: int | None = None, debug: bool = False
    ) -> None:
        super().__init__(carla_host, carla_port, debug)
        self._world: WorldView | None = None

    def set_world(self, world_view: WorldView) -> None:
        """Give the agent its view of the true world for this route."""
        self._world = world_view

    @property
    def world(self) -> WorldView:
        """The world view; raises when the harness has not called ``set_world``."""
        if self._world is None:
            raise AgentControlError(
                f"{type(self).__name__} is a PrivilegedAgent but set_world() was not called; "
                "run it through the harness evaluator, which provides the world view"
            )
        return self._world


def is_privileged(agent: object) -> bool:
    """Whether an agent (instance or class) asks for the true world state."""
    return bool(getattr(agent, "privileged", False)) and hasattr(agent, "set_world")
