"""`harness report`: regenerate an eval folder's report.html, or compare several runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.cli.checks import writable_file
from harness.cli.main import app
from harness.report.page import REPORT_FILE, write_comparison, write_report


@app.command("report")
def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(help="Eval output folders (each holding results.json).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=f"HTML file to write (default: DIR/{REPORT_FILE} for one folder, "
            "comparison.html here for several).",
        ),
    ] = None,
) -> None:
    """One DIR: (re)write DIR/report.html (or --out); several: a side-by-side comparison page.
    Exit 2 when a DIR is no eval output folder."""
    if out is not None:
        writable_file(out, "--out")
    if len(dirs) == 1:
        written = write_report(dirs[0], out)
    else:
        written = write_comparison(dirs, out if out is not None else Path("comparison.html"))
    Console().print(f"wrote {written}")
