"""Urban scenarios of vulnerable road users, lane invasions and doors: VehicleTurningRoute and
VehicleTurningRoutePedestrian (a cyclist / walker crossing the road the ego turns into,
object_crash_intersection.py), CrossingBicycleFlow (a bicycle flow through the junction the ego
crosses, cross_bicycle_flow.py), InvadingTurn (oncoming cars cutting into the ego's lane,
invading_turn.py) and VehicleOpensDoorTwoWays (a parked car opening its door into the ego's lane,
vehicle_opens_door.py), with Bench2Drive's ScenarioRunner distances, speeds, triggers, lights,
timeouts and end conditions (the deliberate differences are rows of docs/DIFFERENCES.md).

Sidewalks are not lanes here: a sidewalk point is SIDEWALK_OFFSET_M beyond the drivable edge, as
for the other crossing scenarios (scenarios.crossing)."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.errors import ConfigError
from harness.geometry import wrap_angle
from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind, LightState
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.behaviours import (
    ActorDestroy,
    EgoDriveDistance,
    FollowPath,
    FreezeLights,
    HoldSetup,
    Idle,
    InTimeToArrivalToLocation,
    OpenDoor,
    SwitchWrongDirectionTest,
)
from scenarios.context import ScenarioContext
from scenarios.crossing import SIDEWALK_OFFSET_M, WALKER_SIZE_M
from scenarios.junctions import JUNCTION_GREEN_DELAY_S, _Junction
from scenarios.placement import (
    Path,
    lane_forward,
    lane_route,
    lane_s,
    lane_s_fine,
    lane_width,
    offset_path,
    path_s,
    right_normal,
    road_extent,
    route_ahead_until_junction,
)
from scenarios.traffic_behaviours import (
    CAR_LENGTH_M,
    CAR_WIDTH_M,
    OPPOSITE_SPEED_MPS,
    ActorFlow,
    opposite_flow,
)

log = logging.getLogger(__name__)

BICYCLE_SIZE_M = (1.8, 0.7)  # [m] (length, width) of a bicycle box
CONE_SIZE_M = 0.4  # [m] static.prop.constructioncone
ADVERSARY_SPEED_MPS = 1.8  # [m/s] object_crash_intersection.py's _adversary_speed (both types)
ADVERSARY_ACCEL_MPS2 = 20.0  # [m/s2] KeepVelocity sets the speed at once
CYCLIST_REACTION_TIME_S = 1.8  # [s] VehicleTurningRoute's _reaction_time
WALKER_REACTION_TIME_S = 2.2  # [s] VehicleTurningRoutePedestrian's _reaction_time
ADVERSARY_MIN_TRIGGER_M = 6.0  # [m] _min_trigger_dist of both
CYCLIST_AFTER_EXIT_M = 11.0  # [m] _start_distance: the collision point past the junction exit
WALKER_AFTER_EXIT_M = 0.5  # [m] the walker's collision point past the exit ("next(0.5)")
WALK_RUN_OUT_M = 3.0  # [m] the adversary's path runs on past its walk (see adversary_path)
TURN_END_DRIVE_M = 40.0  # [m] _ego_end_distance: DriveDistance after the adversary is removed
BIKE_FLOW_SPEED_MPS = 10.0  # [m/s] CrossingBicycleFlow's default flow_speed
BIKE_FLOW_SPACING_M = (20.0, 50.0)  # [m] its default source_dist_interval
BIKE_FLOW_REACH_M = 250.0  # [m] the bicycles' plan is searched this far from the source ...
BIKE_FLOW_AFTER_EXIT_M = 40.0  # [m] ... and ends this far past the junction exit (_end_dist_flow)
INVADING_DISTANCE_M = 100.0  # [m] InvadingTurn's default ``distance``
INVADING_OFFSET_M = 0.25  # [m] its default ``offset`` (metres invaded)
INVADING_SOURCE_M = 30.0  # [m] _source_dist: the flow's source lies distance + this ahead
INVADING_SPACING_M = 40.0  # [m] _flow_frequency
INVADING_OFFSET_CONSTANT_M = 0.7  # [m] _offset_constant
INVADING_CONE_START_M = 10.0  # [m] the first cone stands this far + one step past the source
INVADING_CONE_STEP_M = 5.0  # [m]
INVADING_CONE_FRACTION = 0.8  # [-] cones at this fraction of half the lane width to its right
DOOR_DISTANCE_M = 50.0  # [m] VehicleOpensDoorTwoWays' default ``distance``
DOOR_FREQUENCY_M = (20.0, 100.0)  # [m] its default ``frequency``
DOOR_REACTION_TIME_S = 3.0  # [s] the door opens when the ego is this far in time ...
DOOR_MIN_TRIGGER_M = 10.0  # [m] ... or distance from the point beside the car
OPPOSITE_WAIT_S = 5.0  # [s] _opposite_wait_duration: then the opposite flow starts
DOOR_END_M = 50.0  # [m] _end_distance: the end point past the car (stopping at a junction)


def sidewalk_point(
    ctx: ScenarioContext, xy: np.ndarray, yaw: float, side: float
) -> tuple[np.ndarray, float]:
    """(point (2,), its distance [m] from ``xy``) on the sidewalk on ``side`` (+1 right) of the
    road through ``xy`` heading ``yaw``: SIDEWALK_OFFSET_M beyond the drivable edge."""
    right, left = road_extent(ctx.town, xy, yaw)
    out = (right if side > 0 else left) + SIDEWALK_OFFSET_M
    return np.asarray(xy) + side * out * right_normal(yaw), out


class _TurningAdversary(_Junction):
    """Shared by the VehicleTurning types: the junction the route crosses after the trigger, the
    collision point ``after_exit_m`` past its exit along the route, one adversary waiting on a
    sidewalk there (a BICYCLE or PEDESTRIAN box) that crosses at ADVERSARY_SPEED_MPS when the ego
    is ``reaction_time_s`` (time to arrival) or ADVERSARY_MIN_TRIGGER_M from the collision point,
    for ``walk_m`` or as long as that takes, and is then removed; the scenario ends when the ego
    has driven TURN_END_DRIVE_M more. No ScenarioTimeout (the source has none)."""

    timeout_s: ClassVar[float | None] = None
    after_exit_m: ClassVar[float] = CYCLIST_AFTER_EXIT_M
    reaction_time_s: ClassVar[float] = CYCLIST_REACTION_TIME_S
    adversary_kind: ClassVar[ActorKind] = ActorKind.BICYCLE

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        planned = ctx.planned
        exit_i = min(self.last + 1, planned.num_points - 1)
        self.exit_yaw = float(planned.yaw_rad[exit_i])
        self.collision_s = float(planned.s_m[exit_i]) + self.after_exit_m
        self.collision_xy, self.collision_yaw, _ = self.route_point(
            self.collision_s - self.trigger_s_m
        )
        self.adversary_id = -1
        self.walk: Path = np.zeros((0, 2))

    def adversary_walk(self) -> Path:
        """The adversary's start and end (2, 2) (override)."""
        start, out = sidewalk_point(self.ctx, self.collision_xy, self.collision_yaw, 1.0)
        return np.stack([start, start - 2.0 * out * right_normal(self.collision_yaw)])

    def adversary_path(self) -> Path:
        """The walk extended by WALK_RUN_OUT_M (the distance / duration ends the walk, not the
        path's end)."""
        d = self.walk[1] - self.walk[0]
        return np.stack([self.walk[0], self.walk[1] + WALK_RUN_OUT_M * d / np.hypot(*d)])

    def setup_actors(self) -> None:
        self.clear(self.collision_xy)
        self.walk = self.adversary_walk()
        d = self.walk[1] - self.walk[0]
        length, width = (
            BICYCLE_SIZE_M if self.adversary_kind == ActorKind.BICYCLE else (WALKER_SIZE_M,) * 2
        )
        self.adversary_id = self.pool.spawn(
            ActorSpec(self.adversary_kind, float(self.walk[0, 0]), float(self.walk[0, 1]),
                      float(np.arctan2(d[1], d[0])), length, width, 1.8)
        )  # fmt: skip

    def behaviour(self) -> Behaviour:
        return Idle(self.ctx)

    def end_condition(self) -> Behaviour:
        """ScenarioRunner's sequence: trigger, KeepVelocity (distance or duration), ActorDestroy,
        DriveDistance of the ego; the scenario ends with it."""
        walk_m = float(np.hypot(*(self.walk[1] - self.walk[0])))
        cross = Parallel(
            "AdversaryCrossing",
            ParallelPolicy.SuccessOnOne(),
            [
                FollowPath(self.ctx, self.adversary_id, self.adversary_path(), ADVERSARY_SPEED_MPS,
                           accel_mps2=ADVERSARY_ACCEL_MPS2, until_m=walk_m),
                Idle(self.ctx, walk_m / ADVERSARY_SPEED_MPS),
            ],
        )  # fmt: skip
        return Sequence(
            type(self).__name__,
            True,
            [
                InTimeToArrivalToLocation(
                    self.ctx, self.collision_xy, self.reaction_time_s, ADVERSARY_MIN_TRIGGER_M
                ),
                cross,
                ActorDestroy(self.ctx, self.pool, [self.adversary_id]),
                EgoDriveDistance(self.ctx, TURN_END_DRIVE_M),
            ],
        )


