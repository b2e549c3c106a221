"""People crossing the road in front of the ego: DynamicObjectCrossing (from behind a blocker on
the sidewalk), ParkingCrossingPedestrian (from between parked cars) and PedestrianCrossing (a
group at the junction the ego goes through).

Crossing walkers start when the ego would reach the crossing point in about the time they need
to reach its lane (ScenarioRunner triggers on the ego's distance, tuned the same way), so they
step out in front of it; the ego must brake."""

from __future__ import annotations

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import BasicScenario
from scenarios.behaviours import (
    CrossRoad,
    HoldSetup,
    Idle,
    InTimeToArrivalAlongRoute,
    InTriggerDistanceAlongRoute,
)
from scenarios.context import ScenarioContext
from scenarios.placement import junction_on_route, lane_s, lane_width, right_normal, road_extent
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M

WALKER_SIZE_M = 0.5  # [m] walker box (length = width)
WALKER_SPEED_MPS = 2.0  # [m/s] a hurried adult (ScenarioRunner's adversary walkers)
SIDEWALK_OFFSET_M = 1.5  # [m] walkers wait this far beyond the drivable edge
FAR_SIDE_M = 2.0  # [m] crossings end this far beyond the far drivable edge
WALKER_LEAD_S = (
    2.0  # [s] walkers reach the ego's lane about this long before the ego would (room to brake)
)
MIN_TRIGGER_M = 8.0  # [m] walkers start at the latest when the ego is this close
BLOCKER_SIZES_M = {  # (length, width) [m] of ScenarioRunner's blocker props
    "static.prop.container": (6.0, 2.5),
    "static.prop.advertisement": (1.2, 3.0),
    "static.prop.foodcart": (2.0, 1.5),
    "static.prop.busstoplb": (3.5, 1.5),
}
DEFAULT_BLOCKER_M = (2.0, 2.0)  # [m] other blocker models
PARKED_GAP_M = 4.0  # [m] bumper gap between the two parked cars of ParkingCrossingPedestrian
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
    """Path (2, 2) from ``start_out_m`` beyond the road's ``side`` edge (+1 right) to FAR_SIDE_M
    beyond the other edge, tilted by ``angle_deg`` towards the ego's direction of travel."""
    right, left = road_extent(ctx.town, road_xy, yaw)
    near, far = (right, left) if side > 0 else (left, right)
    n = right_normal(yaw) * side
    fwd = np.array([np.cos(yaw), np.sin(yaw)])
    a = np.deg2rad(angle_deg)
    across = -(n * np.cos(a)) + fwd * np.sin(a)  # from the side edge towards the other side
    start = road_xy + n * (near + start_out_m)
    length = (near + start_out_m + far + FAR_SIDE_M) / max(np.cos(a), 0.2)
    return np.stack([start, start + across * length])


class _Crossing(BasicScenario):
    """Shared: a walker waiting at the roadside ``distance`` m ahead, crossing on the ego's approach."""

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", 40.0)
        self.side = self.direction_sign()
        self.angle_deg = self.param_float("crossing_angle", 0.0)
        self.cross_xy, self.cross_yaw, self.lane = self.route_point(self.distance_m)
        self.walker_id = -1
        self.walk: np.ndarray = np.zeros((0, 2))

    def spawn_walker(self, start_out_m: float) -> None:
        self.walk = crossing_path(
            self.ctx, self.cross_xy, self.cross_yaw, self.side, self.angle_deg, start_out_m
        )
        d = self.walk[1] - self.walk[0]
        self.walker_id = self.pool.spawn(
            ActorSpec(ActorKind.PEDESTRIAN, float(self.walk[0, 0]), float(self.walk[0, 1]),
                      float(np.arctan2(d[1], d[0])), WALKER_SIZE_M, WALKER_SIZE_M, 1.8)
        )  # fmt: skip

    def crossing(self, statics: list[int]) -> Behaviour:
        to_lane = float(np.hypot(*(self.walk[0] - self.cross_xy)))
        t_walk = to_lane / WALKER_SPEED_MPS + WALKER_LEAD_S
        cross = Sequence(
            "cross",
            True,
            [
                InTimeToArrivalAlongRoute(
                    self.ctx, self.trigger_s_m + self.distance_m, t_walk, MIN_TRIGGER_M
                ),
                CrossRoad(self.ctx, self.walker_id, self.walk, WALKER_SPEED_MPS),
                Idle(self.ctx),
            ],
        )
        return Parallel(
            "crossing", ParallelPolicy.SuccessOnAll(), [HoldSetup(self.ctx, statics), cross]
        )

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + 15.0


