"""Benchmark: PDMS/EPDMS scoring of 8,192 candidate plans (128 curvatures x 64 accelerations,
40 steps) in a synthetic scene with 50 agents on a real town (Town05 when $HARNESS_MAPS or
../shared/data/maps has it, else the built-in Harness01), one thread, under each scoring profile
asked for (default: navsim). Times the scorer (rollout + rasters + all metrics, numba kernels)
end to end, plans in, score matrix out, and, in the same run, the exact shapely reference (same
profile) on a subsample of the same rolled-out states. Prints one JSON line per profile: the
throughput, the reference throughput, the ratio and the agreement with the reference (fraction
of the subsample whose sub-scores all match)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, and tests.oracles (the reference)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from harness.errors import UnknownTownError  # noqa: E402
from harness.maps import load_town  # noqa: E402
from teachers.rollout import rollout_candidates  # noqa: E402
from teachers.scene import Scene  # noqa: E402
from teachers.scoring import Metric, ScoringProfile, get_profile, score_states  # noqa: E402
from teachers.scoring.aggregate import EPDMS_GATES, SUB_METRICS, state_bounds  # noqa: E402
from teachers.scoring.rasters import SceneRasters, ScoringMap  # noqa: E402
from tests.oracles.reference import ReferenceScorer  # noqa: E402
from tests.oracles.synthetic import candidate_fan, synthetic_scene  # noqa: E402

SHARED_MAPS = ROOT.parent / "shared" / "data" / "maps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--town", default="Town05")
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--curvatures", type=int, default=128, help="curvatures of the plan fan")
    ap.add_argument("--accels", type=int, default=64, help="accelerations of the plan fan")
    ap.add_argument("--profiles", default="navsim", help="comma-separated scoring profiles")
    ap.add_argument("--reference", type=int, default=32, help="reference subsample size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if SHARED_MAPS.exists():
        os.environ.setdefault("HARNESS_MAPS", str(SHARED_MAPS))
    try:
        town = load_town(args.town)
    except UnknownTownError:
        town = load_town("Harness01")
    scene = synthetic_scene(town, n_agents=args.agents, seed=args.seed)
    plans = candidate_fan(scene, args.curvatures, args.accels)
    for name in args.profiles.split(","):
        run(args, town, scene, plans, get_profile(name.strip()))


def run(
    args: argparse.Namespace,
    town: ScoringMap,
    scene: Scene,
    plans: np.ndarray,
    profile: ScoringProfile,
) -> None:
    """Time one profile and print its JSON line."""
    n = plans.shape[0]

    best = {"total": np.inf, "rollout": np.inf, "rasters": np.inf, "metrics": np.inf}
    best_cpu = np.inf
    for _ in range(args.repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        states = rollout_candidates(scene, plans, profile=profile)
        t1 = time.perf_counter()
        rasters = SceneRasters.build(scene, town, state_bounds(states))
        t2 = time.perf_counter()
        fast = score_states(scene, town, states, rasters=rasters, profile=profile)
        t3 = time.perf_counter()
        best_cpu = min(best_cpu, time.process_time() - c0)
        for k, v in (
            ("total", t3 - t0),
            ("rollout", t1 - t0),
            ("rasters", t2 - t1),
            ("metrics", t3 - t2),
        ):
            best[k] = min(best[k], v)

    rng = np.random.default_rng(args.seed)
    sub = np.sort(rng.choice(n, size=min(args.reference, n), replace=False))
    t0 = time.perf_counter()
    ref_states = rollout_candidates(scene, plans[sub], profile=profile)
    # EP's normaliser as the fast path set it over the whole batch (NAVSIM: the max of progress
    # x gate product), so the subsample's EP is comparable
    norm = np.clip(fast.progress_m, 0.0, None)
    if profile.ep_gate_product:
        norm = norm * np.prod(fast.values[list(EPDMS_GATES)], axis=0)
    ref, _ = ReferenceScorer(scene, town, profile).score(
        ref_states, reference_progress_m=float(norm.max())
    )
    ref_s = time.perf_counter() - t0
    ref_tps = len(sub) / ref_s
    rows = list(SUB_METRICS)

    def agree(values: np.ndarray, other: np.ndarray) -> float:
        return float(np.all(np.isclose(values[rows], other[rows], atol=1e-6), axis=0).mean())

    load = os.getloadavg()[0]
    common = {
        "bench": "scoring",
        "profile": profile.name,
        "town": getattr(town, "name", "?"),
        "agents": args.agents,
        "candidates": n,
        "steps": plans.shape[1],
    }
    fast_tps = n / best["total"]
    print(
        json.dumps(
            {
                **common,
                "engine": "numba",
                "trajectories_per_s": round(fast_tps, 1),
                "trajectories_per_s_without_rollout": round(
                    n / (best["rasters"] + best["metrics"]), 1
                ),
                "seconds": {k: round(v, 4) for k, v in best.items()},
                "process_seconds_total": round(best_cpu, 4),
                # one thread: CPU seconds are the time on one core, whatever the machine's load
                "trajectories_per_cpu_s": round(n / best_cpu, 1),
                "reference_trajectories_per_s": round(ref_tps, 2),
                "reference_subsample": len(sub),
                "ratio": round(fast_tps / ref_tps, 1),
                "agreement": agree(fast.values[:, sub], ref.values),
                "agreement_per_metric": {
                    m.name: float(np.isclose(fast.values[m][sub], ref.values[m]).mean())
                    for m in SUB_METRICS
                },
                "mean_pdms": float(fast[Metric.PDMS].mean()),
                "mean_epdms": float(fast[Metric.EPDMS].mean()),
                "load_1min": round(load, 2),
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
