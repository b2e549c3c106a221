"""Junction scenarios: flows the ego must cross or merge into, a vehicle running a red light, a
blocked exit and Bench2Drive's T-junction. The junction is the first one the route enters at or
after the trigger point; arms are told apart by the heading of their incoming lanes relative to
the ego's heading where it enters (opposite ~180 deg, from the right ~-90 deg: CARLA's frame is
left-handed, so a car coming from the ego's right heads towards its left).

Traffic lights: ScenarioRunner forces the lights (the ego's green, the flow's or the red-light
runner's red). The backend protocol cannot set lights and the embedded lights are a pure function
of time, so lights are left as they are; flows here ignore lights (they are scripted)."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.geometry import wrap_angle
from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import BasicScenario
from scenarios.behaviours import (
    EgoStandstill,
    FollowPath,
    HoldSetup,
    Idle,
    InTimeToArrivalAlongRoute,
)
from scenarios.context import ScenarioContext
from scenarios.placement import (
    Path,
    junction_on_route,
    lane_backward,
    lane_forward,
    path_s,
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
RED_RUNNER_SPEED_MPS = 12.0  # [m/s] the red-light runner's speed
RED_RUNNER_ACCEL_MPS2 = 6.0  # [m/s2]
RED_RUNNER_UPSTREAM_M = 50.0  # [m] the runner waits this far before the conflict point
BLOCKER_AHEAD_M = 8.0  # [m] BlockedIntersection's blocker stands this far past the junction exit
BLOCK_WAIT_S = 10.0  # [s] it drives off once the ego has waited this long behind it
BLOCKER_LEAVE_MPS = 6.0  # [m/s]


class _Junction(BasicScenario):
    """Finds the junction, the ego's incoming / connector / exit lanes and the arms."""

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

    def through_path(self, incoming: int, connector: int | None = None) -> Path:
        """Upstream of ``incoming`` -> its (straightest or given) connector -> downstream."""
        town = self.ctx.town
        conn = straight_successor(town, incoming) if connector is None else connector
        up = lane_backward(town, incoming, float(town.lanes.length_m[incoming]), FLOW_UPSTREAM_M)
        if conn < 0:
            return up
        down = lane_forward(town, conn, 0.0, float(town.lanes.length_m[conn]) + FLOW_DOWNSTREAM_M)
        return np.concatenate([up, down[1:]])

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
        return self.through_path(int(preds[0]), conn)

    def flow(self, path: Path | None, label: str) -> Behaviour:
        if path is None or len(path) < 2:
            log.warning(
                "%s: no lane for the %s flow at this junction; no flow (fallback)",
                self.config.name,
                label,
            )
            return Idle(self.ctx)
        self.paths[label] = path
        self.clear(path[len(path) // 2], 30.0)
        speed = self.param_float("flow_speed", 10.0)
        spacing = self.param_interval("source_dist_interval", (20.0, 50.0))
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
    """As NonSignalizedJunctionLeftTurnEnterFlow at a signalised junction (lights untouched, see
    the module docstring)."""


class SignalizedJunctionRightTurn(_Junction):
    """The ego turns right at a signalised junction into a road carrying a flow coming straight
    from its left (``flow_speed``, ``source_dist_interval``); it must merge into a gap."""

    def behaviour(self) -> Behaviour:
        return self.flow(self.enter_path(), "enter")


class T_Junction(_Junction):  # noqa: N801 - the route files' type name
    """Bench2Drive's T-junction: the ego crosses / turns at a T junction with two flows, the
    traffic driving into its exit lane and (when there is one) the traffic from the opposite arm,
    both at 10 m/s spaced U(20, 50) m (no parameters in the route files)."""

    def behaviour(self) -> Behaviour:
        enter = self.enter_path()
        flows = [self.flow(enter, "enter")]
        opp = self.opposite_path()
        if opp is not None and (enter is None or not _overlap(opp, enter)):
            flows.append(self.flow(opp, "opposite"))
        return Parallel("T flows", ParallelPolicy.SuccessOnAll(), flows)


class OppositeVehicleRunningRedLight(_Junction):
    """A vehicle waits RED_RUNNER_UPSTREAM_M before the junction on the arm to the ego's
    ``direction`` and, timed to meet the ego at the conflict point, drives straight through at
    RED_RUNNER_SPEED_MPS ignoring its light and everyone. The ego must brake / yield. No arm on
    that side: the other side is tried, then a warning and nothing happens."""

    def setup_actors(self) -> None:
        side = self.direction_sign()
        lanes = self.incoming_from(-side * np.pi / 2) or self.incoming_from(side * np.pi / 2)
        self.runner_id = -1
        if not lanes:
            log.warning(
                "%s: no crossing arm at this junction; no red-light runner (fallback)",
                self.config.name,
            )
            return
        path = self.through_path(lanes[0])
        ego = self.ctx.planned.xy[self.first : self.last + 1]
        d = np.hypot(path[:, None, 0] - ego[None, :, 0], path[:, None, 1] - ego[None, :, 1])
        i_path, i_ego = np.unravel_index(np.argmin(d), d.shape)
        s = path_s(path)
        start = int(np.searchsorted(s, max(s[i_path] - RED_RUNNER_UPSTREAM_M, 0.0)))
        self.path = path[start:]
        self.conflict_s = float(self.ctx.planned.s_m[self.first + i_ego])
        run_m = float(s[i_path] - s[start])
        v, a = RED_RUNNER_SPEED_MPS, RED_RUNNER_ACCEL_MPS2
        self.run_time_s = run_m / v + v / (2 * a)
        self.clear(self.path[0], 15.0)
        yaw = float(path_yaw(self.path)[0])
        self.runner_id = self.pool.spawn(
            ActorSpec(
                ActorKind.VEHICLE,
                float(self.path[0, 0]),
                float(self.path[0, 1]),
                yaw,
                CAR_LENGTH_M,
                CAR_WIDTH_M,
            )
        )
        self.paths["runner"] = self.path

    def behaviour(self) -> Behaviour:
        if self.runner_id < 0:
            return Idle(self.ctx)
        go = FollowPath(
            self.ctx,
            self.runner_id,
            self.path,
            RED_RUNNER_SPEED_MPS,
            accel_mps2=RED_RUNNER_ACCEL_MPS2,
            wait=True,
        )
        return Parallel(
            "red light runner",
            ParallelPolicy.SuccessOnOne(),
            [
                Sequence(
                    "run",
                    True,
                    [
                        InTimeToArrivalAlongRoute(self.ctx, self.conflict_s, self.run_time_s, 5.0),
                        go,
                        Idle(self.ctx),
                    ],
                ),
            ],
        )


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


def _overlap(a: Path, b: Path, tol_m: float = 1.0, fraction: float = 0.2) -> bool:
    """Whether more than ``fraction`` of path a's points lie within ``tol_m`` of path b."""
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]).min(axis=1)
    return float(np.mean(d < tol_m)) > fraction
