"""The privileged expert's planner (PDM-Closed style): route paths, constant-velocity forecasts,
IDM proposals, fast scoring and the planner that ties them together (see ``expert``)."""

from harness.planning.expert import ExpertConfig, ExpertPlanner, Plan
from harness.planning.paths import PathKind, RouteContext, build_route_context

__all__ = [
    "ExpertConfig",
    "ExpertPlanner",
    "PathKind",
    "Plan",
    "RouteContext",
    "build_route_context",
]
