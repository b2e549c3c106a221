"""Leaderboard route files (model, XML I/O), the lane-graph route planner and route checks."""

from harness.routes.check import (
    CheckReport,
    RouteProblem,
    RouteStatus,
    check_route,
    check_route_file,
)
from harness.routes.interpolate import GlobalPlan, PlannedRoute, RoadOption, global_plan, plan_route
from harness.routes.model import (
    OtherActor,
    RouteConfig,
    ScenarioConfig,
    Weather,
    triggers_near_route,
)
from harness.routes.xml_io import (
    attach_scenarios,
    load_scenarios_json,
    read_route_file,
    read_routes,
    read_routes_v1,
    write_routes,
)

__all__ = [
    "CheckReport",
    "GlobalPlan",
    "OtherActor",
    "PlannedRoute",
    "RoadOption",
    "RouteConfig",
    "RouteProblem",
    "RouteStatus",
    "ScenarioConfig",
    "Weather",
    "attach_scenarios",
    "check_route",
    "check_route_file",
    "global_plan",
    "load_scenarios_json",
    "plan_route",
    "read_route_file",
    "read_routes",
    "read_routes_v1",
    "triggers_near_route",
    "write_routes",
]
