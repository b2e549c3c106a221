"""``harness collect``: drive the collection's routes with the privileged expert (with control
perturbations), turn every drive into its training arrays and write the dataset folder
(docs/DRIVEJEPA.md, "Data").

Per route (one unit of work, in this process or a pool worker, ``harness.runner.pool``): the
drive (``teachers.drive.drive_route``, recording ``routes/route_<key>.parquet`` with its scenario
track and the expert's plans, reused when present), then ``routes/<key>.json`` (the route's
figures) and ``routes/<key>.npz`` (:func:`drivejepa.data.build.route_arrays` and the expert's
intended plans as labels, :mod:`drivejepa.data.labels`), each written atomically; a route is done
when its ``.npz`` exists with the labels, so an interrupted run resumes with the unfinished routes
(a route written before the labels existed gets them on ``--resume``: the replay only, no drive or
scoring). ``settings.json`` holds what the arrays depend on; a resume must match it.
``manifest.json`` is written last.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivejepa.camera import FRAME_PERIOD_S, CameraSetup
from drivejepa.data.build import camera_renderer, route_arrays
from drivejepa.data.labels import scene_labels
from drivejepa.data.perturb import PerturbationConfig
from drivejepa.data.routes import DEFAULT_VAL_FRACTION, CollectRoute, collect_routes
from harness.errors import ConfigError, HarnessError
from harness.fingerprint import check_settings_file
from harness.io import atomic_output, atomic_write_json
from harness.maps import load_town
from harness.maps.town import Town
from harness.runner.backends import BackendSpec, prepare_for_workers
from harness.runner.pool import InlinePool, Pool, ProcessPool, WorkerSpec
from harness.world.state import COLLISION_EVENTS
from harness.world.timing import HORIZON_S
from teachers.drive import drive_route, episode_path, resolve_driver
from teachers.episode_scenes import load_episode, route_index
from teachers.generate import code_version
from teachers.per_scene import TeacherConfig
from teachers.selection import SelectionConfig
from teachers.vocabulary import DEFAULT_VOCABULARY_ID, Vocabulary, load_registered

log = logging.getLogger(__name__)

DATA_FORMAT = "drivejepa-data"
DATA_VERSION = 1
MANIFEST_FILE = "manifest.json"
SETTINGS_FILE = "settings.json"
ROUTES_DIR = "routes"
DEFAULT_ROUTES_PER_TOWN = 3  # generated routes per town of the default recipe (~4-5k scenes)
DEFAULT_ROUTE_M = 400.0  # [m] their length
PROFILE = "navsim"  # the teachers' scoring rules
# the teacher pools' gate (EPDMS >= 0.95, the default checkpoint's data); "PDMS" is Drive-JEPA's
# rule (REFERENCE.md 1a), which gives most junction turns a teacher but drove worse (model card)
DEFAULT_TEACHER_GATE = "EPDMS"
# the gate of collections made before ``teacher_gate`` existed: their settings and manifests
# name no gate, and a settings file names it only when it differs from this
UNNAMED_TEACHER_GATE = "EPDMS"
MAX_ROUTE_ATTEMPTS = 2  # a route whose worker was lost runs once more
COMPLETED = ("completed", "arrived")  # drive ends of a finished route (teachers.drive)
AGGREGATE_SOURCE_PREFIX = "aggregate-"  # manifest source of aggregation round r: "aggregate-<r>"


@dataclass(frozen=True)
class CollectConfig:
    """One ``harness collect`` run (the CLI builds it)."""

    out: Path
    routes_file: Path | None = None
    routes_subset: str | None = None
    towns: tuple[str, ...] = ()  # towns to generate routes on (resolved names)
    routes_per_town: int = DEFAULT_ROUTES_PER_TOWN
    route_m: float = DEFAULT_ROUTE_M
    max_routes: int | None = None
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    camera: CameraSetup = field(default_factory=CameraSetup)
    workers: int = 1
    seed: int = 0
    resume: bool = False
    val_fraction: float = DEFAULT_VAL_FRACTION
    agent: str = "expert"
    vocabulary_id: str = DEFAULT_VOCABULARY_ID
    teacher_gate: str = DEFAULT_TEACHER_GATE
    command_line: tuple[str, ...] = ()

    @property
    def teacher_config(self) -> TeacherConfig:
        """The teachers' settings of every scene of the collection."""
        return teacher_config(self.seed, self.teacher_gate)


