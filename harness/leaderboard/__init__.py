"""Leaderboard-style evaluation: the agent interface and loader, route criteria, scores and the
results.json of the CARLA leaderboard's statistics manager (with Bench2Drive's extras).

Modules: ``agent`` (AutonomousAgent, PrivilegedAgent, Track), ``loader`` (load_agent,
REGISTERED_AGENTS), ``criteria`` (one class per criterion), ``route_criteria`` (RouteCriteria),
``outcome`` (Infraction, RouteOutcome, status strings), ``statistics`` (penalties, DS, global
record, Bench2Drive summary), ``results`` (ResultsFile, resume_plan), ``carla_world`` (the
``carla.World`` facade leaderboard agent files see on the embedded backend) and ``compat`` (the
shipped ``leaderboard`` / ``srunner`` packages and their binding).
"""

from harness.leaderboard.agent import (
    AgentControlError,
    AutonomousAgent,
    LiveWorldView,
    PrivilegedAgent,
    Track,
    WorldView,
    as_vehicle_control,
    is_privileged,
    run_agent_step,
)
from harness.leaderboard.criteria import RouteGeometry, town_lane_check
from harness.leaderboard.loader import REGISTERED_AGENTS, AgentLoadError, load_agent
from harness.leaderboard.outcome import Infraction, InfractionKey, RouteOutcome
from harness.leaderboard.results import ResultsFile, RouteRecord, record_from_outcome, resume_plan
from harness.leaderboard.route_criteria import CriteriaConfig, ReportKind, RouteCriteria
from harness.leaderboard.statistics import (
    BENCH2DRIVE,
    LEADERBOARD_2_0,
    LEADERBOARD_2_1,
    PenaltyTable,
    bench2drive_summary,
    infraction_penalty,
    route_scores,
)

__all__ = [
    "BENCH2DRIVE", "LEADERBOARD_2_0", "LEADERBOARD_2_1", "REGISTERED_AGENTS", "AgentControlError",
    "AgentLoadError", "AutonomousAgent", "CriteriaConfig", "Infraction", "InfractionKey",
    "LiveWorldView", "PenaltyTable", "PrivilegedAgent", "ReportKind", "ResultsFile",
    "RouteCriteria", "RouteGeometry", "RouteOutcome", "RouteRecord", "Track", "WorldView",
    "as_vehicle_control", "bench2drive_summary", "infraction_penalty", "is_privileged",
    "load_agent", "record_from_outcome", "resume_plan", "route_scores", "run_agent_step",
    "town_lane_check",
]  # fmt: skip
