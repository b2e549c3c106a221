"""Micro-benchmark: ticks/s of TrafficModel.step (50 vehicles, Town05, one ego obstacle box) and of
LightSchedule.states_at. Prints one JSON line. Needs the shared maps ($HARNESS_MAPS or
../shared/data/maps). Usage: python benchmarks/bench_traffic.py [--vehicles 50] [--ticks 2000]"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from harness.maps import load_town
from harness.sim.embedded.lights import LightSchedule
from harness.sim.embedded.traffic import TrafficModel, TrafficParams
from harness.world.timing import SIM_DT_S

SHARED_MAPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "maps"
WARMUP_TICKS = 200  # [-] ticks run before timing (let traffic reach a steady state)
BLOCKS = 5  # [-] timed blocks; the best block is reported as well (the machine may be shared)


def _small_op_us() -> float:
    """Cost [us] of one small numpy op here: a yardstick to compare machines / load."""
    a = np.ones((50, 8))
    t0 = time.perf_counter()
    for _ in range(20000):
        a + 1.0
    return 1e6 * (time.perf_counter() - t0) / 20000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--town", default="Town05")
    ap.add_argument("--vehicles", type=int, default=50)
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HARNESS_MAPS", str(SHARED_MAPS))
    town = load_town(args.town)
    lights = LightSchedule(town.signals)
    tm = TrafficModel(town, TrafficParams(), np.random.default_rng(args.seed))
    tm.spawn(args.vehicles)
    ego = np.array([[tm.x[0] + 30.0, tm.y[0], 0.0, 4.9, 2.1]])  # one obstacle, like the ego
    states = [lights.states_at(k * SIM_DT_S)[0] for k in range(WARMUP_TICKS + args.ticks)]
    for k in range(WARMUP_TICKS):
        tm.step(SIM_DT_S, ego, np.zeros(1), states[k])
    block = max(args.ticks // BLOCKS, 1)
    times = []
    for b in range(BLOCKS):
        t0 = time.perf_counter()
        for k in range(WARMUP_TICKS + b * block, WARMUP_TICKS + (b + 1) * block):
            tm.step(SIM_DT_S, ego, np.zeros(1), states[k])
        times.append(time.perf_counter() - t0)
    traffic_s = sum(times)
    t0 = time.perf_counter()
    for k in range(args.ticks):
        tm.step(SIM_DT_S, None, None, states[k])
    bare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(args.ticks):
        lights.states_at(k * SIM_DT_S)
    lights_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "town": args.town,
                "vehicles": tm.n,
                "lights": lights.n_lights,
                "ticks": args.ticks,
                "traffic_step_ticks_per_s": round(block * BLOCKS / traffic_s, 1),
                "traffic_step_ms": round(1e3 * traffic_s / (block * BLOCKS), 4),
                "traffic_step_ms_best_block": round(1e3 * min(times) / block, 4),
                "traffic_step_no_obstacle_ticks_per_s": round(args.ticks / bare_s, 1),
                "lights_ticks_per_s": round(args.ticks / lights_s, 1),
                "mean_speed_mps": round(float(tm.speed.mean()), 2),
                "numpy_small_op_us": round(_small_op_us(), 3),
                "load_avg_1min": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
