"""Benchmark: batched oriented-box overlap for 4096 candidates x 40 steps x 50 agents, against a
shapely per-pair reference measured on a random subsample in the same run. Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time

import numpy as np
import shapely

from harness.boxes import box_corners, boxes_overlap

logger = logging.getLogger(__name__)

DT_S = 0.1  # [s] scoring step
CAR_L_M, CAR_W_M = 4.9016, 2.1282  # [m] MKZ box


def make_scene(
    n_cand: int, n_steps: int, n_agents: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ego candidates (C, T, 1, 5) fanning out from the origin and agents (1, T, A, 5) moving at
    constant velocity within ~60 m, a few of them in the ego's lane."""
    rng = np.random.default_rng(seed)
    t = DT_S * np.arange(1, n_steps + 1)
    speed = rng.uniform(0.0, 15.0, (n_cand, 1))
    yaw_rate = rng.uniform(-0.3, 0.3, (n_cand, 1))
    yaw = yaw_rate * t
    x = speed * np.sin(np.maximum(np.abs(yaw), 1e-9)) / np.maximum(np.abs(yaw_rate), 1e-9)
    x = np.where(np.abs(yaw_rate) > 1e-6, x, speed * t)
    y = np.sign(yaw_rate) * speed * (1.0 - np.cos(yaw)) / np.maximum(np.abs(yaw_rate), 1e-9)
    ego = np.stack(np.broadcast_arrays(x, y, yaw, CAR_L_M, CAR_W_M), axis=-1)[:, :, None, :]
    ax0 = rng.uniform(-60.0, 60.0, n_agents)
    ay0 = np.where(
        rng.random(n_agents) < 0.2,
        rng.normal(0.0, 1.0, n_agents),
        rng.uniform(-60.0, 60.0, n_agents),
    )
    ayaw = rng.uniform(-np.pi, np.pi, n_agents)
    aspeed = rng.uniform(0.0, 10.0, n_agents)
    axs = ax0 + aspeed * np.cos(ayaw) * t[:, None]
    ays = ay0 + aspeed * np.sin(ayaw) * t[:, None]
    agents = np.stack(np.broadcast_arrays(axs, ays, ayaw, CAR_L_M, CAR_W_M), axis=-1)[None]
    return ego, agents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--sample", type=int, default=20000, help="pairs checked with shapely")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    ego, agents = make_scene(args.candidates, args.steps, args.agents, args.seed)
    n_pairs = args.candidates * args.steps * args.agents
    logger.info("timing %d overlap tests, best of %d", n_pairs, args.repeats)
    boxes_overlap(ego[:8], agents)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        hits = boxes_overlap(ego, agents)
        times.append(time.perf_counter() - t0)
    ours_s = min(times)

    rng = np.random.default_rng(args.seed + 1)
    idx = np.unravel_index(rng.integers(0, n_pairs, args.sample), hits.shape)
    a = np.broadcast_to(ego, (*hits.shape, 5))[idx]
    b = np.broadcast_to(agents, (*hits.shape, 5))[idx]
    ca = box_corners(*np.moveaxis(a, -1, 0))
    cb = box_corners(*np.moveaxis(b, -1, 0))
    t0 = time.perf_counter()
    ref = np.array(
        [shapely.Polygon(p).intersects(shapely.Polygon(q)) for p, q in zip(ca, cb, strict=True)]
    )
    loop_per_pair = (time.perf_counter() - t0) / args.sample
    t0 = time.perf_counter()
    ref_vec = shapely.intersects(
        shapely.polygons(box_corners(*np.moveaxis(a, -1, 0))),
        shapely.polygons(box_corners(*np.moveaxis(b, -1, 0))),
    )
    vec_per_pair = (time.perf_counter() - t0) / args.sample
    ours_sample = hits[idx]
    near = np.linalg.norm(a[:, :2] - b[:, :2], axis=-1) < 10.0
    result = {
        "bench": "boxes_overlap",
        "shape": [args.candidates, args.steps, args.agents],
        "pairs": n_pairs,
        "ours_s": round(ours_s, 4),
        "ours_pairs_per_s": round(n_pairs / ours_s),
        "hit_fraction": float(hits.mean()),
        "shapely_loop_per_pair_us": round(loop_per_pair * 1e6, 3),
        "shapely_loop_extrapolated_s": round(loop_per_pair * n_pairs, 1),
        "speedup_vs_shapely_loop": round(loop_per_pair * n_pairs / ours_s, 1),
        "shapely_vectorised_per_pair_us": round(vec_per_pair * 1e6, 3),
        "speedup_vs_shapely_vectorised": round(vec_per_pair * n_pairs / ours_s, 1),
        "sample_pairs": args.sample,
        "sample_near_pairs": int(near.sum()),
        "sample_hits": int(ref.sum()),
        "sample_agreement": float(np.mean(ours_sample == ref)),
        "sample_vectorised_agreement": float(np.mean(ref_vec == ref)),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    sys.stdout.write(json.dumps(result) + "\n")  # output contract: one JSON line on stdout


if __name__ == "__main__":
    main()
