"""Fixed-time light cycling: documented sequence, cycle length, no two phases green together."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from harness.sim.embedded.lights import LightSchedule, LightTimings, junction_offset_s
from harness.world.state import LightState


@dataclass
class FakeSignals:
    n_lights: int
    groups: dict[int, list[object]] = field(default_factory=dict)


G, Y, R = LightState.GREEN, LightState.YELLOW, LightState.RED


def test_carla_default_timings() -> None:
    t = LightTimings()
    assert (t.green_s, t.yellow_s, t.red_s) == (10.0, 3.0, 2.0)


@pytest.mark.parametrize("n_phases", [2, 4])
def test_documented_sequence_and_cycle(n_phases: int) -> None:
    t = LightTimings()
    sched = LightSchedule(FakeSignals(n_phases, {0: list(range(n_phases))}), t)
    assert junction_offset_s(0, 1.0) == 0.0  # junction 0 starts at time 0
    cycle = n_phases * (10.0 + 3.0 + 2.0)
    np.testing.assert_allclose(sched.cycle_s, cycle)
    for time in np.arange(0.0, 2 * cycle, 0.25):
        state, elapsed = sched.states_at(float(time))
        slot, tau = divmod(time % cycle, 15.0)
        expected = np.full(n_phases, R)
        if tau < 10.0:
            expected[int(slot)] = G
        elif tau < 13.0:
            expected[int(slot)] = Y
        np.testing.assert_array_equal(state, expected)
        assert (state == G).sum() <= 1  # never two conflicting phases green
        assert np.all(elapsed >= 0.0)
    # explicit spot checks of the sequence for phase 1 and the elapsed clock
    s, e = sched.states_at(15.0 + 4.0)
    assert s[1] == G and e[1] == pytest.approx(4.0) and s[0] == R
    s, e = sched.states_at(15.0 + 11.0)
    assert s[1] == Y and e[1] == pytest.approx(1.0)
    s, e = sched.states_at(15.0 + 14.0)
    assert np.all(s == R) and e[1] == pytest.approx(1.0)  # all-red clearance
    s, e = sched.states_at(10.0)  # phase 0 yellow; phase 1 red since its yellow ended at 28 - cycle
    assert s[0] == Y and e[1] == pytest.approx(10.0 - (28.0 - cycle))


def test_shared_phase_lights_and_off_lights() -> None:
    sched = LightSchedule(FakeSignals(5, {3: [(0, 2), 1]}))
    off = junction_offset_s(3, 30.0)
    s, _ = sched.states_at(1.0 - off + 30.0)
    assert s[0] == G and s[2] == G and s[1] == R
    assert s[3] == LightState.OFF and s[4] == LightState.OFF


def test_pure_function_of_time() -> None:
    sched = LightSchedule(FakeSignals(6, {7: [0, 1, 2], 11: [3, 4, 5]}))
    a = sched.states_at(123.45)
    sched.states_at(3.0)
    b = sched.states_at(123.45)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].dtype == np.int8
