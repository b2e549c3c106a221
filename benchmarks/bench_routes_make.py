"""Benchmark: `routes make-suite` cost per town: 5 routes of every Bench2Drive type (44) on one
town (placement, route assembly and the `routes check` validation of every route), against the
reference of checking the same routes again with `check_route` (the validation alone), measured
in the same run. One JSON line per town."""

from __future__ import annotations

import argparse
import json
import platform
import time

from harness.maps import load_town
from harness.maps.towns import available_towns
from harness.routes import check_route
from harness.routes.make import RULES, make_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--towns", default="Harness01,Town01,Town03,Town05")
    parser.add_argument("--per-type", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    have = {t.name for t in available_towns()}
    for name in (n for n in args.towns.split(",") if n in have):
        town = load_town(name)
        t0 = time.perf_counter()
        res = make_suite([town], list(RULES), args.per_type, args.seed)
        make_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in res.routes:
            check_route(r, town)
        check_s = time.perf_counter() - t0
        print(json.dumps({
            "bench": "routes_make_suite", "town": name, "types": len(RULES),
            "per_type": args.per_type, "routes": len(res.routes),
            "types_without_place": len(res.missing), "make_s": round(make_s, 3),
            "reference_check_only_s": round(check_s, 3),
            "make_over_check": round(make_s / max(check_s, 1e-9), 2),
            "python": platform.python_version(),
        }))  # fmt: skip


if __name__ == "__main__":
    main()
