"""People crossing the road in front of the ego: DynamicObjectCrossing (from behind a blocker on
the sidewalk), ParkingCrossingPedestrian (from in front of a parked car) and PedestrianCrossing (a
group at the junction the ego goes through).

The two single-walker scenarios follow ScenarioRunner's object_crash_vehicle.py: the walker starts
when the ego's time to arrival at the collision point (straight-line distance / speed) drops below
a reaction time of 2.1 s (2.15 s beside a parked car) + 0.1 s per whole 5 deg of
``crossing_angle``, or when the ego is within MIN_TRIGGER_M of it; it walks at WALKER_SPEED_MPS
across the road, its heading turned ``crossing_angle`` deg from the perpendicular back towards the
oncoming ego. A blind ego at a constant speed is hit; the ego must see and brake."""

from __future__ import annotations

from math import floor

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import BasicScenario
from scenarios.behaviours import (
    ActorDestroy,
    CrossRoad,
    FollowPath,
    HoldSetup,
    Idle,
    InTimeToArrivalToLocation,
    InTriggerDistanceAlongRoute,
)
from scenarios.context import ScenarioContext
from scenarios.placement import junction_on_route, lane_s, lane_width, right_normal, road_extent
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M

WALKER_SIZE_M = 0.5  # [m] walker box (length = width)
WALKER_SPEED_MPS = 2.0  # [m/s] ScenarioRunner's _adversary_speed
WALKER_ACCEL_MPS2 = 20.0  # [m/s2] KeepVelocity sets the walker's speed at once
SIDEWALK_OFFSET_M = 1.5  # [m] the sidewalk's centre: this far beyond the drivable edge
FAR_SIDE_M = 2.0  # [m] PedestrianCrossing: crossings end this far beyond the far drivable edge
REACTION_TIME_S = 2.1  # [s] DynamicObjectCrossing's _reaction_time ...
PARKED_REACTION_TIME_S = 2.15  # [s] ... ParkingCrossingPedestrian's
REACTION_PER_5_DEG_S = 0.1  # [s] added per whole 5 deg of crossing angle
MIN_TRIGGER_M = 6.0  # [m] _min_trigger_dist: the walker starts at the latest this close
DEFAULT_DISTANCE_M = 12.0  # [m] ScenarioRunner's default ``distance``
WALKER_BEHIND_BLOCKER_M = 0.5  # [m] the walker stands this far past the blocker's half length
PARKED_WALK_M = 8.0  # [m] ParkingCrossingPedestrian's walk ("one lane - one direction road")
END_AFTER_M = 15.0  # [m] the scenario ends this far past the collision point
BLOCKER_SIZES_M = {  # (length along the road, width) [m] of ScenarioRunner's blocker props
    "static.prop.container": (6.0, 2.5),
    "static.prop.advertisement": (1.2, 3.0),
    "static.prop.foodcart": (2.0, 1.5),
    "static.prop.busstoplb": (3.5, 1.5),
}
DEFAULT_BLOCKER_M = (2.0, 2.0)  # [m] other blocker models
GROUP_SIZE = 3  # [-] walkers of PedestrianCrossing
GROUP_SPEEDS_MPS = (1.3, 1.5, 1.7)  # [m/s]
GROUP_SPACING_M = 1.2  # [m] walkers of the group stand this far apart along the road


def crossing_path(
    ctx: ScenarioContext,
    road_xy: np.ndarray,
    yaw: float,
    side: float,
    angle_deg: float,
    start_out_m: float,
) -> np.ndarray:
    """PedestrianCrossing's path (2, 2) from ``start_out_m`` beyond the road's ``side`` edge (+1
    right) to FAR_SIDE_M beyond the other edge, tilted by ``angle_deg`` along the ego's travel."""
    right, left = road_extent(ctx.town, road_xy, yaw)
    near, far = (right, left) if side > 0 else (left, right)
    n = right_normal(yaw) * side
    fwd = np.array([np.cos(yaw), np.sin(yaw)])
    a = np.deg2rad(angle_deg)
    across = -(n * np.cos(a)) + fwd * np.sin(a)  # from the side edge towards the other side
    start = road_xy + n * (near + start_out_m)
    length = (near + start_out_m + far + FAR_SIDE_M) / max(np.cos(a), 0.2)
    return np.stack([start, start + across * length])


