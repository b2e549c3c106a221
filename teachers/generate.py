"""`harness gen-teachers`: drive a town's routes with the expert, cut scenes from the recordings,
score every candidate (vocabulary, lattice, expert) with PDMS / EPDMS, keep K diverse teachers per
scene and write the dataset (see ``teachers.dataset`` and docs/TEACHERS.md).

Work is split into parts (up to SCENES_PER_PART scenes of one route); each part is written with a
completion marker, so an interrupted run resumes with the unfinished parts, and the final tables
are merged from the parts. ``workers > 1`` scores parts in a process pool (fork; the town and the
vocabulary are loaded once per worker), ``ray_address`` on Ray actors (``harness.runner.pool``,
the pools ``harness eval`` uses; a worker lost under a part costs only that part, which runs
again). Drives stay on this machine (``workers`` processes). A resume must have the settings of
the run that started the folder (``settings.json``, see :func:`settings_fingerprint`); other
settings are refused.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import harness
from harness.errors import ConfigError, HarnessError
from harness.fingerprint import check_settings_file, file_sha256
from harness.io import atomic_write_json
from harness.maps import load_town
from harness.maps.town import Town
from harness.routes.generate import generate_routes
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.backends import BackendSpec, make_backend
from harness.runner.pool import InlinePool, Pool, ProcessPool, WorkerSpec
from harness.runner.town_routes import GENERATED_ROUTE_M, GENERATED_ROUTES
from harness.world.state import ActorKind, LightState
from harness.world.timing import HORIZON_S, HORIZON_STEPS, POSE_DT_S, TICKS_PER_POSE
from teachers.candidates import CandidateConfig, Source
from teachers.dataset import (
    SUB_SCORES,
    finished_parts,
    merge_parts,
    table_from_columns,
    write_part,
)
from teachers.drive import drive_routes
from teachers.episode_scenes import (
    FUTURE_TICKS,
    Episode,
    SceneRecord,
    extract_scene,
    light_indices,
    load_episode,
    scene_rows,
)
from teachers.modes import LaneMode, SpeedMode, mode_parts
from teachers.per_scene import TeacherConfig, teachers_for_scene
from teachers.scoring import DEFAULT_PROFILE, Metric
from teachers.selection import SelectionConfig
from teachers.vocabulary import (
    DEFAULT_VOCABULARY_ID,
    Vocabulary,
    build_vocabulary,
    futures_to_local,
    load_registered,
    load_vocabulary,
    save_vocabulary,
)

log = logging.getLogger(__name__)

SCENES_PER_PART = 16  # scenes per resumable unit of work
SETTINGS_FILE = "settings.json"  # OUT/settings.json: the fingerprint a resume must match
EARLIER_OUTPUT = ("parts", "manifest.json")  # scored output of an earlier run
REUSABLE_INPUTS = ("episodes", "vocabulary.npz")  # may be placed in a new folder to reuse them
DEFAULT_VOCABULARY_SIZE = 1024  # k-means centres (Drive-JEPA uses 8,192)
DEFAULT_EVERY_S = 0.5  # scene spacing [s]
KIND_NAMES = {ActorKind.VEHICLE: "vehicle", ActorKind.PEDESTRIAN: "pedestrian",
              ActorKind.BICYCLE: "bicycle", ActorKind.STATIC: "static",
              ActorKind.EMERGENCY: "vehicle"}  # fmt: skip


@dataclass(frozen=True)
class GenerateConfig:
    """Everything one gen-teachers run needs (the CLI builds it)."""

    town: str
    out: Path
    routes_file: Path | None = None
    every_s: float = DEFAULT_EVERY_S
    max_scenes: int | None = None
    max_routes: int | None = None
    workers: int = 1
    ray_address: str | None = None  # score parts on Ray ('auto': a local cluster)
    vocabulary_size: int = DEFAULT_VOCABULARY_SIZE  # k-means of the drives (vocabulary_id None)
    vocabulary_file: Path | None = None
    vocabulary_id: str | None = DEFAULT_VOCABULARY_ID  # a registered vocabulary (the default)
    agent: str = "expert"
    generated_route_m: float = GENERATED_ROUTE_M
    seed: int = 0
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    reactive: bool = False  # re-simulate teachers with reactive traffic (teachers.reactive)
    backend: BackendSpec = field(default_factory=BackendSpec)  # simulator of drives and re-checks
    scoring_profile: str = DEFAULT_PROFILE.name  # teachers.scoring.profile.PROFILES key
    command_line: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartTask:
    """One unit of work: scenes at ``rows`` of the episode at ``episode``."""

    name: str
    episode: Path
    rows: tuple[int, ...]


def select_routes(town: Town, config: GenerateConfig) -> list[RouteConfig]:
    """The route file's routes on this town, or routes generated on it."""
    if config.routes_file is None:
        n = GENERATED_ROUTES if config.max_routes is None else config.max_routes
        return generate_routes(town, n, config.generated_route_m, seed=config.seed)
    routes = [r for r in read_route_file(config.routes_file) if r.town == town.name]
    if not routes:
        raise ConfigError(
            f"{config.routes_file} has no route on {town.name}; pick a file with {town.name} "
            "routes or leave out --routes to generate some"
        )
    routes = routes[: config.max_routes]
    for r in routes:  # an unplannable route is bad input, found before any driving
        plan_route(town, r.keypoints, r.id)
    return routes


