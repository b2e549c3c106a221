"""IDM behaviour against closed-form answers: stopping gap s0, steady-state following gap."""

from __future__ import annotations

import numpy as np

from harness.dynamics.idm import IDMParams, idm_accel, idm_equilibrium_gap

P = IDMParams()
DT = 0.05


def test_free_road_accelerates_at_a_max_from_rest() -> None:
    a = idm_accel(np.zeros(3), np.full(3, 10.0), np.full(3, np.inf), np.zeros(3), P)
    np.testing.assert_allclose(a, P.a_max_mps2)
    assert idm_accel(10.0, 10.0, np.inf, 0.0, P) == 0.0  # at desired speed: no acceleration


def test_batch_shapes_broadcast() -> None:
    a = idm_accel(np.ones((2, 1)), 10.0, np.full((1, 3), 30.0), 0.0, P)
    assert a.shape == (2, 3)


def test_follower_stops_at_s0_behind_stopped_car() -> None:
    x, v, leader_x = 0.0, 10.0, 120.0  # bumper positions [m]
    min_gap = np.inf
    for _ in range(int(60 / DT)):
        a = float(np.clip(idm_accel(v, 12.0, leader_x - x, v, P), -9.0, P.a_max_mps2))
        v = max(v + a * DT, 0.0)
        x += v * DT
        min_gap = min(min_gap, leader_x - x)
    assert abs((leader_x - x) - P.s0_m) <= 0.3
    assert min_gap > 0.0
    assert v < 1e-3


def test_steady_state_gap_matches_closed_form() -> None:
    v_lead, v0 = 8.0, 12.0
    xl, xf, vf = 50.0, 0.0, 8.0
    for _ in range(int(120 / DT)):
        a = float(idm_accel(vf, v0, xl - xf, vf - v_lead, P))
        vf = max(vf + a * DT, 0.0)
        xf += vf * DT
        xl += v_lead * DT
    s_star = P.s0_m + v_lead * P.headway_s
    expected = s_star / np.sqrt(1.0 - (v_lead / v0) ** P.delta)
    np.testing.assert_allclose(xl - xf, expected, atol=0.05)
    np.testing.assert_allclose(idm_equilibrium_gap(v_lead, v0, P), expected)
    assert abs(float(idm_accel(v_lead, v0, expected, 0.0, P))) < 1e-12
