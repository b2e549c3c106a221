"""CLI conformance: every command and subcommand, given a bad option, a missing required option,
an out-of-range value or a non-finite number, answers ONE line on stderr and exit status 2, no
traceback, before any work starts. Runs in-process through the error boundary
(``harness.cli.main.run``) with every command's work function replaced by a tripwire, plus a few
cases through the real entry point (a subprocess, stderr not a terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from harness.cli.main import _register, app, run

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
Path_ = tuple[str, ...]

# the smallest valid arguments of each command (paths under the test's tmp folder)
REQUIRED_ARGS: dict[Path_, list[str]] = {
    ("demo",): [],
    ("doctor",): [],
    ("eval",): ["--agent", "do_nothing", "--routes", str(ROUTES), "--out", "out"],
    ("replay",): ["episode.parquet", "--out", "out.gif"],
    ("report",): ["evaldir"],
    ("gen-teachers",): ["--town", "Harness01", "--out", "out"],
    ("collect",): ["--out", "out"],
    ("serve",): [],
    ("towns",): [],
    ("routes", "info"): [str(ROUTES)],
    ("routes", "check"): [str(ROUTES)],
    ("routes", "make"): ["--town", "Harness01", "--scenario", "ControlLoss"],
    ("routes", "make-suite"): ["--towns", "Harness01", "--out", "suite.xml"],
    ("teachers", "show"): ["dataset", "--scene", "s", "--out", "s.png"],
    ("teachers", "request"): ["scene.json"],
    ("teachers", "export-scene"): ["dataset", "--scene", "s"],
    ("teachers", "export"): ["dataset", "out"],
    ("teachers", "vocabulary", "build"): ["--out", "out"],
    ("teachers", "vocabulary", "show"): [],
    ("sim", "bench"): [],
    ("train", "planner"): ["data", "--scratch", "--out", "out"],
    ("train", "pretrain"): ["data", "--out", "out"],
    ("train", "aggregate"): ["data", "--checkpoint", "m.pt", "--rounds", "1", "--out", "out"],
    ("train", "head"): ["data", "--checkpoint", "m.pt", "--out", "out"],
}
# one value outside its range per command (None: the command has no numeric option)
OUT_OF_RANGE: dict[Path_, list[str] | None] = {
    ("demo",): ["--routes", "0"],
    ("doctor",): ["--timeout", "0"],
    ("eval",): ["--traffic", "-1"],
    ("replay",): ["--every", "0"],
    ("report",): None,
    ("gen-teachers",): ["--k", "0"],
    ("collect",): ["--workers", "0"],
    ("serve",): ["--port", "0"],
    ("towns",): None,
    ("routes", "info"): None,
    ("routes", "check"): None,
    ("routes", "make"): ["--count", "0"],
    ("routes", "make-suite"): ["--per-type", "0"],
    ("teachers", "show"): None,
    ("teachers", "request"): None,
    ("teachers", "export-scene"): None,
    ("teachers", "export"): None,
    ("teachers", "vocabulary", "build"): ["--size", "0"],
    ("teachers", "vocabulary", "show"): None,
    ("sim", "bench"): ["--ticks", "0"],
    ("train", "planner"): ["--epochs", "0"],
    ("train", "pretrain"): ["--epochs", "0"],
    ("train", "aggregate"): ["--rounds", "0"],
    ("train", "head"): ["--epochs", "0"],
}
# where each command's work starts: replaced by a tripwire so a missing check cannot run it
WORK = (
    ("harness.cli.eval_cmd", "run_evaluation"),
    ("harness.cli.replay_cmd", "load_recording"),
    ("harness.cli.report_cmd", "write_report"),
    ("harness.cli.report_cmd", "write_comparison"),
    ("teachers.generate", "generate"),
    ("teachers.export", "export_dataset"),
    ("teachers.vocabulary_build", "build"),
    ("harness.demo", "run_demo"),
    ("harness.cli.doctor_cmd", "run_checks"),
    ("harness.runner.bench", "run_bench"),
    ("harness.routes.make", "make_routes"),
    ("harness.routes.make", "make_suite"),
    ("uvicorn", "run"),
    ("drivejepa.train.planner", "train_from_data"),
    ("drivejepa.train.pretrain", "pretrain"),
    ("drivejepa.data.collect", "collect"),
    ("drivejepa.train.aggregate", "aggregate"),
    ("drivejepa.train.head", "refit_head"),
)


def _leaves() -> Iterator[tuple[Path_, Any]]:
    _register()

    def walk(cmd: Any, path: Path_) -> Iterator[tuple[Path_, Any]]:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            yield path, cmd
            return
        for name, sub in sorted(subs.items()):
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


LEAVES = dict(_leaves())


class WorkStarted(AssertionError):
    """A command got past its checks and started work."""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(args) -> (status, stderr)`` in the tmp folder, with the work functions tripwired."""
    import importlib

    def tripwire(*args: Any, **kwargs: Any) -> Any:
        raise WorkStarted("work started before the input was rejected")

    for module, name in WORK:
        monkeypatch.setattr(importlib.import_module(module), name, tripwire)
    monkeypatch.chdir(tmp_path)

    def call(args: list[str]) -> tuple[int, str]:
        capsys.readouterr()
        status = run(args)
        err = capsys.readouterr().err
        return status, err

    return call