class DynamicObjectCrossing(_Crossing):
    """A ``blocker_model`` prop (a box of that prop's size, STATIC or for a vehicle.* model
    VEHICLE) stands on the ``direction``
    sidewalk ``distance`` m ahead; a pedestrian hides behind it (further along the road) and,
    as the ego approaches, crosses the whole road at ``crossing_angle`` deg off the
    perpendicular (tilted along the ego's travel) at WALKER_SPEED_MPS. The ego must brake.
    ScenarioRunner may use a bicycle instead of a walker for some blockers; here it is always a
    walker."""

    def setup_actors(self) -> None:
        self.clear(self.cross_xy)
        length, width = BLOCKER_SIZES_M.get(self.param_str("blocker_model", ""), DEFAULT_BLOCKER_M)
        right, left = road_extent(self.ctx.town, self.cross_xy, self.cross_yaw)
        edge = right if self.side > 0 else left
        fwd = np.array([np.cos(self.cross_yaw), np.sin(self.cross_yaw)])
        # the blocker stands just before the crossing point, the walker right behind it
        p = (
            self.cross_xy
            - fwd * (0.5 * length + 1.0)
            + right_normal(self.cross_yaw) * self.side * (edge + 0.5 * width + 0.3)
        )
        # a static.prop.* blocker scores collisions_layout, a vehicle.* one collisions_vehicle
        model = self.param_str("blocker_model", "")
        kind = ActorKind.VEHICLE if "vehicle" in model else ActorKind.STATIC
        self.blocker_id = self.pool.spawn(
            ActorSpec(kind, float(p[0]), float(p[1]), self.cross_yaw, length, width, 2.5)
        )
        self.spawn_walker(SIDEWALK_OFFSET_M)

    def behaviour(self) -> Behaviour:
        return self.crossing([self.blocker_id])


class ParkingCrossingPedestrian(_Crossing):
    """Two cars parked at the ``direction`` road edge around the point ``distance`` m ahead
    (PARKED_GAP_M apart); a pedestrian stands in the gap between them and crosses in front of the
    ego at ``crossing_angle`` deg as it approaches. Where the road has no parking lane the cars
    stand half on the shoulder just outside the ego's lane (ScenarioRunner uses the parking lane)."""

    def setup_actors(self) -> None:
        self.clear(self.cross_xy)
        town = self.ctx.town
        w = lane_width(town, self.lane, lane_s(town, self.lane, self.cross_xy))
        right, left = road_extent(town, self.cross_xy, self.cross_yaw)
        edge = right if self.side > 0 else left
        lateral = max(edge - 0.5 * CAR_WIDTH_M - 0.1, 0.5 * w + 0.5 * CAR_WIDTH_M + 0.2)
        fwd = np.array([np.cos(self.cross_yaw), np.sin(self.cross_yaw)])
        n = right_normal(self.cross_yaw) * self.side
        self.parked = []
        for sign in (-1.0, 1.0):
            p = self.cross_xy + fwd * sign * 0.5 * (CAR_LENGTH_M + PARKED_GAP_M) + n * lateral
            self.parked.append(
                self.pool.spawn(
                    ActorSpec(
                        ActorKind.VEHICLE,  # vehicle.* in ScenarioRunner
                        float(p[0]),
                        float(p[1]),
                        self.cross_yaw,
                        CAR_LENGTH_M,
                        CAR_WIDTH_M,
                    )
                )
            )
        # the walker starts between the cars, at their outer side
        self.spawn_walker(lateral + 0.5 * CAR_WIDTH_M - edge)

    def behaviour(self) -> Behaviour:
        return self.crossing(self.parked)


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
