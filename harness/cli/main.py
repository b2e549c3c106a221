"""The `harness` command line. Each command group lives in its own module; errors the user can fix
(HarnessError) become one message and exit status 2, never a traceback."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from harness.errors import HarnessError

app = typer.Typer(
    name="harness",
    help="Closed-loop CARLA harness: towns, routes, embedded simulator, teachers, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    """Attach the command modules (imported here so `harness --help` lists all of them)."""
    from harness.cli import commands  # noqa: F401  (each module registers itself on `app`)


def main() -> None:
    """Entry point with the error boundary: HarnessError -> message on stderr, exit status 2."""
    _register()
    try:
        rc = app(standalone_mode=False)
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(rc, int) and rc != 0:
        sys.exit(rc)