def assert_one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_tables_cover_every_command() -> None:
    assert set(LEAVES) == set(REQUIRED_ARGS) == set(OUT_OF_RANGE)


def _kind(param: Any) -> type | None:
    """int or float for a numeric parameter (typer 0.29 keeps the annotation; older typer a
    click type), else None."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:
        name = getattr(getattr(param, "type", None), "name", "")
        return {"integer": int, "integer range": int, "float": float, "float range": float}.get(
            name
        )
    kinds = set(typing.get_args(annotation)) | {annotation}
    return float if float in kinds else int if int in kinds and bool not in kinds else None


def _numeric(cmd: Any) -> list[Any]:
    return [p for p in cmd.params if _kind(p) is not None]


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_bad_option(cli: Any, path: Path_) -> None:
    status, err = cli([*path, *REQUIRED_ARGS[path], "--no-such-option"])
    assert_one_line_error(status, err, "No such option: --no-such-option")


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_missing_required(cli: Any, path: Path_) -> None:
    required = [p for p in LEAVES[path].params if p.required]
    if not required:
        assert REQUIRED_ARGS[path] == [], "a command with no required parameter needs no args"
        return
    status, err = cli(list(path))
    assert_one_line_error(status, err, "Missing")


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_out_of_range_value(cli: Any, path: Path_) -> None:
    extra = OUT_OF_RANGE[path]
    if extra is None:
        assert not _numeric(LEAVES[path]), f"{path}: give an out-of-range example"
        return
    status, err = cli([*path, *REQUIRED_ARGS[path], *extra])
    assert_one_line_error(status, err, extra[0])


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_bad_type(cli: Any, path: Path_) -> None:
    numeric = [p for p in _numeric(LEAVES[path]) if p.opts[0].startswith("--")]
    for param in numeric:
        status, err = cli([*path, *REQUIRED_ARGS[path], param.opts[0], "twelve"])
        assert_one_line_error(status, err, param.opts[0])


FLOAT_OPTIONS = [
    (path, p.opts[0])
    for path, cmd in sorted(LEAVES.items())
    for p in cmd.params
    if _kind(p) is float
]


def test_there_are_float_options() -> None:
    assert ("gen-teachers", "--every") in [(p[0], o) for p, o in FLOAT_OPTIONS]


@pytest.mark.parametrize(("path", "option"), FLOAT_OPTIONS, ids=lambda v: " ".join(v) if
                         isinstance(v, tuple) else v)  # fmt: skip
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers(cli: Any, path: Path_, option: str, value: str) -> None:
    status, err = cli([*path, *REQUIRED_ARGS[path], option, value])
    assert_one_line_error(status, err, option)


@pytest.mark.parametrize("path", [("eval",), ("gen-teachers",), ("demo",)], ids=" ".join)
def test_out_under_a_regular_file(cli: Any, tmp_path: Path, path: Path_) -> None:
    """An --out that cannot be created (a file in the way; root ignores permission bits, so a
    file stands in for a read-only folder) is rejected before any work."""
    (tmp_path / "somefile").write_text("x")
    args = [a if a != "out" else "somefile/sub" for a in REQUIRED_ARGS[path]]
    if "--out" not in args:
        args += ["--out", "somefile/sub"]
    status, err = cli([*path, *args])
    assert_one_line_error(status, err, "--out", "somefile")


def test_out_in_a_folder_without_write_permission(cli: Any, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permission bits are not enforced")
        status, err = cli(["eval", *REQUIRED_ARGS[("eval",)][:-1], "ro/out"])
        assert_one_line_error(status, err, "not writable")
    finally:
        ro.chmod(0o700)


def test_permission_error_during_work_is_one_line(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", "/results/results.json")

    monkeypatch.setattr("harness.cli.eval_cmd.run_evaluation", denied)
    status, err = cli(["eval", *REQUIRED_ARGS[("eval",)]])
    assert_one_line_error(status, err, "permission denied", "/results/results.json")


@pytest.mark.parametrize("flavour", ["click", "typer._click"])
def test_usage_errors_of_either_click_flavour(
    cli: Any, monkeypatch: pytest.MonkeyPatch, flavour: str
) -> None:
    """typer >= 0.22 raises typer._click exceptions, older typer click's own: both are caught."""
    import importlib

    try:
        exceptions = importlib.import_module(f"{flavour}.exceptions")
    except ImportError:
        pytest.skip(f"{flavour} is not installed")

    def bad(*args: Any, **kwargs: Any) -> Any:
        raise exceptions.BadParameter("must be a colour", param_hint="'--paint'")

    monkeypatch.setattr("harness.cli.eval_cmd.run_evaluation", bad)
    status, err = cli(["eval", *REQUIRED_ARGS[("eval",)]])
    assert_one_line_error(status, err, "must be a colour")


