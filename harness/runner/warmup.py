"""Compile (or load from the cache) every numba kernel of the embedded simulator in this process
by running a few ticks of a tiny episode on the built-in town. Call it before forking a worker
pool: forked workers then inherit compiled code instead of compiling at the same time, which
can leave numba's on-disk cache index and data files out of step."""

from __future__ import annotations

import functools
import logging

import numpy as np

from harness.maps import load_town
from harness.planning.route_follower import RouteFollower
from harness.routes.generate import generate_routes
from harness.routes.interpolate import plan_route
from harness.runner.drivers import FollowerDriver
from harness.runner.episode import after_ticks, run_episode
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig

log = logging.getLogger(__name__)

WARMUP_TOWN = "Harness01"  # built in, so the warm-up never depends on external maps
WARMUP_TICKS = 5  # a few ticks reach every kernel of the tick


@functools.cache
def warm_up_kernels() -> None:
    """Run WARMUP_TICKS ticks with traffic, walkers, a camera and the route follower (once per
    process)."""
    town = load_town(WARMUP_TOWN)
    route = generate_routes(town, 1, 150.0, seed=0)[0]
    planned = plan_route(town, route.keypoints, route.id)
    camera = {"type": "sensor.camera.rgb", "id": "warmup", "x": 1.3, "y": 0.0, "z": 2.3, "roll": 0.0,
              "pitch": 0.0, "yaw": 0.0, "width": 32, "height": 16, "fov": 90}  # fmt: skip
    spec = EpisodeSpec(
        town=WARMUP_TOWN,
        ego_start=(float(planned.xy[0, 0]), float(planned.xy[0, 1]), float(planned.z[0]), float(planned.yaw_rad[0])),
        route_xy=planned.xy, sensors=(camera,), traffic=TrafficConfig(vehicles=4, pedestrians=2),
    )  # fmt: skip
    driver = FollowerDriver(RouteFollower.for_route(planned, town), uses_sensors=True)
    end = run_episode(EmbeddedSimulator(), spec, driver, after_ticks(WARMUP_TICKS))
    state = end.state
    log.debug(
        "simulator kernels ready (ego at %s)", np.round([state.actors.x[0], state.actors.y[0]], 1)
    )
