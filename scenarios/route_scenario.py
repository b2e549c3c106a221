"""RouteScenario: the scenarios of one route, built as the ego approaches them and ticked after
every simulator tick (leaderboard 2.0's RouteScenario builds scenarios when the ego comes near,
too). The runner calls

    setup()                  after backend.reset (builds what is already within reach)
    perturb(control)         before backend.tick: applies a ControlLoss scenario's noise
    tick(state)              after backend.tick: progress, build, tick every tree
    cleanup()                at the end of the route
    ego_start_override()     before the reset: where the ego must start (ParkingExit), or None

Scenario types without a class are skipped with a logged warning, as the leaderboard does; they
appear in :meth:`status` with ``skipped=True``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from harness.routes.model import Pose
from harness.world.control import VehicleControl
from harness.world.state import WorldState
from scenarios.basic import BasicScenario
from scenarios.context import ScenarioContext
from scenarios.registry import SCENARIO_CLASSES

log = logging.getLogger(__name__)

BUILD_DISTANCE_M = (
    70.0  # [m] a scenario is built when the ego is this close (along the route) to its trigger
)


@dataclass(frozen=True)
class ScenarioStatus:
    """One scenario's state for logs and tests."""

    name: str
    type: str
    built: bool
    triggered: bool
    finished: bool
    timed_out: bool
    skipped: bool = False


class RouteScenario:
    """All scenarios of ``ctx.route``; see the module docstring for the call order."""

    def __init__(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.scenarios: list[BasicScenario] = []
        self.skipped: list[tuple[str, str]] = []
        for config in ctx.route.scenarios:
            cls = SCENARIO_CLASSES.get(config.type)
            if cls is None:
                log.warning(
                    "route %s: scenario type %r (%s) is not implemented; skipped",
                    ctx.route.id, config.type, config.name,
                )  # fmt: skip
                self.skipped.append((config.name, config.type))
                continue
            self.scenarios.append(cls(ctx, config))
        self._noise_until_draw = -1.0
        self._steer_offset = 0.0
        self._throttle_factor = 1.0

    def ego_start_override(self) -> Pose | None:
        """The first scenario's requested ego start (ParkingExit), else None."""
        for s in self.scenarios:
            pose = s.ego_start_override()
            if pose is not None:
                return pose
        return None

    def setup(self) -> None:
        """After the backend reset: note the ego's progress and build scenarios within reach."""
        self.ctx.board.ego_index = 0
        self.ctx.board.update(self.ctx.backend.state, self.ctx.planned)
        self._build_near()

    def tick(self, state: WorldState) -> None:
        """After each backend tick: update progress, build approaching scenarios, tick trees."""
        self.ctx.board.update(state, self.ctx.planned)
        self._build_near()
        for s in self.scenarios:
            s.tick()

    def perturb(self, control: VehicleControl) -> VehicleControl:
        """The ego's control with any active ControlLoss noise applied (identity otherwise)."""
        noise = self.ctx.board.noise
        now = self.ctx.board.time_s
        if noise is None or now >= noise.until_s:
            return control
        if now >= self._noise_until_draw:
            self._steer_offset = float(self.ctx.rng.normal(0.0, noise.steer_std))
            self._throttle_factor = float(self.ctx.rng.uniform(1.0 - noise.throttle_drop, 1.0))
            self._noise_until_draw = now + noise.hold_s
        return replace(
            control,
            steer=float(np.clip(control.steer + self._steer_offset, -1.0, 1.0)),
            throttle=float(np.clip(control.throttle * self._throttle_factor, 0.0, 1.0)),
        )

    def cleanup(self) -> None:
        """Remove every scenario actor still alive."""
        for s in self.scenarios:
            s.cleanup()
        self.ctx.board.noise = None

    def status(self) -> list[ScenarioStatus]:
        """Per scenario: built, triggered, finished, timed out (and the skipped types)."""
        out = [
            ScenarioStatus(
                s.config.name, s.config.type, s.built, s.triggered, s.finished, s.timed_out
            )
            for s in self.scenarios
        ]
        out += [ScenarioStatus(n, t, False, False, False, False, True) for n, t in self.skipped]
        return out

    def _build_near(self) -> None:
        ego_s = self.ctx.board.ego_s_m
        for s in self.scenarios:
            if not s.built and s.trigger_s_m - ego_s <= BUILD_DISTANCE_M:
                s.build()