def _path_text(path: Path | None) -> str | None:
    return str(path.expanduser().resolve()) if path is not None else None


def settings_fingerprint(config: GenerateConfig, town: Town) -> dict[str, Any]:
    """Every setting that changes the dataset (not ``workers``): town and map content, routes
    (file content or generation), driving agent, seed, scene spacing and budget, vocabulary,
    candidates, selection and the reactive check. A resume must match it."""
    return {
        "town": town.name,
        "map_sha256": town.sha256,
        "routes_file": _path_text(config.routes_file),
        "routes_sha256": file_sha256(config.routes_file),
        "max_routes": config.max_routes,
        "generated_route_m": config.generated_route_m,
        "agent": config.agent,
        "seed": config.seed,
        "every_s": config.every_s,
        "max_scenes": config.max_scenes,
        "vocabulary_size": config.vocabulary_size,
        "vocabulary_file": _path_text(config.vocabulary_file),
        "vocabulary_sha256": file_sha256(config.vocabulary_file),
        "vocabulary_id": config.vocabulary_id,
        "selection": asdict(config.selection),
        "candidates": asdict(config.candidates),
        "reactive": config.reactive,
        "backend": config.backend.name,
        "scoring_profile": config.scoring_profile,
    }


def check_resume(out: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse (ConfigError naming what differs) to continue a run made with other settings, or
    scored output without its settings file; record the fingerprint of a fresh run (episodes
    or a vocabulary placed in a new folder are reused, with a warning)."""
    path = out / SETTINGS_FILE
    if check_settings_file(path, fingerprint, "a gen-teachers run"):
        return
    earlier = [name for name in EARLIER_OUTPUT if (out / name).exists()]
    if earlier:
        raise ConfigError(
            f"{out} holds an earlier run ({', '.join(earlier)}) without {SETTINGS_FILE}, so its "
            "settings cannot be checked; pick another --out or remove the folder"
        )
    reused = [name for name in REUSABLE_INPUTS if (out / name).exists()]
    if reused:
        log.warning(
            "%s: reusing %s placed there without %s; they must come from the same town, "
            "routes, agent and seed", out, " and ".join(reused), SETTINGS_FILE,
        )  # fmt: skip
    atomic_write_json(path, fingerprint, indent=2)


def expert_futures(episodes: list[Episode]) -> NDArray[np.float64]:
    """The expert's 4 s futures (N, 40, 3) at every 0.1 s of every episode, in its own frame."""
    out = []
    for ep in episodes:
        a = ep.recording.actors
        rows = np.arange(0, len(ep.recording) - FUTURE_TICKS, TICKS_PER_POSE)
        if rows.size == 0:
            continue
        fut = rows[:, None] + TICKS_PER_POSE * np.arange(1, HORIZON_STEPS + 1)[None]
        world = np.stack([a.x[fut, 0], a.y[fut, 0], a.yaw[fut, 0]], axis=-1)
        origin = np.stack([a.x[rows, 0], a.y[rows, 0], a.yaw[rows, 0]], axis=-1)
        out.append(futures_to_local(world, origin))
    return np.concatenate(out) if out else np.zeros((0, 40, 3))


def plan_parts(episodes: list[Episode], every_s: float, max_scenes: int | None) -> list[PartTask]:
    """Scene rows per episode split into parts; with ``max_scenes`` the budget is shared
    round-robin over routes and each route's share is spread evenly along its drive."""
    rows = [scene_rows(ep, every_s) for ep in episodes]
    take = [0] * len(rows)
    budget = sum(len(r) for r in rows) if max_scenes is None else max_scenes
    while budget > 0 and any(t < len(r) for t, r in zip(take, rows, strict=True)):
        for i, r in enumerate(rows):
            if budget > 0 and take[i] < len(r):
                take[i] += 1
                budget -= 1
    tasks = []
    for ep, r, n in zip(episodes, rows, take, strict=True):
        picked = (
            r[np.unique(np.linspace(0, len(r) - 1, n).round().astype(np.int64))] if n else r[:0]
        )
        for c, lo in enumerate(range(0, len(picked), SCENES_PER_PART)):
            chunk = tuple(int(v) for v in picked[lo : lo + SCENES_PER_PART])
            tasks.append(PartTask(f"{ep.path.stem}-{c:03d}", ep.path, chunk))
    return tasks


def scene_columns(
    rec: SceneRecord, town: Town, vocab: Vocabulary | None, config: GenerateConfig
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, int]]:
    """Score one scene (:func:`teachers.per_scene.teachers_for_scene`); its rows for each table (as
    column lists) and its counts."""
    scene = rec.scene
    result = teachers_for_scene(
        rec,
        town,
        vocab,
        TeacherConfig(
            config.candidates, config.selection, config.scoring_profile, seed=config.seed
        ),  # fmt: skip
    )
    cands, scores, poses, sel = result.candidates, result.scores, result.poses, result.selection
    reactive: list[bool | None] = [None] * len(sel.index)  # the reactive check is not built yet
    sid = rec.scene_id
    cols: dict[str, dict[str, list[Any]]] = {
        t: {} for t in ("scenes", "teachers", "agents", "lights")
    }
    past = scene.ego_past
    cols["scenes"] = {
        "scene_id": [sid], "town": [town.name], "route_id": [rec.route_id], "frame": [rec.frame],
        "time_s": [rec.time_s], "ego_x": [scene.ego_pose[0]], "ego_y": [scene.ego_pose[1]],
        "ego_yaw": [scene.ego_pose[2]], "ego_speed": [scene.ego_speed_mps],
        "ego_accel": [scene.ego_accel_mps2], "ego_yaw_rate": [scene.ego_yaw_rate_radps],
        "command": [rec.command], "command_name": [_command_name(rec.command)],
        "past_poses": [past[:, :3]], "past_speed": [past[:, 3]],
        "expert_future": [rec.expert_future], "scenario_type": [rec.scenario_type],
        "scenario_name": [rec.scenario_name], "scenario_triggered": [rec.scenario_triggered],
        "n_agents": [scene.num_agents], "n_scenario_agents": [int(rec.scenario_agents.sum())],
        "n_lights": [int(scene.light_state.shape[0])], "n_candidates": [cands.size],
        "n_vocabulary": [cands.count(Source.VOCABULARY)], "n_lattice": [cands.count(Source.LATTICE)],
        "n_expert": [cands.count(Source.EXPERT)], "n_passed": [int(sel.passed.sum())],
        "n_teachers": [len(sel.index)], "n_pool": [len(result.pool)],
        "n_modes_available": [sel.modes_available], "n_modes_kept": [sel.modes_kept],
        "coverage": [sel.coverage], "max_gap_m": [sel.max_gap_m],
    }  # fmt: skip
    k = len(sel.index)
    lane_mode, speed_mode = mode_parts(result.modes)
    t = cols["teachers"] = {
        "scene_id": [sid] * k,
        "rank": list(range(k)),
        "source": [Source(int(s)).label for s in cands.source[sel.index]],
        "poses": list(poses[sel.index]),
        "lane_mode": [LaneMode(int(v)).name.lower() for v in lane_mode[sel.index]],
        "speed_mode": [SpeedMode(int(v)).name.lower() for v in speed_mode[sel.index]],
        "progress_m": scores.progress_m[sel.index].tolist(),
        "reactive": reactive,
    }
    for name, metric in zip(SUB_SCORES, Metric, strict=True):
        t[name] = scores.values[metric, sel.index].tolist()
    pool = result.pool
    vi = result.vocab_index[pool]
    cols["pool"] = {
        "scene_id": [sid] * len(pool),
        "source": [Source(int(s)).label for s in cands.source[pool]],
        "vocab_index": vi.tolist(),
        # vocabulary entries are their index; the extras carry their proposed poses
        "poses": [None if v >= 0 else cands.poses[j] for j, v in zip(pool, vi, strict=True)],
        "lane_mode": [LaneMode(int(v)).name.lower() for v in lane_mode[pool]],
        "speed_mode": [SpeedMode(int(v)).name.lower() for v in speed_mode[pool]],
        "epdms": scores.values[Metric.EPDMS, pool].tolist(),
        "progress_m": scores.progress_m[pool].tolist(),
    }
    ai, ti = np.nonzero(scene.agent_valid)
    b = scene.agent_boxes[ai, ti]
    cols["agents"] = {
        "scene_id": [sid] * len(ai), "agent_id": rec.agent_ids[ai].tolist(),
        "kind": [KIND_NAMES[ActorKind(int(v))] for v in scene.agent_kind[ai]],
        "t_index": ti.tolist(), "x": b[:, 0].tolist(), "y": b[:, 1].tolist(),
        "yaw": b[:, 2].tolist(), "length": b[:, 3].tolist(), "width": b[:, 4].tolist(),
        "speed": scene.agent_speed_mps[ai, ti].tolist(),
        "scenario": rec.scenario_agents[ai].tolist(),
    }  # fmt: skip
    lights = light_indices(town, scene.ego_pose)
    sig = town.signals
    areas = [_stop_area_wkt(town, int(i)) for i in lights]
    nt = scene.light_state.shape[1]
    cols["lights"] = {
        "scene_id": [sid] * (len(lights) * nt),
        "light_id": [str(sig.light_id[i]) for i in lights for _ in range(nt)],
        "light_index": [int(i) for i in lights for _ in range(nt)],
        "t_index": [j for _ in lights for j in range(nt)],
        "state": [LightState(int(v)).name.lower() for v in scene.light_state.reshape(-1)],
        "stop_area": [w for w in areas for _ in range(nt)],
    }
    stats = {"scenes": 1, "candidates": cands.size, "passed": int(sel.passed.sum()), "teachers": k,
             "vocabulary": cands.count(Source.VOCABULARY), "lattice": cands.count(Source.LATTICE),
             "expert": cands.count(Source.EXPERT), "full": int(k >= config.selection.k),
             "pool": len(pool), "multimodal": int(sel.modes_kept >= 2),
             "multimodal_available": int(sel.modes_available >= 2)}  # fmt: skip
    return cols, stats


