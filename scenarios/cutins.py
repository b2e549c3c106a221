"""Vehicles that move into the ego's lane from the side: ParkingCutIn (from a parking spot),
StaticCutIn (from a queue standing in the adjacent lane), and ParkingExit (the ego itself starts
parked and must merge out)."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.routes.model import Pose, ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.behaviours import (
    ActorDestroy,
    CutIn,
    DriveDistance,
    HoldSetup,
    Idle,
    InTimeToArrivalAlongRoute,
    InTimeToArrivalToLocation,
    WaitUntilEgoPassed,
)
from scenarios.context import ScenarioContext
from scenarios.placement import (
    lane_backward,
    lane_s,
    lane_width,
    parked_lateral,
    path_yaw,
    right_normal,
    route_pose,
    route_slice,
)
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M

log = logging.getLogger(__name__)

PARKING_BLOCKER_AHEAD_M = 28.0  # [m] ParkingCutIn's _blocker_distance: the car parked behind ...
PARKING_CUTTER_AHEAD_M = 35.0  # [m] ... _cut_in_distance: the cutter (and the collision point)
PARKING_CUT_IN_SPEED_MPS = 20.0 / 3.6  # [m/s] BasicAgent's default target speed (20 km/h)
PARKING_REACTION_S = 2.35  # [s] the cutter starts when the ego is this far (in time) ...
PARKING_MIN_TRIGGER_M = 10.0  # [m] ... or this close to the collision point
PARKING_DRIVE_M = 30.0  # [m] _end_distance: the cutter is removed after driving this far
CUT_IN_SPEED_MPS = 7.0  # [m/s] speed of a cutting-in vehicle
CUT_IN_ACCEL_MPS2 = 3.0  # [m/s2]
CUT_IN_HOLD_M = 2.0  # [m] straight travel before the lateral move
CUT_IN_BLEND_M = 12.0  # [m] length of the lateral move
CUT_IN_TIME_S = 2.5  # [s] cut in when the ego would reach the cutter within this time ...
CUT_IN_MIN_M = 12.0  # [m] ... or is this close
QUEUE_LENGTH = 3  # [-] StaticCutIn: stopped vehicles in the adjacent lane (the cutter is the first)
QUEUE_GAP_M = 3.0  # [m] bumper gap in the queue
PASS_MARGIN_M = 25.0  # [m]


def _spawn_car(
    scn: BasicScenario, xy: np.ndarray, yaw: float, kind: ActorKind = ActorKind.VEHICLE
) -> int:
    return scn.pool.spawn(
        ActorSpec(kind, float(xy[0]), float(xy[1]), yaw, CAR_LENGTH_M, CAR_WIDTH_M)
    )


def _cut_in(scn: BasicScenario, cutter: int, cutter_s: float, statics: list[int]) -> Behaviour:
    """Hold everything; when the ego nears ``cutter_s``, the cutter merges onto the route."""
    target = route_slice(scn.ctx.planned, cutter_s - 2.0, cutter_s + 80.0)
    go = Sequence(
        "cut in",
        True,
        [
            InTimeToArrivalAlongRoute(scn.ctx, cutter_s, CUT_IN_TIME_S, CUT_IN_MIN_M),
            CutIn(
                scn.ctx,
                cutter,
                target,
                CUT_IN_SPEED_MPS,
                CUT_IN_HOLD_M,
                CUT_IN_BLEND_M,
                CUT_IN_ACCEL_MPS2,
            ),
            Idle(scn.ctx),
        ],
    )
    return Parallel(
        "cut-in", ParallelPolicy.SuccessOnAll(), [HoldSetup(scn.ctx, statics + [cutter]), go]
    )


class ParkingCutIn(BasicScenario):
    """ScenarioRunner's ParkingCutIn: two cars parked at the ``direction`` road edge (in the
    parking lane / on the shoulder, see ``parked_lateral``) PARKING_BLOCKER_AHEAD_M and
    PARKING_CUTTER_AHEAD_M after the trigger; when the ego is PARKING_REACTION_S (time to arrival)
    or PARKING_MIN_TRIGGER_M from the collision point (the route beside the front car), the
    front car pulls out into the ego's lane at BasicAgent's 20 km/h and is removed with the other
    car after PARKING_DRIVE_M. The ego must brake."""

    def setup_actors(self) -> None:
        side = self.direction_sign()
        town = self.ctx.town
        self.parked: list[int] = []
        for ahead in (PARKING_BLOCKER_AHEAD_M, PARKING_CUTTER_AHEAD_M):
            xy, yaw, lane = self.route_point(ahead)
            self.clear(xy, 15.0)
            p = xy + side * parked_lateral(town, xy, yaw, lane, side, CAR_WIDTH_M) * right_normal(
                yaw
            )
            self.parked.append(_spawn_car(self, p, yaw, ActorKind.VEHICLE))  # vehicle.* in SR
        self.cutter = self.parked[-1]

    def behaviour(self) -> Behaviour:
        cutter_s = self.trigger_s_m + PARKING_CUTTER_AHEAD_M
        self.collision_xy, _, _ = self.route_point(PARKING_CUTTER_AHEAD_M)
        target = route_slice(self.ctx.planned, cutter_s - 2.0, cutter_s + 80.0)
        drive = CutIn(self.ctx, self.cutter, target, PARKING_CUT_IN_SPEED_MPS, CUT_IN_HOLD_M,
                      CUT_IN_BLEND_M, CUT_IN_ACCEL_MPS2)  # fmt: skip
        go = Sequence(
            "cut in",
            True,
            [
                InTimeToArrivalToLocation(
                    self.ctx, self.collision_xy, PARKING_REACTION_S, PARKING_MIN_TRIGGER_M
                ),
                drive,
                DriveDistance(
                    self.ctx, self.cutter, PARKING_DRIVE_M - CUT_IN_HOLD_M - CUT_IN_BLEND_M
                ),
                ActorDestroy(self.ctx, self.pool),
                Idle(self.ctx),
            ],
        )
        return Parallel(
            "parking cut-in",
            ParallelPolicy.SuccessOnSelected([go]),
            [HoldSetup(self.ctx, self.parked), go],
        )

    def end_s_m(self) -> float:
        return self.trigger_s_m + PARKING_CUTTER_AHEAD_M + PASS_MARGIN_M


class StaticCutIn(BasicScenario):
    """QUEUE_LENGTH vehicles stand in the lane on the ego's ``direction`` side, the first
    ``distance`` m after the trigger and the rest ahead of it; when the ego is about
    CUT_IN_TIME_S from it, the first one cuts into the ego's lane. No lane on that side: the
    queue stands on the road edge (``parked_lateral``) with a logged warning."""

    def setup_actors(self) -> None:
        side = self.direction_sign()
        town = self.ctx.town
        self.distance_m = self.param_float("distance", 60.0)
        self.queue: list[int] = []
        for i in range(QUEUE_LENGTH):
            ahead = self.distance_m + i * (CAR_LENGTH_M + QUEUE_GAP_M)
            xy, yaw, lane = self.route_point(ahead)
            self.clear(xy, 15.0)
            adj = int(town.graph.right[lane] if side > 0 else town.graph.left[lane])
            if adj >= 0:
                pos, adj_yaw = town.lanes.position(adj, lane_s(town, adj, xy))
                p, yaw = np.asarray(pos), float(adj_yaw)
            else:
                if i == 0:
                    log.warning("%s: no lane on the %s; the queue stands on the road edge (fallback)",
                                self.config.name, "right" if side > 0 else "left")  # fmt: skip
                p = xy + side * parked_lateral(
                    town, xy, yaw, lane, side, CAR_WIDTH_M
                ) * right_normal(yaw)
            self.queue.append(_spawn_car(self, p, yaw))

    def behaviour(self) -> Behaviour:
        return _cut_in(self, self.queue[0], self.trigger_s_m + self.distance_m, self.queue[1:])

    def end_s_m(self) -> float:
        return (
            self.trigger_s_m
            + self.distance_m
            + QUEUE_LENGTH * (CAR_LENGTH_M + QUEUE_GAP_M)
            + PASS_MARGIN_M
        )


class ParkingExit(BasicScenario):
    """The ego starts parked at the ``direction`` road edge beside the route start (see
    :meth:`ego_start_override`), between two parked cars ``front_vehicle_distance`` m ahead and
    ``behind_vehicle_distance`` m behind (centre to centre); it must pull out into its lane. The
    cars stay; the scenario ends when the ego has driven PASS_MARGIN_M along the route.
    ScenarioRunner uses the parking lane; here the spot is the road edge (``parked_lateral``)."""

    timeout_s = SCENARIO_TIMEOUT_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        side = self.direction_sign()
        xy, yaw, lane = route_pose(ctx.planned, 0.0)
        w = lane_width(ctx.town, lane, lane_s(ctx.town, lane, xy))
        lateral = parked_lateral(ctx.town, xy, yaw, lane, side, CAR_WIDTH_M)
        self.lateral_m = max(lateral, 0.5 * w)
        self.n = right_normal(yaw) * side
        self.start_xy, self.start_yaw = xy + self.lateral_m * self.n, yaw
        self.front_m = self.param_float("front_vehicle_distance", 9.0)
        self.behind_m = self.param_float("behind_vehicle_distance", 9.0)
        self.trigger_s_m = 0.0  # the scenario starts with the route

    def ego_start_override(self) -> Pose:
        z = float(self.ctx.planned.z[0])
        return (float(self.start_xy[0]), float(self.start_xy[1]), z, float(self.start_yaw))

    def setup_actors(self) -> None:
        self.clear(self.start_xy, 20.0)
        self.parked = [
            _spawn_car(self, *self._parked_pose(self.front_m), ActorKind.VEHICLE),  # vehicle.*
            _spawn_car(self, *self._parked_pose(-self.behind_m), ActorKind.VEHICLE),
        ]

    def _parked_pose(self, along_m: float) -> tuple[np.ndarray, float]:
        """Pose of a car parked ``along_m`` from the ego's spot along the road edge (negative:
        behind): the same lateral offset as the ego from the lane centre ``along_m`` ahead,
        following the lane's curvature (ScenarioRunner places them with waypoint.next /
        previous along the parking lane)."""
        town = self.ctx.town
        if along_m >= 0.0:
            xy, yaw, _ = route_pose(self.ctx.planned, along_m)
        else:
            lane = int(self.ctx.planned.lane[0])
            back = lane_backward(town, lane, lane_s(town, lane, self.ctx.planned.xy[0]), -along_m)
            xy, yaw = back[0], float(path_yaw(back)[0])
        n = right_normal(yaw) * self.direction_sign()
        return np.asarray(xy) + self.lateral_m * n, yaw

    def behaviour(self) -> Behaviour:
        return Parallel(
            "parked",
            ParallelPolicy.SuccessOnOne(),
            [HoldSetup(self.ctx, self.parked), WaitUntilEgoPassed(self.ctx, PASS_MARGIN_M)],
        )

    def end_s_m(self) -> float:
        return PASS_MARGIN_M
