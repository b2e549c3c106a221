"""Flows the ego must merge into: EnterActorFlow (joining a road / highway carrying a flow) and
MergerIntoSlowTrafficV2 (merging into a slow, dense flow). The flow runs along the lanes from
``start_actor_flow`` to ``end_actor_flow`` (shortest lane path, follow edges) at ``flow_speed``
m/s, a new vehicle leaving the source whenever the last one is U(``source_dist_interval``) m
away; as ScenarioRunner's ActorFlow the vehicles ignore every other vehicle, the ego included
(until the ego collides with one), and vanish at the end. The flow starts at the
trigger, already filled along its path (ScenarioRunner starts it empty from the source a little
earlier; filling it keeps the scenario short in the embedded simulator)."""

from __future__ import annotations

import logging

from py_trees.behaviour import Behaviour

from harness.errors import ConfigError
from harness.routes.model import ScenarioConfig
from scenarios.basic import SCENARIO_TIMEOUT_S, BasicScenario
from scenarios.context import ScenarioContext
from scenarios.placement import Path, lane_route, route_index
from scenarios.traffic_behaviours import ActorFlow

log = logging.getLogger(__name__)

END_MARGIN_M = (
    20.0  # [m] the scenario ends when the ego passed the flow's end (or the route's) by this
)


class _Flow(BasicScenario):
    default_speed_mps = 10.0
    timeout_s = SCENARIO_TIMEOUT_S
    default_spacing_m = (20.0, 40.0)

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        super().__init__(ctx, config)
        start, end = self.param_location("start_actor_flow"), self.param_location("end_actor_flow")
        if start is None or end is None:
            raise ConfigError(
                f"scenario {config.name} ({config.type}) needs start_actor_flow and end_actor_flow; fix the route file"
            )
        self.source_xy, self.sink_xy = start, end
        self.speed_mps = self.param_float("flow_speed", self.default_speed_mps)
        self.spacing_m = self.param_interval("source_dist_interval", self.default_spacing_m)
        self.path: Path = lane_route(ctx.town, start, end)
        if len(self.path) == 2:
            log.warning(
                "%s: no lane path from the flow's start to its end; a straight line (fallback)",
                config.name,
            )
        self.flow: ActorFlow | None = None

    def setup_actors(self) -> None:
        for k in range(0, len(self.path), 25):
            self.clear(self.path[k], 15.0)

    def behaviour(self) -> Behaviour:
        self.flow = ActorFlow(
            self.ctx, self.pool, self.path, self.speed_mps, self.spacing_m, prefill=True
        )
        return self.flow

    def end_s_m(self) -> float:
        k = route_index(self.ctx.planned, self.sink_xy)
        return max(float(self.ctx.planned.s_m[k]), self.trigger_s_m + 40.0) + END_MARGIN_M


class EnterActorFlow(_Flow):
    """The ego joins a road carrying a flow (``start_actor_flow`` -> ``end_actor_flow`` at
    ``flow_speed``, spacing ``source_dist_interval``); it must find a gap and merge."""


class MergerIntoSlowTrafficV2(_Flow):
    """The ego merges into slow, dense traffic: the same flow mechanics as EnterActorFlow with
    the route file's slower ``flow_speed`` and tighter ``source_dist_interval``."""

    default_speed_mps = 5.0
    default_spacing_m = (10.0, 20.0)
