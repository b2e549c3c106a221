"""`harness train ...`: Drive-JEPA training, one function per subcommand (``pretrain``, ``planner``,
``head``, ``aggregate``).
``drivejepa`` is imported inside the commands only (the CLI is the only edge that imports it)."""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from harness.cli.checks import number, writable_dir
from harness.cli.main import app, command_group
from harness.errors import ConfigError

train_app = command_group("Train Drive-JEPA's parts (encoder pretraining, planner, aggregation).")
app.add_typer(train_app, name="train")

TRAIN_SPLIT = "train"


class Objective(StrEnum):
    jepa = "jepa"
    tritemporal = "tritemporal"


class Device(StrEnum):
    cpu = "cpu"
    cuda = "cuda"


class EncoderSize(StrEnum):
    small = "small"
    tiny = "tiny"


DATA_ARGUMENT = typer.Argument(..., help="Dataset folder made by 'harness collect'.")


def require_dataset(data: Path) -> dict[str, Any]:
    """The manifest of dataset folder ``data``; a folder without one is a ConfigError."""
    manifest = data / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(
            f"{data} is not a drivejepa dataset (no manifest.json); make one with 'harness collect'"
        )
    try:
        return dict(json.loads(manifest.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{manifest} is not valid JSON ({exc}); re-run 'harness collect'") from exc


def _echo_epoch(epochs: int) -> Any:
    def echo(r: dict[str, Any]) -> None:
        extra = "".join(f" {k[5:]} {r[k]:.4f}" for k in ("loss_soon", "loss_event") if k in r)
        typer.echo(
            f"epoch {r['epoch']}/{epochs}: loss {r['loss']:.4f} (jepa {r['loss_jepa']:.4f}{extra}) "
            f"target std {r['target_std']:.4f} (min {r['target_std_min']:.4f}, "
            f"clips {r['target_clip_std']:.4f}) "
            f"lr {r['lr']:.2e} ema {r['momentum']:.5f} {r['clips_per_s']:.1f} clips/s"
        )

    return echo


@train_app.command("pretrain")
def pretrain(
    data: Path = DATA_ARGUMENT,
    out: Path = typer.Option(..., "--out", help="Output folder: encoder.pt, log.jsonl, checkpoint.pt."),
    objective: Objective = typer.Option(Objective.jepa, help="jepa, or tritemporal (adds SOON forecast and EVENTUALLY InfoNCE)."),
    epochs: int = typer.Option(10, min=1, help="Epochs over the training clips."),
    max_minutes: float | None = typer.Option(None, min=0.01, help="Stop after this wall time [min] with a checkpoint (--resume continues)."),
    batch: int = typer.Option(8, min=2, help="Clips per step."),
    lr: float = typer.Option(5e-4, min=1e-8, help="Peak learning rate (AdamW, warm-up then cosine)."),
    device: Device = typer.Option(Device.cpu, help="cpu or cuda."),
    seed: int = typer.Option(0, help="Seed of initialisation, clip order and masks."),
    threads: int | None = typer.Option(None, min=1, help="torch threads (default: torch's)."),
    size: EncoderSize = typer.Option(EncoderSize.small, help="Encoder size preset (tiny: tests)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its checkpoint."),
) -> None:  # fmt: skip
    """Pretrain the video encoder (V-JEPA masked latent prediction with an EMA target; with
    --objective tritemporal also SOON forecasting and the EVENTUALLY outcome embedding) on the
    8-frame training clips of DATA; writes --out/encoder.pt (the EMA target encoder) and
    log.jsonl, and a checkpoint every epoch."""
    number(lr, "--lr", low=0.0, low_open=True)
    if max_minutes is not None:
        number(max_minutes, "--max-minutes", low=0.0, low_open=True)
    writable_dir(out, "--out")
    manifest = require_dataset(data)
    from dataclasses import replace

    from drivejepa.model import ENCODER_PRESETS, JEPAConfig, TriTemporalConfig
    from drivejepa.train.pretrain import CLIP_FRAMES, PretrainConfig
    from drivejepa.train.pretrain import pretrain as run_pretrain

    try:
        from drivejepa.data.store import VideoClips
    except ImportError as exc:
        raise ConfigError(f"this checkout has no clip reader (drivejepa.data.store: {exc})") from exc
    clips = VideoClips(data, TRAIN_SPLIT, frames=CLIP_FRAMES)
    first = clips[0]
    frames = first["frames"] if isinstance(first, dict) else first
    image_h, image_w = int(frames.shape[-2]), int(frames.shape[-1])
    encoder = replace(ENCODER_PRESETS[size.value], image_h=image_h, image_w=image_w)
    tri = TriTemporalConfig() if objective is Objective.tritemporal else None
    cfg = PretrainConfig(
        model=JEPAConfig(encoder=encoder, tritemporal=tri), epochs=epochs, batch=batch, lr=lr,
        seed=seed, device=device.value, threads=threads, max_minutes=max_minutes,
    )  # fmt: skip
    info = {"data": str(data), "camera": manifest.get("camera"), "clips": len(clips)}
    typer.echo(f"pretraining ({objective.value}, encoder {size.value}) on {len(clips)} clips "
               f"of {data} at {image_w}x{image_h} -> {out}")  # fmt: skip
    result = run_pretrain(clips, out, cfg, resume=resume, info=info, on_epoch=_echo_epoch(epochs))
    if not result.finished:
        typer.echo(f"stopped after {result.steps} steps ({result.epochs_done}/{epochs} epochs); "
                   "run again with --resume to continue")  # fmt: skip
    if result.encoder is not None:
        typer.echo(f"encoder: {result.encoder}")


@train_app.command("planner")
def train_planner(
    data: Path = typer.Argument(..., help="Dataset folder written by `harness collect`."),
    encoder: Path | None = typer.Option(
        None, "--encoder", help="Pretrained encoder.pt (`harness train pretrain`)."
    ),
    scratch: bool = typer.Option(False, "--scratch", help="Randomly initialised encoder instead."),
    init: Path | None = typer.Option(
        None, "--init",
        help="Start from this planner checkpoint (model.pt; its architecture and encoder) to "
        "fine-tune it, instead of --encoder / --scratch.",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for model.pt, train_state.pt, log.jsonl."),
    epochs: int = typer.Option(10, "--epochs", help="Passes over the train split."),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", help="Stop (and checkpoint) after this much wall time [min]."
    ),
    batch: int = typer.Option(8, "--batch", help="Samples per step."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate of the planner."),
    encoder_lr_scale: float = typer.Option(
        0.1, "--encoder-lr-scale", help="Encoder lr = lr x this (0 freezes the encoder)."
    ),
    no_mtd: bool = typer.Option(False, "--no-mtd", help="Drop the teacher (MTD) loss term."),
    kinematic_weight: float = typer.Option(
        0.0, "--kinematic-weight",
        help="Weight of the kinematic term on every proposal (0: the recipe; docs/DRIVEJEPA.md).",
    ),
    wait_keep: float = typer.Option(
        1.0, "--wait-keep",
        help="Fraction of the waiting standstill scenes trained on each epoch (1: all, the recipe).",
    ),
    no_ego_motion: bool = typer.Option(
        False, "--no-ego-motion",
        help="Hide the status's speed and acceleration from the planner (its plan's speed must "
        "come from the frames; the checkpoint keeps the choice for the agent).",
    ),
    route_offset: bool = typer.Option(
        False, "--route-offset",
        help="Add two route features derived from the status's target (the ego's offset from "
        "the route line, the route's heading; not in Drive-JEPA; docs/DRIVEJEPA.md).",
    ),
    bev_weight: float = typer.Option(
        0.0, "--bev-weight",
        help="Weight of the auxiliary BEV perception loss (0: the recipe, no BEV head; "
        "docs/DRIVEJEPA.md).",
    ),
    imitation_loss_weight: float = typer.Option(
        0.0, "--imitation-loss-weight",
        help="Weight of the imitation head's KL divergence (0: the recipe, no imitation head; "
        "`harness train head --fit imitation` then chooses its selection weight).",
    ),
    turn_repeat: int = typer.Option(
        1, "--turn-repeat",
        help="Each turning train scene (moving, route target beyond 0.1 rad) this many times per "
        "epoch (1: the recipe).",
    ),
    recovery: float = typer.Option(
        0.0, "--recovery",
        help="Share of the moving train scenes shown from beside the driven pose, labelled with "
        "the way back (0: none, the recipe; docs/DRIVEJEPA.md 'Recovery views').",
    ),
    recovery_shift_m: float = typer.Option(
        3.0, "--recovery-shift-m", help="Largest lateral shift of a recovery view [m]."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and batch order."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
) -> None:
    """Train the planner (imitation + MTD + online score targets); prints the last epoch as JSON."""
    from drivejepa.planner.model import PlannerConfig
    from drivejepa.train.planner import TrainConfig, summary, train_from_data

    number(epochs, "--epochs", low=1)
    number(batch, "--batch", low=1)
    number(lr, "--lr", low=0.0, low_open=True)
    number(encoder_lr_scale, "--encoder-lr-scale", low=0.0)
    number(kinematic_weight, "--kinematic-weight", low=0.0)
    number(wait_keep, "--wait-keep", low=0.0, high=1.0, low_open=True)
    number(bev_weight, "--bev-weight", low=0.0)
    number(imitation_loss_weight, "--imitation-loss-weight", low=0.0)
    if max_minutes is not None:
        number(max_minutes, "--max-minutes", low=0.0, low_open=True)
    number(turn_repeat, "--turn-repeat", low=1)
    number(recovery, "--recovery", low=0.0, high=1.0)
    number(recovery_shift_m, "--recovery-shift-m", low=0.3)
    if (encoder is not None) + scratch + (init is not None) != 1:
        raise ConfigError("pass exactly one of --encoder ENC.pt, --scratch and --init MODEL.pt")
    if init is not None and not init.is_file():
        raise ConfigError(f"--init {init} does not exist; pass a planner's model.pt")
    if encoder is not None and not encoder.is_file():
        raise ConfigError(f"--encoder {encoder} does not exist; run `harness train pretrain` first")
    if not (data / "manifest.json").is_file():
        raise ConfigError(f"{data} has no manifest.json; collect a dataset with `harness collect`")
    writable_dir(out, "--out")
    cfg = TrainConfig(out=out, epochs=epochs, max_minutes=max_minutes, batch=batch, lr=lr,
                      encoder_lr_scale=encoder_lr_scale, mtd=not no_mtd,
                      kinematic_weight=kinematic_weight, wait_keep=wait_keep,
                      bev_weight=bev_weight, imitation_loss_weight=imitation_loss_weight,
                      turn_repeat=turn_repeat, recovery=recovery,
                      recovery_shift_m=recovery_shift_m,
                      device=device, seed=seed, resume=resume,
                      planner=PlannerConfig(ego_motion=not no_ego_motion,
                                            route_offset=route_offset))  # fmt: skip
    history = train_from_data(data, encoder, cfg, command=shlex.join(sys.argv), init=init)
    typer.echo(json.dumps({"checkpoint": str(out / "model.pt"), **summary(history)}))


@train_app.command("head")
def train_head(
    data: Path = typer.Argument(..., help="Dataset folder written by `harness collect`."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The planner's model.pt."),
    out: Path = typer.Option(..., "--out", help="Folder for model.pt, log.jsonl, head_cache.pt."),
    epochs: int = typer.Option(30, "--epochs", help="Passes of the head over the cached scenes."),
    batch: int = typer.Option(32, "--batch", help="Scenes per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate of the head."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed of the batch order."),
    execution: str = typer.Option(
        "plan", "--execution",
        help="Score each proposal as drawn (plan: the LQR tracks the whole plan) or as the agent "
        "executes it (held: its first 0.5 s speed held along its path).",
    ),
    fit: str = typer.Option(
        "scorer", "--fit",
        help="What to fit: scorer (refit the scorer head) or imitation (add an imitation head, "
        "scorer unchanged, and choose its selection weight on val).",
    ),
) -> None:
    """Refit the scorer head, or add an imitation head, on the planner's frozen proposals (their
    targets computed once; the epoch best on the val split kept); prints each epoch's line
    (--out/log.jsonl) as JSON."""
    from drivejepa.train.head import HeadConfig, check_execution, check_fit, refit_head

    check_execution(execution)
    check_fit(fit)
    number(epochs, "--epochs", low=1)
    number(batch, "--batch", low=1)
    number(lr, "--lr", low=0.0, low_open=True)
    require_dataset(data)
    if not checkpoint.is_file():
        raise ConfigError(
            f"--checkpoint {checkpoint} does not exist; train one with `harness train planner`"
        )
    writable_dir(out, "--out")
    cfg = HeadConfig(out=out, epochs=epochs, batch=batch, lr=lr, device=device, seed=seed,
                     execution=execution, fit=fit)  # fmt: skip
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]head cache[/] {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(), console=console) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def progress(split: str, done: int, total: int) -> None:
            if split not in tasks:
                tasks[split] = bar.add_task(split, total=total)
            bar.update(tasks[split], completed=done)

        refit_head(data, checkpoint, cfg, command=shlex.join(sys.argv), say=console.print,
                   on_epoch=lambda r: typer.echo(json.dumps(r)), progress=progress)  # fmt: skip
    typer.echo(f"wrote {out / 'model.pt'}", err=True)


@train_app.command("aggregate")
def train_aggregate(
    data: Path = typer.Argument(..., help="Dataset folder written by `harness collect` (grows)."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="The planner's model.pt to start from."),
    rounds: int = typer.Option(..., "--rounds", help="Aggregation rounds."),
    out: Path = typer.Option(..., "--out", help="Folder for rounds.jsonl and each round's files."),
    routes_per_round: int = typer.Option(
        4, "--routes-per-round", help="Train routes the planner drives per round."
    ),
    epochs_per_round: int = typer.Option(
        1, "--epochs-per-round", help="Fine-tuning epochs on the grown data per round."
    ),
    lambda_: float = typer.Option(0.1, "--lambda", help="Momentum weight of the driving agent."),
    batch: int = typer.Option(8, "--batch", help="Samples per fine-tuning step."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate of the fine-tuning."),
    max_drive_s: float | None = typer.Option(
        None, "--max-drive-s", help="Cap each round's drives at this many seconds [s]."
    ),
    val_routes: int | None = typer.Option(
        None, "--val-routes", help="Evaluate only the first N val routes."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (fine-tuning)."),
    seed: int = typer.Option(0, "--seed", help="Seed of route draws, drives and training."),
    resume: bool = typer.Option(False, "--resume", help="Continue the rounds in --out."),
) -> None:
    """Closed-loop aggregation: per round the planner drives train routes, the expert labels the
    visited states, the scenes join DATA, the planner is fine-tuned and evaluated on the val
    routes; prints every round's line (DIR/rounds.jsonl) as JSON."""
    from drivejepa.train.aggregate import AggregateConfig, aggregate

    number(rounds, "--rounds", low=1)
    number(routes_per_round, "--routes-per-round", low=1)
    number(epochs_per_round, "--epochs-per-round", low=1)
    number(lambda_, "--lambda", low=0.0)
    number(lr, "--lr", low=0.0, low_open=True)
    number(batch, "--batch", low=1)
    if max_drive_s is not None:
        number(max_drive_s, "--max-drive-s", low=0.0, low_open=True)
    if val_routes is not None:
        number(val_routes, "--val-routes", low=1)
    if not (data / "manifest.json").is_file():
        raise ConfigError(f"{data} has no manifest.json; collect a dataset with `harness collect`")
    if not checkpoint.is_file():
        raise ConfigError(
            f"--checkpoint {checkpoint} does not exist; train one with `harness train planner`"
        )
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    writable_dir(out, "--out")
    cfg = AggregateConfig(data=data, checkpoint=checkpoint, out=out, rounds=rounds,
                          routes_per_round=routes_per_round, epochs_per_round=epochs_per_round,
                          device=device, seed=seed, resume=resume, lambda_=lambda_, batch=batch,
                          lr=lr, max_drive_s=max_drive_s, val_routes=val_routes,
                          command_line=tuple(sys.argv))  # fmt: skip
    for row in aggregate(cfg, progress=lambda m: typer.echo(m, err=True)):
        typer.echo(json.dumps(row))
