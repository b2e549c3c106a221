"""Drivers for the episode loop (:mod:`harness.runner.episode`): a leaderboard agent with its
lifecycle, and the privileged route follower.

Two kinds of agents meet :class:`AgentDriver`. The harness's own (subclasses of
``harness.leaderboard.AutonomousAgent``) get the plan downsampled by the harness as tuples and
``run_step`` each tick. Leaderboard agent files (any other class, usually a subclass of the
compat ``leaderboard.autoagents.autonomous_agent.AutonomousAgent``) get what the leaderboard
gives: ``CarlaDataProvider.set_world`` with the world facade before construction, the dense
route as ``(carla.Transform, RoadOption)`` / GPS dicts (their base class cuts it), and each
tick ``GameTime`` advanced to the state's frame, the sensor data delivered to
``sensor_interface`` and the agent called (``agent()``), as the leaderboard's AgentWrapper does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError
from harness.leaderboard import compat
from harness.leaderboard.agent import (
    AutonomousAgent,
    ExposesPlan,
    LiveWorldView,
    as_vehicle_control,
    checked_plan,
    is_privileged,
)
from harness.leaderboard.carla_world import CarlaWorld, carla_timestamp, dense_global_plan
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

    def __init__(
        self,
        agent: Any,
        time_limit_s: float | None = None,
        world: CarlaWorld | None = None,
        sensors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.agent = agent
        self.time_limit_s = time_limit_s
        self.world = world
        self._sensors = list(agent.sensors()) if sensors is None else sensors
        self._exposes_plan = isinstance(agent, ExposesPlan)
        self._called = isinstance(agent, compat.leaderboard_agent_base())

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
        """The leaderboard's order: the world facade into ``CarlaDataProvider``, construct,
        ``set_global_plan`` (harness agents: downsampled every ``plan_spacing_m``; leaderboard
        agents: dense, their base class cutting it every ``plan_spacing_m``), ``set_world`` for
        privileged agents (reading ``world_state()``), ``setup(agent_config)``, ``sensors()``;
        all of it within ``time_limit_s`` [s] (None: no limit), which also bounds every later
        step and ``destroy``."""

        def current() -> WorldState | None:
            try:
                return world_state()
            except HarnessError:  # before the backend's reset: the hero waits at the start
                return None

        world = CarlaWorld(current, town, planned.start_pose)
        compat.game_time().restart()
        compat.data_provider().set_world(world)
        try:
            agent, sensors = cls._construct(
                agent_cls, planned, town, plan_spacing_m, agent_config, world_state, time_limit_s
            )
        except BaseException:
            compat.data_provider().cleanup()
            raise
        return cls(agent, time_limit_s, world, sensors)

    @staticmethod
    def _construct(
        agent_cls: type[Any],
        planned: PlannedRoute,
        town: Town,
        plan_spacing_m: float,
        agent_config: str,
        world_state: Callable[[], WorldState],
        time_limit_s: float | None,
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Construct, hand over the plan (and the world), set up, register the sensors."""
        with time_limit(time_limit_s, f"{agent_cls.__name__} set-up"):
            agent = agent_cls(None, None, False)
            if isinstance(agent, AutonomousAgent):
                plan = global_plan(planned, town, plan_spacing_m)
                agent.set_global_plan(plan.gps, plan.world)
            else:
                if isinstance(agent, compat.leaderboard_agent_base()):
                    agent.global_plan_sample_m = plan_spacing_m  # the run mode's cut
                gps, world_route = dense_global_plan(planned, town)
                agent.set_global_plan(gps, world_route)
            if is_privileged(agent):
                agent.set_world(LiveWorldView(world_state, town))
            agent.setup(agent_config)
            sensors = list(agent.sensors())
            if isinstance(agent, compat.leaderboard_agent_base()):
                for s in sensors:
                    agent.sensor_interface.register_sensor(s.get("id"), s.get("type"), None)
        return agent, sensors

    def sensors(self) -> list[dict[str, Any]]:
        """The agent's declared sensor suite (asked once, at set-up, as the leaderboard does)."""
        return list(self._sensors)

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        with time_limit(self.time_limit_s, "run_step"):
            if self._called:  # the leaderboard's AgentWrapper: clock, sensor data, agent()
                compat.game_time().on_carla_tick(carla_timestamp(state.frame, state.time_s))
                for tag, (frame, data) in input_data.items():
                    self.agent.sensor_interface.update_sensor(tag, data, frame)
                raw = self.agent()
            else:
                raw = self.agent.run_step(input_data, state.time_s)
            plan = checked_plan(self.agent.planned_trajectory()) if self._exposes_plan else None
        control = as_vehicle_control(raw)
        if self.world is not None:
            self.world.hero_control = control
        return DriverOutput(control, plan)

    def close(self) -> None:
        """The agent's ``destroy()``, then the data provider and the clock are reset."""
        try:
            with time_limit(self.time_limit_s, "destroy"):
                self.agent.destroy()
        finally:
            compat.data_provider().cleanup()
            compat.game_time().restart()


class FollowerDriver:
    """The privileged :class:`RouteFollower` as a driver (no plan exposed); ``uses_sensors``
    asks the loop to render the backend's sensors anyway (benchmarks of sensor cost)."""

    def __init__(self, follower: RouteFollower, uses_sensors: bool = False) -> None:
        self.follower = follower
        self.uses_sensors = uses_sensors

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        return DriverOutput(self.follower.control(state, SIM_DT_S))
