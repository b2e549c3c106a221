"""Leaderboard 2.1's infraction penalty (statistics_manager.py of its leaderboard-2.1 branch):
IP = (1 - outside pct/100) / (1 + sum of weights), weights pedestrian 1.0, vehicle 0.7,
layout 0.6, red light 0.4, stop 0.25, scenario timeout 0.4, yield 0.4, min speed
0.4 x (1 - pct/100); numbers worked by hand."""

from __future__ import annotations

import pytest

from harness.leaderboard.outcome import Infraction, InfractionKey, RouteOutcome
from harness.leaderboard.statistics import (
    LEADERBOARD_2_0,
    LEADERBOARD_2_1,
    infraction_penalty,
    penalty_factor,
    route_scores,
)
from harness.runner.config import PENALTY_TABLES

K = InfractionKey


def test_single_infractions_divide_by_one_plus_their_weight() -> None:
    weights = {K.COLLISIONS_PEDESTRIAN: 1.0, K.COLLISIONS_VEHICLE: 0.7, K.COLLISIONS_LAYOUT: 0.6,
               K.RED_LIGHT: 0.4, K.STOP_INFRACTION: 0.25, K.SCENARIO_TIMEOUTS: 0.4,
               K.YIELD_EMERGENCY_VEHICLE_INFRACTIONS: 0.4, K.ROUTE_DEV: 0.0,
               K.VEHICLE_BLOCKED: 0.0, K.ROUTE_TIMEOUT: 0.0}  # fmt: skip
    for key, w in weights.items():
        assert infraction_penalty([(key, None)], LEADERBOARD_2_1) == pytest.approx(1.0 / (1.0 + w))
        assert penalty_factor(key, None, LEADERBOARD_2_1) == pytest.approx(1.0 / (1.0 + w))
    assert infraction_penalty([], LEADERBOARD_2_1) == 1.0


def test_weights_add_up_instead_of_multiplying() -> None:
    # a vehicle (0.7) + a red light (0.4) + a stop (0.25) = 1.35 -> 1 / 2.35
    items = [(K.COLLISIONS_VEHICLE, None), (K.RED_LIGHT, None), (K.STOP_INFRACTION, None)]
    assert infraction_penalty(items, LEADERBOARD_2_1) == pytest.approx(1.0 / 2.35)
    assert infraction_penalty(items, LEADERBOARD_2_0) == pytest.approx(0.6 * 0.7 * 0.8)
    # two pedestrians = 2.0 -> 1/3 (2.0: 0.25)
    two = [(K.COLLISIONS_PEDESTRIAN, None)] * 2
    assert infraction_penalty(two, LEADERBOARD_2_1) == pytest.approx(1.0 / 3.0)


def test_min_speed_and_outside_lanes() -> None:
    # min speed checkpoints at 60 % and 85 %: 0.4 x 0.4 + 0.4 x 0.15 = 0.22; a layout hit 0.6;
    # 12.5 % outside route lanes multiplies by 0.875: IP = 0.875 / 1.82
    items = [(K.MIN_SPEED_INFRACTIONS, 60.0), (K.MIN_SPEED_INFRACTIONS, 85.0),
             (K.COLLISIONS_LAYOUT, None), (K.OUTSIDE_ROUTE_LANES, 12.5)]  # fmt: skip
    assert infraction_penalty(items, LEADERBOARD_2_1) == pytest.approx(0.875 / 1.82)
    assert infraction_penalty([(K.OUTSIDE_ROUTE_LANES, 12.5)], LEADERBOARD_2_1) == 0.875


def test_route_scores_and_the_cli_choice_use_the_2_1_formula() -> None:
    assert PENALTY_TABLES["2.1"] is LEADERBOARD_2_1

    def inf(key: InfractionKey, pct: float | None = None) -> Infraction:
        return Infraction(key, "m", 0, 0.0, 0.0, 0.0, percentage=pct)

    outcome = RouteOutcome(
        route_id="r", status="Completed", route_completion_pct=80.0, completed=False, failure="",
        end_reason="", infractions=(inf(K.COLLISIONS_VEHICLE), inf(K.OUTSIDE_ROUTE_LANES, 10.0)),
        route_length_m=100.0, duration_game_s=10.0, ticks=200,
    )  # fmt: skip
    s = route_scores(outcome, LEADERBOARD_2_1)
    # IP = 0.9 / 1.7 = 0.529412 (6 decimals); DS = 80 x 0.9 / 1.7 = 42.352941
    assert s.score_penalty == pytest.approx(0.529412, abs=1e-6)
    assert s.score_composed == pytest.approx(42.352941, abs=1e-6)
