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

train_app = command_group("Train Drive-JEPA's parts (encoder pretraining, planner).")
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
