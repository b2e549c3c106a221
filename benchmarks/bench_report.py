"""Benchmark: how long report.html takes for an eval folder, next to what the evaluation itself
took (the records' duration_system, the reference) and the town loading the report shares with
the eval process. Prints one JSON line.

    python benchmarks/bench_report.py [EVAL_DIR] [--out FILE.html]

Without EVAL_DIR it reports on results/demo/eval (`make demo`), or prints a "skipped" line when
that folder does not exist (so `make bench` runs it unattended).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from harness.maps import load_town
from harness.report.inputs import load_run
from harness.report.page import write_report

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "results" / "demo" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", type=Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--out", type=Path, default=None, help="report file (default: a temp file)")
    args = parser.parse_args()
    if not (args.eval_dir / "results.json").is_file():
        print(json.dumps({"bench": "report", "skipped": f"no eval folder at {args.eval_dir}"}))
        return
    run = load_run(args.eval_dir)
    towns = sorted(
        {str(r.record.get("town_name")) for r in run.routes if r.record.get("town_name")}
    )
    t0 = time.perf_counter()
    for name in towns:
        load_town(name)
    towns_s = time.perf_counter() - t0
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_report_")) / "report.html"
    t0 = time.perf_counter()
    written = write_report(args.eval_dir, out)
    report_s = time.perf_counter() - t0
    eval_s = sum(float(r["meta"].get("duration_system", 0.0)) for r in run.records)
    print(json.dumps({
        "bench": "report", "routes": len(run.routes), "towns": len(towns),
        "report_s": round(report_s, 2), "per_route_s": round(report_s / max(1, len(run.routes)), 3),
        "report_bytes": written.stat().st_size, "towns_load_s": round(towns_s, 2),
        "reference_eval_duration_system_s": round(eval_s, 1),
        "report_over_eval": round(report_s / eval_s, 3) if eval_s else None,
        "machine": platform.machine(), "python": platform.python_version(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
