"""`harness sim bench`: closed-loop speed of the embedded simulator with a route-following ego,
through the episode loop every run uses."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from harness.maps import load_town
from harness.planning.route_follower import RouteFollower
from harness.routes.generate import generate_routes
from harness.routes.interpolate import plan_route
from harness.runner.drivers import FollowerDriver
from harness.runner.episode import Tick, after_ticks, run_episode
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.state import COLLISION_EVENTS, WorldState
from harness.world.timing import SIM_DT_S

BENCH_ROUTE_M = 3000.0  # [m] long enough that the ego never runs out of route


def camera_spec(width: int, height: int, fov_deg: float = 100.0) -> dict[str, Any]:
    """A front camera roughly where leaderboard agents mount one."""
    return {"type": "sensor.camera.rgb", "id": "front", "x": 1.3, "y": 0.0, "z": 2.3,
            "roll": 0.0, "pitch": 0.0, "yaw": 0.0, "width": width, "height": height, "fov": fov_deg}  # fmt: skip


def follower_episode(
    town_name: str,
    route_m: float,
    sensors: tuple[dict[str, Any], ...],
    traffic: TrafficConfig,
    seed: int = 0,
) -> tuple[EpisodeSpec, RouteFollower]:
    """An episode on a generated route of about ``route_m`` [m] and the route follower that
    drives it (the set-up of ``sim bench`` and of the kernel warm-up)."""
    town = load_town(town_name)
    route = generate_routes(town, 1, route_m, seed=seed)[0]
    planned = plan_route(town, route.keypoints, route.id)
    spec = EpisodeSpec(
        town=town_name, ego_start=planned.start_pose, route_xy=planned.xy, sensors=sensors,
        traffic=traffic, seed=seed,
    )  # fmt: skip
    return spec, RouteFollower.for_route(planned, town)


def run_bench(
    town_name: str,
    vehicles: int,
    ticks: int,
    camera: tuple[int, int] | None = None,
    pedestrians: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Run one episode and return the figures (map loading and reset are not timed). Wall-clock
    figures (ticks_per_s, ms_per_tick) and CPU-time ones (cpu_*: the process's CPU time, less
    sensitive to other load on a shared machine) are both given, with the 1-minute load average."""
    sensors = (camera_spec(*camera),) if camera else ()
    traffic = TrafficConfig(vehicles=vehicles, pedestrians=pedestrians, seed=seed)
    spec, follower = follower_episode(town_name, BENCH_ROUTE_M, sensors, traffic, seed)
    clock = _Clock()
    t_reset = time.perf_counter()
    end = run_episode(
        EmbeddedSimulator(), spec, FollowerDriver(follower, uses_sensors=bool(sensors)),
        after_ticks(ticks), observers=(clock,),
    )  # fmt: skip
    elapsed, cpu_s = time.perf_counter() - clock.t0, time.process_time() - clock.c0
    reset_s = clock.t0 - t_reset
    state = end.state
    spawned = int(np.count_nonzero(state.actors.kind[1:] == 0))
    ticks_per_s = ticks / elapsed
    return {
        "town": town_name, "ticks": ticks, "vehicles": spawned, "pedestrians": pedestrians,
        "camera": f"{camera[0]}x{camera[1]}" if camera else None,
        "ticks_per_s": round(ticks_per_s, 1), "realtime_factor": round(ticks_per_s * SIM_DT_S, 2),
        "ms_per_tick": round(1e3 * elapsed / ticks, 3), "reset_s": round(reset_s, 3),
        "cpu_ticks_per_s": round(ticks / max(cpu_s, 1e-9), 1),
        "cpu_ms_per_tick": round(1e3 * cpu_s / ticks, 3), "load_avg_1min": round(os.getloadavg()[0], 2),
        "ego_distance_m": round(float(follower._s[follower.index]), 1),
        "ego_collisions": clock.collisions,
    }  # fmt: skip


class _Clock:
    """Observer: the wall and CPU clocks when ticking starts (after the reset), and the ego's
    collision events."""

    def __init__(self) -> None:
        self.t0 = self.c0 = 0.0
        self.collisions = 0

    def on_start(self, state: WorldState) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_tick(self, tick: Tick) -> None:
        self.collisions += sum(1 for e in tick.state.events if e.kind in COLLISION_EVENTS)