def _command_name(code: int) -> str:
    from harness.routes.interpolate import RoadOption

    return RoadOption(code).name.lower()


def _stop_area_wkt(town: Town, light: int) -> str:
    """WKT of the union of the stop areas of a light's stop lines (empty polygon when none)."""
    from shapely import union_all

    sig = town.signals
    lines = np.flatnonzero((sig.stop_kind == 0) & (sig.stop_owner == light))
    geom = union_all([sig.stop_area(int(i)) for i in lines])
    return str(geom.wkt)


_WORKER: dict[str, Any] = {}


def run_vocabulary(config: GenerateConfig, vocab_path: Path) -> Vocabulary:
    """The run's vocabulary: the file, else the registered id, else the k-means file of the
    drives at ``vocab_path``."""
    if config.vocabulary_file is not None:
        return load_vocabulary(config.vocabulary_file)
    if config.vocabulary_id is not None:
        return load_registered(config.vocabulary_id)
    return load_vocabulary(vocab_path)


def _init_worker(town_name: str, vocab_path: Path, config: GenerateConfig) -> None:
    _WORKER["town"] = load_town(town_name)
    _WORKER["vocab"] = run_vocabulary(config, vocab_path)
    _WORKER["config"] = config
    _WORKER["episodes"] = {}


class PartWorker:
    """Scores parts in one process (this one, a pool worker or a Ray actor): the town, the
    vocabulary and the config are loaded once, as :func:`_init_worker` does."""

    def __init__(self, town_name: str, vocab_path: Path, config: GenerateConfig) -> None:
        _init_worker(town_name, vocab_path, config)

    def run(self, task: PartTask) -> tuple[str, dict[str, Any]]:
        return run_part(task)


