"""The one episode loop: call order, stop rule, failure phases, and the timing conversions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.runner.episode import (
    DriverOutput,
    EpisodeError,
    Phase,
    Tick,
    after_ticks,
    any_of,
    ego_arrived,
    run_episode,
)
from harness.world.backend import EpisodeSpec
from harness.world.control import VehicleControl
from harness.world.state import ActorArrays, WorldState
from harness.world.timing import (
    HORIZON_STEPS,
    planner_to_score_poses,
    score_to_planner_poses,
)


def _state(frame: int, x: float = 0.0, speed: float = 0.0) -> WorldState:
    a = ActorArrays.empty(1)
    a.valid[0], a.x[0], a.speed[0] = True, x, speed
    return WorldState(frame=frame, time_s=0.05 * frame, actors=a,
                      light_state=np.zeros(0, np.int8), light_elapsed_s=np.zeros(0))  # fmt: skip


class _Backend:
    """Moves the ego 1 m per tick at 20 m/s; logs every call."""

    def __init__(self, log: list[str], fail_at: str | None = None) -> None:
        self.log, self.fail_at, self.frame = log, fail_at, 0

    def reset(self, spec: EpisodeSpec) -> WorldState:
        self.log.append("reset")
        return _state(0)

    def sensor_data(self) -> dict[str, Any]:
        self.log.append("sensors")
        if self.fail_at == "sensors":
            raise RuntimeError("no camera")
        return {"speed": (self.frame, {"speed": 0.0})}

    def tick(self, control: VehicleControl) -> WorldState:
        self.log.append(f"tick({control.throttle:.1f})")
        if self.fail_at == "tick":
            raise RuntimeError("boom")
        self.frame += 1
        return _state(self.frame, x=float(self.frame), speed=20.0)


class _Driver:
    uses_sensors = True

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def step(self, state: WorldState, input_data: dict[str, Any]) -> DriverOutput:
        self.log.append(f"driver@{state.frame}:{sorted(input_data)}")
        if self.fail:
            raise ValueError("agent bug")
        return DriverOutput(VehicleControl(throttle=0.5), np.zeros((40, 3)))


class _Hook:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def setup(self) -> None:
        self.log.append("hook.setup")

    def perturb(self, control: VehicleControl) -> VehicleControl:
        self.log.append("hook.perturb")
        return VehicleControl(throttle=control.throttle + 0.2)

    def tick(self, state: WorldState) -> None:
        self.log.append(f"hook.tick@{state.frame}")


class _Watcher:
    def __init__(self, log: list[str]) -> None:
        self.log: list[str] = log
        self.ticks: list[Tick] = []

    def on_start(self, state: WorldState) -> None:
        self.log.append(f"start@{state.frame}")

    def on_tick(self, tick: Tick) -> None:
        self.ticks.append(tick)
        self.log.append(f"obs@{tick.before.frame}->{tick.state.frame}")


SPEC = EpisodeSpec(town="T", ego_start=(0.0, 0.0, 0.0, 0.0))


def test_one_tick_runs_in_the_documented_order() -> None:
    log: list[str] = []
    watcher = _Watcher(log)
    end = run_episode(
        _Backend(log), SPEC, _Driver(log), after_ticks(2), hooks=(_Hook(log),), observers=(watcher,)
    )
    assert log == [
        "reset", "hook.setup", "start@0",
        "sensors", "driver@0:['speed']", "hook.perturb", "tick(0.7)", "hook.tick@1", "obs@0->1",
        "sensors", "driver@1:['speed']", "hook.perturb", "tick(0.7)", "hook.tick@2", "obs@1->2",
    ]  # fmt: skip
    assert end.ticks == 2 and end.state.frame == 2
    assert end.duration_s == pytest.approx(0.1)
    assert watcher.ticks[0].control.throttle == pytest.approx(0.7)  # after the hook's perturbation
    assert watcher.ticks[0].plan is not None


def test_a_stop_rule_that_holds_at_reset_runs_no_tick() -> None:
    log: list[str] = []
    end = run_episode(_Backend(log), SPEC, _Driver(log), lambda s, t: True)
    assert log == ["reset"] and end.ticks == 0


def test_arrival_needs_a_tick_and_the_radius() -> None:
    log: list[str] = []
    rule = any_of(after_ticks(100), ego_arrived((3.0, 0.0), radius_m=0.5, stopped_mps=30.0))
    end = run_episode(_Backend(log), SPEC, _Driver(log), rule)
    assert end.ticks == 3  # x = 3 m after the third tick
    assert not ego_arrived((0.0, 0.0), 1.0, 1.0)(_state(0), 0)  # never at the reset state


@pytest.mark.parametrize(
    ("fail_at", "driver_fails", "phase"),
    [("sensors", False, Phase.SENSORS), (None, True, Phase.DRIVER), ("tick", False, Phase.WORLD)],
)
def test_failures_come_back_with_their_phase(
    fail_at: str | None, driver_fails: bool, phase: Phase
) -> None:
    log: list[str] = []
    with pytest.raises(EpisodeError) as info:
        run_episode(_Backend(log, fail_at), SPEC, _Driver(log, driver_fails), after_ticks(3))
    assert info.value.phase is phase
    assert info.value.__cause__ is not None


def test_planner_poses_round_trip_and_interpolate_from_the_origin() -> None:
    # 8 poses at 0.5 s of a car at 10 m/s turning at 0.1 rad/s, in the ego frame
    t8 = 0.5 * np.arange(1, 9)
    poses8 = np.stack([10.0 * t8, np.zeros(8), 0.1 * t8], axis=-1)
    poses40 = planner_to_score_poses(poses8)
    assert poses40.shape == (HORIZON_STEPS, 3)
    np.testing.assert_allclose(poses40[0], [1.0, 0.0, 0.01])  # 0.1 s: a fifth of the first pose
    np.testing.assert_allclose(poses40[6], [7.0, 0.0, 0.07])  # 0.7 s: between 0.5 and 1.0 s
    np.testing.assert_array_equal(score_to_planner_poses(poses40), poses8)
    batch = planner_to_score_poses(np.stack([poses8, poses8]))
    assert batch.shape == (2, HORIZON_STEPS, 3)


def test_planner_poses_interpolate_yaw_across_pi() -> None:
    poses8 = np.zeros((8, 3))
    poses8[:, 2] = np.pi - 0.05  # heading just short of +pi ...
    poses8[4:, 2] = -np.pi + 0.05  # ... then just past it (wrapped)
    out = planner_to_score_poses(poses8, origin=(0.0, 0.0, np.pi - 0.05))
    assert np.all(np.abs(np.diff(out[:, 2])) <= 0.1 / 5 + 1e-9)  # no jump of 2 pi
    with pytest.raises(ValueError):
        planner_to_score_poses(np.zeros((7, 3)))
