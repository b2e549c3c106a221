"""`harness train ...`: training commands of the Drive-JEPA planner package (imported lazily:
the CLI is the only edge of the harness that imports ``drivejepa``)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from harness.cli.checks import number, writable_dir
from harness.cli.main import app, command_group
from harness.errors import ConfigError

train_app = command_group("Train Drive-JEPA's parts (encoder pretraining, planner, aggregation).")
app.add_typer(train_app, name="train")


@train_app.command("planner")
def train_planner(
    data: Path = typer.Argument(..., help="Dataset folder written by `harness collect`."),
    encoder: Path | None = typer.Option(
        None, "--encoder", help="Pretrained encoder.pt (`harness train pretrain`)."
    ),
    scratch: bool = typer.Option(False, "--scratch", help="Randomly initialised encoder instead."),
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
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation and batch order."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
) -> None:
    """Train the planner (imitation + MTD + online score targets); prints the last epoch as JSON."""
    from drivejepa.train.planner import TrainConfig, summary, train_from_data

    number(epochs, "--epochs", low=1)
    number(batch, "--batch", low=1)
    number(lr, "--lr", low=0.0, low_open=True)
    number(encoder_lr_scale, "--encoder-lr-scale", low=0.0)
    if max_minutes is not None:
        number(max_minutes, "--max-minutes", low=0.0, low_open=True)
    if (encoder is None) == (not scratch):
        raise ConfigError("pass exactly one of --encoder ENC.pt and --scratch")
    if encoder is not None and not encoder.is_file():
        raise ConfigError(f"--encoder {encoder} does not exist; run `harness train pretrain` first")
    if not (data / "manifest.json").is_file():
        raise ConfigError(f"{data} has no manifest.json; collect a dataset with `harness collect`")
    writable_dir(out, "--out")
    cfg = TrainConfig(out=out, epochs=epochs, max_minutes=max_minutes, batch=batch, lr=lr,
                      encoder_lr_scale=encoder_lr_scale, mtd=not no_mtd, device=device, seed=seed,
                      resume=resume)  # fmt: skip
    history = train_from_data(data, encoder, cfg, command=shlex.join(sys.argv))
    typer.echo(json.dumps({"checkpoint": str(out / "model.pt"), **summary(history)}))


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