MAX_PART_ATTEMPTS = 2  # a part whose worker was lost runs once more


def part_pool(config: GenerateConfig, town: Town, vocab_path: Path, parts: int) -> Pool:
    """Where parts are scored: Ray with ``config.ray_address`` (``workers`` actors when more
    than one, else one per cluster CPU); else ``workers`` forked processes; else this one."""
    spec = WorkerSpec(PartWorker, (town.name, vocab_path, config))
    if config.ray_address is not None:
        from harness.runner.ray_pool import RayPool

        return RayPool(spec, config.workers if config.workers > 1 else None, config.ray_address)
    if config.workers > 1 and parts > 1:
        return ProcessPool(spec, min(config.workers, parts))
    return InlinePool(spec)


def score_parts(
    pool: Pool, todo: list[PartTask], on_part: Callable[[PartTask, str, dict[str, Any]], None]
) -> None:
    """Score every part of ``todo`` on ``pool`` (closed afterwards), calling ``on_part`` as each
    finishes; a part whose worker is lost runs again once, then the run stops (resumable)."""
    queue = list(todo)
    running = 0
    attempts = {t.name: 0 for t in todo}
    try:
        while queue or running:
            while queue and running < pool.capacity:
                task = queue.pop(0)
                attempts[task.name] += 1
                pool.submit(task.name, task)
                running += 1
            for done in pool.wait(1.0):
                running -= 1
                task = done.item
                if done.lost:
                    if attempts[task.name] >= MAX_PART_ATTEMPTS:
                        raise HarnessError(
                            f"part {task.name} lost its worker {attempts[task.name]} times; "
                            "run the same command again to resume from the finished parts"
                        )
                    queue.insert(0, task)
                    continue
                name, stats = done.value
                on_part(task, name, stats)
    finally:
        pool.close()


