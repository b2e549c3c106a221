"""`harness replay`: render a recorded episode (Parquet) top-down as a GIF, MP4 or PNG frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from harness.cli.checks import number, writable_dir, writable_file
from harness.cli.main import app
from harness.maps import load_town
from harness.sim.replay import VIEW_M, check_output, render_topdown
from harness.world.recording import load_recording


@app.command("replay")
def replay(
    episode: Annotated[
        Path, typer.Argument(help="Episode recording (.parquet) written by the runner.")
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            "-o",
            help="FILE.gif, FILE.mp4 (needs imageio-ffmpeg) or a folder (no suffix or a trailing '/') for PNG frames.",
        ),
    ],
    fps: Annotated[float, typer.Option(help="Frames per second of the output.")] = 10.0,
    every: Annotated[
        int, typer.Option(min=1, help="Render every n-th recorded tick (ticks are 0.05 s).")
    ] = 2,
    size: Annotated[int, typer.Option(min=2, help="Output frame side in pixels (even).")] = 512,
    view: Annotated[
        float, typer.Option(help="Side of the ego-following window in metres.")
    ] = VIEW_M,
    whole_town: Annotated[
        bool, typer.Option(help="Show the whole town instead of following the ego.")
    ] = False,
) -> None:
    """Render EPISODE top-down (map, lights, actors by kind, the ego, events, time) to --out."""
    number(fps, "--fps", low=0.0, low_open=True)
    number(view, "--view", low=0.0, low_open=True)
    if check_output(out) == "folder":
        writable_dir(Path(out), "--out")
    else:
        writable_file(Path(out), "--out")
    recording = load_recording(episode)
    town = load_town(recording.town)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]replay[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"{episode.name} ({recording.town})", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        written = render_topdown(
            recording, town, out, fps=fps, every=every, size_px=size,
            follow_ego=not whole_town, view_m=view, progress=advance,
        )  # fmt: skip
    Console().print(f"wrote {written}")
