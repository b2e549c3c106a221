"""``harness train aggregate``: closed-loop data aggregation (DAgger-style) for the Drive-JEPA
planner (issue 11 item 5; docs/DRIVEJEPA.md, "Aggregation").

Round r (1 .. R), from the checkpoint of round r - 1 (round 0: ``--checkpoint``):

1. **drive**: the planner (``agents/drivejepa_agent.py`` with that checkpoint) drives N of the
   dataset's train routes (collected ones, drawn from (seed, r)) closed loop through the runner
   and is recorded as collection records the expert (:func:`teachers.drive.drive_route`, the
   route's scenarios, no control perturbation: the planner's own mistakes are the excursions),
   as the new route ``<key>-agg<r>`` in ``DATA/routes``.
2. **label**: the privileged expert (:class:`harness.planning.ExpertPlanner`) replays the
   recorded states at its own 10 Hz planning rate (so its memory - route progress, served stop
   signs, waiting time, stopped obstacles - evolves as it would have along this drive) and its
   plan at each scene, in the ego frame at +0.5 .. 4.0 s, is the scene's ``expert`` (imitation
   target). The expert's plans become the episode's plans (``.plans.parquet``; the agent's own
   are kept as ``.agent_plans.parquet``) and the teachers are scored by the collection's code
   with the expert's plan as the scene's reference future (EP normaliser, human filter).
3. **write**: ``routes/<key>-agg<r>.npz`` + ``.json`` (the collection's arrays; ``expert_emergency``
   marks scenes whose label is the expert's emergency stop) and the manifest gains the route
   (``source: "aggregate-<r>"``, split train) atomically after each route, so
   :class:`drivejepa.data.store.PlannerSamples` reads it.
4. **fine-tune**: :class:`drivejepa.train.planner.PlannerTrainer` from the round's checkpoint on
   the grown train split for E epochs -> ``DIR/round-<r>/train/model.pt``, with the parent's
   loss recipe (:func:`inherited_losses`: MTD, kinematic weight, wait keep, BEV weight).
5. **measure**: ``harness eval`` of the new checkpoint on the dataset's val routes
   (``DIR/round-<r>/val``) -> DS, SR, RC; one line of ``DIR/rounds.jsonl``.

Round 0 is the starting checkpoint measured on the val routes (the reference of every round).
Every step is resumable: a route is done when its ``.npz`` exists, training resumes from its
``train_state.pt``, the evaluation from its ``results.json``, and a round is done when
``rounds.jsonl`` holds it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from drivejepa.camera import CameraSetup
from drivejepa.data.build import camera_renderer, route_arrays
from drivejepa.data.collect import (
    AGGREGATE_SOURCE_PREFIX,
    COMPLETED,
    MANIFEST_FILE,
    ROUTES_DIR,
    UNNAMED_TEACHER_GATE,
    info_path,
    npz_path,
    recording_path,
    teacher_config,
    write_arrays,
)
from drivejepa.data.labels import expert_labels, scene_labels
from drivejepa.data.routes import SPLIT_TRAIN, SPLIT_VAL, route_seed
from drivejepa.data.store import read_manifest
from drivejepa.runtime import DEFAULT_LAMBDA
from harness.errors import ConfigError
from harness.fingerprint import check_settings_file
from harness.io import atomic_output, atomic_write_json, atomic_write_text
from harness.maps import load_town
from harness.maps.town import Town
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file, write_routes
from harness.world.recording import load_recording
from harness.world.state import COLLISION_EVENTS
from harness.world.timing import SIM_DT_S
from teachers.episode_scenes import (
    SceneRecord,
    load_episode,
    plans_path,
    route_index,
    scene_rows,
    write_plans,
)
from teachers.vocabulary import load_registered

log = logging.getLogger(__name__)

AGENT = "drivejepa"  # the registered agent that drives the rounds
SOURCE_PREFIX = AGGREGATE_SOURCE_PREFIX  # manifest source of round r: "aggregate-<r>"
ROUNDS_FILE = "rounds.jsonl"
BEST_CHECKPOINT = "best.pt"  # the best round's checkpoint by val DS (keep_best)
BEST_FILE = "best.json"
SETTINGS_FILE = "settings.json"
DEFAULT_ROUTES_PER_ROUND = 4  # train routes driven per round
DEFAULT_EPOCHS_PER_ROUND = 1  # fine-tuning passes over the grown train split per round
AGENT_PLANS_SUFFIX = ".agent_plans.parquet"  # the driving agent's own plans (kept for inspection)
# TrainConfig fields a round inherits
LOSS_KEYS = ("mtd", "kinematic_weight", "wait_keep", "bev_weight", "imitation_loss_weight")


@dataclass(frozen=True)
class AggregateConfig:
    """Options of ``harness train aggregate`` (the CLI builds it). ``max_drive_s`` caps each
    drive [s] (None: the collection's route time limit); ``blocked_time_s`` overrides the val
    evaluation's blocked-ego limit; ``val_routes`` evaluates only the first N val routes."""

    data: Path
    checkpoint: Path
    out: Path
    rounds: int
    routes_per_round: int = DEFAULT_ROUTES_PER_ROUND
    epochs_per_round: int = DEFAULT_EPOCHS_PER_ROUND
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    lambda_: float = DEFAULT_LAMBDA
    batch: int = 8
    lr: float = 1e-4
    encoder_lr_scale: float = 0.1
    max_drive_s: float | None = None
    blocked_time_s: float | None = None
    val_routes: int | None = None
    command_line: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.routes_per_round < 1 or self.epochs_per_round < 1:
            raise ConfigError(
                "--rounds, --routes-per-round and --epochs-per-round must be >= 1, got "
                f"{self.rounds}, {self.routes_per_round}, {self.epochs_per_round}"
            )
        if self.lambda_ < 0:
            raise ConfigError(f"--lambda must be >= 0, got {self.lambda_}")
        if self.max_drive_s is not None and not self.max_drive_s > 0:
            raise ConfigError(f"--max-drive-s must be > 0, got {self.max_drive_s}")
        if self.val_routes is not None and self.val_routes < 1:
            raise ConfigError(f"--val-routes must be >= 1, got {self.val_routes}")

    def settings(self) -> dict[str, Any]:
        """What the rounds depend on (a resume must match it; ``rounds`` may grow)."""
        return {"data": str(self.data.resolve()), "checkpoint": str(self.checkpoint.resolve()),
                "routes_per_round": self.routes_per_round,
                "epochs_per_round": self.epochs_per_round, "seed": self.seed,
                "lambda": self.lambda_, "batch": self.batch, "lr": self.lr,
                "encoder_lr_scale": self.encoder_lr_scale, "max_drive_s": self.max_drive_s,
                "blocked_time_s": self.blocked_time_s, "val_routes": self.val_routes}  # fmt: skip


# --- labels ---------------------------------------------------------------------------------------
def expert_reference(record: SceneRecord) -> SceneRecord:
    """The scene with the expert's plan (the episode's plans are the expert's labels) as its
    reference future, in place of the driven one (the planner's): EP's normaliser and NAVSIM's
    human filter then refer to what the expert would do from this state."""
    if record.expert_plan is None:
        raise ValueError(f"scene {record.scene_id} has no expert plan")
    return replace(record, expert_future=record.expert_plan, expert_plan=None)


# --- the dataset's routes ------------------------------------------------------------------------
def aggregate_key(key: str, round_: int) -> str:
    """The route key of a round's drive of route ``key``."""
    return f"{key}-agg{round_:02d}"


def dataset_route(data: Path, manifest: dict[str, Any], entry: dict[str, Any]) -> RouteConfig:
    """A collected route as driven: the route file's route (with its scenarios) for file routes,
    else the keypoints its recording keeps (generated routes have no scenarios)."""
    key = str(entry["id"])
    index, route_file = entry.get("file_index"), manifest.get("route_file")
    if index is not None and route_file:
        if not Path(route_file).is_file():
            raise ConfigError(f"{data}: route file {route_file} of route {key} is missing")
        return replace(read_route_file(route_file)[int(index)], id=key)
    rec = load_recording(recording_path(data, key))
    kp = np.asarray(rec.meta["route_keypoints"], dtype=np.float64)
    return RouteConfig(id=key, town=str(entry["town"]), keypoints=kp)


def base_routes(manifest: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """The collected (not aggregated) routes of a split, in manifest order."""
    return [r for r in manifest["routes"]
            if r["split"] == split and not str(r["source"]).startswith(SOURCE_PREFIX)]  # fmt: skip


def round_sample(routes: list[dict[str, Any]], n: int, seed: int, round_: int) -> list[str]:
    """Keys of the ``n`` train routes driven in round ``round_`` (from (seed, round))."""
    keys = [str(r["id"]) for r in routes]
    rng = random.Random(f"aggregate:{seed}:{round_}")
    return sorted(rng.sample(keys, min(n, len(keys))))


def add_routes(data: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest with ``entries`` added (or replaced by id) and its counts updated, written
    atomically; returns it."""
    manifest = read_manifest(data)
    new = {str(e["id"]): e for e in entries}
    routes = [new.pop(str(r["id"]), r) for r in manifest["routes"]] + list(new.values())
    manifest["routes"] = routes
    s = manifest.setdefault("summary", {})
    s["routes"] = len(routes)
    s["scenes"] = sum(int(r["scenes"]) for r in routes)
    s["frames"] = sum(int(r["frames"]) for r in routes)
    for name, what in (("scenes_by_split", "scenes"), ("routes_by_split", None)):
        s[name] = {sp: sum(int(r[what]) if what else 1 for r in routes if r["split"] == sp)
                   for sp in (SPLIT_TRAIN, SPLIT_VAL)}  # fmt: skip
    s["scenes_by_source"] = {}
    for r in routes:
        s["scenes_by_source"][r["source"]] = s["scenes_by_source"].get(r["source"], 0) + int(
            r["scenes"]
        )
    atomic_write_json(data / MANIFEST_FILE, manifest, indent=2)
    return manifest


# --- one round's drives --------------------------------------------------------------------------
def agent_plans_path(rec_path: Path) -> Path:
    """Where the driving agent's own plans are kept once the expert's labels replace them."""
    return rec_path.with_name(rec_path.name.removesuffix(".parquet") + AGENT_PLANS_SUFFIX)


def write_agent_config(path: Path, checkpoint: Path, lambda_: float, camera: CameraSetup) -> Path:
    """The drivejepa agent's config for a checkpoint (JSON, which the YAML reader takes)."""
    atomic_write_json(path, {"checkpoint": str(checkpoint.resolve()), "lambda": lambda_,
                             "camera": camera.to_json(), "threads": 1}, indent=2)  # fmt: skip
    return path


class RoundDriver:
    """Drives, labels and writes the aggregated routes of one round (towns, the renderer and the
    vocabulary loaded once)."""

    def __init__(self, data: Path, manifest: dict[str, Any], agent_config: Path,
                 round_: int, seed: int, max_drive_s: float | None) -> None:  # fmt: skip
        from harness.leaderboard.loader import load_agent

        self.data = data
        self.manifest = manifest
        self.agent_config = agent_config
        self.round = round_
        self.seed = seed
        self.max_ticks = None if max_drive_s is None else int(round(max_drive_s / SIM_DT_S))
        self.camera = CameraSetup.from_json(dict(manifest["camera"]))
        self.vocab = load_registered(str(manifest["vocabulary"]["id"]))
        if self.vocab.sha256 != manifest["vocabulary"]["sha256"]:
            raise ConfigError(f"{data} was scored with another vocabulary than the installed one")
        self.teacher_config = teacher_config(  # the collection's teachers
            int(manifest["seed"]), str(manifest.get("teacher_gate", UNNAMED_TEACHER_GATE))
        )
        self.agent_cls, _ = load_agent(AGENT)
        self._towns: dict[str, tuple[Town, Any]] = {}

    def town(self, name: str) -> tuple[Town, Any]:
        if name not in self._towns:
            town = load_town(name)
            self._towns[name] = (town, camera_renderer(town, self.camera))
        return self._towns[name]

    def run(self, parent: dict[str, Any]) -> dict[str, Any]:
        """Drive route ``parent`` with the planner, label and write it; its manifest entry."""
        from teachers.drive import drive_route

        key = aggregate_key(str(parent["id"]), self.round)
        town, renderer = self.town(str(parent["town"]))
        route = replace(dataset_route(self.data, self.manifest, parent), id=key)
        seed = route_seed(self.seed, key)
        rec_path = recording_path(self.data, key)
        t0 = time.perf_counter()
        if not rec_path.is_file():
            drive_route(town, route, self.agent_cls, rec_path, seed,
                        agent_config=str(self.agent_config), max_ticks=self.max_ticks)  # fmt: skip
        kept = agent_plans_path(rec_path)
        if not kept.is_file():  # the recorded plans are the agent's until the labels replace them
            if plans_path(rec_path).is_file():
                os.replace(plans_path(rec_path), kept)
            else:
                write_plans(kept, [], [])
        t1 = time.perf_counter()
        ep = load_episode(rec_path, town)
        rows = scene_rows(ep, 0.5)
        last = int(rows[-1]) if len(rows) else 0
        labels = expert_labels(ep, town, last)
        write_plans(plans_path(rec_path), labels.frames.tolist(), list(labels.plans))
        ep = load_episode(rec_path, town)
        t2 = time.perf_counter()
        arrays = route_arrays(ep, town, self.vocab, self.camera, self.teacher_config, renderer,
                              relabel=expert_reference)  # fmt: skip
        rec, a = ep.recording, ep.recording.actors
        rows = arrays["recording_row"]
        # the expert's plans are this drive's labels: its imitation target in both arrays
        arrays["expert"], arrays["expert_emergency"] = scene_labels(ep, town, rows, labels)
        arrays["expert_plan"] = arrays["expert"]
        empty_f, empty_i = np.zeros(0, np.float64), np.zeros(0, np.int64)
        arrays.update(perturb_start_s=empty_f, perturb_end_s=empty_f, perturb_kind=empty_i,
                      perturb_value=empty_f, future_perturbed=np.zeros(len(rows), bool))  # fmt: skip
        last_pose = np.array([a.x[-1, 0], a.y[-1, 0], a.yaw[-1, 0]])
        planned = ep.planned
        n = len(arrays["status"])
        info = {
            "id": key, "route_id": parent.get("route_id"), "town": str(parent["town"]),
            "source": f"{SOURCE_PREFIX}{self.round}", "file_index": parent.get("file_index"),
            "seed": seed, "split": SPLIT_TRAIN, "parent": str(parent["id"]), "round": self.round,
            "ended": str(rec.meta.get("ended", "")), "driver": str(rec.meta.get("driver", "")),
            "completion": round(float(planned.s_m[route_index(planned, last_pose)]
                                      / planned.s_m[-1]), 4),
            "collisions": sum(1 for e in rec.events if e.kind in COLLISION_EVENTS),
            "drive_time_s": round(float(rec.time_s[-1] - rec.time_s[0]), 2),
            "bursts": 0, "scenes_future_perturbed": 0, "scenes": n,
            "frames": len(arrays["frames"]),
            "scenes_without_teacher": int(np.count_nonzero(arrays["teacher_count"] == 0)),
            "teachers_per_scene": round(float(arrays["teacher_count"].mean()), 2) if n else 0.0,
            "expert_emergency_scenes": int(arrays["expert_emergency"].sum()),
            "drive_s": round(t1 - t0, 2), "label_s": round(t2 - t1, 2),
            "build_s": round(time.perf_counter() - t2, 2),
            "file": f"{ROUTES_DIR}/{npz_path(self.data, key).name}",
            "recording": f"{ROUTES_DIR}/{rec_path.name}",
        }  # fmt: skip
        atomic_write_json(info_path(self.data, key), info, indent=2)
        write_arrays(npz_path(self.data, key), arrays)
        return info


# --- evaluation and training ---------------------------------------------------------------------
def val_metrics(
    data: Path, manifest: dict[str, Any], agent_config: Path, out: Path,
    blocked_time_s: float | None, val_routes: int | None, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """``harness eval`` (Bench2Drive mode, embedded) of the agent config on the val routes:
    DS, SR (fraction), RC (mean route completion, %), routes."""
    from harness.leaderboard.bench2drive import driving_score, success_rate
    from harness.leaderboard.route_criteria import CriteriaConfig
    from harness.runner.config import Mode, RunConfig
    from harness.runner.evaluation import run_evaluation

    entries = base_routes(manifest, SPLIT_VAL)[:val_routes]
    if not entries:
        raise ConfigError(f"{data} has no val route; collect with --val-fraction > 0")
    out.mkdir(parents=True, exist_ok=True)
    routes_xml = out / "val_routes.xml"
    if not routes_xml.is_file():
        write_routes([dataset_route(data, manifest, e) for e in entries], routes_xml)
    criteria = Mode.BENCH2DRIVE.criteria()
    if blocked_time_s is not None:
        criteria = CriteriaConfig(
            blocked_time_s=blocked_time_s, tick_limit=criteria.tick_limit,
            min_speed_checkpoints=criteria.min_speed_checkpoints,
            speed_limit_mps=criteria.speed_limit_mps, route_deviation_m=criteria.route_deviation_m,
        )  # fmt: skip
    config = RunConfig.for_mode(Mode.BENCH2DRIVE, agent=AGENT, routes_file=routes_xml,
                                out_dir=out, agent_config=str(agent_config), seed=seed,
                                criteria=criteria, resume=True)  # fmt: skip
    result = run_evaluation(config)
    records = result.results["_checkpoint"]["records"]
    n = len(entries)
    return {
        "ds": round(driving_score(records, n), 3),
        "sr": round(success_rate(records, n), 4),
        "rc": round(sum(float(r["scores"]["score_route"]) for r in records) / n, 3),
        "routes": n,
    }


def inherited_losses(parent_train: dict[str, Any]) -> dict[str, Any]:
    """The loss recipe a round keeps from its parent checkpoint's ``train`` record
    (:data:`LOSS_KEYS`: MTD on or off, kinematic weight, wait keep, BEV weight, imitation loss
    weight), so that fine-tuning a planner trained without MTD, say, does not switch MTD back on;
    keys the record lacks (a checkpoint older than the option) take ``harness train planner``'s
    defaults."""
    return {k: parent_train[k] for k in LOSS_KEYS if k in parent_train}


def fine_tune(
    cfg: AggregateConfig, checkpoint: Path, out: Path, round_: int
) -> list[dict[str, Any]]:
    """``epochs_per_round`` epochs of the planner trainer from ``checkpoint`` on the data's
    grown train split (validated on its val split) -> ``out/model.pt``; resumes an interrupted
    round from ``out/train_state.pt``."""
    from drivejepa.checkpoint import load_checkpoint
    from drivejepa.data.store import PlannerSamples
    from drivejepa.train.planner import (
        STATE_NAME,
        PlannerTrainer,
        TrainConfig,
        config_record,
        read_manifest_camera,
        scene_lookup,
        seed_everything,
    )

    camera = read_manifest_camera(cfg.data)
    ck = load_checkpoint(checkpoint, camera)
    tcfg = TrainConfig(out=out, epochs=cfg.epochs_per_round, batch=cfg.batch, lr=cfg.lr,
                       encoder_lr_scale=cfg.encoder_lr_scale, device=cfg.device,
                       seed=cfg.seed + round_, resume=(out / STATE_NAME).is_file(),
                       planner=ck.planner.cfg, **inherited_losses(ck.train))  # fmt: skip
    seed_everything(tcfg.seed)
    lookup = scene_lookup(cfg.data)
    record = config_record(tcfg, data=str(cfg.data), aggregate_round=round_,
                           parent_checkpoint=str(checkpoint), parent_train=ck.train,
                           command=" ".join(cfg.command_line))  # fmt: skip
    trainer = PlannerTrainer(tcfg, ck.planner.encoder, camera, lookup, record)
    trainer.model.load_state_dict(ck.planner.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    train = cast(Sequence[dict[str, Any]], PlannerSamples(cfg.data, "train", seed=tcfg.seed))
    val = cast(Sequence[dict[str, Any]], PlannerSamples(cfg.data, "val", seed=tcfg.seed))
    return trainer.fit(train, val)


# --- the rounds ----------------------------------------------------------------------------------
def check_out(cfg: AggregateConfig) -> list[dict[str, Any]]:
    """A fresh ``out`` starts; a used one needs ``resume`` and the same settings. Returns the
    finished rounds (``rounds.jsonl``)."""
    path = cfg.out / SETTINGS_FILE
    rounds_path = cfg.out / ROUNDS_FILE
    if path.is_file() or rounds_path.is_file():
        if not cfg.resume:
            raise ConfigError(
                f"{cfg.out} already holds aggregation rounds; pass --resume to continue them or "
                "pick another --out"
            )
        check_settings_file(path, cfg.settings(), "rounds made")
    else:
        cfg.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, cfg.settings(), indent=2)
    if not rounds_path.is_file():
        return []
    lines = rounds_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(s) for s in lines if s.strip()]


def round_dir(out: Path, round_: int) -> Path:
    return out / f"round-{round_:02d}"


def aggregate(
    cfg: AggregateConfig, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Run rounds 0 .. ``cfg.rounds`` (those in ``rounds.jsonl`` are skipped); returns every
    round's line."""
    from drivejepa.checkpoint import load_checkpoint

    say = progress or (lambda _m: None)
    manifest = read_manifest(cfg.data)
    camera = CameraSetup.from_json(dict(manifest["camera"]))
    load_checkpoint(cfg.checkpoint, camera)  # refused here, before any drive, when unusable
    if not base_routes(manifest, SPLIT_TRAIN):
        raise ConfigError(f"{cfg.data} has no collected train route to drive")
    done = check_out(cfg)
    finished = {int(r["round"]) for r in done}
    checkpoint = Path(done[-1]["checkpoint"]) if done else cfg.checkpoint  # rounds run in order
    for round_ in range(0, cfg.rounds + 1):
        if round_ in finished:
            continue
        t0 = time.perf_counter()
        rdir = round_dir(cfg.out, round_)
        rdir.mkdir(parents=True, exist_ok=True)
        row: dict[str, Any] = {"round": round_}
        if round_ > 0:
            agent_cfg = write_agent_config(rdir / "drive_agent.json", checkpoint, cfg.lambda_,
                                           camera)  # fmt: skip
            manifest = read_manifest(cfg.data)
            parents = {str(e["id"]): e for e in base_routes(manifest, SPLIT_TRAIN)}
            keys = round_sample(list(parents.values()), cfg.routes_per_round, cfg.seed, round_)
            driver = RoundDriver(cfg.data, manifest, agent_cfg, round_, cfg.seed,
                                 cfg.max_drive_s)  # fmt: skip
            infos = []
            for k, key in enumerate(keys):
                new_key = aggregate_key(key, round_)
                if npz_path(cfg.data, new_key).is_file():
                    info = json.loads(info_path(cfg.data, new_key).read_text(encoding="utf-8"))
                else:
                    say(f"round {round_}: driving {key} ({k + 1}/{len(keys)})")
                    info = driver.run(parents[key])
                    manifest = add_routes(cfg.data, [info])
                infos.append(info)
            manifest = add_routes(cfg.data, infos)  # every finished route of the round listed
            say(f"round {round_}: fine-tuning on {manifest['summary']['scenes_by_split']['train']}"
                " train scenes")  # fmt: skip
            history = fine_tune(cfg, checkpoint, rdir / "train", round_)
            checkpoint = rdir / "train" / "model.pt"
            last = history[-1] if history else {}
            row.update({
                "routes": [i["id"] for i in infos],
                "scenes_added": sum(int(i["scenes"]) for i in infos),
                "expert_emergency_scenes": sum(int(i["expert_emergency_scenes"]) for i in infos),
                "drive_completion": round(float(np.mean([i["completion"] for i in infos])), 4),
                "drives_completed": sum(1 for i in infos if i["ended"] in COMPLETED),
                "drive_collisions": sum(int(i["collisions"]) for i in infos),
                "train_scenes": manifest["summary"]["scenes_by_split"]["train"],
                "train_loss": last.get("train_total"),
                "val_min_ade_m": last.get("val_min_ade_m"),
            })  # fmt: skip
        else:
            row.update({"routes": [], "scenes_added": 0})
        say(f"round {round_}: evaluating on the val routes")
        eval_cfg = write_agent_config(rdir / "eval_agent.json", checkpoint, cfg.lambda_, camera)
        row["val"] = val_metrics(cfg.data, manifest, eval_cfg, rdir / "val", cfg.blocked_time_s,
                                 cfg.val_routes, cfg.seed)  # fmt: skip
        row["checkpoint"] = str(checkpoint)
        row["round_s"] = round(time.perf_counter() - t0, 1)
        done.append(row)
        atomic_write_text(cfg.out / ROUNDS_FILE, "".join(json.dumps(d) + "\n" for d in done))
        log.info("round %d: %s", round_, row)
    keep_best(cfg.out, done)
    return done


def best_round(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The round whose checkpoint drove the val routes best: highest val DS, then RC; the earlier
    round on a tie (round 0 is the starting checkpoint, so a round must improve on it)."""
    return max(rows, key=lambda r: (float(r["val"]["ds"]), float(r["val"]["rc"]), -int(r["round"])))


def keep_best(out: Path, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``OUT/best.pt`` (a copy of the best round's checkpoint, :func:`best_round`) and
    ``OUT/best.json`` (its round, val figures and source), both written atomically."""
    best = best_round(rows)
    with atomic_output(out / BEST_CHECKPOINT) as tmp:
        shutil.copyfile(best["checkpoint"], tmp)
    info = {"round": best["round"], "val": best["val"], "checkpoint": best["checkpoint"],
            "rule": "highest val DS, then RC, then the earlier round"}  # fmt: skip
    atomic_write_json(out / BEST_FILE, info, indent=2)
    return info
