"""Drivers for the episode loop (:mod:`harness.runner.episode`): a leaderboard agent with its
lifecycle, and the privileged route follower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.leaderboard.agent import (
    ExposesPlan,
    LiveWorldView,
    as_vehicle_control,
    checked_plan,
    is_privileged,
)
from harness.maps.town import Town
from harness.planning.route_follower import RouteFollower
from harness.routes.interpolate import PlannedRoute, global_plan
from harness.runner.episode import DriverOutput, SensorData
from harness.runner.time_limit import time_limit
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S


class AgentDriver:
    """A leaderboard-style agent as a driver: ``run_step(input_data, timestamp)`` each tick, its
    control converted to ours, and its plan when it exposes one (:class:`ExposesPlan`)."""

    uses_sensors = True

    def __init__(self, agent: Any, time_limit_s: float | None = None) -> None:
        self.agent = agent
        self.time_limit_s = time_limit_s
        self._exposes_plan = isinstance(agent, ExposesPlan)

    @classmethod
    def set_up(
        cls,
        agent_cls: type[Any],
        planned: PlannedRoute,
        town: Town,
        *,
        plan_spacing_m: float,
        agent_config: str,
        world_state: Callable[[], WorldState],
        time_limit_s: float | None = None,
    ) -> AgentDriver:
        """The leaderboard's order: construct, ``set_global_plan`` (downsampled every
        ``plan_spacing_m``), ``set_world`` for privileged agents (reading ``world_state()``),
        then ``setup(agent_config)``; all of it within ``time_limit_s`` [s] (None: no limit),
        which also bounds every later ``run_step`` and ``destroy``."""
        with time_limit(time_limit_s, f"{agent_cls.__name__} set-up"):
            agent = agent_cls(None, None, False)
            plan = global_plan(planned, town, plan_spacing_m)
            agent.set_global_plan(plan.gps, plan.world)
            if is_privileged(agent):
                agent.set_world(LiveWorldView(world_state, town))
            agent.setup(agent_config)
        return cls(agent, time_limit_s)

    def sensors(self) -> list[dict[str, Any]]:
        """The agent's declared sensor suite."""
        return list(self.agent.sensors())

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        with time_limit(self.time_limit_s, "run_step"):
            raw = self.agent.run_step(input_data, state.time_s)
            plan = checked_plan(self.agent.planned_trajectory()) if self._exposes_plan else None
        return DriverOutput(as_vehicle_control(raw), plan)

    def close(self) -> None:
        """The agent's ``destroy()``."""
        with time_limit(self.time_limit_s, "destroy"):
            self.agent.destroy()


class FollowerDriver:
    """The privileged :class:`RouteFollower` as a driver (no plan exposed); ``uses_sensors``
    asks the loop to render the backend's sensors anyway (benchmarks of sensor cost)."""

    def __init__(self, follower: RouteFollower, uses_sensors: bool = False) -> None:
        self.follower = follower
        self.uses_sensors = uses_sensors

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        return DriverOutput(self.follower.control(state, SIM_DT_S))