def test_help_keeps_units_in_brackets(cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Help texts write units as '[s]', '[m]': they must reach --help (Rich markup ate them)."""
    seen = 0
    for path, cmd in sorted(LEAVES.items()):
        units = [w for p in cmd.params for w in (getattr(p, "help", "") or "").split()
                 if w.startswith("[") and "]" in w]  # fmt: skip
        if not units:
            continue
        capsys.readouterr()
        assert run([*path, "--help"]) == 0
        out = capsys.readouterr().out
        for unit in units:
            assert unit in out, (path, unit)
            seen += 1
    assert seen >= 3


def _entry_point(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=full,
        timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["towns", "--nonsense"], ["gen-teachers", "--town", "X", "--out", "o", "--k", "0"],
     ["serve", "--port", "0"], ["sim", "bench", "--ticks", "many"]],
    ids=" ".join,
)  # fmt: skip
def test_entry_point_usage_errors(args: list[str]) -> None:
    proc = _entry_point(*args)
    assert_one_line_error(proc.returncode, proc.stderr)


def test_long_error_is_not_wrapped(tmp_path: Path) -> None:
    """stderr is a pipe here: the message must still be one line, not wrapped at 80 columns."""
    missing = str(tmp_path / "a" / "rather" / "long" / "path" / "to" / "no" / "routes.xml")
    proc = _entry_point(
        "eval", "--agent", "do_nothing", "--routes", missing, "--out", str(tmp_path)
    )
    assert_one_line_error(proc.returncode, proc.stderr, missing)
    assert len(proc.stderr.strip()) > 80
