"""Every input error of the CLI gives one clear message and exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BUILTIN_ROUTES = Path(__file__).resolve().parents[1] / "scenarios" / "routes" / "harness01_routes.xml"


def run(args: list[str], env_extra: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CARLA_ROOT"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_unknown_town_lists_what_was_searched(tmp_path: Path) -> None:
    proc = run(["sim", "bench", "--town", "NoSuchTown", "--ticks", "1"], {"HARNESS_MAPS": str(tmp_path)})
    assert_clean_error(proc, "NoSuchTown", str(tmp_path), "Harness01")


def test_invalid_opendrive_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "Broken.xodr").write_text("<notOpenDrive><road/></notOpenDrive>")
    proc = run(["sim", "bench", "--town", "Broken", "--ticks", "1"], {"HARNESS_MAPS": str(tmp_path)})
    assert_clean_error(proc, "Broken.xodr")


def test_malformed_route_xml_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<routes>\n  <route id="0" town="Harness01">\n    <waypoints>\n  </route>\n</routes>\n')
    proc = run(["routes", "check", str(bad)])
    assert_clean_error(proc, "bad.xml", ":4")


def test_unplannable_route_names_route_and_keypoint(tmp_path: Path) -> None:
    text = BUILTIN_ROUTES.read_text()
    start = text.index("<position")
    # move the first keypoint of the first route far off any road
    end = text.index("/>", start)
    bad = text[:start] + '<position x="5000.0" y="5000.0" z="0.0"' + text[end:]
    path = tmp_path / "unplannable.xml"
    path.write_text(bad)
    proc = run(["routes", "check", str(path)])
    assert proc.returncode == 1, proc.stderr + proc.stdout  # a problem in a valid file: exit 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "keypoint 0" in proc.stdout and "route 0" in proc.stdout.lower()


def test_bad_option_value_is_a_usage_error() -> None:
    proc = run(["sim", "bench", "--camera", "wide", "--ticks", "1"])
    assert_clean_error(proc, "WIDTHxHEIGHT")


@pytest.mark.parametrize("cmd", [[], ["towns"], ["routes"], ["routes", "check"], ["sim", "bench"], ["replay"], ["demo"]])
def test_every_command_has_help(cmd: list[str]) -> None:
    proc = run([*cmd, "--help"])
    assert proc.returncode == 0 and "Usage" in proc.stdout
