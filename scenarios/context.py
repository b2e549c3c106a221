"""What a scenario may use, passed explicitly (no process-wide provider): the backend, the town,
the planned route, the route record, the route criteria and a seeded generator, plus a small
per-route board the route scenario refreshes every tick (the ego's progress along the route and
the control perturbation a ControlLoss scenario asks the runner to apply)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.leaderboard.route_criteria import RouteCriteria
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute
from harness.routes.model import RouteConfig
from harness.world.backend import SimulatorBackend
from harness.world.state import WorldState

PROGRESS_WINDOW = (
    80  # [route points] how far ahead (about 1 m each) the ego's progress may jump per tick
)


@dataclass(frozen=True)
class ControlNoise:
    """Noise on the ego's control until ``until_s`` (simulation time): a steering offset drawn
    from N(0, steer_std) and a throttle factor from U(1 - throttle_drop, 1), redrawn every
    ``hold_s`` seconds (a gust / slippery patch rather than white noise)."""

    until_s: float  # [s]
    steer_std: float  # [-] steer units (-1..1)
    throttle_drop: float  # [-] fraction
    hold_s: float  # [s]


@dataclass
class ScenarioBoard:
    """Per-route mutable view shared by the scenarios of one route (owned by RouteScenario, never
    global): the latest state, the ego's route index / arc length (monotone), active noise."""

    state: WorldState | None = None
    ego_index: int = 0
    ego_s_m: float = 0.0
    noise: ControlNoise | None = None

    @property
    def time_s(self) -> float:
        return self.state.time_s if self.state is not None else 0.0

    def update(self, state: WorldState, planned: PlannedRoute) -> None:
        """Refresh the ego's progress: nearest route point within a forward window."""
        self.state = state
        a = state.actors
        lo = self.ego_index
        hi = min(lo + PROGRESS_WINDOW, planned.num_points)
        d = np.hypot(planned.xy[lo:hi, 0] - a.x[0], planned.xy[lo:hi, 1] - a.y[0])
        if d.size:
            self.ego_index = lo + int(np.argmin(d))
            self.ego_s_m = float(planned.s_m[self.ego_index])


@dataclass(frozen=True)
class ScenarioContext:
    """Everything a scenario may use (DESIGN.md, "Scenarios and the route runner")."""

    backend: SimulatorBackend
    town: Town
    planned: PlannedRoute
    route: RouteConfig
    criteria: RouteCriteria
    rng: np.random.Generator
    board: ScenarioBoard = field(default_factory=ScenarioBoard)

    @property
    def state(self) -> WorldState:
        """The latest state (the board's when the route scenario has ticked, else the backend's)."""
        return self.board.state if self.board.state is not None else self.backend.state
