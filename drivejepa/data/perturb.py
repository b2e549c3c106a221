"""Control perturbations of data drives: short seeded bursts injected into the expert's controls
so the recorded drives hold recoveries (the expert sees where the burst took the car and steers
back), as DAgger-style data needs.

A drive gets a burst every GAP_S_RANGE seconds (uniform), each lasting DURATION_S_RANGE seconds:
a steering offset (+-STEER_OFFSET_RANGE added to the expert's steer), a brake burst (the expert's
throttle replaced by a brake value) or a throttle burst (a throttle value replacing the expert's
throttle, never overriding its brake: a burst must not push the car into what the expert is
stopping for). The schedule is a pure function of the drive's seed, so it is recorded exactly
(:func:`burst_schedule`) without logging anything during the drive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.world.control import VehicleControl
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S

FIRST_BURST_S = 6.0  # [s] no burst before this (the start and the first acceleration)
GAP_S_RANGE = (4.0, 8.0)  # [s] from the end of one burst to the start of the next
DURATION_S_RANGE = (0.5, 1.5)  # [s] burst length
STEER_OFFSET_RANGE = (0.10, 0.25)  # [-] |steer offset| of a steering burst (steer is -1..1)
BRAKE_RANGE = (0.3, 0.7)  # [-] brake of a brake burst
THROTTLE_RANGE = (0.5, 0.9)  # [-] throttle of a throttle burst
KIND_WEIGHTS = (0.6, 0.2, 0.2)  # probabilities of steer / brake / throttle bursts
SCHEDULE_HORIZON_S = 3600.0  # [s] bursts are drawn up to this drive time


class BurstKind(IntEnum):
    """What a burst does to the controls."""

    STEER = 0
    BRAKE = 1
    THROTTLE = 2


@dataclass(frozen=True, eq=False)
class BurstSchedule:
    """Bursts of one drive: ``start_s`` / ``end_s`` (P,) drive time [s] from the first tick,
    ``kind`` (P,) :class:`BurstKind`, ``value`` (P,) steer offset (signed) or brake / throttle."""

    start_s: NDArray[np.float64]
    end_s: NDArray[np.float64]
    kind: NDArray[np.int64]
    value: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = self.start_s.shape
        if not (self.end_s.shape == self.kind.shape == self.value.shape == n):
            raise ValueError("BurstSchedule columns must all have one entry per burst")

    def active(self, t_s: float) -> int:
        """Index of the burst running at drive time ``t_s``, -1 when none."""
        j = int(np.searchsorted(self.start_s, t_s, side="right")) - 1
        return j if j >= 0 and t_s < self.end_s[j] else -1

    def overlaps(self, t0_s: NDArray[np.float64], t1_s: NDArray[np.float64]) -> NDArray[np.bool_]:
        """(S,) whether any burst acts within each interval [t0, t1) of drive time [s]."""
        t0 = np.asarray(t0_s, dtype=np.float64)[:, None]
        t1 = np.asarray(t1_s, dtype=np.float64)[:, None]
        return np.any((self.start_s[None] < t1) & (self.end_s[None] > t0), axis=1)

    def until(self, t_s: float) -> BurstSchedule:
        """The bursts that started before ``t_s`` (what a drive of that length received)."""
        n = int(np.searchsorted(self.start_s, t_s, side="left"))
        return BurstSchedule(self.start_s[:n], self.end_s[:n], self.kind[:n], self.value[:n])


@dataclass(frozen=True)
class PerturbationConfig:
    """Whether and how drives are perturbed; ``hook(seed)`` makes one drive's world hook (a
    picklable factory, so pool workers build their own)."""

    enabled: bool = True
    first_burst_s: float = FIRST_BURST_S
    gap_s: tuple[float, float] = GAP_S_RANGE
    duration_s: tuple[float, float] = DURATION_S_RANGE
    steer_offset: tuple[float, float] = STEER_OFFSET_RANGE
    brake: tuple[float, float] = BRAKE_RANGE
    throttle: tuple[float, float] = THROTTLE_RANGE
    kind_weights: tuple[float, float, float] = KIND_WEIGHTS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def schedule(self, seed: int, horizon_s: float = SCHEDULE_HORIZON_S) -> BurstSchedule:
        """The bursts of the drive with ``seed`` (none when disabled)."""
        return burst_schedule(self, seed, horizon_s)

    def hook(self, seed: int) -> PerturbationHook:
        return PerturbationHook(self.schedule(seed))


PERTURB_STREAM = 0x5E7B  # seeds the burst generator apart from traffic and scenarios


def burst_schedule(config: PerturbationConfig, seed: int, horizon_s: float) -> BurstSchedule:
    """Draw the bursts up to ``horizon_s`` from ``seed`` (see the module docstring)."""
    if not config.enabled:
        z = np.zeros(0)
        return BurstSchedule(z, z.copy(), np.zeros(0, np.int64), z.copy())
    rng = np.random.default_rng([PERTURB_STREAM, seed])
    starts, ends, kinds, values = [], [], [], []
    t = config.first_burst_s
    while t < horizon_s:
        dur = rng.uniform(*config.duration_s)
        kind = int(rng.choice(len(BurstKind), p=np.asarray(config.kind_weights)))
        if kind == BurstKind.STEER:
            value = rng.uniform(*config.steer_offset) * rng.choice((-1.0, 1.0))
        elif kind == BurstKind.BRAKE:
            value = rng.uniform(*config.brake)
        else:
            value = rng.uniform(*config.throttle)
        starts.append(t)
        ends.append(t + dur)
        kinds.append(kind)
        values.append(value)
        t += dur + rng.uniform(*config.gap_s)
    return BurstSchedule(
        np.asarray(starts), np.asarray(ends), np.asarray(kinds, np.int64), np.asarray(values)
    )


def perturbed(control: VehicleControl, kind: int, value: float) -> VehicleControl:
    """The control with one burst applied (see the module docstring)."""
    c = control
    if kind == BurstKind.STEER:
        return VehicleControl(c.throttle, c.steer + value, c.brake, c.hand_brake, c.reverse,
                              c.manual_gear_shift, c.gear)  # fmt: skip
    if kind == BurstKind.BRAKE:
        return VehicleControl(0.0, c.steer, max(c.brake, value), c.hand_brake, c.reverse,
                              c.manual_gear_shift, c.gear)  # fmt: skip
    if c.brake > 0.0:  # a throttle burst never overrides the expert's braking
        return c
    return VehicleControl(max(c.throttle, value), c.steer, 0.0, c.hand_brake, c.reverse,
                          c.manual_gear_shift, c.gear)  # fmt: skip


class PerturbationHook:
    """World hook (:class:`harness.runner.episode.WorldHook`) applying a schedule: the control
    of the tick starting at drive time t (ticks since the reset x SIM_DT_S) gets the burst
    active at t."""

    def __init__(self, schedule: BurstSchedule) -> None:
        self.schedule = schedule
        self.ticks = 0
        self.applied = 0  # ticks whose control a burst changed

    def setup(self) -> None:
        self.ticks = 0

    def perturb(self, control: VehicleControl) -> VehicleControl:
        j = self.schedule.active(self.ticks * SIM_DT_S)
        if j < 0:
            return control
        self.applied += 1
        return perturbed(control, int(self.schedule.kind[j]), float(self.schedule.value[j]))

    def tick(self, state: WorldState) -> None:
        self.ticks += 1
