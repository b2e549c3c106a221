"""The one-vehicle fast paths of harness.dynamics equal the batched array paths: bicycle step,
control-to-command mapping, BicycleState construction and PurePursuitPID.control_one."""

from __future__ import annotations

import numpy as np
import pytest

from harness.dynamics import (
    LINCOLN_MKZ_2017,
    BicycleState,
    PIDState,
    PlannedTrajectory,
    PurePursuitPID,
    control_to_command,
    step,
)
from harness.dynamics.bicycle import step_one
from harness.dynamics.control import control_to_command_one
from harness.errors import ConfigError

P = LINCOLN_MKZ_2017
DT = 0.05  # [s]
N = 400  # random cases per test


def _random_states(rng: np.random.Generator) -> BicycleState:
    speed = rng.uniform(-3.0, 25.0, N)
    speed[::7] = 0.0  # from rest
    return BicycleState(
        x=rng.uniform(-100, 100, N), y=rng.uniform(-100, 100, N), yaw=rng.uniform(-np.pi, np.pi, N),
        speed=speed, accel=rng.uniform(-8, 4, N), steer=rng.uniform(-1.2, 1.2, N) * P.max_steer_rad,
    )  # fmt: skip


@pytest.mark.parametrize("reverse", [False, True])
def test_scalar_bicycle_step_equals_batched(reverse: bool) -> None:
    rng = np.random.default_rng(0)
    s = _random_states(rng)
    a_cmd, d_cmd = rng.uniform(-10, 6, N), rng.uniform(-1.5, 1.5, N) * P.max_steer_rad
    batched = step(s, a_cmd, d_cmd, P, DT, reverse=np.full(N, reverse))
    for i in range(N):
        one = BicycleState(*(float(getattr(s, f)[i]) for f in ("x", "y", "yaw", "speed", "accel", "steer")))  # type: ignore[arg-type]  # fmt: skip
        fast = step(one, float(a_cmd[i]), float(d_cmd[i]), P, DT, reverse=reverse)
        direct = step_one(one, float(a_cmd[i]), float(d_cmd[i]), P, DT, reverse)
        for f in ("x", "y", "yaw", "speed", "accel", "steer"):
            ref = float(getattr(batched, f)[i])
            assert float(getattr(fast, f)) == pytest.approx(ref, rel=1e-12, abs=1e-12), f
            assert float(getattr(direct, f)) == float(getattr(fast, f))
        assert fast.x.shape == () and isinstance(fast.x, np.ndarray)


def test_scalar_state_validation_matches_array_path() -> None:
    one = BicycleState(1.0, 2, np.float64(0.5), 3.0, 0.0, 0.0)  # type: ignore[arg-type]
    arr = BicycleState(np.array(1.0), np.array(2.0), np.array(0.5), 3.0, 0.0, 0.0)  # type: ignore[arg-type]
    for f in ("x", "y", "yaw", "speed", "accel", "steer"):
        a, b = getattr(one, f), getattr(arr, f)
        assert a.shape == b.shape == () and a.dtype == b.dtype and a == b
    with pytest.raises(ConfigError):
        BicycleState(0.0, float("nan"), 0.0, 0.0, 0.0, 0.0)  # type: ignore[arg-type]


def test_scalar_control_to_command_equals_batched() -> None:
    rng = np.random.default_rng(1)
    thr, st, brk = rng.uniform(-0.2, 1.2, N), rng.uniform(-1.2, 1.2, N), rng.uniform(-0.2, 1.2, N)
    hb, rev = rng.random(N) < 0.2, rng.random(N) < 0.3
    v = rng.uniform(-5, 30, N)
    v[::5] = 0.0
    acc, wheel = control_to_command(thr, st, brk, hb, rev, v, P)
    for i in range(N):
        args = (float(thr[i]), float(st[i]), float(brk[i]), bool(hb[i]), bool(rev[i]))
        fast = control_to_command(*args, np.array(v[i]), P)  # 0-d speed, as the simulator passes
        direct = control_to_command_one(*args, float(v[i]), P)
        assert float(fast[0]) == pytest.approx(float(acc[i]), rel=1e-12, abs=1e-12)
        assert float(fast[1]) == pytest.approx(float(wheel[i]), rel=1e-12, abs=1e-12)
        assert (float(fast[0]), float(fast[1])) == direct


def test_pure_pursuit_control_one_equals_control() -> None:
    rng = np.random.default_rng(2)
    ctrl = PurePursuitPID(params=P)
    for case in range(200):
        n = int(rng.integers(1, 31))
        yaw0 = rng.uniform(-np.pi, np.pi)
        curv = rng.uniform(-0.05, 0.05)
        ds = rng.uniform(0.0, 2.0)  # includes zero-length plans (stopped targets)
        yaw = yaw0 + curv * ds * np.arange(1, n + 1)
        xy = np.cumsum(ds * np.stack([np.cos(yaw), np.sin(yaw)], -1), axis=0)
        poses = np.column_stack([xy, yaw])
        target = float(rng.choice([0.0, 0.2, rng.uniform(0.0, 15.0)]))
        plan = PlannedTrajectory(poses=poses, dt_s=0.1, speeds_mps=np.full(n, target))
        x, y = rng.normal(0.0, 1.0, 2)
        eyaw, v = yaw0 + rng.normal(0.0, 0.2), rng.uniform(0.0, 15.0)
        pid_a = PIDState(integral_m=rng.uniform(-1, 1), prev_error_mps=None if case % 3 else 0.5)
        pid_b = PIDState(pid_a.integral_m, pid_a.prev_error_mps)
        ref = ctrl.control(pid_a, [x, y, eyaw], v, plan, DT)
        fast = ctrl.control_one(pid_b, float(x), float(y), float(eyaw), v, poses, target, DT)
        for f in ("throttle", "steer", "brake"):
            assert getattr(fast, f) == pytest.approx(getattr(ref, f), rel=1e-9, abs=1e-12), f
        assert pid_b.integral_m == pytest.approx(pid_a.integral_m, abs=1e-12)
        assert pid_b.prev_error_mps == pid_a.prev_error_mps