def teacher_config(seed: int, gate: str) -> TeacherConfig:
    """The teachers of a collection: the ``navsim`` profile, pools gated on ``gate``."""
    return TeacherConfig(profile=PROFILE, seed=seed, selection=SelectionConfig(gate_metric=gate))


def npz_path(out: Path, key: str) -> Path:
    """``DATA/routes/<key>.npz``: the route's arrays (its presence marks the route done)."""
    return out / ROUTES_DIR / f"{key}.npz"


def info_path(out: Path, key: str) -> Path:
    """``DATA/routes/<key>.json``: the route's figures (drive end, completion, counts)."""
    return out / ROUTES_DIR / f"{key}.json"


def recording_path(out: Path, key: str) -> Path:
    """The route's episode recording (the teachers' format, beside its arrays)."""
    return episode_path(out / ROUTES_DIR, key)


def settings_fingerprint(config: CollectConfig, vocab: Vocabulary) -> dict[str, Any]:
    """What a route's arrays depend on besides the route: a resume must match it. The teacher
    gate is named only when it is not UNNAMED_TEACHER_GATE, so collections made before the
    option resume."""
    out = {
        "format": DATA_FORMAT, "version": DATA_VERSION, "camera": config.camera.to_json(),
        "seed": config.seed, "perturbation": config.perturbation.to_json(), "agent": config.agent,
        "profile": PROFILE, "vocabulary_sha256": vocab.sha256, "val_fraction": config.val_fraction,
    }  # fmt: skip
    if config.teacher_gate != UNNAMED_TEACHER_GATE:
        out["teacher_gate"] = config.teacher_gate
    return out


def check_out(config: CollectConfig, fingerprint: dict[str, Any]) -> None:
    """A fresh folder starts; a used one needs ``resume`` and the same settings (ConfigError
    naming what differs)."""
    out = config.out
    path = out / SETTINGS_FILE
    used = path.is_file() or (out / ROUTES_DIR).is_dir() or (out / MANIFEST_FILE).is_file()
    if used and not config.resume:
        raise ConfigError(
            f"{out} already holds a collection; pass --resume to continue it or pick another --out"
        )
    if check_settings_file(path, fingerprint, "a collection made"):
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, fingerprint, indent=2)


class RouteWorker:
    """Drives and converts routes in one process: the vocabulary, the driving agent, towns and
    camera renderers are loaded once per process."""

    def __init__(self, config: CollectConfig) -> None:
        self.config = config
        self.vocab = load_registered(config.vocabulary_id)
        self.agent_cls = resolve_driver(config.agent)
        self.teacher_config = config.teacher_config
        self._towns: dict[str, Town] = {}
        self._renderers: dict[str, Any] = {}

    def town(self, name: str) -> Town:
        if name not in self._towns:
            self._towns[name] = load_town(name)
            self._renderers[name] = camera_renderer(self._towns[name], self.config.camera)
        return self._towns[name]

    def run(self, task: CollectRoute) -> dict[str, Any]:
        """Drive (unless recorded), build and write one route; its figures."""
        cfg, out = self.config, self.config.out
        town = self.town(task.town)
        rec_path = recording_path(out, task.key)
        if npz_path(out, task.key).is_file():
            return self.add_labels(task)
        t0 = time.perf_counter()
        if not rec_path.is_file():
            hooks = (cfg.perturbation.hook(task.seed),) if cfg.perturbation.enabled else ()
            drive_route(town, task.route, self.agent_cls, rec_path, task.seed,
                        BackendSpec(), extra_hooks=hooks)  # fmt: skip
        t1 = time.perf_counter()
        ep = load_episode(rec_path, town)
        arrays = route_arrays(ep, town, self.vocab, cfg.camera, self.teacher_config,
                              self._renderers[task.town])  # fmt: skip
        rec = ep.recording
        drive_s = float(rec.time_s[-1] - rec.time_s[0])
        bursts = cfg.perturbation.schedule(task.seed).until(drive_s)
        t_scene = rec.time_s[arrays["recording_row"]] - rec.time_s[0]
        arrays.update(perturb_start_s=bursts.start_s, perturb_end_s=bursts.end_s,
                      perturb_kind=bursts.kind, perturb_value=bursts.value,
                      future_perturbed=bursts.overlaps(t_scene, t_scene + HORIZON_S))  # fmt: skip
        t2 = time.perf_counter()
        arrays["expert_plan"], arrays["expert_emergency"] = scene_labels(
            ep, town, arrays["recording_row"]
        )
        a = rec.actors
        last = np.array([a.x[-1, 0], a.y[-1, 0], a.yaw[-1, 0]])
        planned = ep.planned
        info = {
            **task.to_json(),
            "ended": str(rec.meta.get("ended", "")),
            "driver": str(rec.meta.get("driver", "")),
            "completion": round(float(planned.s_m[route_index(planned, last)] / planned.s_m[-1]), 4),
            "collisions": sum(1 for e in rec.events if e.kind in COLLISION_EVENTS),
            "drive_time_s": round(drive_s, 2),
            "bursts": len(bursts.start_s),
            "scenes_future_perturbed": int(arrays["future_perturbed"].sum()),
            "scenes": len(arrays["status"]),
            "frames": len(arrays["frames"]),
            "scenes_without_teacher": int(np.count_nonzero(arrays["teacher_count"] == 0)),
            "teachers_per_scene": round(float(arrays["teacher_count"].mean()), 2)
            if len(arrays["status"]) else 0.0,
            "drive_s": round(t1 - t0, 2),
            "build_s": round(t2 - t1, 2),
            "label_s": round(time.perf_counter() - t2, 2),
        }  # fmt: skip
        atomic_write_json(info_path(out, task.key), info, indent=2)
        write_arrays(npz_path(out, task.key), arrays)
        return info

    def add_labels(self, task: CollectRoute) -> dict[str, Any]:
        """A finished route written before the labels: its arrays gain ``expert_plan`` and
        ``expert_emergency`` (the replay of its recording; nothing else changes)."""
        out = self.config.out
        t0 = time.perf_counter()
        with np.load(npz_path(out, task.key)) as z:
            arrays = {k: z[k] for k in z.files}
        town = self.town(task.town)
        ep = load_episode(recording_path(out, task.key), town)
        arrays["expert_plan"], arrays["expert_emergency"] = scene_labels(
            ep, town, arrays["recording_row"]
        )
        info = {**read_info(out, task), "label_s": round(time.perf_counter() - t0, 2)}
        atomic_write_json(info_path(out, task.key), info, indent=2)
        write_arrays(npz_path(out, task.key), arrays)
        return info


