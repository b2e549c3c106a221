"""Resume guards of `harness eval`: a run is resumed only with the fingerprint of the run that
started it (run.json): a route file edited in place, another agent (also when run.json is
gone), another agent file content and --record are refused with a message naming what differs,
and the CLI turns that into one line and exit status 2."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli.main import run
from harness.errors import ConfigError
from harness.leaderboard.route_criteria import CriteriaConfig
from harness.runner import Mode, RunConfig, run_evaluation
from harness.world.backend import TrafficConfig

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
AGENT = """
from harness.leaderboard.agent import AutonomousAgent
from harness.world.control import VehicleControl


def get_entry_point():
    return "Brake"


class Brake(AutonomousAgent):
    def sensors(self):
        return [{"type": "sensor.speedometer", "id": "speed"}]

    def run_step(self, input_data, timestamp):
        return VehicleControl(brake=1.0)
"""


def _config(out: Path, routes: Path, agent: str = "do_nothing", **kw: object) -> RunConfig:
    return RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent=agent, routes_file=routes, out_dir=out, subset="0",
        criteria=CriteriaConfig(blocked_time_s=1.0, tick_limit=4000),
        traffic=TrafficConfig(vehicles=0, pedestrians=0), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def started(tmp_path: Path) -> tuple[Path, Path]:
    """(out folder, route file copy) after one finished route."""
    routes = tmp_path / "routes.xml"
    routes.write_text(ROUTES.read_text())
    out = tmp_path / "out"
    assert run_evaluation(_config(out, routes)).ran == (0,)
    return out, routes


def test_same_settings_resume(started: tuple[Path, Path]) -> None:
    out, routes = started
    assert run_evaluation(_config(out, routes)).ran == ()


def test_route_file_edited_in_place_is_refused(started: tuple[Path, Path]) -> None:
    out, routes = started
    routes.write_text(routes.read_text().replace('y="1.75" z="0.00"', 'y="1.75" z="0.20"', 1))
    with pytest.raises(ConfigError, match="routes_sha256"):
        run_evaluation(_config(out, routes))


def test_record_on_resume_is_refused(started: tuple[Path, Path]) -> None:
    out, routes = started
    with pytest.raises(ConfigError, match="record: false -> true"):
        run_evaluation(_config(out, routes, record=True))


def test_missing_run_file_with_records_is_refused(started: tuple[Path, Path]) -> None:
    out, routes = started
    (out / "harness" / "run.json").unlink()
    with pytest.raises(ConfigError, match="run.json.*missing"):
        run_evaluation(_config(out, routes, agent="lane_follow"))
    results = json.loads((out / "results.json").read_text())
    assert len(results["_checkpoint"]["records"]) == 1  # nothing mixed in
    fresh = run_evaluation(replace(_config(out, routes), resume=False))
    assert fresh.ran == (0,)


def test_agent_file_edited_in_place_is_refused(tmp_path: Path) -> None:
    agent = tmp_path / "brake_agent.py"
    agent.write_text(AGENT)
    out = tmp_path / "out"
    run_evaluation(_config(out, ROUTES, agent=str(agent)))
    agent.write_text(AGENT.replace("brake=1.0", "brake=0.9"))
    with pytest.raises(ConfigError, match="agent_sha256"):
        run_evaluation(_config(out, ROUTES, agent=str(agent)))


def test_cli_names_what_differs(
    started: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, routes = started
    capsys.readouterr()
    status = run(["eval", "--agent", "lane_follow", "--routes", str(routes), "--routes-subset",
                  "0", "--out", str(out), "--blocked-time", "1", "--traffic", "0",
                  "--pedestrians", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert 'agent: "do_nothing" -> "lane_follow"' in err