class VehicleTurningRoute(_TurningAdversary):
    """A cyclist waits on the right sidewalk CYCLIST_AFTER_EXIT_M after the exit of the junction
    the ego turns through, facing the road; when triggered it crosses to the left for twice its
    distance to the collision point (the ego's lane centre there) at 1.8 m/s (or for twice that
    time), reaction time CYCLIST_REACTION_TIME_S."""


class VehicleTurningRoutePedestrian(_TurningAdversary):
    """A walker waits on a sidewalk of the road the ego turns into, WALKER_AFTER_EXIT_M past the
    junction exit: on the left sidewalk when the ego turns right, on the right one when it turns
    left (ScenarioRunner: the sign of entry x exit heading); when triggered it crosses the whole
    road, sidewalk to sidewalk, at 1.8 m/s, reaction time WALKER_REACTION_TIME_S."""

    after_exit_m = WALKER_AFTER_EXIT_M
    reaction_time_s = WALKER_REACTION_TIME_S
    adversary_kind = ActorKind.PEDESTRIAN

    def adversary_walk(self) -> Path:
        entry_yaw = float(np.deg2rad(self.config.trigger[3]))
        # CARLA's left-handed frame: entry x exit > 0 (z) for a right turn -> the left sidewalk
        turn = float(np.sin(wrap_angle(self.exit_yaw - entry_yaw)))
        self.spawn_side = 1.0 if turn < 0 else -1.0
        xy, yaw = self.collision_xy, self.collision_yaw
        start, _ = sidewalk_point(self.ctx, xy, yaw, self.spawn_side)
        end, _ = sidewalk_point(self.ctx, xy, yaw, -self.spawn_side)
        return np.stack([start, end])


