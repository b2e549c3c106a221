"""Obstacles in the ego's lane that it must drive around: Accident, ConstructionObstacle,
ParkedObstacle, HazardAtSideLane and their TwoWays variants (the way around is the opposite lane,
with oncoming traffic at the route file's ``frequency`` spacing).

Common set-up (as ScenarioRunner's): the obstacle stands ``distance`` m along the route after the
trigger point, in the ego's lane, displaced by LATERAL_FRACTION of half the lane width towards
``direction`` (so the ego passes on the other side). The ``speed`` parameter (km/h, ScenarioRunner
caps background traffic with it) has no effect here: the embedded background traffic keeps its
own speeds; the scenario area is cleared of it instead."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.behaviours import (
    FollowPath,
    HoldSetup,
    Idle,
    InTriggerDistanceToLocation,
    SwitchWrongDirectionTest,
)
from scenarios.context import ScenarioContext
from scenarios.placement import (
    PATH_STEP_M,
    lane_backward,
    lane_forward,
    lane_s,
    lane_width,
    offset_path,
    right_normal,
    route_ahead_until_junction,
    route_slice,
)
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M, ActorFlow, opposite_flow

log = logging.getLogger(__name__)

LATERAL_FRACTION = 0.75  # [-] obstacle displacement: this fraction of half the lane width
ACCIDENT_LATERAL_FRACTION = 0.6  # [-] ... ScenarioRunner's Accident offset
PARKED_LATERAL_FRACTION = 0.7  # [-] ... ScenarioRunner's ParkedObstacle offset
ACCIDENT_GAPS_M = (
    0.0,
    10.0,
    6.0,
)  # [m] police car, then the crashed cars behind it (ScenarioRunner's distances)
CONSTRUCTION_DISTANCE_M = 100.0  # [m] ConstructionObstacle's default ``distance``
CONSTRUCTION_END_M = 50.0  # [m] _end_distance: the scenario ends this far past the point
CONSTRUCTION_TRIGGER_M = 30.0  # [m] _trigger_distance: the TwoWays flow waits for the ego this near
CONSTRUCTION_OPPOSITE_WAIT_S = 5.0  # [s] _opposite_wait_duration: ... and then this long
WARNING_BACK_M = 5.0  # [m] the traffic-warning board stands this far before the construction point
WARNING_SIZE_M = (
    1.2,
    2.6,
)  # [m] (along, across) of static.prop.trafficwarning turned across the lane
CONE_EDGE_FRACTION = 0.85  # [-] the cone line runs at this fraction of half the lane width
CONE_RUN = ((4, 2.0), (3, 1.0))  # (cones, spacing [m]): along the lane edge, then across it
CONE_SIZE_M = 0.4  # [m]
HAZARD_DISTANCE_M = 100.0  # [m] HazardAtSideLane's default ``distance``
BICYCLE_GAP_M = 9.0  # [m] _obstacle_distance: between the bicycles of HazardAtSideLane
BICYCLE_COUNT = 2  # [-]
BICYCLE_OFFSET_FRACTION = 0.55  # [-] _offset: bicycles ride this fraction of half the lane right
ONCOMING_SPEED_MPS = 8.0  # [m/s] oncoming flow of the TwoWays variants
ONCOMING_UPSTREAM_M = 80.0  # [m] the oncoming flow's source lies this far beyond the obstacle
ONCOMING_DOWNSTREAM_M = 50.0  # [m] ... and its sink this far back on the ego's side
PASS_MARGIN_M = 20.0  # [m] the scenario ends this far past the last obstacle


class _LaneObstacle(BasicScenario, ABC):
    """Shared set-up: boxes at (along, lateral) offsets from the obstacle point; holds them."""

    default_distance_m = 40.0
    lateral_fraction = LATERAL_FRACTION
    timeout_s = SCENARIO_TIMEOUT_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", self.default_distance_m)
        self.side = self.direction_sign() if "direction" in self.config.params else 1.0
        xy, yaw, lane = self.route_point(self.distance_m)
        self.obstacle_xy, self.obstacle_yaw, self.lane = xy, yaw, lane
        self.width_m = lane_width(self.ctx.town, lane, lane_s(self.ctx.town, lane, xy))
        self.static_ids: list[int] = []
        self.layout_length_m = 0.0

    @abstractmethod
    def boxes(self) -> list[tuple[float, float, ActorKind, float, float]]:
        """(along [m], lateral [m, + right], kind, length, width) per obstacle actor."""

    def setup_actors(self) -> None:
        self.clear(self.obstacle_xy)
        for along, lateral, kind, length, width in self.boxes():
            xy, yaw, _ = self.route_point(self.distance_m + along)
            p = xy + lateral * right_normal(yaw)
            spec = ActorSpec(kind, float(p[0]), float(p[1]), yaw, length, width)
            self.static_ids.append(self.pool.spawn(spec))
            self.layout_length_m = max(self.layout_length_m, along + length)

    def behaviour(self) -> Behaviour:
        return HoldSetup(self.ctx, self.static_ids)

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + self.layout_length_m + PASS_MARGIN_M

    def displacement(self) -> float:
        return self.side * self.lateral_fraction * 0.5 * self.width_m


class _TwoWays(_LaneObstacle):
    """Base of the TwoWays variants: an oncoming flow in the opposite lane next to the obstacle
    (``frequency`` spacing). As leaderboard 2.0's TwoWays scenarios, the wrong-direction check
    of the outside-route-lanes criterion is off from the trigger until the scenario ends (the
    way around is the opposite lane)."""

    default_frequency_m: tuple[float, float] = (20.0, 100.0)

    def behaviour(self) -> Behaviour:
        flow = self.oncoming_flow(self.param_interval("frequency", self.default_frequency_m))
        return Sequence(
            f"{type(self).__name__}",
            True,
            [
                SwitchWrongDirectionTest(self.ctx, False),
                Parallel(
                    "obstacle and oncoming flow",
                    ParallelPolicy.SuccessOnAll(),
                    [super().behaviour(), flow],
                ),
            ],
        )

    def closing(self) -> list[Behaviour]:
        return [SwitchWrongDirectionTest(self.ctx, True)]

    def oncoming_flow(self, spacing: tuple[float, float]) -> Behaviour:
        opp = int(self.ctx.town.graph.left_opposite[self.lane])
        if opp < 0:
            log.warning(
                "%s: no opposite lane at the obstacle; no oncoming traffic (fallback)",
                self.config.name,
            )
            return Idle(self.ctx)
        s_opp = lane_s(self.ctx.town, opp, self.obstacle_xy)
        up = lane_backward(self.ctx.town, opp, s_opp, ONCOMING_UPSTREAM_M)
        down = lane_forward(self.ctx.town, opp, s_opp, ONCOMING_DOWNSTREAM_M)
        path = np.concatenate([up, down[1:]])
        self.clear(path[0], 15.0)
        return ActorFlow(
            self.ctx,
            self.pool,
            path,
            ONCOMING_SPEED_MPS,
            spacing,
            prefill=True,
            name="OncomingFlow",
        )


class Accident(_LaneObstacle):
    """A police car ``distance`` m ahead in the ego's lane, displaced towards ``direction``, and two
    crashed cars behind it (10 m and 6 m further); all stand still. The ego must change lanes
    (to the side opposite ``direction``) and pass. ScenarioRunner also puts a warning-lights
    police car and accident props; here they are plain boxes, all three VEHICLE (ScenarioRunner
    spawns vehicle.* blueprints: CollisionTest scores a hit as collisions_vehicle)."""

    lateral_fraction = ACCIDENT_LATERAL_FRACTION

    def boxes(self) -> list[tuple[float, float, ActorKind, float, float]]:
        d = self.displacement()
        along = np.cumsum(ACCIDENT_GAPS_M).tolist()
        kinds = (ActorKind.VEHICLE, ActorKind.VEHICLE, ActorKind.VEHICLE)
        return [(a, d, k, CAR_LENGTH_M, CAR_WIDTH_M) for a, k in zip(along, kinds, strict=True)]


class AccidentTwoWays(_TwoWays, Accident):
    """Accident in the ego's lane, displaced to the right; the way around is the opposite lane,
    where vehicles come towards the ego at ONCOMING_SPEED_MPS spaced by U(``frequency``) m. No
    opposite lane: a warning, and the accident alone."""


class ConstructionObstacle(_LaneObstacle):
    """ScenarioRunner's construction set-up ``distance`` m (default 100) ahead, closing the whole
    lane: a traffic-warning board across the lane centre WARNING_BACK_M before the construction
    point, then cones from the point on: four 2 m apart along the lane edge away from
    ``direction`` (at 0.85 x half the lane width) and three 1 m apart turning across the lane
    towards ``direction`` (STATIC boxes). The ego must leave its lane. The dirt debris and the
    roadside warning sign are not modelled (flat / off the road)."""

    default_distance_m = CONSTRUCTION_DISTANCE_M

    def end_s_m(self) -> float:
        """ScenarioRunner's end point: CONSTRUCTION_END_M past the construction point, stopping
        before a junction."""
        s0 = self.trigger_s_m + self.distance_m
        return route_ahead_until_junction(self.ctx.planned, self.ctx.town, s0, CONSTRUCTION_END_M)

    def boxes(self) -> list[tuple[float, float, ActorKind, float, float]]:
        out = [(-WARNING_BACK_M, 0.0, ActorKind.STATIC, *WARNING_SIZE_M)]
        along, lateral = 0.0, -self.side * CONE_EDGE_FRACTION * 0.5 * self.width_m
        for leg, (count, spacing) in enumerate(CONE_RUN):
            for _ in range(count):
                if leg == 0:
                    along += spacing
                else:
                    lateral += self.side * spacing
                out.append((along, lateral, ActorKind.STATIC, CONE_SIZE_M, CONE_SIZE_M))
        return out


class ConstructionObstacleTwoWays(ConstructionObstacle):
    """ConstructionObstacle whose way around is the opposite lane, as construction_crash_vehicle.py
    drives it: once the ego is CONSTRUCTION_TRIGGER_M from the construction point and
    CONSTRUCTION_OPPOSITE_WAIT_S more have passed, the wrong-direction test goes off and an
    oncoming flow starts (OppositeActorFlow: empty at first, spaced by U(``frequency``) m,
    keeping gaps); the test is back on when the scenario ends. No oncoming lane: a warning, and
    the construction alone."""

    def behaviour(self) -> Behaviour:
        steps: list[Behaviour] = [
            InTriggerDistanceToLocation(self.ctx, self.obstacle_xy, CONSTRUCTION_TRIGGER_M),
            Idle(self.ctx, CONSTRUCTION_OPPOSITE_WAIT_S),
            SwitchWrongDirectionTest(self.ctx, False),
        ]
        flow = opposite_flow(self.ctx, self.pool, self.lane, self.obstacle_xy,
                             self.param_interval("frequency", (20.0, 100.0)))  # fmt: skip
        if flow is None:
            log.warning("%s: no opposite lane; no oncoming traffic (fallback)", self.config.name)
        else:
            steps.append(flow)
        return Parallel(
            "construction and oncoming flow",
            ParallelPolicy.SuccessOnAll(),
            [super().behaviour(), Sequence("oncoming traffic", True, steps)],
        )

    def closing(self) -> list[Behaviour]:
        return [SwitchWrongDirectionTest(self.ctx, True)]


class ParkedObstacle(_LaneObstacle):
    """A vehicle parked ``distance`` m ahead, half in the ego's lane on the ``direction`` side
    (a VEHICLE that never moves: ScenarioRunner's vehicle.* blueprint, a collisions_vehicle hit).
    The ego must pass on the other side."""

    lateral_fraction = PARKED_LATERAL_FRACTION

    def boxes(self) -> list[tuple[float, float, ActorKind, float, float]]:
        return [(0.0, self.displacement(), ActorKind.VEHICLE, CAR_LENGTH_M, CAR_WIDTH_M)]


class ParkedObstacleTwoWays(_TwoWays, ParkedObstacle):
    """ParkedObstacle (to the right) with an oncoming flow spaced by U(``frequency``) m."""


class HazardAtSideLane(_LaneObstacle):
    """BICYCLE_COUNT bicycles ``distance`` m (default 100) ahead, BICYCLE_GAP_M apart, displaced
    BICYCLE_OFFSET_FRACTION of half the lane width to the right in the ego's lane. When the
    ego comes within ``distance`` m of them (at the trigger) they ride along the lane at
    ``bicycle_speed`` km/h for ``bicycle_drive_distance`` m and then stop at the edge. The ego
    must overtake them (partly leaving its lane) or follow. ScenarioRunner lets them ride on
    with BasicAgent; here they follow the lane edge."""

    default_distance_m = HAZARD_DISTANCE_M

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.bike_speed_mps = self.param_float("bicycle_speed", 10.0) / 3.6
        self.bike_drive_m = self.param_float("bicycle_drive_distance", 50.0)

    def lateral(self) -> float:
        """ScenarioRunner's displacement: 0.55 x half the lane width to the right."""
        return BICYCLE_OFFSET_FRACTION * 0.5 * self.width_m

    def boxes(self) -> list[tuple[float, float, ActorKind, float, float]]:
        return [
            (i * BICYCLE_GAP_M, self.lateral(), ActorKind.BICYCLE, 1.8, 0.7)
            for i in range(BICYCLE_COUNT)
        ]

    def ride(self) -> Behaviour:
        rides: list[Behaviour] = []
        planned, town = self.ctx.planned, self.ctx.town
        last = int(planned.lane[-1])
        # past the route's end the ride goes on along the lanes (a clamped path would stop
        # every bicycle at the route's end, on top of each other)
        run_out = lane_forward(town, last, lane_s(town, last, planned.xy[-1]), self.bike_drive_m)
        for i, aid in enumerate(self.static_ids):
            s0 = self.trigger_s_m + self.distance_m + i * BICYCLE_GAP_M
            s1 = s0 + self.bike_drive_m
            centre = route_slice(planned, s0, s1)
            over = s1 - planned.length_m
            if over > 1.0 and len(run_out) > 1:
                centre = np.concatenate([centre, run_out[1 : int(over / PATH_STEP_M) + 1]])
            path = offset_path(centre, self.lateral())
            rides.append(
                FollowPath(self.ctx, aid, path, self.bike_speed_mps, accel_mps2=1.0, wait=True)
            )
        return Parallel("bicycles ride", ParallelPolicy.SuccessOnAll(), rides)

    def behaviour(self) -> Behaviour:
        return self.ride()

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + self.bike_drive_m + PASS_MARGIN_M


class HazardAtSideLaneTwoWays(_TwoWays, HazardAtSideLane):
    """HazardAtSideLane with an oncoming flow spaced by ``frequency`` m: the ego may overtake the
    bicycles only through gaps in the oncoming traffic."""

    default_frequency_m = (100.0, 100.0)
