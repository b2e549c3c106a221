"""Baseline agent that never moves: full brake every tick, speedometer only.

A leaderboard-style agent file (loaded by path; ``get_entry_point`` names the class). Useful as a
floor for the metrics (RC ~ 0, blocked after the blocked-test time) and to check the pipeline.
"""

from __future__ import annotations

from typing import Any

from harness.leaderboard.agent import AutonomousAgent, Track
from harness.world.control import VehicleControl


def get_entry_point() -> str:
    return "DoNothingAgent"


class DoNothingAgent(AutonomousAgent):
    """Holds the brake; declares only a speedometer."""

    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20}]

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> VehicleControl:
        return VehicleControl(throttle=0.0, steer=0.0, brake=1.0)
