"""Traffic-light control through the backend protocol (ScenarioRunner's TrafficLightFreezer): the
embedded simulator holds forced lights for the given time and then puts them back on their fixed
cycle; the CARLA adapter sets state and stretches the
light's times as ScenarioRunner does, and restores them (checked with stand-in light objects and
the real carla enum, no server)."""

from __future__ import annotations

import carla
import numpy as np
import pytest

from harness.errors import ConfigError
from harness.maps import load_town
from harness.sim.carla_backend import HOLD_FOREVER_S, LightHolds
from harness.sim.embedded.lights import LightSchedule
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.state import LightState
from harness.world.timing import SIM_DT_S

TOWN = "Harness01"  # built in


def _sim() -> EmbeddedSimulator:
    town = load_town(TOWN)
    assert len(town.signals.light_xy) >= 2
    sim = EmbeddedSimulator()
    x, y = (float(v) for v in town.lanes.xy[0])
    sim.reset(EpisodeSpec(TOWN, (x, y, 0.0, 0.0), traffic=TrafficConfig(vehicles=0, pedestrians=0)))
    return sim


def _ticks(sim: EmbeddedSimulator, n: int) -> list[np.ndarray]:
    return [sim.tick(VehicleControl(brake=1.0)).light_state.copy() for _ in range(n)]


def test_forced_light_holds_for_its_duration_then_follows_the_schedule_again() -> None:
    sim = _sim()
    schedule = LightSchedule(sim.town.signals)
    # a light that its own cycle turns GREEN within the 5 s hold
    own = np.array([schedule.states_at(f * SIM_DT_S)[0] for f in range(1, 100)])
    k = int(np.flatnonzero((own == LightState.GREEN).any(axis=0))[0])
    sim.force_lights([k], LightState.RED, duration_s=5.0)
    states = _ticks(sim, 160)  # frames 1..160 (8 s)
    held = int(round(5.0 / SIM_DT_S))  # the hold began at frame 0 and ends at frame 100
    assert all(int(s[k]) == LightState.RED for s in states[: held - 1])
    for f in range(held, 160):  # after the hold: the pure schedule again
        assert int(states[f][k]) == int(schedule.states_at((f + 1) * SIM_DT_S)[0][k])
    others = np.arange(len(sim.town.signals.light_xy)) != k
    for f in range(0, 160, 17):  # the other lights never left their schedule
        expect = schedule.states_at((f + 1) * SIM_DT_S)[0]
        assert np.array_equal(states[f][others], expect[others])
    # elapsed time in the forced state counts from the hold's start
    assert sim.state.light_elapsed_s.shape == (len(sim.town.signals.light_xy),)


def test_light_held_until_released() -> None:
    sim = _sim()
    sim.force_lights([0, 1], LightState.GREEN)
    states = _ticks(sim, 600)  # 30 s: longer than any cycle
    assert all(int(s[0]) == LightState.GREEN and int(s[1]) == LightState.GREEN for s in states)
    assert sim.state.light_elapsed_s[0] == pytest.approx(600 * SIM_DT_S)
    sim.release_lights([0, 1])
    schedule = LightSchedule(sim.town.signals)
    after = _ticks(sim, 1)[0]
    assert np.array_equal(after, schedule.states_at(601 * SIM_DT_S)[0])


def test_forcing_an_unknown_light_is_a_config_error() -> None:
    sim = _sim()
    with pytest.raises(ConfigError, match="outside the town"):
        sim.force_lights([len(sim.town.signals.light_xy)], LightState.RED)


class _FakeLight:
    """The carla.TrafficLight methods TrafficLightFreezer uses."""

    def __init__(self) -> None:
        self.state = carla.TrafficLightState.Green
        self.green, self.yellow, self.red, self.elapsed = 10.0, 3.0, 2.0, 4.0

    def get_state(self) -> carla.TrafficLightState:
        return self.state

    def set_state(self, s: carla.TrafficLightState) -> None:
        self.state = s

    def get_elapsed_time(self) -> float:
        return self.elapsed

    def get_green_time(self) -> float:
        return self.green

    def get_yellow_time(self) -> float:
        return self.yellow

    def get_red_time(self) -> float:
        return self.red

    def set_green_time(self, t: float) -> None:
        self.green = t

    def set_yellow_time(self, t: float) -> None:
        self.yellow = t

    def set_red_time(self, t: float) -> None:
        self.red = t


def test_carla_holds_set_state_stretch_the_times_and_restore_them() -> None:
    holds = LightHolds(carla)
    light = _FakeLight()
    holds.force(3, light, LightState.RED, now_s=10.0, duration_s=5.0)
    assert light.state == carla.TrafficLightState.Red
    # ScenarioRunner: every phase time = duration + the light's elapsed time
    assert (light.green, light.yellow, light.red) == (9.0, 9.0, 9.0)
    holds.force(
        3, light, LightState.GREEN, now_s=15.0, duration_s=None
    )  # re-forced: keeps the original
    assert light.state == carla.TrafficLightState.Green and light.green == HOLD_FOREVER_S + 4.0
    holds.expire(1.0e5)
    assert 3 in holds.holds, "held until released"
    holds.release(3)
    assert light.state == carla.TrafficLightState.Green
    assert (light.green, light.yellow, light.red) == (10.0, 3.0, 2.0)


def test_carla_hold_expires_at_its_end_time() -> None:
    holds = LightHolds(carla)
    light = _FakeLight()
    holds.force(0, light, LightState.RED, now_s=2.0, duration_s=5.0)
    holds.expire(6.95)
    assert light.state == carla.TrafficLightState.Red
    holds.expire(7.0)
    assert light.state == carla.TrafficLightState.Green and not holds.holds
