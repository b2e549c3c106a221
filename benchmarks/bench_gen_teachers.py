"""Wall time of `harness gen-teachers` on a town and its route file (the issue's target: Town05
with the 9 Bench2Drive Town05 routes in under 10 minutes), printed as one JSON line.

    python benchmarks/bench_gen_teachers.py --town Town05 \\
        --routes ../shared/data/routes/bench2drive/bench2drive220.xml --workers 2 --out /tmp/t05
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--town", default="Town05")
    p.add_argument("--routes", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--every", type=float, default=0.5)
    p.add_argument("--vocab-size", type=int, default=1024, help="with --vocabulary drives")
    p.add_argument("--vocabulary", default="carla-8192-v1", help="registered id or 'drives'")
    p.add_argument("--max-scenes", type=int, default=None)
    p.add_argument("--agent", default="expert")
    a = p.parse_args()
    cfg = GenerateConfig(
        town=a.town, out=a.out, routes_file=a.routes, every_s=a.every, max_scenes=a.max_scenes,
        workers=a.workers, vocabulary_size=a.vocab_size, agent=a.agent,
        vocabulary_id=None if a.vocabulary == "drives" else a.vocabulary,
        selection=SelectionConfig(k=a.k), command_line=("bench_gen_teachers",),
    )  # fmt: skip
    t0 = time.perf_counter()
    summary = generate(cfg)
    print(json.dumps({"town": a.town, "total_s": round(time.perf_counter() - t0, 1), **summary}))


if __name__ == "__main__":
    main()