def walk_towards_ego(
    start: np.ndarray, yaw: float, side: float, angle_deg: float, length_m: float
) -> np.ndarray:
    """ScenarioRunner's crossing walk (2, 2): from ``start`` on the ``side`` (+1 right) of a road
    heading ``yaw``, ``length_m`` towards the road, turned ``angle_deg`` from the perpendicular
    back against the road's direction (towards the oncoming ego: its walker yaw is the lane's
    yaw + 270 - angle on the right, + 90 + angle on the left)."""
    n = right_normal(yaw) * side
    fwd = np.array([np.cos(yaw), np.sin(yaw)])
    a = np.deg2rad(angle_deg)
    heading = -(n * np.cos(a)) - fwd * np.sin(a)
    return np.stack([start, start + heading * length_m])


class _Crossing(BasicScenario):
    """Shared: one walker waiting at the roadside, crossing when the ego is about the reaction
    time away from the collision point (see the module docstring)."""

    reaction_time_s = REACTION_TIME_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", DEFAULT_DISTANCE_M)
        self.side = self.direction_sign()
        self.angle_deg = self.param_float("crossing_angle", 0.0)
        self.cross_xy, self.cross_yaw, self.lane = self.route_point(self.distance_m)
        self.collision_xy = self.cross_xy
        self.walker_id = -1
        self.walk: np.ndarray = np.zeros((0, 2))

    @property
    def trigger_time_s(self) -> float:
        """The reaction time: base + 0.1 s per whole 5 deg of crossing angle."""
        return self.reaction_time_s + REACTION_PER_5_DEG_S * floor(self.angle_deg / 5.0)

    def spawn_walker(self, start: np.ndarray, length_m: float) -> None:
        self.walk = walk_towards_ego(start, self.cross_yaw, self.side, self.angle_deg, length_m)
        d = self.walk[1] - self.walk[0]
        self.walker_id = self.pool.spawn(
            ActorSpec(ActorKind.PEDESTRIAN, float(self.walk[0, 0]), float(self.walk[0, 1]),
                      float(np.arctan2(d[1], d[0])), WALKER_SIZE_M, WALKER_SIZE_M, 1.8)
        )  # fmt: skip

    def side_point(self, along_m: float, lateral_m: float) -> np.ndarray:
        """The point ``along_m`` past the crossing point along the road and ``lateral_m`` to the
        scenario's side."""
        fwd = np.array([np.cos(self.cross_yaw), np.sin(self.cross_yaw)])
        n = right_normal(self.cross_yaw) * self.side
        return self.cross_xy + fwd * along_m + n * lateral_m

    def crossing(self, statics: list[int]) -> Behaviour:
        walk = FollowPath(
            self.ctx, self.walker_id, self.walk, WALKER_SPEED_MPS,
            accel_mps2=WALKER_ACCEL_MPS2, wait=True, name="AdversaryCrossing",
        )  # fmt: skip
        cross = Sequence(
            "cross",
            True,
            [
                InTimeToArrivalToLocation(
                    self.ctx, self.collision_xy, self.trigger_time_s, MIN_TRIGGER_M
                ),
                walk,
                ActorDestroy(self.ctx, self.pool, [self.walker_id]),
                Idle(self.ctx),
            ],
        )
        return Parallel(
            "crossing", ParallelPolicy.SuccessOnAll(), [HoldSetup(self.ctx, statics), cross]
        )


class DynamicObjectCrossing(_Crossing):
    """A ``blocker_model`` prop (a box of that prop's size, STATIC, or VEHICLE for a
    vehicle.* model) stands on the ``direction``
    sidewalk (SIDEWALK_OFFSET_M beyond the drivable edge) beside the route point ``distance`` m
    ahead (the collision point); a pedestrian stands on the sidewalk just past it (half its length
    + 0.5 m further along) and, when triggered, walks twice its distance to the collision point
    (ScenarioRunner: "cross the whole road") towards the road, turned back towards the ego. The
    walker is removed once across. ScenarioRunner may use a bicycle for some blockers; here it is
    always a walker."""

    def setup_actors(self) -> None:
        self.clear(self.cross_xy)
        length, width = BLOCKER_SIZES_M.get(self.param_str("blocker_model", ""), DEFAULT_BLOCKER_M)
        right, left = road_extent(self.ctx.town, self.cross_xy, self.cross_yaw)
        sidewalk = (right if self.side > 0 else left) + SIDEWALK_OFFSET_M
        p = self.side_point(0.0, sidewalk + max(0.0, 0.5 * width - SIDEWALK_OFFSET_M))
        # a static.prop.* blocker scores collisions_layout, a vehicle.* one collisions_vehicle
        model = self.param_str("blocker_model", "")
        kind = ActorKind.VEHICLE if "vehicle" in model else ActorKind.STATIC
        self.blocker_id = self.pool.spawn(
            ActorSpec(kind, float(p[0]), float(p[1]), self.cross_yaw, length, width, 2.5)
        )
        start = self.side_point(0.5 * length + WALKER_BEHIND_BLOCKER_M, sidewalk)
        collision_dist = float(np.hypot(*(start - self.collision_xy)))
        self.spawn_walker(start, 2.0 * collision_dist)

    def behaviour(self) -> Behaviour:
        return self.crossing([self.blocker_id])

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + END_AFTER_M


