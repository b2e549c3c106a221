"""Vehicle parameters, control mapping and the kinematic bicycle against closed-form physics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from harness.dynamics import (
    LINCOLN_MKZ_2017,
    MKZ_SPEED_AFTER_5S_MPS,
    MKZ_TIME_0_TO_100_KMH_S,
    BicycleState,
    VehicleControl,
    VehicleParams,
    control_to_command,
    step,
)
from harness.errors import ConfigError

P = LINCOLN_MKZ_2017
DT = 0.05  # [s] 20 Hz
KMH_100 = 100.0 / 3.6  # [m/s]


def passive(v: float) -> float:
    """Rolling resistance + drag decel magnitude at speed v > 0."""
    return P.rolling_resistance_mps2 + P.drag_per_m * v * v


# --- parameters and controls ---------------------------------------------------------------


def test_mkz_box_matches_carla_extent() -> None:
    assert P.length_m == pytest.approx(2 * 2.4508)
    assert P.width_m == pytest.approx(2 * 1.0641)
    assert P.height_m == pytest.approx(2 * 0.7553)
    assert P.wheelbase_m == pytest.approx(112.2 * 0.0254, abs=0.01)
    assert P.min_turn_radius_m == pytest.approx(2.85 / math.tan(0.61))


def test_params_validation() -> None:
    with pytest.raises(ConfigError, match="wheelbase_m"):
        VehicleParams(**{**P.__dict__, "wheelbase_m": -1.0})
    with pytest.raises(ConfigError, match="pi/2"):
        VehicleParams(**{**P.__dict__, "max_steer_rad": 1.6})


def test_vehicle_control_clips_and_rejects_nan() -> None:
    c = VehicleControl(throttle=1.5, steer=-3.0, brake=-0.2, gear=2)
    assert (c.throttle, c.steer, c.brake, c.gear) == (1.0, -1.0, 0.0, 2)
    with pytest.raises(ConfigError, match="NaN"):
        VehicleControl(steer=float("nan"))


def test_control_to_command_hand_values() -> None:
    a, d = control_to_command(1.0, 1.0, 0.0, False, False, 0.0, P)
    assert a == pytest.approx(3.8) and d == pytest.approx(0.61)
    a, _ = control_to_command(1.0, 0.0, 0.0, False, False, 30.0, P)  # power limited: 80 / 30
    assert a == pytest.approx(80.0 / 30.0 - passive(30.0))
    a, _ = control_to_command(0.5, 0.0, 0.0, False, False, 10.0, P)
    assert a == pytest.approx(0.5 * 3.8 - passive(10.0))
    a, _ = control_to_command(0.0, 0.0, 1.0, False, False, 10.0, P)
    assert a == pytest.approx(-8.0 - passive(10.0))
    a, _ = control_to_command(0.0, 0.0, 0.0, True, False, 5.0, P)
    assert a == pytest.approx(-5.0 - passive(5.0))
    a, _ = control_to_command(1.0, 0.0, 0.0, False, True, 0.0, P)  # reverse from rest
    assert a == pytest.approx(-3.8)
    a, _ = control_to_command(0.0, 0.0, 1.0, False, True, -2.0, P)  # braking while reversing
    assert a == pytest.approx(8.0 + passive(2.0))


def test_control_to_command_broadcasts() -> None:
    a, d = control_to_command(np.ones((2, 1)), np.linspace(-1, 1, 3), 0.0, False, False, 0.0, P)
    assert a.shape == (2, 1) and d.shape == (3,)
    a, d = control_to_command(np.ones((2, 1)), 0.0, 0.0, False, False, np.zeros(3), P)
    assert a.shape == (2, 3)


# --- bicycle ------------------------------------------------------------------------------


def test_constant_steer_traces_exact_circle() -> None:
    steer = 0.2
    radius_rear = P.wheelbase_m / math.tan(steer)
    state = BicycleState(0.0, 0.0, 0.0, 8.0, 0.0, steer)  # type: ignore[arg-type]
    rear, centre = [], []
    for _ in range(200):
        state = step(state, 0.0, steer, P, DT)
        rear.append(state.rear_axle_xy(P))
        centre.append([state.x, state.y])
    # rear axle starts at (-d, 0) heading +x; a right turn (steer > 0) puts the centre at +y
    c = np.array([-P.rear_axle_to_center_m, radius_rear])
    np.testing.assert_allclose(np.linalg.norm(np.array(rear) - c, axis=1), radius_rear, rtol=1e-9)
    expected_centre_r = math.hypot(radius_rear, P.rear_axle_to_center_m)
    np.testing.assert_allclose(
        np.linalg.norm(np.array(centre) - c, axis=1), expected_centre_r, rtol=1e-9
    )
    assert float(state.yaw_rate(P)) == pytest.approx(8.0 * math.tan(steer) / P.wheelbase_m)


def test_positive_steer_turns_right_in_carla_frame() -> None:
    state = BicycleState(0.0, 0.0, 0.0, 5.0, 0.0, 0.0)  # type: ignore[arg-type]
    for _ in range(20):
        state = step(state, 0.0, 0.3, P, DT)
    assert state.yaw > 0.0 and state.y > 0.0  # heading +x, right is +y (south)


@pytest.mark.parametrize("shape", [(), (2, 1)])
def test_step_batch_shapes(shape: tuple[int, ...]) -> None:
    state = BicycleState(np.zeros(shape), 0.0, 0.0, 5.0, 0.0, 0.0)  # type: ignore[arg-type]
    nxt = step(state, np.full(shape, 1.0), 0.1, P, DT)
    assert nxt.shape == shape and nxt.pose.shape == (*shape, 3)
    assert np.all(nxt.x > 0.0) and np.all(nxt.speed > 5.0)


def _launch_reference() -> tuple[float, float]:
    """Fine reference integration of the full-throttle launch (independent of the model code)."""

    def rhs(_t: float, s: np.ndarray) -> list[float]:
        v, a = s
        target = min(P.max_accel_mps2, P.power_per_mass_wpkg / max(v, 0.1)) - (
            passive(v) if v > 0 else 0.0
        )
        return [a, (target - a) / P.tau_accel_s]

    def reach(_t: float, s: np.ndarray) -> float:
        return float(s[0] - KMH_100)

    reach.terminal = True  # type: ignore[attr-defined]
    sol = solve_ivp(
        rhs,
        (0.0, 30.0),
        [0.0, 0.0],
        rtol=1e-10,
        atol=1e-10,
        events=reach,
        dense_output=True,
        max_step=0.01,
    )
    return float(sol.t_events[0][0]), float(sol.sol(5.0)[0])


def test_full_throttle_launch_matches_reference() -> None:
    t_ref, v5_ref = _launch_reference()
    assert t_ref == pytest.approx(MKZ_TIME_0_TO_100_KMH_S, abs=0.005)
    assert v5_ref == pytest.approx(MKZ_SPEED_AFTER_5S_MPS, abs=0.005)
    state = BicycleState.at_rest(0.0, 0.0, 0.0)
    speeds = [0.0]
    for _ in range(int(12.0 / DT)):
        accel, steer = control_to_command(1.0, 0.0, 0.0, False, False, state.speed, P)
        state = step(state, accel, steer, P, DT)
        speeds.append(float(state.speed))
    v = np.array(speeds)
    t = DT * np.arange(len(v))
    assert np.interp(KMH_100, v, t) == pytest.approx(MKZ_TIME_0_TO_100_KMH_S, abs=0.1)
    assert v[int(round(5.0 / DT))] == pytest.approx(MKZ_SPEED_AFTER_5S_MPS, abs=0.15)


def test_full_brake_stops_within_kinematic_distance() -> None:
    v0 = 20.0
    state = BicycleState(0.0, 0.0, 0.0, v0, 0.0, 0.0)  # type: ignore[arg-type]
    for _ in range(int(6.0 / DT)):
        accel, steer = control_to_command(0.0, 0.0, 1.0, False, False, state.speed, P)
        state = step(state, accel, steer, P, DT)
    lower = v0**2 / (2.0 * (P.max_brake_mps2 + passive(v0)))  # every resistance at its peak
    upper = v0**2 / (2.0 * P.max_brake_mps2) + v0 * (P.tau_accel_s + DT)  # brake only + lag
    assert float(state.speed) == 0.0 and float(state.accel) == 0.0
    assert lower <= float(state.x) <= upper


def test_no_reversing_through_zero_unless_in_reverse() -> None:
    state = BicycleState(0.0, 0.0, 0.0, 1.0, -8.0, 0.0)  # type: ignore[arg-type]
    for _ in range(40):
        state = step(state, -8.0, 0.0, P, DT)
        assert float(state.speed) >= 0.0
    assert float(state.speed) == 0.0
    for _ in range(40):
        accel, _ = control_to_command(1.0, 0.0, 0.0, False, True, state.speed, P)
        state = step(state, accel, 0.0, P, DT, reverse=True)
    assert -P.max_reverse_speed_mps <= float(state.speed) < -1.0 and float(state.x) < 0.0


def test_steer_rate_and_angle_limits() -> None:
    state = BicycleState.at_rest(0.0, 0.0, 0.0)
    nxt = step(state, 0.0, 1.0, P, DT)
    assert float(nxt.steer) == pytest.approx(P.max_steer_rate_radps * DT)
    for _ in range(40):
        nxt = step(nxt, 0.0, 10.0, P, DT)
    assert float(nxt.steer) == pytest.approx(P.max_steer_rad)


def test_top_speed_cap_and_invalid_state() -> None:
    state = BicycleState(0.0, 0.0, 0.0, P.top_speed_mps, 5.0, 0.0)  # type: ignore[arg-type]
    assert float(step(state, 5.0, 0.0, P, DT).speed) == P.top_speed_mps
    with pytest.raises(ConfigError):
        BicycleState(np.nan, 0.0, 0.0, 0.0, 0.0, 0.0)  # type: ignore[arg-type]
