"""Route records parsed from leaderboard route files: weathers, scenarios and keypoints.

Positions are CARLA world-frame metres; yaw stays in degrees here because route files store it so
(the planner converts to radians). Values keep the file's attribute order so files round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

TRIGGER_DIST_M = 2.0  # [m] a scenario trigger must lie this close to a route point (leaderboard)
TRIGGER_ANGLE_DEG = 10.0  # [deg] ... and its yaw within this of the route's heading there

Pose = tuple[float, float, float, float]
"""(x_m, y_m, z_m, yaw_deg) in the CARLA world frame, as route files write a transform."""


@dataclass(frozen=True)
class Weather:
    """One `<weather>` keyframe: where along the route it applies (percent) and its parameters.

    `values` holds every attribute other than route_percentage as floats, in file order
    (cloudiness, precipitation, sun_altitude_angle, ... as `carla.WeatherParameters` names them).
    """

    route_percentage: float
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class OtherActor:
    """An extra actor of a Leaderboard 1.0 scenario (`other_actors` in the scenarios JSON).

    `role` is the JSON key (front, left, right, opposite); `transform` its pose.
    """

    role: str
    transform: Pose


@dataclass(frozen=True)
class ScenarioConfig:
    """One scenario of a route: name, ScenarioRunner class, trigger pose and raw parameters.

    `params` maps each parameter element's tag to all of its attributes as strings, in file order,
    e.g. {'flow_speed': {'value': '10'}, 'source_dist_interval': {'from': '20', 'to': '50'}}.
    """

    name: str
    type: str
    trigger: Pose
    params: dict[str, dict[str, str]] = field(default_factory=dict)
    other_actors: tuple[OtherActor, ...] = ()

    @property
    def trigger_xy(self) -> NDArray[np.float64]:
        """Trigger position (2,) metres, world frame."""
        return np.array(self.trigger[:2], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class RouteConfig:
    """A route as written in the file: id, town, keypoints (N, 3) metres, weathers, scenarios.

    `extra` keeps attributes of `<route>` other than id/town (strings, file order) for round trips.
    Equality compares keypoints by value (numpy arrays have no plain `==`).
    """

    id: str
    town: str
    keypoints: NDArray[np.float64]
    weathers: tuple[Weather, ...] = ()
    scenarios: tuple[ScenarioConfig, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] != 3:
            raise ValueError(f"route {self.id}: keypoints must have shape (N, 3), got {kp.shape}")
        kp.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, RouteConfig):
            return NotImplemented
        return (
            self.id == other.id
            and self.town == other.town
            and self.keypoints.shape == other.keypoints.shape
            and bool(np.array_equal(self.keypoints, other.keypoints))
            and self.weathers == other.weathers
            and self.scenarios == other.scenarios
            and self.extra == other.extra
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-dict fields: not hashable

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints N."""
        return int(self.keypoints.shape[0])


def triggers_near_route(
    triggers: NDArray[np.float64], route_xy: NDArray[np.float64], route_yaw_rad: NDArray[np.float64]
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Leaderboard scenario rule: which triggers (K, 4) [x, y, z, yaw_deg] lie within 2 m (in the
    ground plane) and 10 deg of some route point (M,) ; returns (hit (K,), first such index or -1)."""
    trig = np.asarray(triggers, dtype=np.float64).reshape(-1, 4)
    xy = np.asarray(route_xy, dtype=np.float64).reshape(-1, 2)
    if trig.shape[0] == 0 or xy.shape[0] == 0:
        return np.zeros(trig.shape[0], dtype=bool), np.full(trig.shape[0], -1, dtype=np.int64)
    hits = cKDTree(xy).query_ball_point(trig[:, :2], r=TRIGGER_DIST_M, return_sorted=True)
    counts = np.array([len(h) for h in hits], dtype=np.int64)
    k = np.repeat(np.arange(trig.shape[0]), counts)
    m = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]) if counts.sum() else k
    d = np.linalg.norm(trig[k, :2] - xy[m], axis=1)
    dyaw = (trig[k, 3] - np.degrees(np.asarray(route_yaw_rad, dtype=np.float64)[m])) % 360.0
    ok = (d < TRIGGER_DIST_M) & ((dyaw < TRIGGER_ANGLE_DEG) | (dyaw > 360.0 - TRIGGER_ANGLE_DEG))
    first = np.full(trig.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, k[ok], m[ok])
    hit = first < np.iinfo(np.int64).max
    return hit, np.where(hit, first, -1)