def run_part(task: PartTask) -> tuple[str, dict[str, Any]]:
    """Score one part's scenes and write its files (in a worker or inline)."""
    town: Town = _WORKER["town"]
    config: GenerateConfig = _WORKER["config"]
    episodes: dict[Path, Episode] = _WORKER["episodes"]
    if task.episode not in episodes:
        episodes.clear()
        episodes[task.episode] = load_episode(task.episode, town)
    ep = episodes[task.episode]
    t0 = time.perf_counter()
    tables: dict[str, dict[str, list[Any]]] = {}
    totals: dict[str, int] = {}
    for row in task.rows:
        rec = extract_scene(ep, town, row)
        cols, stats = scene_columns(rec, town, _WORKER["vocab"], config)
        if config.reactive:
            stats = {**stats, **reactive_column(rec, town, cols["teachers"])}
        for name, c in cols.items():
            acc = tables.setdefault(name, {})
            for key, values in c.items():
                acc.setdefault(key, []).extend(values)
        for key, v in stats.items():
            totals[key] = totals.get(key, 0) + v
    from teachers.dataset import SCHEMAS, empty_table

    arrow = {
        name: table_from_columns(name, tables[name]) if tables.get(name) else empty_table(name)
        for name in SCHEMAS
    }
    result: dict[str, Any] = {**totals, "seconds": time.perf_counter() - t0}
    write_part(config.out, task.name, arrow, result)
    return task.name, result


def reactive_column(rec: SceneRecord, town: Town, teachers: dict[str, list[Any]]) -> dict[str, int]:
    """Fill a scene's teacher rows' ``reactive`` column in place with
    :func:`teachers.reactive.reactive_flags`; returns its counts (scenes checked, teachers
    collision-free, microseconds spent)."""
    from teachers.reactive import reactive_flags

    t0 = time.perf_counter()
    poses = np.asarray(teachers["poses"], dtype=np.float64).reshape(-1, HORIZON_STEPS, 3)
    if "reactive_sim" not in _WORKER:  # reused: per-town tables
        _WORKER["reactive_sim"] = make_backend(_WORKER["config"].backend)
    flags = reactive_flags(rec, town, poses, backend=_WORKER["reactive_sim"])
    teachers["reactive"] = flags.tolist()
    return {
        "reactive_scenes": 1,
        "reactive_ok": int(flags.sum()),
        "reactive_us": int(1e6 * (time.perf_counter() - t0)),
    }