def has_labels(path: Path) -> bool:
    """Whether the route arrays at ``path`` hold the expert's plans (``expert_plan``)."""
    with np.load(path) as z:
        return "expert_plan" in z.files


def write_arrays(path: Path, arrays: dict[str, Any]) -> None:
    """One compressed ``.npz`` written atomically (a reader never sees a half file)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def route_pool(config: CollectConfig, todo: int) -> Pool:
    """``workers`` forked processes (kernels compiled first, in this process), else this one."""
    spec = WorkerSpec(RouteWorker, (config,))
    if config.workers > 1 and todo > 1:
        prepare_for_workers(BackendSpec())
        return ProcessPool(spec, min(config.workers, todo))
    return InlinePool(spec)


def run_routes(
    pool: Pool, todo: list[CollectRoute], on_route: Callable[[CollectRoute, dict[str, Any]], None]
) -> None:
    """Run every route of ``todo`` on ``pool`` (closed afterwards); a route whose worker is lost
    runs again once, then the run stops (resumable)."""
    queue = list(todo)
    running = 0
    attempts = {t.key: 0 for t in todo}
    try:
        while queue or running:
            while queue and running < pool.capacity:
                task = queue.pop(0)
                attempts[task.key] += 1
                pool.submit(task.key, task)
                running += 1
            for done in pool.wait(1.0):
                running -= 1
                if done.lost:
                    if attempts[done.item.key] >= MAX_ROUTE_ATTEMPTS:
                        raise HarnessError(
                            f"route {done.item.key} lost its worker twice; run the same "
                            "command with --resume to continue from the finished routes"
                        )
                    queue.insert(0, done.item)
                    continue
                on_route(done.item, done.value)
    finally:
        pool.close()


def read_info(out: Path, route: CollectRoute) -> dict[str, Any]:
    """A finished route's figures (its ``.json``; rebuilt from the arrays when missing)."""
    p = info_path(out, route.key)
    if p.is_file():
        info: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
        return info
    with np.load(npz_path(out, route.key)) as z:
        return {**route.to_json(), "scenes": int(z["status"].shape[0]),
                "frames": int(z["time_s"].shape[0])}  # fmt: skip


