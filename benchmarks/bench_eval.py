"""Wall time of `harness eval` on the 46 Bench2Drive routes of Town01-06 with the expert, for
each worker count in the same run (the issue's targets: under 2 minutes with --workers 2 and a
speed-up >= 1.8x from 1 to 2 workers).

Each configuration runs as its own `python -m harness eval ... --no-resume --quiet` process
(a user's view: start-up, town loads and kernel loads included), one after another, into a fresh
folder. Per configuration one JSON line: workers, routes, wall seconds, routes per minute, CPU
seconds of the process and its workers, mean DS, the speed-up over the first configuration (the
reference, measured in the same run), whether its records equal the reference's (wall-clock
fields aside), and the load average before and after, since the machine may be shared.
Without the shared data folder (../shared/data next to the checkout, or --routes) it prints one
line saying so and exits 0.

Usage: python benchmarks/bench_eval.py [--workers 1,2] [--agent expert] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.runner.subset import BENCH2DRIVE_EVAL_46, subset_text

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ROUTES = SHARED / "routes" / "bench2drive" / "bench2drive220.xml"
MAPS = SHARED / "maps"
TOWN01_06 = subset_text(BENCH2DRIVE_EVAL_46)  # the project's 46-route eval set


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _records(path: Path) -> list[dict[str, Any]]:
    """The records without their wall-clock field."""
    recs: list[dict[str, Any]] = json.loads(path.read_text())["_checkpoint"]["records"]
    for r in recs:
        r["meta"].pop("duration_system", None)
        r.pop("save_name", None)
    return recs


def run_once(workers: int, agent: str, routes: Path, out: Path) -> dict[str, Any]:
    """One `harness eval` process; its figures."""
    env = dict(os.environ)
    env.setdefault("HARNESS_MAPS", str(MAPS))
    cmd = [
        sys.executable, "-m", "harness", "eval", "--agent", agent, "--routes", str(routes),
        "--routes-subset", TOWN01_06, "--out", str(out), "--workers", str(workers),
        "--no-resume", "--quiet",
    ]  # fmt: skip
    load0 = os.getloadavg()[0]
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"harness eval --workers {workers} failed: {res.stderr.strip()[-500:]}")
    data = json.loads((out / "results.json").read_text())
    n = len(data["_checkpoint"]["records"])
    return {
        "workers": workers,
        "routes": n,
        "wall_s": round(wall, 1),
        "routes_per_min": round(60.0 * n / wall, 1),
        "cpu_s": round(_children_cpu_s() - cpu0, 1),
        "DS": data["_checkpoint"]["global_record"]["scores_mean"]["score_composed"],
        "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--workers", default="1,2", help="worker counts, the first is the reference")
    p.add_argument("--agent", default="expert")
    p.add_argument("--routes", type=Path, default=ROUTES)
    p.add_argument("--out", type=Path, default=None, help="keep the runs here (default: temp)")
    a = p.parse_args()
    if not a.routes.is_file():
        print(json.dumps({"skipped": f"{a.routes} not found (needs ../shared/data)"}))
        return
    counts = [int(w) for w in a.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = a.out or Path(tmp)
        ref: dict[str, Any] | None = None
        ref_records: list[dict[str, Any]] = []
        for w in counts:
            out = root / f"workers{w}"
            row = run_once(w, a.agent, a.routes, out)
            records = _records(out / "results.json")
            if ref is None:
                ref, ref_records = row, records
            row["speedup"] = round(ref["wall_s"] / row["wall_s"], 2)
            row["identical_records"] = records == ref_records
            row["cpus"] = os.cpu_count()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
