"""The route runner and evaluation on the built-in town Harness01: baselines' outcomes, per-step
Parquet, failure statuses (agent crash, simulation crash), unknown towns and unplannable routes
as input errors, invalid sensors, Ctrl-C,
and resume giving the same results.json as an uninterrupted run."""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.errors import (
    ConfigError,
    RoutePlanningError,
    UnknownTownError,
)
from harness.leaderboard.route_criteria import CriteriaConfig
from harness.routes import read_routes, write_routes
from harness.runner import Mode, RunConfig, parse_subset, route_seed, run_evaluation
from harness.runner.backends import BACKENDS, BackendSpec, make_backend
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import SimulatorBackend, TrafficConfig
from harness.world.control import VehicleControl
from harness.world.recording import load_recording

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
FAST_BLOCKED_S = 2.0  # [s] blocked timeout that ends a standing agent's route quickly
LIGHT_TRAFFIC = TrafficConfig(vehicles=6, pedestrians=4)

DO_NOTHING_BODY = """
def sensors(self):
    return [{"type": "sensor.speedometer", "id": "speed"}]
"""


def _agent_file(tmp_path: Path, stem: str, body: str, base: str = "AutonomousAgent") -> Path:
    """Write a leaderboard-style agent file whose class holds the brake unless ``body``
    overrides methods."""
    src = f"""
import os
from harness.world.control import VehicleControl
from harness.leaderboard.agent import AutonomousAgent, PrivilegedAgent


def get_entry_point():
    return "TestAgent"


class TestAgent({base}):
    steps = 0

    def run_step(self, input_data, timestamp):
        TestAgent.steps += 1
        self.on_step(input_data, timestamp)
        return VehicleControl(brake=1.0)

    def on_step(self, input_data, timestamp):
        pass
{textwrap.indent(textwrap.dedent(body), "    ")}
"""
    path = tmp_path / f"{stem}.py"
    path.write_text(src)
    return path


def _config(out: Path, agent: str | Path, subset: str, **kw: Any) -> RunConfig:
    kw.setdefault("criteria", CriteriaConfig(blocked_time_s=FAST_BLOCKED_S, tick_limit=4000))
    kw.setdefault("traffic", LIGHT_TRAFFIC)
    return RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent=str(agent), routes_file=ROUTES, out_dir=out, subset=subset, **kw
    )


def _results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def _without_wall_time(data: dict[str, Any]) -> dict[str, Any]:
    """results.json minus duration_system (wall time differs between runs) and minus the run's
    time stamp at the end of each save_name ('_%m_%d_%H_%M_%S', taken once per run)."""
    data = json.loads(json.dumps(data))
    data["_checkpoint"]["global_record"]["meta"].pop("duration_system")
    for rec in data["_checkpoint"]["records"]:
        rec["meta"].pop("duration_system")
        rec["save_name"] = rec["save_name"].rsplit("_", 5)[0]
    return data


# ---------------------------------------------------------------- subsets and seeds
def test_parse_subset() -> None:
    assert parse_subset(None, 4) == (0, 1, 2, 3)
    assert parse_subset("", 4) == (0, 1, 2, 3)
    assert parse_subset("0,3-5", 8) == (0, 3, 4, 5)
    assert parse_subset(" 5, 1-2 ,2", 8) == (1, 2, 5)
    for bad in ("8", "-1", "a", "3-1", "1-", "0,,2", "2-9"):
        with pytest.raises(ConfigError):
            parse_subset(bad, 8)
    with pytest.raises(ConfigError):
        parse_subset(None, 0)


def test_route_seed_depends_on_run_seed_and_file_position_only() -> None:
    assert route_seed(0, 3) == route_seed(0, 3)
    assert len({route_seed(0, i) for i in range(8)}) == 8
    assert route_seed(1, 3) != route_seed(0, 3)


def test_config_rejects_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="backend"):
        _config(tmp_path, "do_nothing", "0", backend=BackendSpec("carla-9.99"))


