"""Fixed-time traffic-light cycling: each junction's phases get green in turn (green, yellow, then
an all-red clearance) while every other phase is red. A pure function of time, so any tick's light
state can be recomputed from the clock alone (deterministic replays, teacher look-ahead)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.jit import njit
from harness.world.state import LightState

GOLDEN_FRACTION = 0.6180339887498949  # [-] spreads junction offsets evenly over the cycle


@dataclass(frozen=True)
class LightTimings:
    """Phase durations [s]; the defaults are carla.TrafficLight's (green 10 s, yellow 3 s, red 2 s),
    where CARLA's red time is the all-red clearance between one phase and the next."""

    green_s: float = 10.0
    yellow_s: float = 3.0
    red_s: float = 2.0

    @property
    def phase_s(self) -> float:
        """[s] one phase's slot: green + yellow + all-red."""
        return self.green_s + self.yellow_s + self.red_s


def junction_offset_s(junction_id: int, cycle_s: float) -> float:
    """Deterministic start offset [s] in [0, cycle) from the junction id (golden-ratio hashing), so
    neighbouring junctions do not switch in lock-step."""
    return float((int(junction_id) * GOLDEN_FRACTION) % 1.0) * cycle_s


def _phases(entries: Sequence[Any]) -> list[tuple[int, ...]]:
    """Group entries as phases: an int is a one-light phase, a sequence is lights sharing a phase."""
    out: list[tuple[int, ...]] = []
    for e in entries:
        if isinstance(e, (int, np.integer)):
            out.append((int(e),))
        else:
            out.append(tuple(int(k) for k in e))
    return out


def light_count(signals: Any) -> int:
    """Number of traffic lights T of a SignalSet-like object."""
    n = getattr(signals, "n_lights", None)
    if n is not None:
        return int(n)
    for name in ("lights_count",):
        val = getattr(signals, name, None)
        if val is not None:
            return int(val)
    for name in ("light_id", "light_xy", "light_junction"):
        arr = getattr(signals, name, None)
        if arr is not None:
            return len(arr)
    raise AttributeError("signals has no n_lights / light_xy / light_id / light_junction / lights")


class LightSchedule:
    """Per-light phase index, phase count and offset; :meth:`states_at` maps a time to states.

    ``groups`` (junction id -> ordered phases, each a light index or a tuple of light indices) gives
    the green order. Lights in no group are OFF.
    """

    def __init__(self, signals: Any, timings: LightTimings | None = None) -> None:
        self.timings = timings or LightTimings()
        n = light_count(signals)
        groups: Mapping[int, Sequence[Any]] = getattr(signals, "groups", {}) or {}
        self.phase = np.zeros(n, dtype=np.int64)  # (T,) slot of the light within its junction cycle
        self.n_phases = np.zeros(n, dtype=np.int64)  # (T,) phases in its junction; 0 = OFF
        self.offset_s = np.zeros(n, dtype=np.float64)  # (T,) [s] junction start offset
        for jid, entries in sorted(groups.items()):
            phases = _phases(entries)
            cycle = len(phases) * self.timings.phase_s
            for p, lights in enumerate(phases):
                idx = np.asarray(lights, dtype=np.int64)
                self.phase[idx] = p
                self.n_phases[idx] = len(phases)
                self.offset_s[idx] = junction_offset_s(jid, cycle)
        self.cycle_s = (self.n_phases * self.timings.phase_s).astype(np.float64)  # (T,) [s]

    @property
    def n_lights(self) -> int:
        return int(self.phase.shape[0])

    def states_at(self, time_s: float) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        """(state (T,) int8 LightState, elapsed (T,) [s] in that state) at ``time_s``; pure.
        Fresh arrays per call (callers keep them); one compiled pass over the lights."""
        t = self.timings
        return _states_kernel(
            float(time_s), self.phase, self.n_phases, self.offset_s, self.cycle_s,
            float(t.phase_s), float(t.green_s), float(t.yellow_s),
        )  # fmt: skip


_RED, _YELLOW, _GREEN, _OFF = (int(v) for v in LightState)


@njit
def _states_kernel(
    time_s: float, phase: NDArray[np.int64], n_phases: NDArray[np.int64],
    offset_s: NDArray[np.float64], cycle_s: NDArray[np.float64], phase_s: float, green_s: float,
    yellow_s: float,
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:  # fmt: skip
    """LightSchedule.states_at per light: the time since the light's own green began, in [0,
    cycle), gives green / yellow / red and the time spent in it; lights in no group are OFF with
    elapsed = time_s. The RED state continues from the end of yellow until the next green."""
    n = phase.shape[0]
    state = np.empty(n, dtype=np.int8)
    elapsed = np.empty(n)
    for i in range(n):
        if n_phases[i] <= 0:
            state[i], elapsed[i] = _OFF, time_s
            continue
        tau = (time_s + offset_s[i] - phase[i] * phase_s) % cycle_s[i]
        if tau < green_s:
            state[i], elapsed[i] = _GREEN, tau
        elif tau < green_s + yellow_s:
            state[i], elapsed[i] = _YELLOW, tau - green_s
        else:
            state[i], elapsed[i] = _RED, tau - green_s - yellow_s
    return state, elapsed


class LightOverrides:
    """Lights a scenario holds at a forced state (ScenarioRunner's TrafficLightFreezer): per light
    the forced state (-1: none), when the hold began and when it ends ([s] simulation time, inf:
    until released). :meth:`apply` lays the holds over the schedule's states; once a hold ends the
    light is back on its fixed cycle (the schedule stays a pure function of time)."""

    def __init__(self, n_lights: int) -> None:
        self.state = np.full(n_lights, -1, dtype=np.int8)  # (T,) forced LightState or -1
        self.since_s = np.zeros(n_lights, dtype=np.float64)  # (T,) [s] hold start
        self.until_s = np.full(n_lights, np.inf, dtype=np.float64)  # (T,) [s] hold end

    def force(
        self, lights: NDArray[np.int64], state: LightState, now_s: float, duration_s: float | None
    ) -> None:
        """Hold ``lights`` at ``state`` from ``now_s`` for ``duration_s`` [s] (None: until
        released)."""
        self.state[lights] = int(state)
        self.since_s[lights] = now_s
        self.until_s[lights] = np.inf if duration_s is None else now_s + duration_s

    def release(self, lights: NDArray[np.int64]) -> None:
        """End the holds of ``lights`` (they resume their cycle)."""
        self.state[lights] = -1
        self.until_s[lights] = np.inf

    @property
    def any(self) -> bool:
        return bool(np.any(self.state >= 0))

    def apply(
        self, time_s: float, state: NDArray[np.int8], elapsed_s: NDArray[np.float64]
    ) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
        """The schedule's (state, elapsed) with the holds active at ``time_s`` laid over them
        (fresh arrays); expired holds are dropped."""
        expired = (self.state >= 0) & (time_s >= self.until_s)
        if expired.any():
            self.release(np.flatnonzero(expired))
        held = self.state >= 0
        if not held.any():
            return state, elapsed_s
        state, elapsed_s = state.copy(), elapsed_s.copy()
        state[held] = self.state[held]
        elapsed_s[held] = time_s - self.since_s[held]
        return state, elapsed_s
