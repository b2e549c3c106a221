"""The one closed-loop episode loop: a backend, an episode spec, a driver, a stop rule, world
hooks and observers.

Every closed-loop run of the project goes through :func:`run_episode`: route evaluation, teacher
drives, the teachers' reactive re-check, ``harness sim bench`` and the kernel warm-up. One tick:

    input_data = backend.sensor_data()          (only when the driver uses sensors)
    out = driver.step(state, input_data)        (control + optional plan)
    control = hook.perturb(out.control)         (each world hook in turn, e.g. ControlLoss)
    state = backend.tick(control)
    hook.tick(state)                            (scenarios advance their behaviour trees)
    observer.on_tick(Tick(...))                 (criteria, step log, recorder, ...)

until ``stop(state, ticks)`` says the episode is over (checked before every tick, so a stop
rule that holds at reset runs no tick). Before the first tick the backend is reset with the spec,
each hook's ``setup`` runs and each observer's ``on_start`` sees the reset state.

Failures are reported by phase: any exception of the backend, a hook, the sensors or the driver
is re-raised as :class:`EpisodeError` with the :class:`Phase` it happened in, so the runner can
turn it into the leaderboard status it deserves ("Agent crashed" vs "Simulation crashed");
observers' exceptions are bugs and propagate unchanged, as do ``SensorConfigError`` (an invalid
sensor suite stops the whole run) and ``KeyboardInterrupt``. The caller owns the lifecycle of
the backend, the driver and the hooks (setup happens here; cleanup and close are the caller's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from harness.errors import SensorConfigError
from harness.world.backend import EpisodeSpec, SimulatorBackend
from harness.world.control import VehicleControl
from harness.world.state import COLLISION_EVENTS, EGO_INDEX, WorldState

SensorData = dict[str, tuple[int, Any]]
"""Leaderboard ``input_data``: {sensor_id: (frame, data)}."""


class Phase(StrEnum):
    """Where in the loop an episode failed."""

    RESET = "reset"  # backend reset or a hook's setup
    SENSORS = "sensors"  # backend.sensor_data()
    DRIVER = "driver"  # the driver (an agent's run_step, a controller)
    WORLD = "world"  # a hook's perturb / tick, or backend.tick


class EpisodeError(Exception):
    """An episode stopped by an exception in ``phase``; the original is ``__cause__``."""

    def __init__(self, phase: Phase, cause: BaseException) -> None:
        super().__init__(f"{phase.value}: {type(cause).__name__}: {cause}")
        self.phase = phase


@dataclass(frozen=True)
class DriverOutput:
    """One tick of a driver: the ego ``control`` and, when the driver exposes one, its ``plan``
    (T, 3) [x_m, y_m, yaw_rad] world-frame poses at 0.1 s starting one step ahead."""

    control: VehicleControl
    plan: NDArray[np.float64] | None = None


class Driver(Protocol):
    """Who drives the ego: a leaderboard agent, a privileged controller, a trajectory tracker."""

    @property
    def uses_sensors(self) -> bool:
        """Whether ``step`` needs the backend's sensor data (else it gets an empty dict)."""
        ...

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        """The control for the tick that starts at ``state``."""
        ...


class WorldHook(Protocol):
    """Something that acts on the world during an episode: a route's scenarios, a set-up that
    places recorded actors. It may use the backend it was built with."""

    def setup(self) -> None:
        """After the reset, before the first tick."""
        ...

    def perturb(self, control: VehicleControl) -> VehicleControl:
        """The control actually applied (scenarios such as ControlLoss disturb it)."""
        ...

    def tick(self, state: WorldState) -> None:
        """After every backend tick."""
        ...


@dataclass(frozen=True)
class Tick:
    """What one tick did: the state it started from (``before``, the one the driver saw), the
    control applied (after every hook's perturbation), the driver's plan and the new state."""

    before: WorldState
    control: VehicleControl
    plan: NDArray[np.float64] | None
    state: WorldState


class Observer(Protocol):
    """Watches an episode without acting on it (criteria, step log, recorder, metrics)."""

    def on_start(self, state: WorldState) -> None:
        """The reset state (after the hooks' set-up)."""
        ...

    def on_tick(self, tick: Tick) -> None:
        """After every tick (and after the hooks' tick)."""
        ...


StopRule = Callable[[WorldState, int], bool]
"""``stop(state, ticks_done)``: True ends the episode before the next tick."""


@dataclass(frozen=True)
class EpisodeSummary:
    """How an episode ended: the last state, the ticks run and the simulation time span [s]."""

    state: WorldState
    ticks: int
    start_time_s: float

    @property
    def duration_s(self) -> float:
        return float(self.state.time_s - self.start_time_s)


def run_episode(
    backend: SimulatorBackend,
    spec: EpisodeSpec,
    driver: Driver,
    stop: StopRule,
    *,
    hooks: Sequence[WorldHook] = (),
    observers: Sequence[Observer] = (),
) -> EpisodeSummary:
    """Reset ``backend`` with ``spec`` and tick it closed loop until ``stop`` (see module)."""
    # One try around the whole loop, the phase kept in a local (zero-cost in CPython 3.11,
    # where a context manager per phase cost ~8 % of a tick of the embedded simulator).
    phase: Phase | None = Phase.RESET
    try:
        state = backend.reset(spec)
        for hook in hooks:
            hook.setup()
        phase = None  # observers and the stop rule are not wrapped
        start_s = state.time_s
        for obs in observers:
            obs.on_start(state)
        ticks = 0
        use_sensors = driver.uses_sensors
        while not stop(state, ticks):
            input_data: SensorData = {}
            if use_sensors:
                phase = Phase.SENSORS
                input_data = backend.sensor_data()
            phase = Phase.DRIVER
            out = driver.step(state, input_data)
            phase = Phase.WORLD
            control = out.control
            for hook in hooks:
                control = hook.perturb(control)
            new_state = backend.tick(control)
            for hook in hooks:
                hook.tick(new_state)
            phase = None
            ticks += 1
            tick = Tick(state, control, out.plan, new_state)
            state = new_state
            for obs in observers:
                obs.on_tick(tick)
    except SensorConfigError:
        raise
    except Exception as exc:  # noqa: BLE001  (re-raised with its phase; the runner decides)
        if phase is None:
            raise
        raise EpisodeError(phase, exc) from exc
    return EpisodeSummary(state, ticks, start_s)


# ---------------------------------------------------------------------- stop rules
def after_ticks(limit: int) -> StopRule:
    """Stop once ``limit`` ticks have run."""
    return lambda _state, ticks: ticks >= limit


def ego_collided(state: WorldState, _ticks: int) -> bool:
    """Stop at the first tick whose events hold an ego collision."""
    return any(e.kind in COLLISION_EVENTS for e in state.events)


def ego_arrived(end_xy: Sequence[float], radius_m: float, stopped_mps: float) -> StopRule:
    """Stop once the ego is within ``radius_m`` of ``end_xy`` and slower than ``stopped_mps``
    (never at the reset state)."""
    ex, ey = float(end_xy[0]), float(end_xy[1])

    def rule(state: WorldState, ticks: int) -> bool:
        a = state.actors
        return bool(
            ticks > 0
            and np.hypot(a.x[EGO_INDEX] - ex, a.y[EGO_INDEX] - ey) < radius_m
            and a.speed[EGO_INDEX] < stopped_mps
        )

    return rule


def any_of(*rules: StopRule) -> StopRule:
    """Stop when any of ``rules`` does."""
    return lambda state, ticks: any(r(state, ticks) for r in rules)
