"""BasicScenario: the shape every route scenario shares (ScenarioRunner's BasicScenario, without
its global data provider). The tree is

    Sequence[ trigger (the ego reaches the trigger point along the route),
              Parallel(SuccessOnOne)[ Sequence[behaviour, Idle], end condition (the ego passed
                                      the scenario area), [scenario timeout], criteria... ],
              closing behaviours (e.g. criteria switched back on),
              ActorDestroy (the scenario's actors) ]

so the scenario ends when the ego gets through or when the timeout (reported as
SCENARIO_TIMEOUT, like leaderboard 2.0) fires; its actors are removed either way. As in
ScenarioRunner, only the types whose source file defines a ScenarioTimeout have one
(``timeout_s``, 240 s; None: no timeout), and while it runs the route's agent-blocked test is
switched off. Subclasses
spawn their actors in :meth:`setup_actors` and return their behaviour from :meth:`behaviour`."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import py_trees
from py_trees.behaviour import Behaviour
from py_trees.common import ParallelPolicy, Status

from harness.errors import ConfigError
from harness.routes.model import Pose, ScenarioConfig
from scenarios.behaviours import (
    ActorDestroy,
    ActorPool,
    Idle,
    InTriggerDistanceAlongRoute,
    ScenarioTimeout,
    WaitUntilEgoPassed,
)
from scenarios.context import ScenarioContext
from scenarios.placement import route_index, route_pose

log = logging.getLogger(__name__)

SCENARIO_TIMEOUT_S = 240.0  # [s] ScenarioRunner's _scenario_timeout, in the types that set one
TRIGGER_DISTANCE_M = (
    2.0  # [m] the trigger fires this far before the trigger point (along the route)
)
CLEAR_RADIUS_M = 25.0  # [m] background traffic is moved out of the set-up area within this radius


class BasicScenario:
    """One scenario of a route. ``config`` is the route file's entry; parameters are read with
    :meth:`param_float` / :meth:`param_str` / :meth:`param_interval` (defaults as ScenarioRunner's)."""

    timeout_s: ClassVar[float | None] = None  # [s] ScenarioTimeout; None where the source has none
    end_distance_m: ClassVar[float] = (
        60.0  # [m] the ego has passed the area this far after the trigger
    )

    def __init__(self, ctx: ScenarioContext, config: ScenarioConfig) -> None:
        self.ctx, self.config = ctx, config
        yaw = np.deg2rad(config.trigger[3])
        self.trigger_index = route_index(ctx.planned, config.trigger_xy, float(yaw))
        self.trigger_s_m = float(ctx.planned.s_m[self.trigger_index])
        self.pool = ActorPool(ctx)
        self.tree: Behaviour | None = None
        self.trigger: Behaviour | None = None
        self.timeout: ScenarioTimeout | None = None
        self.built = False
        self.finished = False
        self._triggered = False

    # ------------------------------------------------------------------ parameters
    def param_str(self, name: str, default: str) -> str:
        return self.config.params.get(name, {}).get("value", default)

    def param_float(self, name: str, default: float) -> float:
        raw = self.config.params.get(name, {}).get("value")
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(
                f"scenario {self.config.name}: parameter {name}={raw!r} is not a number; fix the route file"
            ) from None

    def param_interval(self, name: str, default: tuple[float, float]) -> tuple[float, float]:
        """A ``<name from=".." to=".."/>`` interval (or a single ``value``)."""
        p = self.config.params.get(name)
        if not p:
            return default
        try:
            if "value" in p:
                v = float(p["value"])
                return v, v
            return float(p["from"]), float(p["to"])
        except (KeyError, ValueError):
            raise ConfigError(
                f"scenario {self.config.name}: parameter {name}={p!r} needs from/to numbers; fix the route file"
            ) from None

    def param_location(self, name: str) -> np.ndarray | None:
        """A ``<name x=".." y=".." z=".."/>`` location as (2,) [m], None when absent."""
        p = self.config.params.get(name)
        if not p:
            return None
        return np.array([float(p["x"]), float(p["y"])])

    def direction_sign(self, default: str = "right") -> float:
        """+1 for direction 'right', -1 for 'left' (sides in the ego's frame)."""
        d = self.param_str("direction", default).lower()
        if d not in ("left", "right"):
            raise ConfigError(
                f"scenario {self.config.name}: direction must be left or right, got {d!r}"
            )
        return 1.0 if d == "right" else -1.0

    # ------------------------------------------------------------------ hooks
    def setup_actors(self) -> None:
        """Spawn the scenario's actors (override); called once when the route scenario builds it."""

    def behaviour(self) -> Behaviour:
        """What happens after the trigger (override); default: nothing."""
        return Idle(self.ctx)

    def criteria(self) -> list[Behaviour]:
        """Scenario criteria run beside the behaviour (override; e.g. the yield criterion)."""
        return []

    def closing(self) -> list[Behaviour]:
        """Behaviours run once the scenario ended, before its actors are removed (override;
        e.g. switching a criterion back on)."""
        return []

    def end_condition(self) -> Behaviour:
        """What ends the scenario (override): by default the ego passing :meth:`end_s_m`."""
        return WaitUntilEgoPassed(self.ctx, self.end_s_m())

    def end_s_m(self) -> float:
        """Route arc length the ego must pass for the scenario to end."""
        return self.trigger_s_m + self.end_distance_m

    def ego_start_override(self) -> Pose | None:
        """Where the ego must start instead of the route start (ParkingExit); None: no change."""
        return None

    # ------------------------------------------------------------------ helpers
    def route_point(self, ahead_m: float) -> tuple[np.ndarray, float, int]:
        """(xy, yaw, lane) of the route ``ahead_m`` after the trigger point."""
        return route_pose(self.ctx.planned, self.trigger_s_m + ahead_m)

    def clear(self, xy: np.ndarray, radius_m: float = CLEAR_RADIUS_M) -> None:
        """Move background traffic out of the set-up area."""
        self.ctx.backend.clear_area((float(xy[0]), float(xy[1])), radius_m)

    # ------------------------------------------------------------------ lifecycle
    def build(self) -> None:
        """Spawn the actors and assemble the tree (once)."""
        if self.built:
            return
        self.setup_actors()
        name = self.config.name or self.config.type
        self.trigger = self.make_trigger()
        children: list[Behaviour] = [
            py_trees.composites.Sequence("behaviour", True, [self.behaviour(), Idle(self.ctx)]),
            self.end_condition(),
        ]
        if self.timeout_s is not None:
            self.timeout = ScenarioTimeout(self.ctx, self.timeout_s, name)
            children.append(self.timeout)
        main = py_trees.composites.Parallel(
            f"{name} behaviour", ParallelPolicy.SuccessOnOne(), [*children, *self.criteria()]
        )
        self.tree = py_trees.composites.Sequence(
            name, True, [self.trigger, main, *self.closing(), ActorDestroy(self.ctx, self.pool)]
        )
        self.built = True

    def make_trigger(self) -> Behaviour:
        """The trigger condition (override for other triggers)."""
        return InTriggerDistanceAlongRoute(self.ctx, self.trigger_s_m, TRIGGER_DISTANCE_M)

    def tick(self) -> None:
        """Tick the tree once; a finished (or failed) tree cleans up its actors."""
        if self.tree is None or self.finished:
            return
        self.tree.tick_once()
        if self.trigger is not None and self.trigger.status == Status.SUCCESS:
            self._triggered = True
        if self.tree.status in (Status.SUCCESS, Status.FAILURE):
            if self.tree.status == Status.FAILURE:
                log.warning("scenario %s ended with FAILURE", self.config.name)
            self.finished = True
            self.cleanup()

    def cleanup(self) -> None:
        """Stop a tree still running (its behaviours release forced lights, switch the blocked
        test back on and close their criteria, as ScenarioRunner's terminate does at the route's
        end) and remove every actor the scenario still owns."""
        if self.tree is not None and self.tree.status == Status.RUNNING:
            self.tree.stop(Status.INVALID)
        self.pool.destroy_all()

    @property
    def triggered(self) -> bool:
        return self._triggered

    @property
    def timed_out(self) -> bool:
        return self.timeout is not None and self.timeout.timed_out
