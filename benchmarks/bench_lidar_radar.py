"""Closed-loop speed of the embedded simulator with the leaderboard's lidar and radar.

One JSON line per configuration: a route-following ego on Town05 with 30 background vehicles,
reading no sensors (the reference, measured in the same run), the leaderboard lidar (64 channels,
600,000 points/s, 85 m), two radars (1500 points/s, 100 m), and both. Wall and process-CPU ticks
per second, the real-time factor and the mean points per lidar frame. Run:
``python benchmarks/bench_lidar_radar.py`` (needs Town05.xodr on $HARNESS_MAPS)."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from harness.runner.bench import BENCH_ROUTE_M, follower_episode
from harness.runner.drivers import DriverOutput, FollowerDriver, SensorData
from harness.runner.episode import Tick, after_ticks, run_episode
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import TrafficConfig
from harness.world.state import WorldState
from harness.world.timing import SIM_DT_S

LIDAR = {"type": "sensor.lidar.ray_cast", "id": "LIDAR", "x": 0.7, "y": -0.4, "z": 1.6,
         "roll": 0.0, "pitch": 0.0, "yaw": -45.0}  # fmt: skip  (the leaderboard dummy agent's mount)
RADARS = tuple(
    {"type": "sensor.other.radar", "id": f"RADAR{i}", "x": 0.7, "y": y, "z": 1.6, "roll": 0.0,
     "pitch": 0.0, "yaw": yaw, "horizontal_fov": 30.0, "vertical_fov": 30.0}  # fmt: skip
    for i, (y, yaw) in enumerate(((-0.4, -45.0), (0.4, 45.0)))
)
CONFIGS: dict[str, tuple[dict[str, Any], ...]] = {
    "no_sensors": (),
    "lidar": (LIDAR,),
    "radar_x2": RADARS,
    "lidar_radar_x2": (LIDAR, *RADARS),
}


class _Points:
    """Observer: wall / CPU clocks from the first tick on."""

    def __init__(self) -> None:
        self.t0 = self.c0 = 0.0

    def on_start(self, state: WorldState) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_tick(self, tick: Tick) -> None:
        pass


class _CountingDriver(FollowerDriver):
    """The follower, counting the lidar points it was handed."""

    points: list[int]

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        if input_data and "LIDAR" in input_data:
            self.points.append(len(input_data["LIDAR"][1]))
        return super().step(state, input_data)


def run(name: str, ticks: int, vehicles: int) -> dict[str, Any]:
    sensors = CONFIGS[name]
    spec, follower = follower_episode(
        "Town05", BENCH_ROUTE_M, sensors, TrafficConfig(vehicles=vehicles, pedestrians=0)
    )
    driver = _CountingDriver(follower, uses_sensors=bool(sensors))
    driver.points = []
    clock = _Points()
    run_episode(EmbeddedSimulator(), spec, driver, after_ticks(ticks), observers=(clock,))
    wall, cpu = time.perf_counter() - clock.t0, time.process_time() - clock.c0
    return {
        "config": name, "town": "Town05", "vehicles": vehicles, "ticks": ticks,
        "ticks_per_s": round(ticks / wall, 1), "realtime_factor": round(ticks / wall * SIM_DT_S, 1),
        "cpu_ticks_per_s": round(ticks / max(cpu, 1e-9), 1),
        "lidar_points_per_frame": round(float(np.mean(driver.points)), 1) if driver.points else None,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--vehicles", type=int, default=30)
    args = parser.parse_args()
    for name in CONFIGS:
        run(name, 20, args.vehicles)  # warm-up: numba compiles / loads its kernels here
        print(json.dumps(run(name, args.ticks, args.vehicles)), flush=True)


if __name__ == "__main__":
    main()
