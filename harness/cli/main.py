"""The `harness` command line. Each command group lives in its own module; :func:`main` is the one
error boundary: usage errors (bad option, missing option, out-of-range value), input errors
(HarnessError) and permission errors become ONE line on stderr and exit status 2, never a
traceback."""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from harness.errors import HarnessError

USAGE_EXIT = 2  # bad command line or bad input: the user can fix it
INTERRUPTED_EXIT = 130  # shell convention for SIGINT
APP_SETTINGS: dict[str, Any] = {
    "no_args_is_help": True,
    # plain help: Rich markup would eat the units in brackets ("[s]", "[m]") from every --help
    "rich_markup_mode": None,
}
"""Settings of every Typer app of the CLI (the root app and each command group)."""

app = typer.Typer(
    name="harness",
    help="Closed-loop CARLA harness: towns, routes, embedded simulator, teachers, evaluation.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **APP_SETTINGS,
)


def command_group(help_text: str) -> typer.Typer:
    """A command group (``harness routes ...``) with the CLI's common settings."""
    return typer.Typer(help=help_text, **APP_SETTINGS)


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


def _click_flavours() -> list[Any]:
    """The exceptions modules of every click the installed typer may raise from: typer >= 0.22
    vendors click as ``typer._click``; older typer versions use click itself."""
    mods = []
    try:
        from typer._click import exceptions as vendored

        mods.append(vendored)
    except ImportError:  # typer that still depends on click
        pass
    try:
        from click import exceptions as upstream

        mods.append(upstream)
    except ImportError:  # typer that no longer installs click
        pass
    return mods


def _types(name: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(m, name) for m in _click_flavours() if hasattr(m, name))


def one_line(text: str) -> str:
    """``text`` on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(text).split())


def report(message: str, kind: str = "error") -> None:
    """Write an error (or a warning) as one unwrapped line on stderr (no Rich: it wraps at 80
    columns when stderr is not a terminal and reads brackets as markup)."""
    sys.stderr.write(f"{kind}: {one_line(message)}\n")
    sys.stderr.flush()


def _usage_message(exc: BaseException) -> str:
    fmt = getattr(exc, "format_message", None)
    text = fmt() if callable(fmt) else str(exc)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f"{text} (see '{ctx.command_path} --help')"
    return text


def _permission_message(exc: PermissionError) -> str:
    where = f" on {exc.filename}" if exc.filename else ""
    return (
        f"permission denied{where} ({exc.strerror or exc}); pick a folder you can write to "
        "or fix its permissions"
    )


def _show_help(exc: BaseException) -> int:
    """``harness GROUP`` without a command: its help on stdout (click's no-args-is-help)."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        sys.stdout.write(ctx.get_help() + "\n")
    return USAGE_EXIT


def run(args: list[str] | None = None) -> int:
    """Run the CLI on ``args`` (default sys.argv[1:]) inside the error boundary; the exit status."""
    _register()
    exits: tuple[type[BaseException], ...] = (typer.Exit, *_types("Exit"))
    aborts: tuple[type[BaseException], ...] = (typer.Abort, KeyboardInterrupt, *_types("Abort"))
    no_args = _types("NoArgsIsHelpError")
    usage = _types("ClickException")
    try:
        rc = app(args=args, standalone_mode=False, prog_name="harness")
    except HarnessError as exc:
        report(str(exc))
        return exc.exit_code
    except PermissionError as exc:
        report(_permission_message(exc))
        return USAGE_EXIT
    except exits as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except aborts:
        sys.stderr.write("aborted\n")
        return INTERRUPTED_EXIT
    except no_args as exc:
        return _show_help(exc)
    except usage as exc:  # every click flavour: no such option, bad value, missing option, ...
        report(_usage_message(exc))
        return USAGE_EXIT
    return rc if isinstance(rc, int) else 0


def main() -> None:
    """Console-script entry point: :func:`run`; returns on success, else exits with its status."""
    status = run()
    if status:
        sys.exit(status)