class CrossingBicycleFlow(_Junction):
    """A flow of bicycles (BICYCLE boxes) from ``start_actor_flow`` (the bike lane: the point's
    offset from its nearest lane is kept along the way) straight through the junction the ego
    crosses after the trigger and BIKE_FLOW_AFTER_EXIT_M beyond its exit, at ``flow_speed`` m/s,
    a new bicycle whenever the last is U(``source_dist_interval``) m from the source, filled at
    the start (initial_actors), ignoring lights and vehicles. At a signalised junction every light
    is red for JUNCTION_GREEN_DELAY_S, then the ego's turns green and the rest stay red. The ego
    must yield to the bicycles; the scenario ends when it leaves the junction (240 s timeout)."""

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        start = self.param_location("start_actor_flow")
        if start is None:
            raise ConfigError(
                f"scenario {config.name} (CrossingBicycleFlow) needs start_actor_flow; fix the route file"
            )
        self.source_xy = start
        self.speed_mps = self.param_float("flow_speed", BIKE_FLOW_SPEED_MPS)
        self.spacing_m = self.param_interval("source_dist_interval", BIKE_FLOW_SPACING_M)
        self.path = self.bicycle_path(start)
        self.bike_flow: ActorFlow | None = None

    def bicycle_path(self, start: np.ndarray) -> Path:
        """The bicycles' plan (N, 2): along the lanes from the source through the first junction
        and BIKE_FLOW_AFTER_EXIT_M past it, at the source's lateral offset from its lane."""
        town = self.ctx.town
        proj = town.lanes.project(start[None, :])
        lane, s, lateral = int(proj.lane[0]), float(proj.s_m[0]), float(proj.lateral_m[0])
        centre = lane_forward(town, lane, s, BIKE_FLOW_REACH_M)
        inside = town.lanes.junction_id[town.lanes.project(centre).lane] >= 0
        ps = path_s(centre)
        if inside.any():
            first = int(np.argmax(inside))
            after = np.flatnonzero(~inside[first:])
            exit_s = float(ps[first + int(after[0])]) if after.size else float(ps[-1])
            centre = centre[ps <= exit_s + BIKE_FLOW_AFTER_EXIT_M]
        else:
            log.warning(
                "%s: no junction after start_actor_flow; the bicycles ride %.0f m (fallback)",
                self.config.name,
                BIKE_FLOW_REACH_M,
            )
        return offset_path(centre, lateral)

    def setup_actors(self) -> None:
        for k in range(0, len(self.path), 20):
            self.clear(self.path[k], 12.0)

    def lights(self) -> Behaviour:
        """All lights of the junction red, then the ego's green (TrafficLightFreezer twice)."""
        ego_light = self.light_of(self.in_lane)
        if ego_light is None:
            return Idle(self.ctx)
        first = {k: LightState.RED for k in self.junction_lights()}
        then = dict(first)
        then[ego_light] = LightState.GREEN
        return Sequence(
            "traffic lights",
            True,
            [
                FreezeLights(self.ctx, first, JUNCTION_GREEN_DELAY_S),
                FreezeLights(self.ctx, then),
            ],
        )

    def behaviour(self) -> Behaviour:
        self.bike_flow = ActorFlow(
            self.ctx, self.pool, self.path, self.speed_mps, self.spacing_m, prefill=True,
            name="BicycleFlow", kind=ActorKind.BICYCLE, size_m=BICYCLE_SIZE_M,
        )  # fmt: skip
        return Parallel(
            "bicycles and lights", ParallelPolicy.SuccessOnAll(), [self.bike_flow, self.lights()]
        )

    def end_s_m(self) -> float:
        return self.exit_s  # WaitEndIntersection


