"""The Drive-JEPA planner as a leaderboard agent (SENSORS track): the front camera, speedometer,
IMU and GNSS; :class:`drivejepa.runtime.PlannerRuntime` plans at 10 Hz (every 2nd tick) from the
last two frames 0.5 s apart and the ego status, selects with momentum, and the chosen plan is
tracked every tick with the harness controller (pure pursuit + PID, as the expert's plans are).

Config (``--agent-config``, YAML or JSON): ``checkpoint`` (default ``agents/drivejepa/model.pt``
beside this file), ``lambda`` (momentum weight, 0 = off), ``camera`` (the setup the checkpoint must
fit; default the project's), ``threads`` (torch threads, default 1), ``max_speed_mps`` (the
tracker targets the plan's own speeds, capped at this; default the expert's highest cruise),
``envelope_decel_mps2`` (the plan's braking envelope at this deceleration, e.g. 3; default 0:
off), ``kinematic_filter`` (choose among the proposals whose implied accelerations between their 0.5 s
segments stay within NAVSIM's comfort bounds; default false), ``speed_lead_s`` (track the
plan's speeds read this much later in the plan, e.g. 0.5; default 0), ``imitation_weight`` (the
selection's weight of the imitation head's probability; default the checkpoint's own, 0 without
an imitation head), ``speed_window_s`` (track the plan's mean speed over this much of its start;
default 2 s, 0 tracks the plan's own speeds), ``lane_keep_m`` (move the chosen plan onto the
route line where it and the ego stay within this of it, e.g. 1.75; default 0: off).
Localisation as ``lane_follow_agent``: GNSS to world x, y with a reference fitted from the global
plan, heading from the IMU compass. ``planned_trajectory()``
exposes the executed plan (world, 40 poses at 0.1 s) for closed-loop PDMS / EPDMS;
``last_step`` holds the proposals and their scores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lane_follow_agent import fit_georeference  # this folder is on sys.path (agent loading)
from numpy.typing import NDArray

from drivejepa.camera import FRONT_CAMERA_ID
from drivejepa.runtime import PlannerRuntime, PlanStep, read_agent_config, tracking_speeds
from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.leaderboard.agent import AgentControlError, AutonomousAgent, Track
from harness.maps.geo import GeoReference
from harness.world.control import VehicleControl
from harness.world.timing import POSE_DT_S, SIM_DT_S

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "drivejepa" / "model.pt"


def get_entry_point() -> str:
    return "DriveJEPAAgent"


class DriveJEPAAgent(AutonomousAgent):
    """Camera-based Drive-JEPA planner + harness tracking controller."""

    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS
        cfg = read_agent_config(path_to_conf_file, DEFAULT_CHECKPOINT)
        torch.set_num_threads(cfg.threads)
        self.runtime = PlannerRuntime(cfg.checkpoint, cfg.lambda_, cfg.camera,
                                      cfg.kinematic_filter, cfg.imitation_weight,
                                      cfg.lane_keep_m)  # fmt: skip
        self.max_speed_mps = cfg.max_speed_mps
        self.envelope_decel_mps2 = cfg.envelope_decel_mps2
        self.speed_lead_s = cfg.speed_lead_s
        self.speed_window_s = cfg.speed_window_s
        self.tracker = PurePursuitPID()
        self.pid = PIDState()
        self._geo: GeoReference | None = None
        self._yaw = 0.0
        self.last_step: PlanStep | None = None

    def sensors(self) -> list[dict[str, Any]]:
        pose = {"x": 0.0, "y": 0.0, "z": 1.6, "roll": 0.0, "pitch": 0.0, "yaw": 0.0}
        return [
            self.runtime.camera.sensor(),
            {"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20},
            {"type": "sensor.other.imu", "id": "imu", **pose},
            {"type": "sensor.other.gnss", "id": "gps", **pose},
        ]

    def _prepare(self) -> None:
        """GPS reference and route target from the global plan (once per route)."""
        if not self._global_plan or not self._global_plan_world_coord:
            raise AgentControlError(
                "DriveJEPAAgent needs set_global_plan() before its first step; run it through "
                "the harness evaluator"
            )
        world = np.array([p[:4] for p, _ in self._global_plan_world_coord], dtype=np.float64)
        options = [int(o) for _, o in self._global_plan_world_coord]
        self.runtime.set_route(world[:, :2], np.radians(world[:, 3]), options)
        g = self._global_plan[0][0]
        self._geo = fit_georeference((g["lat"], g["lon"]), (float(world[0, 0]), float(world[0, 1])))

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> VehicleControl:
        if self._geo is None:
            self._prepare()
        assert self._geo is not None
        lat, lon, alt = (float(v) for v in input_data["gps"][1][:3])
        xy = self._geo.from_gps(np.array([lat, lon, alt]))[:2]
        imu = np.asarray(input_data["imu"][1], dtype=np.float64)
        if math.isfinite(float(imu[-1])):
            self._yaw = float(imu[-1]) - math.pi / 2.0
        speed = float(input_data["speed"][1]["speed"])
        pose = np.array([xy[0], xy[1], self._yaw])
        self.runtime.add_frame(input_data[FRONT_CAMERA_ID][1], timestamp)
        if self.runtime.due(timestamp):
            self.last_step = self.runtime.plan(timestamp, pose, speed, imu[:2])
        step = self.last_step
        assert step is not None
        plan = PlannedTrajectory(step.plan_world, dt_s=POSE_DT_S,
                                 t0_s=POSE_DT_S - (timestamp - step.time_s),
                                 speeds_mps=tracking_speeds(step, self.max_speed_mps, pose[:2],
                                                            self.envelope_decel_mps2,
                                                            self.speed_lead_s,
                                                            self.speed_window_s))  # fmt: skip
        return self.tracker.control(self.pid, pose, speed, plan, SIM_DT_S)

    def planned_trajectory(self) -> NDArray[np.float64] | None:
        return None if self.last_step is None else self.last_step.plan_world

    def destroy(self) -> None:
        self.last_step = None
