"""`harness routes info|check` through the installed entry point: output and exit statuses."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from harness.routes import RouteConfig, read_routes, write_routes

HARNESS = Path(sys.executable).with_name("harness")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HARNESS), *args], capture_output=True, text=True, timeout=120, env=None, check=False
    )


@pytest.fixture(scope="module")
def small_routes(bench2drive_xml: Path) -> list[RouteConfig]:
    """The 4 Bench2Drive Town01 routes plus one Town12 route (no map here: not runnable)."""
    routes = read_routes(bench2drive_xml)
    return [r for r in routes if r.town == "Town01"] + [
        next(r for r in routes if r.town == "Town12")
    ]


def test_help_on_every_command() -> None:
    from typer.testing import CliRunner

    from harness.cli import commands  # noqa: F401  (registers the command modules)
    from harness.cli.main import app

    runner = CliRunner()
    for args in (["routes", "--help"], ["routes", "info", "--help"], ["routes", "check", "--help"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "Usage" in res.output
    assert "exit status 1" in " ".join(
        runner.invoke(app, ["routes", "check", "--help"]).output.split()
    )


def test_info_counts(small_routes: list[RouteConfig], shared_maps: Path, tmp_path: Path) -> None:
    f = tmp_path / "small.xml"
    write_routes(small_routes, f)
    res = _run("routes", "info", str(f))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "5 routes, 5 scenarios" in out
    assert "Town01 │ 4 │ yes" in out and "Town12 │ 1 │ no" in out
    assert "runnable routes: 4 of 5" in out


def test_check_clean_file_exits_0(
    small_routes: list[RouteConfig], shared_maps: Path, tmp_path: Path
) -> None:
    f = tmp_path / "small.xml"
    write_routes(small_routes, f)
    res = _run("routes", "check", str(f))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK: 5 routes, 4 runnable, 1 not runnable" in " ".join(res.stdout.split())


def test_check_problems_exit_1(
    small_routes: list[RouteConfig], shared_maps: Path, tmp_path: Path
) -> None:
    route = small_routes[0]
    sc = route.scenarios[0]
    x, y, z, yaw = sc.trigger
    moved = dataclasses.replace(sc, trigger=(x, y, z, yaw + 90.0))  # facing across the road
    keypoints = route.keypoints.copy()
    keypoints[3, 1] += 1.6  # pushed 1.6 m sideways, still within the planner's reach
    bad = dataclasses.replace(route, keypoints=keypoints, scenarios=(moved,))
    f = tmp_path / "bad.xml"
    write_routes([bad], f)
    res = _run("routes", "check", str(f))
    assert res.returncode == 1, res.stdout + res.stderr
    out = " ".join(res.stdout.split())
    assert f"scenario {sc.name}" in out and "keypoint 3" in out
    assert "2 problems in 1 routes" in out


def test_bad_input_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "broken.xml"
    f.write_text("<routes>\n<route id='1' town='Town01'>\n</routes>\n")
    res = _run("routes", "check", str(f))
    assert res.returncode == 2
    assert "broken.xml:3" in " ".join(res.stderr.split())
    res = _run("routes", "info", str(tmp_path / "missing.xml"))
    assert res.returncode == 2 and "does not exist" in " ".join(res.stderr.split())
