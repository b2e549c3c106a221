"""Baseline sensor agent: follows the route's world-frame global plan at a constant 6 m/s with
pure pursuit + PID, using only GNSS, IMU and speedometer (a SENSORS-track agent, not privileged).

Localisation: the GPS fix goes back to world x, y with the leaderboard's Mercator convention
around a reference lat0/lon0 that the agent fits from its own global plan (each plan point comes
both as GPS and as world coordinates, so no map or geoReference is needed). Heading from the IMU
compass (yaw = compass - pi/2, CARLA's convention).

Limits (it is a floor, not an expert): it drives the polyline through the plan points (50 m apart
on Bench2Drive, plus every road-option change), so it cuts corners in junctions; it ignores
other actors, traffic lights and stop signs; it keeps its speed past the last plan point (the
route is complete once the ego passes it, as on the leaderboard).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.leaderboard.agent import AgentControlError, AutonomousAgent, Track
from harness.maps.geo import EARTH_RADIUS_EQUA_M, GeoReference
from harness.world.control import VehicleControl
from harness.world.timing import POSE_DT_S

TARGET_SPEED_MPS = 6.0  # [m/s] cruise speed
RUN_OUT_M = 30.0  # [m] the path continues straight this far past the last plan point
PLAN_STEPS = 30  # [-] poses of the tracked plan (3 s at 0.1 s)
CONTROL_DT_S = 0.05  # [s] leaderboard tick
GEO_FIT_ITERATIONS = 20  # [-] fixed-point iterations of the lat0 fit (converges in a few)


def get_entry_point() -> str:
    return "LaneFollowAgent"


def _mercator_lat(lat_deg: float) -> float:
    return math.log(math.tan((90.0 + lat_deg) * math.pi / 360.0))


def fit_georeference(gps: tuple[float, float], world_xy: tuple[float, float]) -> GeoReference:
    """The reference (lat0, lon0) that maps world point ``world_xy`` [m] to ``gps`` (lat, lon
    [deg]) under the leaderboard conversion; exact for one noise-free pair."""
    lat, lon = gps
    x, y = world_xy
    lat0 = lat
    for _ in range(GEO_FIT_ITERATIONS):
        scale = math.cos(math.radians(lat0))
        m0 = y / (scale * EARTH_RADIUS_EQUA_M) + _mercator_lat(lat)
        lat0 = 360.0 / math.pi * math.atan(math.exp(m0)) - 90.0
    scale = math.cos(math.radians(lat0))
    lon0 = lon - x * 180.0 / (scale * math.pi * EARTH_RADIUS_EQUA_M)
    return GeoReference(lat0_deg=lat0, lon0_deg=lon0)


class LaneFollowAgent(AutonomousAgent):
    """Constant-speed route follower on GNSS + IMU + speedometer."""

    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS
        self.tracker = PurePursuitPID()
        self.pid = PIDState()
        self._geo: GeoReference | None = None
        self._path: NDArray[np.float64] | None = None  # (K, 2) plan polyline [m]
        self._s: NDArray[np.float64] | None = None  # (K,) its arc length [m]
        self._yaw = 0.0
        self._plan: NDArray[np.float64] | None = None

    def sensors(self) -> list[dict[str, Any]]:
        pose = {"x": 0.0, "y": 0.0, "z": 1.6, "roll": 0.0, "pitch": 0.0, "yaw": 0.0}
        return [
            {"type": "sensor.other.gnss", "id": "gps", **pose},
            {"type": "sensor.other.imu", "id": "imu", **pose},
            {"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20},
        ]

    def _prepare(self) -> None:
        """Plan polyline and GPS reference from the global plan (once per route)."""
        if not self._global_plan or not self._global_plan_world_coord:
            raise AgentControlError(
                "LaneFollowAgent needs set_global_plan() before its first step; run it through "
                "the harness evaluator"
            )
        xy = np.array([p[:2] for p, _ in self._global_plan_world_coord], dtype=np.float64)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-3])
        xy = xy[keep]
        if len(xy) == 1:  # a one-point plan: run out along the plan point's heading
            yaw = np.radians(self._global_plan_world_coord[0][0][3])
            end_dir = np.array([np.cos(yaw), np.sin(yaw)])
        else:
            end_dir = (xy[-1] - xy[-2]) / np.linalg.norm(xy[-1] - xy[-2])
        self._path = np.vstack([xy, xy[-1] + RUN_OUT_M * end_dir])
        seg = np.linalg.norm(np.diff(self._path, axis=0), axis=1)
        self._s = np.concatenate([[0.0], np.cumsum(seg)])
        g = self._global_plan[0][0]
        self._geo = fit_georeference((g["lat"], g["lon"]), (float(xy[0, 0]), float(xy[0, 1])))

    def _arc_length(self, p: NDArray[np.float64]) -> float:
        """Arc length [m] of the foot point of ``p`` on the plan polyline."""
        assert self._path is not None and self._s is not None
        a, d = self._path[:-1], np.diff(self._path, axis=0)
        t = np.clip(np.einsum("ij,ij->i", p - a, d) / np.maximum((d * d).sum(axis=1), 1e-12), 0, 1)
        k = int(np.argmin(np.linalg.norm(a + t[:, None] * d - p, axis=1)))
        return float(self._s[k] + t[k] * (self._s[k + 1] - self._s[k]))

    def run_step(self, input_data: dict[str, tuple[int, Any]], timestamp: float) -> VehicleControl:
        if self._geo is None:
            self._prepare()
        assert self._geo is not None and self._path is not None and self._s is not None
        lat, lon, alt = (float(v) for v in input_data["gps"][1][:3])
        xy = self._geo.from_gps(np.array([lat, lon, alt]))[:2]
        compass = float(input_data["imu"][1][-1])
        if math.isfinite(compass):
            self._yaw = compass - math.pi / 2.0
        speed = float(input_data["speed"][1]["speed"])

        s_ego = self._arc_length(xy)
        s = np.minimum(
            s_ego + TARGET_SPEED_MPS * POSE_DT_S * np.arange(1, PLAN_STEPS + 1), self._s[-1]
        )
        px = np.interp(s, self._s, self._path[:, 0])
        py = np.interp(s, self._s, self._path[:, 1])
        seg = np.clip(np.searchsorted(self._s, s, side="right") - 1, 0, len(self._s) - 2)
        d = self._path[seg + 1] - self._path[seg]
        poses = np.column_stack([px, py, np.arctan2(d[:, 1], d[:, 0])])
        speeds = np.full(PLAN_STEPS, TARGET_SPEED_MPS)
        self._plan = poses
        plan = PlannedTrajectory(poses, dt_s=POSE_DT_S, speeds_mps=speeds)
        pose = np.array([xy[0], xy[1], self._yaw])
        return self.tracker.control(self.pid, pose, speed, plan, CONTROL_DT_S)

    def planned_trajectory(self) -> NDArray[np.float64] | None:
        return self._plan
