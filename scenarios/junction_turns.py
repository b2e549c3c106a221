"""Junction turns of Bench2Drive's ScenarioRunner that reuse the junction machinery of
:mod:`scenarios.junctions`: the signalised left turn across an opposite flow
(signalized_junction_left_turn.py), the unsignalised right turn into a flow from the left
(signalized_junction_right_turn.py), the vehicle taking priority at an unsignalised junction
(opposite_vehicle_taking_priority.py) and the four "vanilla" turns (vanilla_turn.py), which spawn
nothing and only exercise the traffic rules: the ego must pause at the junction's stop sign, stop
at the red light the scenario forces and pass on green.

Every type ends as ScenarioRunner's WaitEndIntersection followed by DriveDistance(10 m) (or
WaitEndIntersection alone for the priority taker): the ego's route position past the junction
exit plus that distance. Only the left and right turns run a 240 s ScenarioTimeout (the vanilla
and priority files have none, so the route's blocked test stays on there)."""

from __future__ import annotations

import logging

import numpy as np
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy
from py_trees.composites import Parallel, Sequence

from harness.world.state import LightState
from scenarios.basic import SCENARIO_TIMEOUT_S
from scenarios.behaviours import (
    FreezeLights,
    Idle,
    WaitUntilEgoPassed,
)
from scenarios.junctions import (
    OppositeVehicleRunningRedLight,
    SignalizedJunctionRightTurn,
    _Junction,
)
from scenarios.placement import Path
from scenarios.traffic_behaviours import ActorFlow

log = logging.getLogger(__name__)

TURN_END_M = 10.0  # [m] DriveDistance after WaitEndIntersection (_end_distance)
LEFT_TURN_SOURCE_S = 4.0  # [s] x flow speed: the opposite flow's source before the junction
LEFT_TURN_SINK_S = 2.5  # [s] x flow speed: its sink past the junction exit
LEFT_TURN_SPEED_MPS = 20.0  # [m/s] default flow_speed
LEFT_TURN_SPACING_M = (25.0, 50.0)  # [m] default source_dist_interval
VANILLA_LIGHT_S = 5.0  # [s] each TrafficLightFreezer step of the vanilla signalised turns