# ---------------------------------------------------------------- baselines
def test_do_nothing_is_blocked_with_zero_scores(tmp_path: Path) -> None:
    result = run_evaluation(_config(tmp_path, "do_nothing", "0-1"))
    assert len(result.records) == 2
    for rec in result.records:
        assert rec.status == "Failed - Agent got blocked"
        assert rec.scores.score_route == pytest.approx(0.0, abs=0.5)
        assert rec.scores.score_composed == pytest.approx(0.0, abs=0.5)
        assert rec.infractions["vehicle_blocked"]
        assert rec.duration_game_s == pytest.approx(FAST_BLOCKED_S, abs=0.2)
        steps = pd.read_parquet(tmp_path / "steps" / f"{rec.route_id}.parquet")
        assert steps["speed_mps"].abs().max() < 0.1
        assert steps["plan_x_m"].isna().all()  # the base agent exposes no plan
    data = _results(tmp_path)
    assert data["_checkpoint"]["progress"] == [2, 2]
    assert data["entry_status"] == "Finished" and data["eligible"] is True
    assert data["sensors"] == ["carla_speedometer"]  # the leaderboard writes icon names


def test_lane_follow_completes_a_route_and_stores_its_plans(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path, "lane_follow", "0", criteria=Mode.BENCH2DRIVE.criteria(),
        traffic=TrafficConfig(vehicles=0, pedestrians=0),
    )  # fmt: skip
    result = run_evaluation(cfg)
    rec = result.records[0]
    assert rec.status in ("Perfect", "Completed"), rec
    assert rec.scores.score_route == 100.0
    steps = pd.read_parquet(tmp_path / "steps" / "RouteScenario_0_rep0.parquet")
    assert len(steps) == round(rec.duration_game_s / 0.05)
    assert np.all(np.diff(steps["route_progress_pct"]) >= 0)
    assert steps["route_progress_pct"].iloc[-1] == 100.0
    assert steps["speed_mps"].median() == pytest.approx(6.0, abs=0.3)  # its cruise speed
    assert np.all(np.diff(steps["time_s"]) == pytest.approx(0.05))
    # the plan behind each control starts ahead of the ego
    plan_x = steps["plan_x_m"].iloc[100]
    assert len(plan_x) == 30 and plan_x[0] > steps["x_m"].iloc[100]


# ---------------------------------------------------------------- failures
def test_agent_crash_fails_the_route_and_the_run_goes_on(tmp_path: Path) -> None:
    agent = _agent_file(
        tmp_path, "crash_agent",
        DO_NOTHING_BODY + """
def on_step(self, input_data, timestamp):
    assert "speed" in input_data
    if timestamp >= 0.5:
        raise RuntimeError("boom")
""",
    )  # fmt: skip
    result = run_evaluation(_config(tmp_path / "out", agent, "0-1"))
    assert [r.status for r in result.records] == ["Failed - Agent crashed"] * 2
    assert result.records[0].duration_game_s == pytest.approx(0.5)
    data = _results(tmp_path / "out")
    assert data["entry_status"] == "Finished"  # agent crashes do not mark the entry
    assert data["_checkpoint"]["progress"] == [2, 2]


def test_agent_that_hangs_is_timed_out_and_the_run_goes_on(tmp_path: Path) -> None:
    """Per-call time limits: a set-up that sleeps fails as the leaderboard's watchdog fails it
    ("Agent couldn't be set up"), a run_step that sleeps as "Agent crashed"; the other routes
    of the run still run."""
    slow_setup = _agent_file(
        tmp_path, "slow_setup_agent",
        DO_NOTHING_BODY + """
def setup(self, path_to_conf_file):
    import time
    time.sleep(30)
""",
    )  # fmt: skip
    result = run_evaluation(_config(tmp_path / "a", slow_setup, "0-1", agent_timeout_s=0.3))
    assert [r.status for r in result.records] == ["Failed - Agent couldn't be set up"] * 2
    slow_step = _agent_file(
        tmp_path, "slow_step_agent",
        DO_NOTHING_BODY + """
def on_step(self, input_data, timestamp):
    if 0.5 <= timestamp < 0.55:
        import time
        time.sleep(30)
""",
    )  # fmt: skip
    t0 = time.monotonic()
    result = run_evaluation(_config(tmp_path / "b", slow_step, "0-1", agent_timeout_s=0.3))
    assert [r.status for r in result.records] == ["Failed - Agent crashed"] * 2
    assert result.records[0].duration_game_s == pytest.approx(0.5)
    assert time.monotonic() - t0 < 20.0  # neither 30 s sleep ran to its end