def code_version() -> dict[str, str]:
    """The harness version and, when run from a git checkout, its commit."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()  # fmt: skip
    except OSError:
        rev = ""
    return {"harness": harness.__version__, "git": rev or "unknown"}


def generate(
    config: GenerateConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary (also stored in the manifest).
    ``progress(done_scenes, total_scenes)`` is called once the inputs are checked (0, 0) and
    as parts finish."""
    t_start = time.perf_counter()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    town = load_town(config.town)
    routes = select_routes(town, config)
    check_resume(out, settings_fingerprint(config, town))
    if progress:
        progress(0, 0)  # the inputs are checked: driving starts (total not known yet)
    paths = drive_routes(
        town,
        routes,
        config.agent,
        out / "episodes",
        config.seed,
        config.workers,
        config.backend,
    )
    episodes = [load_episode(p, town) for p in paths]
    t_drive = time.perf_counter() - t_start

    vocab_path = out / "vocabulary.npz"
    if config.vocabulary_file is not None:
        vocab_path = config.vocabulary_file
    elif config.vocabulary_id is not None:
        pass  # a registered vocabulary: nothing to build or copy
    elif not vocab_path.is_file():
        futures = expert_futures(episodes)
        prov = {"town": town.name, "routes": [r.id for r in routes],
                "episodes": [p.name for p in paths], "stride_s": POSE_DT_S}  # fmt: skip
        save_vocabulary(
            build_vocabulary(futures, config.vocabulary_size, config.seed, prov), vocab_path
        )
    vocab = run_vocabulary(config, vocab_path)
    registered = config.vocabulary_file is None and config.vocabulary_id is not None

    tasks = plan_parts(episodes, config.every_s, config.max_scenes)
    done = finished_parts(out)
    todo = [t for t in tasks if t.name not in done]
    total = sum(len(t.rows) for t in tasks)
    finished = sum(len(t.rows) for t in tasks if t.name in done)
    if progress:
        progress(finished, total)
    t_score = time.perf_counter()

    def on_part(task: PartTask, name: str, stats: dict[str, Any]) -> None:
        nonlocal finished
        done[name] = stats
        finished += len(task.rows)
        if progress:
            progress(finished, total)

    if todo:
        score_parts(part_pool(config, town, vocab_path, len(todo)), todo, on_part)
    score_s = time.perf_counter() - t_score

    names = [t.name for t in tasks]
    sums = {k: sum(int(done[n].get(k, 0)) for n in names)
            for k in ("scenes", "candidates", "passed", "teachers", "vocabulary", "lattice",
                      "expert", "full", "pool", "multimodal", "multimodal_available")}  # fmt: skip
    scenes = max(sums["scenes"], 1)
    summary = {
        "scenes": sums["scenes"],
        "candidates_scored": sums["candidates"],
        "pass_rate": sums["passed"] / max(sums["candidates"], 1),
        "teachers": sums["teachers"],
        "teachers_per_scene": sums["teachers"] / scenes,
        "scenes_with_k": sums["full"],
        "scenes_without_teacher": _count_empty(out, names),
        "pool_per_scene": sums["pool"] / scenes,
        "multimodal_fraction": sums["multimodal"] / scenes,
        "multimodal_available_fraction": sums["multimodal_available"] / scenes,
        "by_scenario_type": by_scenario_type(out, names),
        "drive_s": round(t_drive, 2),
        "score_s": round(score_s, 2),
        "wall_s": round(time.perf_counter() - t_start, 2),
        # only the parts scored in this call: resumed parts took no scoring time here
        "candidates_per_s": (
            sum(int(done[t.name].get("candidates", 0)) for t in todo) / max(score_s, 1e-9)
            if todo
            else None
        ),
    }
    checked = sum(int(done[n].get("reactive_scenes", 0)) for n in names)
    reactive_checked = bool(names) and checked == sums["scenes"]
    if reactive_checked:
        summary["reactive_collision_free"] = sum(int(done[n].get("reactive_ok", 0)) for n in names)
        us = sum(int(done[n].get("reactive_us", 0)) for n in names)
        summary["reactive_ms_per_teacher"] = round(us / 1e3 / max(sums["teachers"], 1), 1)
    lead = episodes[0].recording.actors if episodes else None
    manifest = {
        "town": town.name,
        "map_file": Path(town.path).name if town.path else f"{town.name} ({town.origin})",
        "map_sha256": town.sha256,
        "ego_length": float(lead.length[0, 0]) if lead is not None else None,
        "ego_width": float(lead.width[0, 0]) if lead is not None else None,
        "ego_wheelbase": _wheelbase(),
        "dt_s": POSE_DT_S,
        "horizon_s": HORIZON_S,
        "k": config.selection.k,
        "threshold": config.selection.threshold,
        "scoring_profile": config.scoring_profile,
        "every_s": config.every_s,
        "candidate_counts": {
            "vocabulary_size": vocab.size,
            "vocabulary_scored": sums["vocabulary"],
            "lattice_scored": sums["lattice"],
            "expert_scored": sums["expert"],
            "total_scored": sums["candidates"],
            "per_scene_mean": sums["candidates"] / scenes,
        },  # fmt: skip
        "vocabulary": {
            "id": config.vocabulary_id if registered else None,
            "sha256": vocab.sha256,
            "size": vocab.size,
            "path": None if registered else vocab_path.name,
            "pool_cap": TeacherConfig().pool_cap,
            "seed": config.seed,
            "provenance": vocab.provenance,
        },
        "routes": {
            "file": str(config.routes_file) if config.routes_file else None,
            "ids": [r.id for r in routes],
        },  # fmt: skip
        "driver": episodes[0].recording.meta.get("driver") if episodes else None,
        "reactive_checked": reactive_checked,
        "code_version": code_version(),
        "command_line": list(config.command_line) or sys.argv,
        "summary": summary,
    }
    merge_parts(out, names, manifest)
    return summary