class InvadingTurn(BasicScenario):
    """Oncoming cars cut into the ego's lane in a bend: on the oncoming lane, from the point
    ``distance`` + INVADING_SOURCE_M m ahead of the trigger back to the trigger, a car leaves
    whenever the last one is INVADING_SPACING_M m from the source, at the ego's lane limit,
    driving ``offset`` + half the lane width - INVADING_OFFSET_CONSTANT_M to its left (into the
    ego's lane) and keeping gaps to other vehicles; cones line the far edge of the oncoming lane
    from the source on for half ``distance``. The ego must move right; the scenario ends when it
    passes the source point (240 s timeout). No oncoming lane: a warning and no flow."""

    timeout_s = SCENARIO_TIMEOUT_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", INVADING_DISTANCE_M)
        self.offset_m = self.param_float("offset", INVADING_OFFSET_M)
        self.forward_xy, _, self.forward_lane = self.route_point(
            self.distance_m + INVADING_SOURCE_M
        )
        _, _, self.trigger_lane = self.route_point(0.0)
        self.path: Path = np.zeros((0, 2))
        self.cone_ids: list[int] = []
        self.true_offset_m = 0.0

    def setup_actors(self) -> None:
        town = self.ctx.town
        src_lane = int(town.graph.left_opposite[self.forward_lane])
        sink_lane = int(town.graph.left_opposite[self.trigger_lane])
        if src_lane < 0 or sink_lane < 0:
            log.warning("%s: no oncoming lane; no invading flow (fallback)", self.config.name)
            return
        trigger_xy = self.ctx.planned.xy[self.trigger_index]
        s_src = lane_s_fine(town, src_lane, self.forward_xy)
        source = np.asarray(town.lanes.position(src_lane, s_src)[0])
        s_sink = lane_s_fine(town, sink_lane, trigger_xy)
        sink = np.asarray(town.lanes.position(sink_lane, s_sink)[0])
        centre = lane_route(town, source, sink)
        w_sink = lane_width(town, sink_lane, s_sink)
        self.true_offset_m = self.offset_m + 0.5 * w_sink - INVADING_OFFSET_CONSTANT_M
        self.path = offset_path(centre, -self.true_offset_m)  # to the flow's left
        for k in range(0, len(centre), 20):
            self.clear(centre[k], 12.0)
        self.spawn_cones(src_lane, s_src)

    def spawn_cones(self, lane: int, s_src: float) -> None:
        """Cones every INVADING_CONE_STEP_M from INVADING_CONE_START_M + a step past the source
        for half ``distance``, INVADING_CONE_FRACTION of half the lane width to the lane's right."""
        town = self.ctx.town
        run = lane_forward(town, lane, s_src, INVADING_CONE_START_M + self.distance_m)
        ps = path_s(run)
        along = INVADING_CONE_START_M
        done = 0.0
        while done < 0.5 * self.distance_m:
            along += INVADING_CONE_STEP_M
            done += INVADING_CONE_STEP_M
            k = int(np.clip(np.searchsorted(ps, along), 1, len(run) - 1))
            d = run[k] - run[k - 1]
            yaw = float(np.arctan2(d[1], d[0]))
            at = np.array([np.interp(along, ps, run[:, 0]), np.interp(along, ps, run[:, 1])])
            w = lane_width(town, lane, lane_s(town, lane, at))
            p = at + INVADING_CONE_FRACTION * 0.5 * w * right_normal(yaw)
            self.cone_ids.append(
                self.pool.spawn(ActorSpec(ActorKind.STATIC, float(p[0]), float(p[1]), yaw,
                                          CONE_SIZE_M, CONE_SIZE_M, 0.7))
            )  # fmt: skip

    def behaviour(self) -> Behaviour:
        hold = HoldSetup(self.ctx, self.cone_ids)
        if len(self.path) < 2:
            return hold
        flow = ActorFlow(
            self.ctx, self.pool, self.path, OPPOSITE_SPEED_MPS,
            (INVADING_SPACING_M, INVADING_SPACING_M), name="InvadingActorFlow",
            ignore_others=False,
        )  # fmt: skip
        return Parallel("cones and invading flow", ParallelPolicy.SuccessOnAll(), [hold, flow])

    def end_s_m(self) -> float:
        return self.trigger_s_m + self.distance_m + INVADING_SOURCE_M  # WaitUntilInFrontPosition