class _CrashingSimulator(EmbeddedSimulator):
    """Raises in tick() at frame 10."""

    def tick(self, control: VehicleControl) -> Any:
        if self.state.frame >= 10:
            raise RuntimeError("simulator exploded")
        return super().tick(control)


def test_simulation_crash_fails_the_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def build(spec: BackendSpec, privileged: bool) -> SimulatorBackend:
        return _CrashingSimulator()

    monkeypatch.setitem(BACKENDS, "crashing", build)
    cfg = _config(tmp_path, "do_nothing", "0-1", backend=BackendSpec("crashing"))
    result = run_evaluation(cfg)
    assert [r.status for r in result.records] == ["Failed - Simulation crashed"] * 2
    assert result.records[0].duration_game_s == pytest.approx(0.5)
    assert _results(tmp_path)["entry_status"] == "Crashed"


def test_unknown_town_is_an_input_error_before_the_run(tmp_path: Path) -> None:
    """A route on a town that is not available could only 'crash': it is bad input, found
    before any route runs (no results.json), naming the route."""
    routes = read_routes(ROUTES)[:2]
    routes[1] = replace(routes[1], town="NoSuchTown")
    f = tmp_path / "routes.xml"
    write_routes(routes, f)
    cfg = replace(_config(tmp_path / "out", "do_nothing", ""), routes_file=f)
    with pytest.raises(UnknownTownError, match=f"route {routes[1].id} .*NoSuchTown"):
        run_evaluation(cfg)
    assert not (tmp_path / "out" / "results.json").exists()


def test_unplannable_route_is_an_input_error_before_the_run(tmp_path: Path) -> None:
    routes = read_routes(ROUTES)[:2]
    keypoints = routes[1].keypoints.copy()
    keypoints[0, :2] = (5000.0, 5000.0)  # far off every lane
    routes[1] = replace(routes[1], keypoints=keypoints)
    f = tmp_path / "routes.xml"
    write_routes(routes, f)
    cfg = replace(_config(tmp_path / "out", "do_nothing", ""), routes_file=f)
    with pytest.raises(RoutePlanningError, match="keypoint 0"):
        run_evaluation(cfg)
    assert not (tmp_path / "out" / "results.json").exists()


def test_invalid_sensors_are_recorded_as_the_leaderboard_rejects_them(tmp_path: Path) -> None:
    # a GNSS 5.1 m from the origin: the leaderboard raises SensorConfigurationInvalid and records
    # "Failed - Agent's sensors were invalid" with entry status "Rejected"; the run goes on
    agent = _agent_file(
        tmp_path, "far_sensor_agent",
        """
def sensors(self):
    return [{"type": "sensor.other.gnss", "id": "gps", "x": 5.0, "y": 0.0, "z": 1.0,
             "roll": 0.0, "pitch": 0.0, "yaw": 0.0}]
""",
    )  # fmt: skip
    result = run_evaluation(_config(tmp_path / "out", agent, "0-1"))
    assert [r.status for r in result.records] == ["Failed - Agent's sensors were invalid"] * 2
    data = _results(tmp_path / "out")
    assert data["entry_status"] == "Rejected"
    assert data["_checkpoint"]["progress"] == [2, 2]
    assert data["sensors"] == []  # the leaderboard saves the icons only after validation
    assert all(r["scores"]["score_route"] == 0 for r in data["_checkpoint"]["records"])


def test_privileged_agent_sees_the_live_world(tmp_path: Path) -> None:
    agent = _agent_file(
        tmp_path, "privileged_agent",
        DO_NOTHING_BODY + """
def setup(self, path_to_conf_file):
    self.town_name = self.world.town.name  # set_world came before setup

def on_step(self, input_data, timestamp):
    state = self.world.state
    assert state.time_s == timestamp, (state.time_s, timestamp)
    assert abs(state.actors.speed[0] - input_data["speed"][1]["speed"]) < 1e-9
""",
        base="PrivilegedAgent",
    )  # fmt: skip
    result = run_evaluation(_config(tmp_path / "out", agent, "0"))
    assert result.privileged
    assert result.records[0].status == "Failed - Agent got blocked"
    run = json.loads((tmp_path / "out" / "harness" / "run.json").read_text())
    assert run["privileged"] is True
    data = _results(tmp_path / "out")  # finished, yet a privileged run is never eligible
    assert data["entry_status"] == "Finished" and data["eligible"] is False