class SignalizedJunctionLeftTurn(_Junction):
    """ScenarioRunner's SignalizedJunctionLeftTurn: the ego turns left at a signalised junction
    while a flow drives straight through from the opposite arm (one of its incoming lanes drawn at
    random), from LEFT_TURN_SOURCE_S x ``flow_speed`` before the junction to LEFT_TURN_SINK_S x
    ``flow_speed`` past its exit (``flow_speed`` m/s, default 20; spacing
    U(``source_dist_interval``), default 25-50 m), starting empty at the source as ActorFlow does
    without initial actors. Lights (:meth:`_Junction.flow_lights`): the ego's red and the flow's
    green for JUNCTION_GREEN_DELAY_S, then both green, the junction's others red. Ends TURN_END_M
    past the junction exit; 240 s ScenarioTimeout."""

    timeout_s = SCENARIO_TIMEOUT_S

    def opposite_flow_path(self) -> Path | None:
        lanes = self.incoming_from(np.pi)
        if not lanes:
            return None
        self.source_lane = int(lanes[int(self.ctx.rng.integers(len(lanes)))])
        v = self.param_float("flow_speed", LEFT_TURN_SPEED_MPS)
        return self.through_path(
            self.source_lane, up_m=LEFT_TURN_SOURCE_S * v, down_m=LEFT_TURN_SINK_S * v
        )

    def behaviour(self) -> Behaviour:
        path = self.opposite_flow_path()
        flow: Behaviour
        if path is None or len(path) < 2:
            log.warning(
                "%s: no opposite lane at this junction; no flow (fallback)", self.config.name
            )
            flow = Idle(self.ctx)
        else:
            self.paths["opposite"] = path
            self.clear(path[len(path) // 2], 30.0)
            flow = ActorFlow(
                self.ctx, self.pool, path,
                self.param_float("flow_speed", LEFT_TURN_SPEED_MPS),
                self.param_interval("source_dist_interval", LEFT_TURN_SPACING_M),
                name="opposite flow",
            )  # fmt: skip
        return Parallel(
            "flow and lights",
            ParallelPolicy.SuccessOnAll(),
            [flow, self.flow_lights(self.source_lane)],
        )

    def end_s_m(self) -> float:
        return self.exit_s + TURN_END_M


class NonSignalizedJunctionRightTurn(SignalizedJunctionRightTurn):
    """ScenarioRunner's NonSignalizedJunctionRightTurn: SignalizedJunctionRightTurn's flow from
    the rightmost lane of the arm on the ego's left (filled at the start, ``flow_speed`` default
    20 m/s, ``source_dist_interval`` default 25-50 m) without any light control. Ends
    RIGHT_TURN_END_M (10 m) past the junction exit; 240 s ScenarioTimeout."""

    def behaviour(self) -> Behaviour:
        return self.flow(self.left_arm_path(), "left", 20.0, (25.0, 50.0))


class OppositeVehicleTakingPriority(OppositeVehicleRunningRedLight):
    """ScenarioRunner's OppositeVehicleTakingPriority: OppositeVehicleRunningRedLight's emergency
    vehicle (30 m before its entry on the ``direction`` arm, 60 km/h once the ego is 2.2 s or 12 m
    from the conflict point, removed after its straight-line run time) at a junction whose lights
    are left alone. Ends when the ego leaves the junction; no ScenarioTimeout."""

    def behaviour(self) -> Behaviour:
        if self.runner_id < 0:
            return Idle(self.ctx)
        return Sequence("take priority", True, self.runner_crossing())


class _VanillaTurn(_Junction):
    """vanilla_turn.py's VanillaJunctionTurn: no actors; the junction is the first one on the
    route at or after the trigger; no ScenarioTimeout; ends TURN_END_M past the junction exit."""

    timeout_s = None

    def end_s_m(self) -> float:
        return self.exit_s + TURN_END_M

    def ego_light_states(self, ego: LightState) -> dict[int, LightState] | None:
        """The junction's lights red with the ego's at ``ego``; None (with a warning) when the
        junction has no lights (ScenarioRunner raises: 'use the non signalized version')."""
        ego_light = self.light_of(self.in_lane)
        if ego_light is None:
            log.warning(
                "%s: no traffic light at this junction; lights left alone", self.config.name
            )
            return None
        states = {k: LightState.RED for k in self.junction_lights()}
        states[ego_light] = ego
        return states


class VanillaNonSignalizedTurn(_VanillaTurn):
    """A turn at an unsignalised junction with nothing scripted (vanilla_turn.py)."""


class VanillaNonSignalizedTurnEncounterStopsign(_VanillaTurn):
    """A turn at a junction with a stop sign, nothing scripted: the route's stop criterion judges
    the ego against the junction's own sign (vanilla_turn.py)."""


class VanillaSignalizedTurnEncounterRedLight(_VanillaTurn):
    """From the trigger the ego's light is red for VANILLA_LIGHT_S, then green until the scenario
    ends; the junction's other lights red throughout (vanilla_turn.py): the ego must wait."""

    def behaviour(self) -> Behaviour:
        red = self.ego_light_states(LightState.RED)
        green = self.ego_light_states(LightState.GREEN)
        if red is None or green is None:
            return Idle(self.ctx)
        return Sequence(
            "traffic lights",
            True,
            [FreezeLights(self.ctx, red, VANILLA_LIGHT_S), FreezeLights(self.ctx, green)],
        )


class VanillaSignalizedTurnEncounterGreenLight(_VanillaTurn):
    """From the trigger the ego's light is green for VANILLA_LIGHT_S, then red for another
    VANILLA_LIGHT_S, the junction's other lights red; as in vanilla_turn.py the light sequence
    runs beside the end condition, so the scenario ends when the ego has passed the junction or
    when the two steps are over, whichever comes first (the lights then rejoin their cycle)."""

    def end_condition(self) -> Behaviour:
        passed = WaitUntilEgoPassed(self.ctx, self.end_s_m())
        green = self.ego_light_states(LightState.GREEN)
        red = self.ego_light_states(LightState.RED)
        if green is None or red is None:
            return passed
        lights = Sequence(
            "traffic lights",
            True,
            [FreezeLights(self.ctx, green, VANILLA_LIGHT_S),
             FreezeLights(self.ctx, red, VANILLA_LIGHT_S)],
        )  # fmt: skip
        return Parallel("passed or lights over", ParallelPolicy.SuccessOnOne(), [passed, lights])
