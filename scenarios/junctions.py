"""Junction scenarios: flows the ego must cross or merge into, a vehicle running a red light, a
blocked exit and Bench2Drive's T-junction. The junction is the first one the route enters at or
after the trigger point; arms are told apart by the heading of their incoming lanes relative to
the ego's heading where it enters (opposite ~180 deg, from the right ~-90 deg: CARLA's frame is
left-handed, so a car coming from the ego's right heads towards its left).

Traffic lights are forced through the backend (``force_lights``) where ScenarioRunner's
TrafficLightFreezer forces them: at the signalised flow scenarios the ego's light is red for
JUNCTION_GREEN_DELAY_S and then green, the flow's green, every other light of the junction red;
at OppositeVehicleRunningRedLight the ego's light is green and all others red. Flows and the
red-light runner ignore lights and other vehicles, as ScenarioRunner's ActorFlow (Traffic Manager
ignoring vehicles, lights and signs) and its ConstantVelocityAgent runner do."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.geometry import wrap_angle
from harness.maps.signals import STOP_LIGHT
from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind, LightState
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.behaviours import (
    ActorDestroy,
    EgoStandstill,
    FollowPath,
    FreezeLights,
    HoldSetup,
    Idle,
    InTimeToArrivalToLocation,
)
from scenarios.context import ScenarioContext
from scenarios.placement import (
    Path,
    junction_on_route,
    lane_backward,
    lane_forward,
    path_yaw,
    route_pose,
    straight_successor,
)
from scenarios.traffic_behaviours import CAR_LENGTH_M, CAR_WIDTH_M, ActorFlow

log = logging.getLogger(__name__)

FLOW_UPSTREAM_M = 60.0  # [m] flow sources lie this far before the junction
FLOW_DOWNSTREAM_M = 50.0  # [m] flow sinks lie this far after it
ARM_TOLERANCE_RAD = np.deg2rad(50.0)  # [rad] an incoming lane belongs to the wanted arm within this
JUNCTION_LOOKBACK_M = 10.0  # [m] a trigger this far inside the junction still finds it
EXIT_MARGIN_M = 20.0  # [m] the scenario ends this far after the junction exit
RED_RUNNER_SPEED_MPS = 60.0 / 3.6  # [m/s] ScenarioRunner's adversary speed (60 km/h)
RED_RUNNER_ACCEL_MPS2 = 50.0  # [m/s2] the runner is at speed at once (a constant-velocity agent)
RED_RUNNER_SOURCE_M = 30.0  # [m] it waits this far before its junction entry (_source_dist)
RED_RUNNER_SINK_M = 10.0  # [m] it leaves this far past the junction exit (_sink_dist)
RED_RUNNER_SYNC_S = 2.2  # [s] it starts when the ego is this far (in time) from the conflict ...
RED_RUNNER_TRIGGER_M = 12.0  # [m] ... or this close to it
JUNCTION_GREEN_DELAY_S = 5.0  # [s] the ego's light stays red this long at signalised flows
RIGHT_TURN_SOURCE_S = 5.0  # [s] x flow speed: the right-turn flow's source before the junction
RIGHT_TURN_SINK_S = 3.0  # [s] x flow speed: its sink after the junction exit
RIGHT_TURN_END_M = 10.0  # [m] the right turn ends this far past the junction exit
T_JUNCTION_DRIVE_M = 200.0  # [m] T_Junction ends when the ego has driven this far (DriveDistance)
BLOCKER_AHEAD_M = 8.0  # [m] BlockedIntersection's blocker stands this far past the junction exit
BLOCK_WAIT_S = 10.0  # [s] it drives off once the ego has waited this long behind it
BLOCKER_LEAVE_MPS = 6.0  # [m/s]


class _Junction(BasicScenario):
    """Finds the junction, the ego's incoming / connector / exit lanes and the arms."""

    timeout_s: ClassVar[float | None] = SCENARIO_TIMEOUT_S

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        planned, town = ctx.planned, ctx.town
        span = junction_on_route(planned, town, self.trigger_s_m - JUNCTION_LOOKBACK_M)
        if span is None:
            log.warning(
                "%s: no junction after the trigger; using the route 20 m ahead as the 'junction'",
                config.name,
            )
            k = int(np.searchsorted(planned.s_m, self.trigger_s_m + 20.0))
            span = (min(k, planned.num_points - 1), min(k, planned.num_points - 1))
        self.first, self.last = span
        self.entry_s = float(planned.s_m[self.first])
        self.exit_s = float(planned.s_m[self.last])
        self.entry_yaw = float(planned.yaw_rad[self.first])
        self.connector = int(planned.lane[self.first])
        self.in_lane = int(planned.lane[max(self.first - 1, 0)])
        self.exit_lane = int(planned.lane[min(self.last + 1, planned.num_points - 1)])
        self.junction_id = int(town.lanes.junction_id[self.connector])
        self.paths: dict[str, Path] = {}
        self.source_lane: int | None = None

    def incoming_from(self, rel_yaw: float) -> list[int]:
        """Incoming lanes of the junction whose end heading is ``rel_yaw`` off the ego's entry."""
        town = self.ctx.town
        cands = [j for j in town.junctions if j.id == self.junction_id]
        if not cands:
            return []
        out = []
        for lane in cands[0].incoming_lanes:
            yaw = float(town.lanes.position(lane, town.lanes.length_m[lane])[1])
            if (
                lane != self.in_lane
                and abs(float(wrap_angle(yaw - self.entry_yaw - rel_yaw))) < ARM_TOLERANCE_RAD
            ):
                out.append(int(lane))
        return out

    def through_path(
        self,
        incoming: int,
        connector: int | None = None,
        up_m: float = FLOW_UPSTREAM_M,
        down_m: float = FLOW_DOWNSTREAM_M,
    ) -> Path:
        """``up_m`` upstream of ``incoming``'s end -> its (straightest or given) connector ->
        ``down_m`` past the connector."""
        town = self.ctx.town
        conn = straight_successor(town, incoming) if connector is None else connector
        up = lane_backward(town, incoming, float(town.lanes.length_m[incoming]), up_m)
        if conn < 0:
            return up
        down = lane_forward(town, conn, 0.0, float(town.lanes.length_m[conn]) + down_m)
        return np.concatenate([up, down[1:]])

    def rightmost(self, lanes: list[int]) -> int:
        """The rightmost of incoming lanes of one arm (by their end points across the heading)."""
        town = self.ctx.town
        ends = [town.lanes.position(lane, town.lanes.length_m[lane]) for lane in lanes]
        yaw = float(ends[0][1])
        n = np.array([-np.sin(yaw), np.cos(yaw)])
        return lanes[int(np.argmax([float(np.dot(np.asarray(p), n)) for p, _ in ends]))]

    def junction_lights(self) -> list[int]:
        """Town light indices of this junction."""
        return [
            int(k) for k in np.flatnonzero(self.ctx.town.signals.light_junction == self.junction_id)
        ]

    def light_of(self, lane: int) -> int | None:
        """The light of this junction controlling incoming ``lane``: the owner of a light stop
        line on it, else the junction light nearest the lane's end (ScenarioRunner's
        get_closest_traffic_light); None at an unsignalised junction."""
        sig, town = self.ctx.town.signals, self.ctx.town
        lights = self.junction_lights()
        if not lights:
            return None
        rows = np.flatnonzero((sig.stop_lane == lane) & (sig.stop_kind == STOP_LIGHT))
        owners = [int(sig.stop_owner[r]) for r in rows if int(sig.stop_owner[r]) in lights]
        if owners:
            return owners[0]
        end = np.asarray(town.lanes.position(lane, town.lanes.length_m[lane])[0])
        d = np.hypot(*(sig.light_xy[lights] - end).T)
        return lights[int(np.argmin(d))]

    def flow_lights(self, source_lane: int | None) -> Behaviour:
        """ScenarioRunner's signalised-flow light sequence: the ego's light red and the flow's
        green for JUNCTION_GREEN_DELAY_S, then both green; every other light of the junction red
        throughout (until the scenario ends). No lights here: nothing."""
        ego_light = self.light_of(self.in_lane)
        if ego_light is None:
            log.warning(
                "%s: no traffic light at this junction; lights left alone", self.config.name
            )
            return Idle(self.ctx)
        src = self.light_of(source_lane) if source_lane is not None else None
        first = {k: LightState.RED for k in self.junction_lights()}
        if src is not None:
            first[src] = LightState.GREEN
        first[ego_light] = LightState.RED
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

    def opposite_path(self) -> Path | None:
        """Straight through the junction from the opposite arm (crosses a left turn)."""
        for lane in self.incoming_from(np.pi):
            return self.through_path(lane)
        return None

    def enter_path(self) -> Path | None:
        """The traffic the ego merges into: the straightest other connector into its exit lane."""
        town = self.ctx.town
        conns = [c for c in town.graph.predecessors(self.exit_lane) if c != self.connector]
        if not conns or self.exit_lane == self.connector:
            return None
        exit_yaw = float(town.lanes.position(self.exit_lane, 0.0)[1])
        turn = [abs(float(wrap_angle(town.lanes.position(c, 0.0)[1] - exit_yaw))) for c in conns]
        conn = int(conns[int(np.argmin(turn))])
        preds = town.graph.predecessors(conn)
        if not preds:
            return None
        self.source_lane = int(preds[0])
        return self.through_path(int(preds[0]), conn)

    def flow(
        self, path: Path | None, label: str, default_speed_mps: float = 10.0,
        default_spacing_m: tuple[float, float] = (20.0, 50.0),
    ) -> Behaviour:  # fmt: skip
        if path is None or len(path) < 2:
            log.warning(
                "%s: no lane for the %s flow at this junction; no flow (fallback)",
                self.config.name,
                label,
            )
            return Idle(self.ctx)
        self.paths[label] = path
        self.clear(path[len(path) // 2], 30.0)
        speed = self.param_float("flow_speed", default_speed_mps)
        spacing = self.param_interval("source_dist_interval", default_spacing_m)
        return ActorFlow(
            self.ctx, self.pool, path, speed, spacing, prefill=True, name=f"{label} flow"
        )

    def end_s_m(self) -> float:
        return self.exit_s + EXIT_MARGIN_M


class NonSignalizedJunctionLeftTurn(_Junction):
    """The ego turns left at an unsignalised junction while a flow comes straight through from the
    opposite arm (``flow_speed`` m/s, spacing U(``source_dist_interval``) m, from FLOW_UPSTREAM_M
    before the junction to FLOW_DOWNSTREAM_M after it), starting at the trigger. The ego must wait
    for a gap. No opposite arm: a warning and no flow."""

    def behaviour(self) -> Behaviour:
        return self.flow(self.opposite_path(), "opposite")


class NonSignalizedJunctionLeftTurnEnterFlow(_Junction):
    """The ego turns left at an unsignalised junction into a road carrying a flow (the vehicles
    that drive straight into the ego's exit lane, ``flow_speed``, ``source_dist_interval``); it
    must merge into a gap. No such lane: a warning and no flow."""

    def behaviour(self) -> Behaviour:
        return self.flow(self.enter_path(), "enter")


class SignalizedJunctionLeftTurnEnterFlow(NonSignalizedJunctionLeftTurnEnterFlow):
    """As NonSignalizedJunctionLeftTurnEnterFlow at a signalised junction, with ScenarioRunner's
    forced lights (:meth:`_Junction.flow_lights`)."""

    def behaviour(self) -> Behaviour:
        flow = self.flow(self.enter_path(), "enter")
        return Parallel(
            "flow and lights",
            ParallelPolicy.SuccessOnAll(),
            [flow, self.flow_lights(self.source_lane)],
        )


class SignalizedJunctionRightTurn(_Junction):
    """ScenarioRunner's JunctionRightTurn: the ego turns right at a signalised junction while a
    flow comes straight from the arm on its left, from the rightmost lane of that arm, from
    RIGHT_TURN_SOURCE_S x ``flow_speed`` before the junction to RIGHT_TURN_SINK_S x ``flow_speed``
    past it (``flow_speed`` m/s, default 20; spacing U(``source_dist_interval``), default 25-50 m;
    filled at the start), ignoring other vehicles. The ego's light is red for
    JUNCTION_GREEN_DELAY_S and then green (:meth:`_Junction.flow_lights`). The scenario ends
    RIGHT_TURN_END_M past the junction exit."""

    def left_arm_path(self) -> Path | None:
        lanes = self.incoming_from(np.pi / 2)
        if not lanes:
            return None
        self.source_lane = self.rightmost(lanes)
        v = self.param_float("flow_speed", 20.0)
        return self.through_path(
            self.source_lane, up_m=RIGHT_TURN_SOURCE_S * v, down_m=RIGHT_TURN_SINK_S * v
        )

    def behaviour(self) -> Behaviour:
        flow = self.flow(self.left_arm_path(), "left", 20.0, (25.0, 50.0))
        return Parallel(
            "flow and lights",
            ParallelPolicy.SuccessOnAll(),
            [flow, self.flow_lights(self.source_lane)],
        )

    def end_s_m(self) -> float:
        return self.exit_s + RIGHT_TURN_END_M


class T_Junction(BasicScenario):  # noqa: N801 - the route files' type name
    """Bench2Drive's T_Junction (t_junction.py): no actors at all, the ego only meets the
    junction's own lights and stop signs; the scenario ends when the ego has driven
    T_JUNCTION_DRIVE_M after the trigger, or at its 240 s ScenarioTimeout."""

    timeout_s = SCENARIO_TIMEOUT_S

    def end_s_m(self) -> float:
        return self.trigger_s_m + T_JUNCTION_DRIVE_M


class OppositeVehicleRunningRedLight(_Junction):
    """ScenarioRunner's OppositeVehicleRunningRedLight: an emergency vehicle waits
    RED_RUNNER_SOURCE_M before the junction on the arm to the ego's ``direction`` (default right;
    the other side when there is none; ``opposite``: the arm facing the ego's, as in Bench2Drive's
    route files). When the ego is RED_RUNNER_SYNC_S (time to arrival) or
    RED_RUNNER_TRIGGER_M from the conflict point (where the two entry headings cross), it drives
    straight through at RED_RUNNER_SPEED_MPS ignoring lights and vehicles, and is removed after
    the time its straight-line run to RED_RUNNER_SINK_M past the junction takes. From the trigger
    until the ego leaves the junction the ego's light is green and every other light of the
    junction red. No ScenarioTimeout (the source has none)."""

    timeout_s = None

    def setup_actors(self) -> None:
        if self.param_str("direction", "right").lower() == "opposite":
            # ScenarioRunner's filter_junction_wp_direction 'opposite': the arm facing the ego's
            lanes = self.incoming_from(np.pi)
        else:
            side = self.direction_sign()
            lanes = self.incoming_from(-side * np.pi / 2) or self.incoming_from(side * np.pi / 2)
        self.runner_id = -1
        if not lanes:
            log.warning(
                "%s: no crossing arm at this junction; no red-light runner (fallback)",
                self.config.name,
            )
            return
        town = self.ctx.town
        lane = self.runner_lane = lanes[0]
        self.path = self.through_path(lane, up_m=RED_RUNNER_SOURCE_M, down_m=RED_RUNNER_SINK_M)
        entry_xy, entry_yaw = town.lanes.position(lane, town.lanes.length_m[lane])
        conflict = _line_crossing(
            self.ctx.planned.xy[self.first], self.entry_yaw, np.asarray(entry_xy), float(entry_yaw)
        )
        if conflict is None:  # parallel headings: the closest approach of the paths
            ego = self.ctx.planned.xy[self.first : self.last + 1]
            d = np.hypot(
                self.path[:, None, 0] - ego[None, :, 0], self.path[:, None, 1] - ego[None, :, 1]
            )
            conflict = ego[int(np.unravel_index(np.argmin(d), d.shape)[1])]
        self.conflict_xy: np.ndarray = conflict
        self.run_time_s = float(np.hypot(*(self.path[-1] - self.path[0]))) / RED_RUNNER_SPEED_MPS
        self.clear(self.path[0], 15.0)
        self.runner_id = self.pool.spawn(
            ActorSpec(
                ActorKind.EMERGENCY,
                float(self.path[0, 0]),
                float(self.path[0, 1]),
                float(path_yaw(self.path)[0]),
                CAR_LENGTH_M,
                CAR_WIDTH_M,
            )
        )
        self.paths["runner"] = self.path

    def behaviour(self) -> Behaviour:
        ego_light = self.light_of(self.in_lane)
        states = {k: LightState.RED for k in self.junction_lights()}
        if ego_light is not None:
            states[ego_light] = LightState.GREEN
        lights = FreezeLights(self.ctx, states)
        if self.runner_id < 0:
            return lights
        run = Sequence("run the red light", True, [*self.runner_crossing(), Idle(self.ctx)])
        return Parallel("red light runner", ParallelPolicy.SuccessOnOne(), [lights, run])

    def runner_crossing(self) -> list[Behaviour]:
        """Wait until the ego is RED_RUNNER_SYNC_S / RED_RUNNER_TRIGGER_M from the conflict point,
        drive the runner through for its run time, remove it."""
        cross = Parallel(
            "adversary crossing",
            ParallelPolicy.SuccessOnOne(),
            [
                FollowPath(self.ctx, self.runner_id, self.path, RED_RUNNER_SPEED_MPS,
                           accel_mps2=RED_RUNNER_ACCEL_MPS2, wait=True),
                Idle(self.ctx, self.run_time_s),
            ],
        )  # fmt: skip
        return [
            InTimeToArrivalToLocation(
                self.ctx, self.conflict_xy, RED_RUNNER_SYNC_S, RED_RUNNER_TRIGGER_M
            ),
            cross,
            ActorDestroy(self.ctx, self.pool, [self.runner_id]),
        ]

    def end_s_m(self) -> float:
        return self.exit_s  # ScenarioRunner's WaitEndIntersection


class BlockedIntersection(_Junction):
    """A vehicle stands in the ego's exit lane BLOCKER_AHEAD_M after the junction, so the ego has
    to stop inside / before the junction behind it; once the ego has waited BLOCK_WAIT_S it drives
    off down the lane at BLOCKER_LEAVE_MPS (ScenarioRunner removes it after a wait instead)."""

    def setup_actors(self) -> None:
        xy, yaw, lane = route_pose(self.ctx.planned, self.exit_s + BLOCKER_AHEAD_M)
        self.blocker_xy = xy
        self.clear(xy, 20.0)
        self.blocker_id = self.pool.spawn(
            ActorSpec(ActorKind.VEHICLE, float(xy[0]), float(xy[1]), yaw, CAR_LENGTH_M, CAR_WIDTH_M)
        )
        town = self.ctx.town
        s = float(
            np.clip(
                np.argmin(np.hypot(*(town.lanes.xy[town.lanes.lane_points(lane)] - xy).T)), 0, None
            )
        )
        s_lane = float(town.lanes.s_m[town.lanes.lane_points(lane)][int(s)])
        self.leave_path = lane_forward(town, lane, s_lane, 80.0)

    def behaviour(self) -> Behaviour:
        hold = HoldSetup(self.ctx, [self.blocker_id])
        wait = Sequence(
            "wait for the ego",
            True,
            [
                EgoStandstill(self.ctx, BLOCK_WAIT_S),
                FollowPath(
                    self.ctx, self.blocker_id, self.leave_path, BLOCKER_LEAVE_MPS, accel_mps2=2.0
                ),
            ],
        )
        return Parallel("blocked", ParallelPolicy.SuccessOnSelected([wait]), [wait, hold])

    def end_s_m(self) -> float:
        return self.exit_s + BLOCKER_AHEAD_M + EXIT_MARGIN_M


def _line_crossing(p: np.ndarray, yaw_p: float, q: np.ndarray, yaw_q: float) -> np.ndarray | None:
    """Where the lines through ``p`` heading ``yaw_p`` and ``q`` heading ``yaw_q`` cross (2,),
    None when they are (nearly) parallel (ScenarioRunner's get_geometric_linear_intersection)."""
    dp = np.array([np.cos(yaw_p), np.sin(yaw_p)])
    dq = np.array([np.cos(yaw_q), np.sin(yaw_q)])
    den = dp[0] * dq[1] - dp[1] * dq[0]
    if abs(den) < 1e-3:
        return None
    w = np.asarray(q, dtype=np.float64) - np.asarray(p, dtype=np.float64)
    t = (w[0] * dq[1] - w[1] * dq[0]) / den
    return np.asarray(p, dtype=np.float64) + t * dp
