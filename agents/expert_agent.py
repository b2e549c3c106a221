"""Privileged expert agent: reads the true world (``PrivilegedAgent.set_world``) and drives with
:class:`harness.planning.ExpertPlanner` (PDM-Closed style proposals x IDM speeds, scored, tracked
with pure pursuit + PID). Declares only a speedometer: everything else comes from the world view.

The dense route is re-planned on the town from the world-frame global plan (the downsampled
plan keeps every road-option change, so the lane sequence is recovered). ``planned_trajectory``
exposes the current plan, 40 poses at 0.1 s, for PDMS / EPDMS scoring and teachers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.leaderboard.agent import AgentControlError, PrivilegedAgent, Track
from harness.planning import ExpertConfig, ExpertPlanner
from harness.routes.interpolate import plan_route
from harness.world.control import VehicleControl


def get_entry_point() -> str:
    return "ExpertAgent"


class ExpertAgent(PrivilegedAgent):
    """The privileged expert (data collection, teachers, baselines; not a leaderboard entry)."""

    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS
        self.config = ExpertConfig()
        self.planner: ExpertPlanner | None = None

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20}]

    def _prepare(self) -> ExpertPlanner:
        """Dense route from the global plan on the world's town (once per route)."""
        if not self._global_plan_world_coord:
            raise AgentControlError(
                "ExpertAgent needs set_global_plan() before its first step; run it through the "
                "harness evaluator"
            )
        keypoints = np.array([p[:3] for p, _ in self._global_plan_world_coord], dtype=np.float64)
        town = self.world.town
        planned = plan_route(town, keypoints, "expert")
        return ExpertPlanner(town, planned, self.config)

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> VehicleControl:
        if self.planner is None:
            self.planner = self._prepare()
        return self.planner.step(self.world.state)

    def planned_trajectory(self) -> NDArray[np.float64] | None:
        if self.planner is None or self.planner.last_plan is None:
            return None
        return self.planner.last_plan.poses

    def destroy(self) -> None:
        self.planner = None
