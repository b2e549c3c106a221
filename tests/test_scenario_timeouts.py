"""Scenario timeouts as ScenarioRunner sets them: 240 s, only in the scenario types whose source
file adds a ScenarioTimeout, and the route's agent-blocked test switched off while it runs (the
AC_SwitchActorBlockedTest blackboard switch: off when the timeout starts, on when it ends)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import py_trees

from harness.leaderboard.outcome import InfractionKey
from harness.leaderboard.route_criteria import CriteriaConfig, RouteCriteria
from scenarios.behaviours import ScenarioTimeout
from scenarios.context import ScenarioBoard, ScenarioContext
from scenarios.registry import SCENARIO_CLASSES
from tests.test_criteria import state, straight_route

# Types of SCENARIO_CLASSES whose ScenarioRunner file (Bench2Drive's fork,
# srunner/scenarios/*.py) sets ``self._scenario_timeout = 240`` and adds a ScenarioTimeout to
# the tree: actor_flow.py, blocked_intersection.py, construction_crash_vehicle.py,
# left_turn_enter_flow.py, signalized_junction_left_turn.py, signalized_junction_right_turn.py,
# t_junction.py, parking_exit.py, route_obstacles.py, cross_bicycle_flow.py, invading_turn.py,
# vehicle_opens_door.py.
WITH_TIMEOUT = {
    "Accident", "AccidentTwoWays", "BlockedIntersection", "ConstructionObstacle",
    "ConstructionObstacleTwoWays", "EnterActorFlow", "HazardAtSideLane",
    "HazardAtSideLaneTwoWays", "MergerIntoSlowTrafficV2", "NonSignalizedJunctionLeftTurn",
    "NonSignalizedJunctionLeftTurnEnterFlow", "ParkedObstacle", "ParkedObstacleTwoWays",
    "ParkingExit", "SignalizedJunctionLeftTurnEnterFlow", "SignalizedJunctionRightTurn",
    "T_Junction",
    "NonSignalizedJunctionRightTurn", "SignalizedJunctionLeftTurn",
    "CrossingBicycleFlow", "InvadingTurn", "VehicleOpensDoorTwoWays",
    # actor_flow.py (HighwayExit, MergerIntoSlowTraffic, InterurbanActorFlow,
    # InterurbanAdvancedActorFlow) and sequentially_lane_change.py; highway_cut_in.py has none
    "HighwayExit", "MergerIntoSlowTraffic", "InterurbanActorFlow", "InterurbanAdvancedActorFlow",
    "SequentialLaneChange",
}  # fmt: skip


def test_only_the_types_scenario_runner_times_out_have_a_240_s_timeout() -> None:
    for name, cls in SCENARIO_CLASSES.items():
        expected = 240.0 if name in WITH_TIMEOUT else None
        assert cls.timeout_s == expected, name


def _ctx(criteria: RouteCriteria) -> ScenarioContext:
    """A context with only what ScenarioTimeout reads: the board's clock and the criteria."""
    fake = cast(Any, None)
    return ScenarioContext(
        fake, fake, fake, fake, criteria, np.random.default_rng(0), ScenarioBoard()
    )


def test_blocked_test_is_off_while_a_scenario_timeout_runs() -> None:
    dt = 0.05
    crit = RouteCriteria(straight_route(100), CriteriaConfig(blocked_time_s=60.0))
    ctx = _ctx(crit)
    timeout = ScenarioTimeout(ctx, 240.0, "Construction_1")
    tree = py_trees.composites.Parallel(
        "main", py_trees.common.ParallelPolicy.SuccessOnOne(), [timeout]
    )
    frame = 0

    def tick(seconds: float) -> None:
        nonlocal frame
        for _ in range(round(seconds / dt)):
            frame += 1
            s = state(frame, 10.5, speed=0.0)
            ctx.board.state = s
            crit.update(s)
            if tree.status not in (py_trees.common.Status.SUCCESS,):
                tree.tick_once()

    tick(1.0)  # the ego stands still from the start; the timeout started at the first tick
    tick(238.0)  # far beyond the 60 s blocked limit: not blocked while the timeout runs
    assert not crit.done[0] and not timeout.timed_out
    tick(2.0)  # 240 s: the timeout fires, is reported, and the blocked test resumes
    assert timeout.timed_out
    keys = [i.key for i in crit.infractions()]
    assert keys == [InfractionKey.SCENARIO_TIMEOUTS]
    tick(59.0)
    assert not crit.done[0], "the blocked clock restarted when the test was switched back on"
    tick(2.0)
    assert crit.done == (True, "blocked")
