"""Hazards on the ego's own path: ControlLoss (noise on the ego's control), HardBreakRoute (the
vehicle ahead brakes hard) and YieldToEmergencyVehicle (an emergency vehicle from behind)."""

from __future__ import annotations

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy, Status
from py_trees.composites import Parallel, Sequence

from harness.routes.model import ScenarioConfig
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import ActorKind
from scenarios.basic import BasicScenario
from scenarios.behaviours import (
    HOLD,
    ActorPool,
    Idle,
    InTriggerDistanceAlongRoute,
    ScenarioBehaviour,
    actor_row,
)
from scenarios.context import ScenarioContext
from scenarios.placement import (
    lane_backward,
    lane_forward,
    lane_s,
    path_s,
    route_pose,
    route_slice,
)
from scenarios.traffic_behaviours import (
    CAR_LENGTH_M,
    CAR_WIDTH_M,
    ControlNoiseWindow,
    EmergencyApproach,
    EmergencyVehicleNear,
    EmergencyVehiclePassed,
    YieldToEmergencyVehicleTest,
)

NOISE_AT_M = (0.0, 20.0, 40.0)  # [m] ControlLoss: noise windows start this far after the trigger
NOISE_DURATION_S = 1.5  # [s] each window
NOISE_STEER_STD = 0.1  # [-] steer units
NOISE_THROTTLE_DROP = 0.3  # [-]
NOISE_HOLD_S = 0.5  # [s]
LEAD_GAP_M = (
    20.0  # [m] HardBreakRoute: the lead appears this far ahead of the ego (centre to centre)
)
LEAD_MIN_SPEED_MPS = 6.0  # [m/s] the lead drives at least this fast before braking
LEAD_CRUISE_S = 3.0  # [s] it cruises this long ...
LEAD_BRAKE_MPS2 = 8.0  # [m/s2] ... then brakes this hard
LEAD_STOP_S = 4.0  # [s] stands this long, then drives on
EV_EXTRA_BACK_M = 20.0  # [m] the EV path starts this much farther back than its spawn distance
EV_NEAR_M = 50.0  # [m] _trigger_distance: the EV this close to the ego starts the idle ...
EV_IDLE_S = 10.0  # [s] ... _ev_idle_time, after which the scenario ends
EV_PASSED_M = 50.0  # [m] _end_distance: the EV drives this far once ahead of the ego


class ControlLoss(BasicScenario):
    """No actors: at the trigger and 20 m / 40 m later the ego's control gets NOISE_DURATION_S of
    noise (steer offset N(0, NOISE_STEER_STD), throttle x U(1 - NOISE_THROTTLE_DROP, 1), redrawn
    every NOISE_HOLD_S), applied by the runner through ``RouteScenario.perturb``. The ego must stay
    in its lane. (ScenarioRunner's ControlLoss adds noise the same way through its route ego.)"""

    end_distance_m = 60.0

    def behaviour(self) -> Behaviour:
        steps: list[Behaviour] = []
        for at in NOISE_AT_M:
            steps.append(InTriggerDistanceAlongRoute(self.ctx, self.trigger_s_m + at, 0.0))
            steps.append(
                ControlNoiseWindow(
                    self.ctx, NOISE_DURATION_S, NOISE_STEER_STD, NOISE_THROTTLE_DROP, NOISE_HOLD_S
                )
            )
        return Sequence("control loss", True, steps)


