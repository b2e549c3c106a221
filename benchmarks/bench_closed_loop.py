"""Benchmark: the cost of closed-loop PDMS / EPDMS scoring in ``harness eval``. Runs routes of the
Bench2Drive file (default: five of the 46 Town01-06 routes of the project's evaluation set)
with an agent (default the expert) through the route runner with the closed-loop observer, timing
the observer's per-tick collection and its end-of-route scoring, and, in the same run, each route
again without the observer (the reference wall time). One JSON line per route and one for the
total: planning steps scored, scoring and collection time, per-step cost [ms], the route's wall
time with and without closed-loop scoring, and the fraction of the wall time spent in it
(target < 10 %)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages
os.environ.setdefault("OMP_NUM_THREADS", "1")

from harness.leaderboard.loader import load_agent  # noqa: E402
from harness.routes.xml_io import read_route_file  # noqa: E402
from harness.runner.config import Mode, RunConfig  # noqa: E402
from harness.runner.episode import Tick  # noqa: E402
from harness.runner.extensions import RouteContext  # noqa: E402
from harness.runner.route_runner import RouteJob, RouteRunner, route_seed  # noqa: E402
from harness.runner.subset import parse_subset  # noqa: E402
from harness.world.state import WorldState  # noqa: E402
from teachers.closed_loop import ClosedLoopObserver  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DEFAULT_ROUTES = SHARED / "routes" / "bench2drive" / "bench2drive220.xml"
DEFAULT_SUBSET = "145,151,160,186,200"  # from the 46-route evaluation set (eval46.sh)


@dataclass
class _Clock:
    collect_s: float = 0.0
    score_s: float = 0.0
    steps: int = 0
    routes: list[dict[str, float]] = field(default_factory=list)


class _TimedObserver(ClosedLoopObserver):
    clock: _Clock

    def on_start(self, state: WorldState) -> None:
        t = time.perf_counter()
        super().on_start(state)
        self.clock.collect_s += time.perf_counter() - t

    def on_tick(self, tick: Tick) -> None:
        t = time.perf_counter()
        super().on_tick(tick)
        self.clock.collect_s += time.perf_counter() - t

    def finish(self) -> dict[str, float] | None:
        t = time.perf_counter()
        out = super().finish()
        self.clock.score_s += time.perf_counter() - t
        self.clock.steps += int(out["steps"]) if out else 0
        return out


@dataclass(frozen=True)
class _TimedScoring:
    clock: _Clock

    def __call__(self, context: RouteContext) -> ClosedLoopObserver:
        obs = _TimedObserver(context)
        obs.clock = self.clock
        return obs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routes", type=Path, default=DEFAULT_ROUTES)
    ap.add_argument("--subset", default=DEFAULT_SUBSET)
    ap.add_argument("--agent", default="expert")
    args = ap.parse_args()
    if (SHARED / "maps").exists():
        os.environ.setdefault("HARNESS_MAPS", str(SHARED / "maps"))
    routes = read_route_file(args.routes)
    agent_cls, _ = load_agent(args.agent)
    total = {"steps": 0, "score_s": 0.0, "collect_s": 0.0, "wall_s": 0.0, "wall_ref_s": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        base = RunConfig.for_mode(
            Mode.BENCH2DRIVE, agent=args.agent, routes_file=args.routes, out_dir=Path(tmp)
        )
        for i in parse_subset(args.subset, len(routes)):
            job = RouteJob(0, i, routes[i], route_seed(0, i))
            clock = _Clock()
            timed = replace(base, route_observers=(_TimedScoring(clock),))
            t = time.perf_counter()
            RouteRunner(timed, agent_cls).run(job)
            wall = time.perf_counter() - t
            t = time.perf_counter()
            RouteRunner(base, agent_cls).run(job)  # the reference: no closed-loop observer
            wall_ref = time.perf_counter() - t
            cost = clock.score_s + clock.collect_s
            row = {
                "bench": "closed_loop", "route": routes[i].id, "town": routes[i].town,
                "agent": args.agent, "steps": clock.steps, "score_s": round(clock.score_s, 3),
                "collect_s": round(clock.collect_s, 3),
                "per_step_ms": round(1e3 * cost / max(clock.steps, 1), 3),
                "wall_s": round(wall, 3), "wall_ref_s": round(wall_ref, 3),
                "fraction": round(cost / wall, 4),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            for k, v in (("steps", clock.steps), ("score_s", clock.score_s),
                         ("collect_s", clock.collect_s), ("wall_s", wall),
                         ("wall_ref_s", wall_ref)):  # fmt: skip
                total[k] += v
    cost = total["score_s"] + total["collect_s"]
    print(json.dumps({
        "bench": "closed_loop", "route": "total", "subset": args.subset, "agent": args.agent,
        "steps": int(total["steps"]), "score_s": round(total["score_s"], 3),
        "collect_s": round(total["collect_s"], 3),
        "per_step_ms": round(1e3 * cost / max(total["steps"], 1), 3),
        "wall_s": round(total["wall_s"], 3), "wall_ref_s": round(total["wall_ref_s"], 3),
        "fraction": round(cost / max(total["wall_s"], 1e-9), 4),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