class ParkingCrossingPedestrian(_Crossing):
    """A car parked ``distance`` m ahead one lane width to the ``direction`` side (ScenarioRunner:
    the parking lane's centre); a pedestrian stands one lane width to that side just in front of
    it (half a car length + 0.5 m further) and, when triggered, walks PARKED_WALK_M towards the
    road, turned back towards the ego; the collision point is the ego's lane centre beside the
    walker. The walker is removed once done."""

    reaction_time_s = PARKED_REACTION_TIME_S

    def setup_actors(self) -> None:
        self.clear(self.cross_xy)
        town = self.ctx.town
        w = lane_width(town, self.lane, lane_s(town, self.lane, self.cross_xy))
        p = self.side_point(0.0, w)
        self.parked = [
            self.pool.spawn(
                ActorSpec(ActorKind.VEHICLE, float(p[0]), float(p[1]), self.cross_yaw,
                          CAR_LENGTH_M, CAR_WIDTH_M)  # vehicle.* in ScenarioRunner
            )
        ]  # fmt: skip
        ahead = 0.5 * CAR_LENGTH_M + WALKER_BEHIND_BLOCKER_M
        xy, _, _ = self.route_point(self.distance_m + ahead)
        self.collision_xy = xy
        self.spawn_walker(self.side_point(ahead, w), PARKED_WALK_M)

    def behaviour(self) -> Behaviour:
        return self.crossing(self.parked)

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + END_AFTER_M


class PedestrianCrossing(BasicScenario):
    """GROUP_SIZE pedestrians wait on the right sidewalk of the road the ego takes out of the
    junction after the trigger, at the crosswalk just past the junction exit; when the ego nears
    the junction they cross that road (perpendicular, GROUP_SPEEDS_MPS). The ego must let them
    pass after its turn. No junction on the route after the trigger: they cross 30 m ahead."""

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        span = junction_on_route(ctx.planned, ctx.town, self.trigger_s_m)
        planned = ctx.planned
        if span is None:
            self.entry_s = self.cross_s = self.trigger_s_m + 30.0
        else:
            self.entry_s = float(planned.s_m[span[0]])
            self.cross_s = float(planned.s_m[span[1]]) + 3.0
        self.cross_xy, self.cross_yaw, _ = self.route_point(self.cross_s - self.trigger_s_m)
        self.walker_ids: list[int] = []
        self.paths: list[np.ndarray] = []

    def setup_actors(self) -> None:
        self.clear(self.cross_xy)
        fwd = np.array([np.cos(self.cross_yaw), np.sin(self.cross_yaw)])
        for i in range(GROUP_SIZE):
            xy = self.cross_xy + fwd * (i - 1) * GROUP_SPACING_M
            path = crossing_path(
                self.ctx, xy, self.cross_yaw, 1.0, 0.0, SIDEWALK_OFFSET_M + 0.5 * (i % 2)
            )
            d = path[1] - path[0]
            self.paths.append(path)
            self.walker_ids.append(
                self.pool.spawn(ActorSpec(ActorKind.PEDESTRIAN, float(path[0, 0]), float(path[0, 1]),
                                          float(np.arctan2(d[1], d[0])), WALKER_SIZE_M, WALKER_SIZE_M, 1.8))
            )  # fmt: skip

    def behaviour(self) -> Behaviour:
        walks: list[Behaviour] = [
            CrossRoad(self.ctx, aid, path, GROUP_SPEEDS_MPS[i % len(GROUP_SPEEDS_MPS)])
            for i, (aid, path) in enumerate(zip(self.walker_ids, self.paths, strict=True))
        ]
        return Sequence(
            "group crossing",
            True,
            [
                InTriggerDistanceAlongRoute(self.ctx, self.entry_s, 10.0),
                Parallel("walk", ParallelPolicy.SuccessOnAll(), walks),
            ],
        )

    def end_s_m(self) -> float:
        return self.cross_s + 15.0