def test_record_writes_episode_recordings(tmp_path: Path) -> None:
    result = run_evaluation(_config(tmp_path, "do_nothing", "0", record=True))
    rec = load_recording(tmp_path / "recordings" / "RouteScenario_0_rep0.parquet")
    assert rec.meta["route_id"] == "0" and rec.meta["agent"] == "do_nothing"
    assert rec.town == "Harness01"
    assert len(rec) == round(result.records[0].duration_game_s / 0.05) + 1  # reset state too


# ---------------------------------------------------------------- resume
def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    """lane_follow on 3 routes with traffic: 1 route, stop, resume == one uninterrupted run."""
    kw: dict[str, Any] = {
        "criteria": CriteriaConfig(blocked_time_s=60.0, tick_limit=200),
        "traffic": TrafficConfig(vehicles=12, pedestrians=6),
        "seed": 7,
    }
    full = run_evaluation(_config(tmp_path / "full", "lane_follow", "0,3,5", **kw))
    assert len(full.ran) == 3

    def stop_after_first(route: Any, result: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_evaluation(
            _config(tmp_path / "split", "lane_follow", "0,3,5", **kw), on_route=stop_after_first
        )
    assert _results(tmp_path / "split")["_checkpoint"]["progress"] == [1, 3]
    resumed = run_evaluation(_config(tmp_path / "split", "lane_follow", "0,3,5", **kw))
    assert resumed.ran == (1, 2)
    assert _without_wall_time(_results(tmp_path / "split")) == _without_wall_time(
        _results(tmp_path / "full")
    )
    stamp = json.loads((tmp_path / "split" / "harness" / "run.json").read_text())["stamp"]
    names = [r["save_name"] for r in _results(tmp_path / "split")["_checkpoint"]["records"]]
    assert all(n.endswith(f"_{stamp}") for n in names), (stamp, names)  # resumed: same stamp
    for name in names:
        assert (tmp_path / "split" / "metric_info" / name / "metric_info.json").is_file()
    a = pd.read_parquet(tmp_path / "full" / "steps" / "RouteScenario_5_rep0.parquet")
    b = pd.read_parquet(tmp_path / "split" / "steps" / "RouteScenario_5_rep0.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_ctrl_c_mid_route_leaves_a_valid_resumable_results_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent_file(
        tmp_path, "interrupt_agent",
        DO_NOTHING_BODY + """
def on_step(self, input_data, timestamp):
    stop_at = int(os.environ.get("TEST_INTERRUPT_AT_STEP", "0"))
    if stop_at and TestAgent.steps == stop_at:
        raise KeyboardInterrupt
""",
    )  # fmt: skip
    ticks_per_route = round(FAST_BLOCKED_S / 0.05) + 1
    monkeypatch.setenv("TEST_INTERRUPT_AT_STEP", str(ticks_per_route + 10))  # inside route 2
    cfg = _config(tmp_path / "split", agent, "0-2")
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(cfg)
    data = _results(tmp_path / "split")
    assert data["_checkpoint"]["progress"] == [1, 3]
    assert len(data["_checkpoint"]["records"]) == 1
    assert data["entry_status"] == "Started" and data["eligible"] is False
    assert not (tmp_path / "split" / "steps" / "RouteScenario_1_rep0.parquet").exists()

    monkeypatch.delenv("TEST_INTERRUPT_AT_STEP")
    resumed = run_evaluation(cfg)
    assert resumed.ran == (1, 2)
    full = run_evaluation(_config(tmp_path / "full", agent, "0-2"))
    assert full.ran == (0, 1, 2)
    assert _without_wall_time(_results(tmp_path / "split")) == _without_wall_time(
        _results(tmp_path / "full")
    )


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    run_evaluation(_config(tmp_path, "do_nothing", "0"))
    again = run_evaluation(_config(tmp_path, "do_nothing", "0"))
    assert again.ran == () and len(again.records) == 1
    with pytest.raises(ConfigError, match="seed"):
        run_evaluation(_config(tmp_path, "do_nothing", "0", seed=3))
    fresh = run_evaluation(_config(tmp_path, "do_nothing", "0", seed=3, resume=False))
    assert fresh.ran == (0,)


def test_backend_registry_default_is_embedded() -> None:
    assert isinstance(make_backend(BackendSpec()), EmbeddedSimulator)
    assert set(BACKENDS) >= {"embedded", "carla"}
