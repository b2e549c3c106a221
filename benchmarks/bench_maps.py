"""Benchmark of the maps layer on Town05: uncached Town build and projecting 10,000 points.

Run from anywhere: `python benchmarks/bench_maps.py`. Prints one JSON line. Targets: whole Town
build (load + lanes + graph + drivable area + junctions + signals) < 2 s; projection < 50 ms.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from harness.maps.area import build_area
from harness.maps.graph import build_graph
from harness.maps.junctions import build_junctions
from harness.maps.lanes import build_lanes
from harness.maps.signals import build_signals
from harness.maps.town import Town, load_carla_map

REPO_ROOT = Path(__file__).resolve().parents[1]
TOWN05 = REPO_ROOT.parent / "shared" / "data" / "maps" / "Town05.xodr"
N_POINTS = 10_000
NEAR_ROAD_SIGMA_M = 2.0  # [m] scatter of the projected points around lane samples
REPEATS = 5  # the minimum over repeats is reported
TARGET_BUILD_S = 2.0  # [s]
TARGET_PROJECT_S = 0.050  # [s]

log = logging.getLogger("bench_maps")


def _best(fn: object, repeats: int = REPEATS) -> float:
    """Minimum wall time [s] of `fn()` over repeats."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    if not TOWN05.exists():
        log.error("%s not found: the benchmark needs ../shared/data beside the project", TOWN05)
        return 1
    text = TOWN05.read_text(encoding="utf-8")
    build_s = _best(lambda: Town.from_xodr("Town05", text, "HARNESS_MAPS", TOWN05), repeats=3)

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    cmap = load_carla_map("Town05", text, str(TOWN05))
    stages["carla_map_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lanes = build_lanes(cmap, text)
    stages["lanes_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = build_graph(cmap, lanes)
    stages["graph_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    area = build_area(cmap, lanes, text)
    stages["area_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    junctions = build_junctions(cmap, lanes, graph, area)
    stages["junctions_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_signals(cmap, lanes, graph, junctions, area)
    stages["signals_s"] = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(lanes.xy), N_POINTS)
    points = lanes.xy[pick] + rng.normal(0.0, NEAR_ROAD_SIGMA_M, (N_POINTS, 2))
    yaw = lanes.yaw_rad[pick]
    project_s = _best(lambda: lanes.project(points))
    project_yaw_s = _best(lambda: lanes.project(points, yaw))
    contains_s = _best(lambda: area.contains(points))

    result = {
        "town": "Town05",
        "lanes": lanes.n_lanes,
        "points": int(len(lanes.xy)),
        "town_build_s": round(build_s, 3),
        **{k: round(v, 3) for k, v in stages.items()},
        "project_10k_s": round(project_s, 4),
        "project_10k_with_yaw_s": round(project_yaw_s, 4),
        "contains_10k_s": round(contains_s, 4),
        "build_target_met": build_s < TARGET_BUILD_S,
        "project_target_met": project_s < TARGET_PROJECT_S,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
