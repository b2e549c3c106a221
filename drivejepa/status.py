"""The planner's 11-value ego status (REFERENCE.md 1a: pose 3, velocity 2, acceleration 2, driving
command one-hot 4) and the route target it is built from.

NAVSIM's status pose is the current pose in the current ego frame, identically (0, 0, 0) for the
last frame the planner sees. In closed loop on CARLA a planner must know where its route goes, so
the pose slot carries the route target point instead: the next global-plan waypoint the ego has
not yet reached, as (x forward, y right, heading) in the ego frame (docs/DIFFERENCES.md). The
tracker follows the leaderboard agents' route-planner habit: waypoints closer than
``REACHED_M`` are popped. Velocity is (speedometer, 0); acceleration is the IMU's (x, y).
Collection and the agent both build the status with :func:`ego_status` from the same readings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle
from harness.routes.interpolate import RoadOption

STATUS_DIM = 11
REACHED_M = 7.5  # [m] a waypoint this close counts as reached and is popped
TARGET_CLIP_M = 60.0  # [m] the target's ego-frame x and y are clipped to +-this
# [rad] a route target whose ego-frame heading exceeds this in magnitude lies past a turn: the
# line through it along its heading no longer stands for the ego's lane (lane keeping, the
# planner's straight / turn val figures)
TURN_HEADING_RAD = 0.1

# NAVSIM's driving command order: [left, straight, right, unknown]
COMMAND_LEFT, COMMAND_STRAIGHT, COMMAND_RIGHT, COMMAND_UNKNOWN = range(4)
_COMMAND_OF: dict[int, int] = {
    RoadOption.LEFT: COMMAND_LEFT,
    RoadOption.CHANGELANELEFT: COMMAND_LEFT,
    RoadOption.STRAIGHT: COMMAND_STRAIGHT,
    RoadOption.LANEFOLLOW: COMMAND_STRAIGHT,
    RoadOption.RIGHT: COMMAND_RIGHT,
    RoadOption.CHANGELANERIGHT: COMMAND_RIGHT,
}


def command_index(option: int) -> int:
    """CARLA RoadOption value -> NAVSIM command index (VOID and unknown values -> unknown)."""
    return _COMMAND_OF.get(int(option), COMMAND_UNKNOWN)


def to_ego_frame(
    xy: NDArray[np.float64], yaw: NDArray[np.float64], ego: Sequence[float]
) -> NDArray[np.float64]:
    """World (x, y) (N, 2) and yaw (N,) -> ego-frame (N, 3) [x forward, y right, yaw] for the ego
    pose (x, y, yaw) in CARLA's world frame (whose +y already points right of +x)."""
    c, s = np.cos(ego[2]), np.sin(ego[2])
    d = np.asarray(xy, dtype=np.float64) - np.asarray(ego[:2], dtype=np.float64)
    return np.column_stack(
        [
            c * d[:, 0] + s * d[:, 1],
            -s * d[:, 0] + c * d[:, 1],
            wrap_angle(np.asarray(yaw) - ego[2]),
        ]
    )


class RouteTarget:
    """Tracks the next unreached waypoint of a global plan (world x, y, yaw [rad], RoadOption)."""

    def __init__(
        self, xy: NDArray[np.float64], yaw_rad: NDArray[np.float64], options: Sequence[int]
    ) -> None:
        self.xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.yaw = np.asarray(yaw_rad, dtype=np.float64).reshape(-1)
        self.options = np.asarray(options, dtype=np.int64).reshape(-1)
        if not (len(self.xy) == len(self.yaw) == len(self.options)) or len(self.xy) == 0:
            raise ValueError(
                "RouteTarget needs one or more waypoints with a yaw and an option each"
            )
        self.index = 0

    def update(self, ego_xy: Sequence[float]) -> int:
        """Pop reached waypoints (never the last); returns the index of the current target."""
        while (
            self.index < len(self.xy) - 1
            and np.hypot(*(self.xy[self.index] - np.asarray(ego_xy[:2]))) < REACHED_M
        ):
            self.index += 1
        return self.index

    def target(self, ego_pose: Sequence[float]) -> tuple[NDArray[np.float64], int]:
        """(3,) [x, y, heading] of the current target in the ego frame (x, y clipped) and its
        NAVSIM command index. Call :meth:`update` first."""
        k = self.index
        local = to_ego_frame(self.xy[k : k + 1], self.yaw[k : k + 1], ego_pose)[0]
        local[:2] = np.clip(local[:2], -TARGET_CLIP_M, TARGET_CLIP_M)
        return local, command_index(int(self.options[k]))


def ego_status(
    target_local: NDArray[np.float64],
    command: int,
    speed_mps: float,
    accel_xy_mps2: Sequence[float],
) -> NDArray[np.float32]:
    """(11,) float32: target pose (3), velocity (speed, 0), acceleration (IMU x, y), command one-hot (4)."""
    out = np.zeros(STATUS_DIM, dtype=np.float32)
    out[0:3] = target_local
    out[3] = speed_mps
    out[5:7] = accel_xy_mps2[0], accel_xy_mps2[1]
    out[7 + int(command)] = 1.0
    return out