class VehicleOpensDoorTwoWays(BasicScenario):
    """A car parked ``distance`` m ahead beside the ego's lane on the ``direction`` side, pushed
    (side lane width - its half width) / 4 from the side lane's centre towards the ego's lane.
    When the ego is DOOR_REACTION_TIME_S (time to arrival) or DOOR_MIN_TRIGGER_M from the lane
    point beside it, its front door on the ego's side opens (a VEHICLE box, scenarios.behaviours
    .OpenDoor); OPPOSITE_WAIT_S later the wrong-direction test goes off and an oncoming flow
    (OppositeActorFlow, ``frequency`` spacing) starts. The ego must pass through the opposite
    lane; the scenario ends DOOR_END_M past the car (stopping at a junction), 240 s timeout."""

    timeout_s = SCENARIO_TIMEOUT_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", DOOR_DISTANCE_M)
        self.side = self.direction_sign()
        self.frequency_m = self.param_interval("frequency", DOOR_FREQUENCY_M)
        self.front_xy, self.front_yaw, self.lane = self.route_point(self.distance_m)
        self.car_id = -1
        self.car_lateral_m = 0.0
        self.flow: ActorFlow | None = None

    def side_lane_width(self) -> float:
        """Width [m] of the lane on ``direction`` beside the ego's: the neighbouring driving
        lane's, else the drivable strip beyond the ego's lane (a parking lane / shoulder), at
        least a car's width."""
        town = self.ctx.town
        nb = int((town.graph.right if self.side > 0 else town.graph.left)[self.lane])
        if nb >= 0:
            return lane_width(town, nb, lane_s(town, nb, self.front_xy))
        w = lane_width(town, self.lane, lane_s(town, self.lane, self.front_xy))
        right, left = road_extent(town, self.front_xy, self.front_yaw)
        return max((right if self.side > 0 else left) - 0.5 * w, CAR_WIDTH_M)

    def setup_actors(self) -> None:
        town = self.ctx.town
        w = lane_width(town, self.lane, lane_s(town, self.lane, self.front_xy))
        w_side = self.side_lane_width()
        push = (w_side - 0.5 * CAR_WIDTH_M) / 4.0
        self.car_lateral_m = 0.5 * w + 0.5 * w_side - push
        p = self.front_xy + self.side * self.car_lateral_m * right_normal(self.front_yaw)
        self.clear(p)
        self.car_id = self.pool.spawn(
            ActorSpec(ActorKind.VEHICLE, float(p[0]), float(p[1]), self.front_yaw,
                      CAR_LENGTH_M, CAR_WIDTH_M)
        )  # fmt: skip

    def behaviour(self) -> Behaviour:
        steps: list[Behaviour] = [
            InTimeToArrivalToLocation(
                self.ctx, self.front_xy, DOOR_REACTION_TIME_S, DOOR_MIN_TRIGGER_M
            ),
            OpenDoor(self.ctx, self.pool, self.car_id, -self.side),
            Idle(self.ctx, OPPOSITE_WAIT_S),
            SwitchWrongDirectionTest(self.ctx, False),
        ]
        self.flow = opposite_flow(self.ctx, self.pool, self.lane, self.front_xy, self.frequency_m)
        if self.flow is None:
            log.warning("%s: no oncoming lane; no opposite flow (fallback)", self.config.name)
        else:
            steps.append(self.flow)
        return Parallel(
            "door and opposite flow",
            ParallelPolicy.SuccessOnAll(),
            [HoldSetup(self.ctx, [self.car_id]), Sequence("open the door", True, steps)],
        )

    def closing(self) -> list[Behaviour]:
        return [SwitchWrongDirectionTest(self.ctx, True)]

    def end_s_m(self) -> float:
        return route_ahead_until_junction(
            self.ctx.planned, self.ctx.town, self.trigger_s_m + self.distance_m, DOOR_END_M
        )
