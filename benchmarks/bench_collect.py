"""Throughput and disk of `harness collect` (the Drive-JEPA training data) on this machine.

One JSON line per configuration:
- ``collect``: a `python -m harness collect` run (a user's view: start-up, town loads, kernel
  loads included) of ``--routes-per-town`` generated routes of ``--route-m`` on each town, with
  ``--workers``, into a fresh folder: routes, scenes, frames, wall seconds, scenes/s, CPU seconds (per scene: the figure a
  loaded machine does not change much), the drive /
  build seconds summed over routes, MB on disk and MB per 1000 scenes (all, and the arrays alone
  without the kept recordings), routes completed and collisions;
- ``reference`` (measured in the same run, after it, in this process): the teachers' own per-scene
  step (``teachers.per_scene.teachers_for_scene``, the shipped vocabulary, ``navsim``) on scenes of
  the first collected route, in scenes/s of one process: what the collection costs beyond it is
  the drive, the rendering and the status.
The load average before and after is printed since the machine may be shared.

Usage: python benchmarks/bench_collect.py [--town Town05 --town Harness01] [--routes-per-town 2]
       [--route-m 300] [--workers 2] [--width 256 --height 128] [--out DIR]
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

REPO = Path(__file__).resolve().parents[1]
MAPS = REPO.parent / "shared" / "data" / "maps"
REFERENCE_SCENES = 12  # scenes scored for the reference line


def _children_cpu_s() -> float:
    """CPU seconds of finished child processes (the collect run and its workers)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _collect(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("HARNESS_MAPS", str(MAPS))
    cmd = [sys.executable, "-m", "harness", "collect", "--out", str(out),
           "--routes-per-town", str(args.routes_per_town), "--route-m", str(args.route_m),
           "--workers", str(args.workers), "--width", str(args.width), "--height", str(args.height),
           *[a for t in args.town for a in ("--town", t)]]  # fmt: skip
    load0 = os.getloadavg()[0]
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    cpu = _children_cpu_s() - cpu0
    if res.returncode != 0:
        raise SystemExit(f"harness collect failed: {res.stderr.strip()[-500:]}")
    m = json.loads((out / "manifest.json").read_text())
    s = m["summary"]
    arrays = sum(p.stat().st_size for p in (out / "routes").glob("*.npz"))
    scenes = max(int(s["scenes"]), 1)
    return {
        "config": "collect", "towns": args.town, "routes": s["routes"], "scenes": s["scenes"],
        "frames": s["frames"], "workers": args.workers, "image": [args.width, args.height],
        "wall_s": round(wall, 1), "scenes_per_s": round(s["scenes"] / wall, 2),
        "cpu_s": round(cpu, 1), "cpu_s_per_scene": round(cpu / scenes, 3),
        "drive_s": round(sum(r["drive_s"] for r in m["routes"]), 1),
        "build_s": round(sum(r["build_s"] for r in m["routes"]), 1),
        "mb": round(s["bytes"] / 1e6, 2), "mb_per_1000_scenes": round(s["bytes"] / 1e3 / scenes, 2),
        "arrays_mb_per_1000_scenes": round(arrays / 1e3 / scenes, 2),
        "routes_completed": s["routes_completed"], "collisions": s["collisions"],
        "teachers_per_scene": round(sum(r["teachers_per_scene"] * r["scenes"]
                                        for r in m["routes"]) / scenes, 1),
        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def _reference(out: Path) -> dict[str, Any]:
    """Scenes/s of the teachers' per-scene step alone, one process, on the first route."""
    sys.path.insert(0, str(REPO))  # this checkout's packages, as the collect run used
    from drivejepa.data.collect import recording_path
    from harness.maps import load_town
    from teachers.episode_scenes import extract_scene, load_episode, scene_rows
    from teachers.per_scene import TeacherConfig, teachers_for_scene
    from teachers.vocabulary import load_registered

    m = json.loads((out / "manifest.json").read_text())
    route = m["routes"][0]
    town = load_town(route["town"])
    ep = load_episode(recording_path(out, route["id"]), town)
    rows = scene_rows(ep, 0.5)[:REFERENCE_SCENES]
    vocab = load_registered(m["vocabulary"]["id"])
    cfg = TeacherConfig(profile="navsim", seed=m["seed"])
    teachers_for_scene(extract_scene(ep, town, int(rows[0])), town, vocab, cfg)  # warm
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    for r in rows:
        teachers_for_scene(extract_scene(ep, town, int(r)), town, vocab, cfg)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "config": "reference", "what": "teachers_for_scene, one process", "town": route["town"],
        "scenes": len(rows), "seconds": round(dt, 2), "scenes_per_s": round(len(rows) / dt, 2),
        "cpu_s_per_scene": round(cpu / len(rows), 3),
        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--town", action="append", default=None)
    ap.add_argument("--routes-per-town", type=int, default=2)
    ap.add_argument("--route-m", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.town is None:
        args.town = (["Town05"] if (MAPS / "Town05.xodr").is_file() else []) + ["Harness01"]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "DATA"
        print(json.dumps(_collect(args, out)), flush=True)
        print(json.dumps(_reference(out)), flush=True)


if __name__ == "__main__":
    main()