def kept_entries(out: Path) -> list[dict[str, Any]]:
    """Routes another command added to the folder's manifest (``harness train aggregate``'s
    ``aggregate-<round>`` sources), kept when a resumed collection rewrites it."""
    path = out / MANIFEST_FILE
    if not path.is_file():
        return []
    routes = json.loads(path.read_text(encoding="utf-8")).get("routes", [])
    return [r for r in routes if str(r.get("source", "")).startswith(AGGREGATE_SOURCE_PREFIX)]


def collect(
    config: CollectConfig, progress: Callable[[int, int, int], None] | None = None
) -> dict[str, Any]:
    """Run the collection; returns the manifest (also written to ``DATA/manifest.json``).
    ``progress(routes_done, routes_total, scenes_done)`` is called once the inputs are checked
    and as routes finish."""
    t_start = time.perf_counter()
    out = config.out
    routes, excluded = collect_routes(
        routes_file=config.routes_file, subset=config.routes_subset, towns=list(config.towns),
        per_town=config.routes_per_town, length_m=config.route_m, max_routes=config.max_routes,
        seed=config.seed, val_fraction=config.val_fraction,
    )  # fmt: skip
    vocab = load_registered(config.vocabulary_id)
    check_out(config, settings_fingerprint(config, vocab))
    infos: dict[str, dict[str, Any]] = {
        r.key: read_info(out, r)
        for r in routes
        if npz_path(out, r.key).is_file() and has_labels(npz_path(out, r.key))
    }
    todo = [r for r in routes if r.key not in infos]
    scenes = sum(int(i["scenes"]) for i in infos.values())
    if progress:
        progress(len(infos), len(routes), scenes)

    def on_route(task: CollectRoute, info: dict[str, Any]) -> None:
        nonlocal scenes
        infos[task.key] = info
        scenes += int(info["scenes"])
        if progress:
            progress(len(infos), len(routes), scenes)

    t_work = time.perf_counter()
    if todo:
        run_routes(route_pool(config, len(todo)), todo, on_route)
    work_s = time.perf_counter() - t_work
    made = [infos[r.key] for r in todo]
    entries = [
        {**infos[r.key], "id": r.key, "split": r.split,
         "file": f"{ROUTES_DIR}/{npz_path(out, r.key).name}",
         "recording": f"{ROUTES_DIR}/{recording_path(out, r.key).name}"}
        for r in routes
    ]  # fmt: skip
    entries += kept_entries(out)
    total_scenes = sum(int(e["scenes"]) for e in entries)
    summary = {
        "routes": len(entries),
        "scenes": total_scenes,
        "frames": sum(int(e["frames"]) for e in entries),
        "scenes_by_split": {s: sum(int(e["scenes"]) for e in entries if e["split"] == s)
                            for s in ("train", "val")},
        "routes_by_split": {s: sum(1 for e in entries if e["split"] == s)
                            for s in ("train", "val")},
        "routes_completed": sum(1 for e in entries if e.get("ended") in COMPLETED),
        "mean_completion": round(float(np.mean([e.get("completion", 0.0) for e in entries])), 4),
        "collisions": sum(int(e.get("collisions", 0)) for e in entries),
        "scenes_without_teacher": sum(int(e.get("scenes_without_teacher", 0)) for e in entries),
        "bytes": sum(p.stat().st_size for p in (out / ROUTES_DIR).iterdir() if p.is_file()),
        "routes_made": len(made),
        "scenes_made": sum(int(i["scenes"]) for i in made),
        "work_s": round(work_s, 2),
        "wall_s": round(time.perf_counter() - t_start, 2),
        "scenes_per_s": round(sum(int(i["scenes"]) for i in made) / work_s, 3) if made else None,
    }  # fmt: skip
    manifest = {
        "format": DATA_FORMAT,
        "version": DATA_VERSION,
        "camera": config.camera.to_json(),
        "frame_period_s": FRAME_PERIOD_S,
        "vocabulary": {"id": config.vocabulary_id, "sha256": vocab.sha256, "size": vocab.size},
        "profile": PROFILE,
        "teacher_gate": config.teacher_gate,
        "seed": config.seed,
        "val_fraction": config.val_fraction,
        "agent": config.agent,
        "perturbation": config.perturbation.to_json(),
        "route_file": str(config.routes_file) if config.routes_file is not None else None,
        "routes": entries,
        "excluded_routes": excluded,
        "summary": summary,
        "code_version": code_version(),
        "command": list(config.command_line) or sys.argv,
    }
    atomic_write_json(out / MANIFEST_FILE, manifest, indent=2)
    return manifest
