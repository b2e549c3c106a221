"""Compile (or load from the cache) every numba kernel of the embedded simulator in this process
by running a few ticks of a tiny episode on the built-in town. Call it before forking a worker
pool: forked workers then inherit compiled code instead of compiling at the same time, which
can leave numba's on-disk cache index and data files out of step."""

from __future__ import annotations

import functools
import logging

import numpy as np

from harness.runner.bench import camera_spec, follower_episode
from harness.runner.drivers import FollowerDriver
from harness.runner.episode import after_ticks, run_episode
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import TrafficConfig

log = logging.getLogger(__name__)

WARMUP_TOWN = "Harness01"  # built in, so the warm-up never depends on external maps
WARMUP_TICKS = 5  # a few ticks reach every kernel of the tick
WARMUP_ROUTE_M = 150.0  # [m] route length
WARMUP_CAMERA = (32, 16)  # [px] a tiny camera reaches the rendering kernels


@functools.cache
def warm_up_kernels() -> None:
    """Run WARMUP_TICKS ticks with traffic, walkers, a camera and the route follower (once per
    process)."""
    camera = camera_spec(WARMUP_CAMERA[0], WARMUP_CAMERA[1], fov_deg=90.0)
    spec, follower = follower_episode(
        WARMUP_TOWN, WARMUP_ROUTE_M, (camera,), TrafficConfig(vehicles=4, pedestrians=2)
    )
    driver = FollowerDriver(follower, uses_sensors=True)
    end = run_episode(EmbeddedSimulator(), spec, driver, after_ticks(WARMUP_TICKS))
    state = end.state
    log.debug(
        "simulator kernels ready (ego at %s)", np.round([state.actors.x[0], state.actors.y[0]], 1)
    )