class LeadBrake(ScenarioBehaviour):
    """Spawns a vehicle LEAD_GAP_M ahead of the ego on the route at the ego's speed (at least
    LEAD_MIN_SPEED_MPS), lets it cruise LEAD_CRUISE_S, brakes it at LEAD_BRAKE_MPS2 to a stop,
    waits LEAD_STOP_S and sends it on. RUNNING throughout (the end condition ends it)."""

    def __init__(self, ctx: ScenarioContext, pool: ActorPool) -> None:
        super().__init__(ctx, "LeadBrake")
        self.pool = pool
        self.lead_id = -1
        self.phase = "idle"
        self._t0 = 0.0
        self.speed = LEAD_MIN_SPEED_MPS
        self.path = np.zeros((0, 2))

    def initialise(self) -> None:
        s = self.ctx.board.ego_s_m + LEAD_GAP_M
        xy, yaw, _ = route_pose(self.ctx.planned, s)
        self.ctx.backend.clear_area((float(xy[0]), float(xy[1])), 10.0)
        self.speed = max(float(self.ctx.state.actors.speed[0]), LEAD_MIN_SPEED_MPS)
        self.path = route_slice(self.ctx.planned, s, self.ctx.planned.length_m)
        self.path = np.concatenate(
            [
                self.path,
                lane_forward(
                    self.ctx.town,
                    int(self.ctx.planned.lane[-1]),
                    float(self.ctx.town.lanes.length_m[int(self.ctx.planned.lane[-1])]),
                    60.0,
                ),
            ]
        )
        self.lead_id = self.pool.spawn(
            ActorSpec(
                ActorKind.VEHICLE,
                float(xy[0]),
                float(xy[1]),
                yaw,
                CAR_LENGTH_M,
                CAR_WIDTH_M,
                speed=self.speed,
            )
        )
        self.ctx.backend.command_actor(self.lead_id, ActorCommand(self.path, self.speed))
        self.phase, self._t0 = "cruise", self.ctx.board.time_s

    def update(self) -> Status:
        now = self.ctx.board.time_s
        r = actor_row(self.ctx, self.lead_id)
        if self.phase == "cruise" and now - self._t0 >= LEAD_CRUISE_S:
            self.ctx.backend.command_actor(
                self.lead_id, ActorCommand(HOLD, 0.0, 0.0, LEAD_BRAKE_MPS2)
            )
            self.phase, self._t0 = "brake", now
        elif self.phase == "brake" and r is not None and self.ctx.state.actors.speed[r] < 0.05:
            self.phase, self._t0 = "stopped", now
        elif self.phase == "stopped" and now - self._t0 >= LEAD_STOP_S:
            self.ctx.backend.command_actor(self.lead_id, ActorCommand(self.path, self.speed))
            self.phase = "go"
        return Status.RUNNING


class HardBreakRoute(BasicScenario):
    """At the trigger a vehicle appears LEAD_GAP_M ahead of the ego in its lane, drives at the
    ego's speed for LEAD_CRUISE_S and then brakes hard (LEAD_BRAKE_MPS2) to a stop; after
    LEAD_STOP_S it drives on. The ego must brake in time. ScenarioRunner makes the background
    vehicles ahead brake; the embedded background traffic cannot be commanded, so one lead is
    spawned (the area ahead is cleared of background vehicles first)."""

    end_distance_m = 80.0

    def behaviour(self) -> Behaviour:
        self.lead = LeadBrake(self.ctx, self.pool)
        return self.lead


class YieldToEmergencyVehicle(BasicScenario):
    """ScenarioRunner's YieldToEmergencyVehicle: at the trigger an EMERGENCY vehicle appears
    ``distance`` m (default 140) behind the trigger point in the ego's lane (the route extended
    backwards) and drives at the ego's speed + 25 m/s, slowing behind the ego when it is in the
    way (:class:`EmergencyApproach`). The scenario ends EV_IDLE_S after the EV first comes within
    EV_NEAR_M of the ego, or once the EV is ahead of the ego and has driven EV_PASSED_M; if the ego
    is then still ahead of the EV it failed to yield (YIELD_EMERGENCY_VEHICLE). No ScenarioTimeout
    and no ego-passed end (as the source)."""

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        self.distance_m = self.param_float("distance", 140.0)
        self.approach: EmergencyApproach | None = None

    def behaviour(self) -> Behaviour:
        planned, town = self.ctx.planned, self.ctx.town
        back_m = self.distance_m + EV_EXTRA_BACK_M
        back = lane_backward(town, int(planned.lane[0]), float(_lane_s0(self)), back_m)
        last = int(planned.lane[-1])
        fwd = lane_forward(town, last, float(town.lanes.length_m[last]), 0.0)
        path = np.concatenate([back, planned.xy[1:], fwd])
        anchor = float(path_s(back)[-1]) + self.trigger_s_m
        self.approach = EmergencyApproach(self.ctx, self.pool, path, anchor, self.distance_m)
        return self.approach

    def end_condition(self) -> Behaviour:
        assert self.approach is not None, "behaviour() builds the approach first"
        return Parallel(
            "EV end",
            ParallelPolicy.SuccessOnOne(),
            [
                Sequence("EV near, then idle", True, [
                    EmergencyVehicleNear(self.ctx, self.approach, EV_NEAR_M),
                    Idle(self.ctx, EV_IDLE_S),
                ]),
                EmergencyVehiclePassed(self.ctx, self.approach, EV_PASSED_M),
            ],
        )  # fmt: skip

    def criteria(self) -> list[Behaviour]:
        assert self.approach is not None, "behaviour() builds the approach first"
        return [YieldToEmergencyVehicleTest(self.ctx, self.approach)]


def _lane_s0(scn: BasicScenario) -> float:
    """Arc length on its lane of the route's first point."""
    return lane_s(scn.ctx.town, int(scn.ctx.planned.lane[0]), scn.ctx.planned.xy[0])