def _wheelbase() -> float:
    from harness.dynamics.vehicle import LINCOLN_MKZ_2017

    return float(LINCOLN_MKZ_2017.wheelbase_m)


NO_SCENARIO = "none"  # by_scenario_type key of scenes with no active scenario


def by_scenario_type(out: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Per active scenario type (NO_SCENARIO for scenes without one): scenes, scenes whose
    scenario had triggered, teachers, teachers per scene, scenes without a teacher, pool entries
    and the share of scenes with >= 2 manoeuvre modes kept."""
    import pyarrow.parquet as pq

    cols = ["scenario_type", "scenario_triggered", "n_teachers", "n_pool", "n_modes_kept"]
    acc: dict[str, dict[str, Any]] = {}
    for p in names:
        t = pq.read_table(out / "parts" / f"{p}.scenes.parquet", columns=cols).to_pydict()
        for typ, trig, nt, npool, nm in zip(*(t[c] for c in cols), strict=True):
            a = acc.setdefault(typ or NO_SCENARIO, {"scenes": 0, "triggered_scenes": 0,
                                                    "teachers": 0, "scenes_without_teacher": 0,
                                                    "pool": 0, "multimodal": 0})  # fmt: skip
            a["scenes"] += 1
            a["triggered_scenes"] += int(bool(trig))
            a["teachers"] += int(nt)
            a["scenes_without_teacher"] += int(nt == 0)
            a["pool"] += int(npool)
            a["multimodal"] += int(nm >= 2)
    for a in acc.values():
        a["teachers_per_scene"] = a["teachers"] / a["scenes"]
        a["multimodal_fraction"] = a.pop("multimodal") / a["scenes"]
    return dict(sorted(acc.items()))


def _count_empty(out: Path, names: list[str]) -> int:
    import pyarrow.parquet as pq

    n = 0
    for p in names:
        t = pq.read_table(out / "parts" / f"{p}.scenes.parquet", columns=["n_teachers"])
        n += int(np.count_nonzero(t.column("n_teachers").to_numpy() == 0))
    return n
