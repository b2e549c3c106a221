"""Cost of one `harness train aggregate` round against the collection it grows, on this machine.

One JSON line per configuration:
- ``reference`` (measured first, in the same process): `harness collect` of ``--routes``
  generated routes of ``--route-m`` on ``--town`` (expert drives, no perturbation): scenes and
  CPU seconds per scene (drive + build).
- ``round``: one aggregation round on that collection (``--routes-per-round`` = every train
  route, 1 epoch) from a small random checkpoint (the stand-in encoder of the planner's tests,
  since the encoder package is not on main yet; a random planner drives worse than a trained one,
  so its drives end sooner): scenes added and the CPU seconds per added scene of the drive, the
  expert's replay (labels) and the build (rendering, status, teachers), the fine-tuning epoch and
  the val evaluation, and the round's wall seconds.
The load average before and after is printed since the machine may be shared.

Usage: python benchmarks/bench_aggregate.py [--town Harness01] [--routes 3] [--route-m 200]
       [--width 256 --height 128] [--max-drive-s 40]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--town", default="Harness01")
    ap.add_argument("--routes", type=int, default=3)
    ap.add_argument("--route-m", type=float, default=200.0)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--max-drive-s", type=float, default=40.0)
    args = ap.parse_args()

    import torch

    from drivejepa import checkpoint as ckpt_mod
    from drivejepa.camera import CameraSetup
    from drivejepa.checkpoint import save_checkpoint
    from drivejepa.data.collect import CollectConfig, collect
    from drivejepa.data.perturb import PerturbationConfig
    from drivejepa.planner.model import DriveJEPAPlanner, PlannerConfig
    from drivejepa.train import aggregate as agg
    from tests.test_drivejepa_planner import TinyConfig, TinyEncoder

    torch.set_num_threads(1)
    ckpt_mod.ENCODER_BUILDERS["TinyEncoder"] = lambda cfg: TinyEncoder(TinyConfig(**cfg))
    print(json.dumps({"loadavg_before": os.getloadavg()}), flush=True)
    camera = CameraSetup(width=args.width, height=args.height)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "DATA"
        c0, w0 = _cpu_s(), time.perf_counter()
        m = collect(CollectConfig(out=data, towns=(args.town,), routes_per_town=args.routes,
                                  route_m=args.route_m, camera=camera, seed=0,
                                  perturbation=PerturbationConfig(enabled=False),
                                  command_line=("bench",)))  # fmt: skip
        cpu = _cpu_s() - c0
        s = m["summary"]
        print(json.dumps({"config": "reference", "what": "harness collect (expert drives)",
                          "town": args.town, "routes": s["routes"], "scenes": s["scenes"],
                          "scenes_by_split": s["scenes_by_split"], "cpu_s": round(cpu, 1),
                          "cpu_s_per_scene": round(cpu / max(s["scenes"], 1), 3),
                          "wall_s": round(time.perf_counter() - w0, 1)}), flush=True)  # fmt: skip

        torch.manual_seed(0)
        planner = DriveJEPAPlanner(TinyEncoder(TinyConfig(image_h=args.height, image_w=args.width)),
                                   PlannerConfig(proposals=8, refinements=2, dim=32, heads=2))
        ckpt = save_checkpoint(root / "random.pt", planner, camera, {"note": "random init"})
        stages: dict[str, float] = {}

        def timed(name: str, fn: Any) -> Any:
            def run(*a: Any, **k: Any) -> Any:
                c = _cpu_s()
                out = fn(*a, **k)
                stages[name] = stages.get(name, 0.0) + _cpu_s() - c
                return out
            return run

        agg.fine_tune = timed("fine_tune", agg.fine_tune)  # type: ignore[method-assign]
        agg.val_metrics = timed("val_eval", agg.val_metrics)  # type: ignore[method-assign]
        cfg = agg.AggregateConfig(data=data, checkpoint=ckpt, out=root / "AGG", rounds=1,
                                  routes_per_round=args.routes, max_drive_s=args.max_drive_s,
                                  command_line=("bench",))  # fmt: skip
        w0 = time.perf_counter()
        rows = agg.aggregate(cfg)
        wall = time.perf_counter() - w0
        last = rows[-1]
        infos = [json.loads((data / "routes" / f"{k}.json").read_text()) for k in last["routes"]]
        added = max(int(last["scenes_added"]), 1)
        per = {k: round(sum(float(i[k]) for i in infos) / added, 3)
               for k in ("drive_s", "label_s", "build_s")}  # fmt: skip
        print(json.dumps({
            "config": "round", "routes": len(infos), "scenes_added": last["scenes_added"],
            "drive_completion": last["drive_completion"], "ended": [i["ended"] for i in infos],
            "s_per_added_scene": per, "fine_tune_cpu_s": round(stages.get("fine_tune", 0.0), 1),
            "val_eval_cpu_s_both_rounds": round(stages.get("val_eval", 0.0), 1),
            "round_wall_s": round(wall, 1), "val": [r["val"] for r in rows],
        }), flush=True)  # fmt: skip
    print(json.dumps({"loadavg_after": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
