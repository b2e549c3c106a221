"""Agent interface and loader: the leaderboard lifecycle, control conversion, privileged agents,
loading by path / registered name, and every load error."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.leaderboard.agent import (
    AgentControlError,
    AutonomousAgent,
    LiveWorldView,
    PrivilegedAgent,
    Track,
    as_vehicle_control,
    checked_plan,
    is_privileged,
    run_agent_step,
)
from harness.leaderboard.loader import AGENTS_DIR_ENV, AgentLoadError, load_agent
from harness.maps.geo import GeoReference
from harness.sim.sensors.spec import validate_sensors
from harness.world.control import VehicleControl
from harness.world.state import ActorArrays, WorldState

AGENT_SOURCE = """
from harness.world.control import VehicleControl
from harness.leaderboard.agent import AutonomousAgent

def get_entry_point():
    return "{name}"

class {name}(AutonomousAgent):
    def sensors(self):
        return []

    def run_step(self, input_data, timestamp):
        return VehicleControl(throttle={throttle})
"""


@pytest.fixture(autouse=True)
def _isolated_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own sys.path / sys.modules view, so loaded agent modules do not leak."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))


def _write_agent(folder: Path, stem: str, name: str = "MyAgent", throttle: float = 0.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(AGENT_SOURCE.format(name=name, throttle=throttle))
    return path


def test_vehicle_control_passes_through_and_carla_like_objects_convert() -> None:
    ours = VehicleControl(throttle=0.3)
    assert as_vehicle_control(ours) is ours
    carla_like = SimpleNamespace(
        throttle=0.4, steer=-0.2, brake=0.0, hand_brake=False, reverse=True,
        manual_gear_shift=False, gear=0,
    )  # fmt: skip
    c = as_vehicle_control(carla_like)
    assert (c.throttle, c.steer, c.brake, c.reverse) == (0.4, -0.2, 0.0, True)
    partial = as_vehicle_control(SimpleNamespace(throttle=2.0, steer=0.0, brake=0.0))
    assert partial.throttle == 1.0 and partial.hand_brake is False  # clipped, defaults filled
    with pytest.raises(AgentControlError, match="lacks brake"):
        as_vehicle_control(SimpleNamespace(throttle=0.1, steer=0.0))


def test_lifecycle_defaults_and_global_plan() -> None:
    agent = AutonomousAgent("localhost", 2000, debug=True)
    assert agent.track is Track.SENSORS and agent.sensors() == []
    assert agent._global_plan is None and agent.planned_trajectory() is None
    gps = [({"lat": 42.0, "lon": 2.0, "z": 0.0}, 4), ({"lat": 42.001, "lon": 2.0, "z": 0.0}, 4)]
    world = [((0.0, 0.0, 0.0, 0.0), 4), ((0.0, -111.0, 0.0, -90.0), 4)]
    agent.set_global_plan(gps, world)
    assert agent._global_plan == gps and agent._global_plan_world_coord == world
    with pytest.raises(ValueError, match="same points"):
        agent.set_global_plan(gps, world[:1])
    with pytest.raises(NotImplementedError):
        agent.run_step({}, 0.0)


def test_checked_plan_shapes() -> None:
    assert checked_plan(None) is None
    plan = checked_plan([[0.0, 0.0, 0.0]])
    assert plan is not None and plan.shape == (1, 3)
    with pytest.raises(AgentControlError, match=r"\(T, 3\)"):
        checked_plan(np.zeros((4, 2)))
    with pytest.raises(AgentControlError):
        checked_plan([[0.0, np.nan, 0.0]])


def test_privileged_agent_reads_the_world_view() -> None:
    state = WorldState(3, 0.15, ActorArrays.empty(2), np.zeros(0, np.int8), np.zeros(0))
    agent = PrivilegedAgent()
    assert is_privileged(agent) and not is_privileged(AutonomousAgent())
    with pytest.raises(AgentControlError, match="set_world"):
        _ = agent.world
    agent.set_world(LiveWorldView(source=lambda: state, town="TownStub"))
    assert agent.world.state.frame == 3 and agent.world.town == "TownStub"


def test_load_by_path_like_the_leaderboard(tmp_path: Path) -> None:
    path = _write_agent(tmp_path / "team_code", "my_agent")
    cls, module = load_agent(str(path))
    assert cls.__name__ == "MyAgent" and module.__name__ == "my_agent"
    assert sys.path[0] == str(path.parent)
    control = run_agent_step(cls(), {}, 0.0)
    assert control.throttle == 0.5


def test_same_file_stem_in_two_folders_loads_each_file(tmp_path: Path) -> None:
    a = _write_agent(tmp_path / "a", "agent_file", "AgentA", 0.1)
    b = _write_agent(tmp_path / "b", "agent_file", "AgentB", 0.2)
    assert load_agent(a)[0].__name__ == "AgentA"
    assert load_agent(b)[0].__name__ == "AgentB"


def test_load_registered_do_nothing_agent() -> None:
    cls, _ = load_agent("do_nothing")
    agent = cls()
    agent.setup("")
    specs = validate_sensors(agent.sensors())
    assert [s.type for s in specs] == ["sensor.speedometer"]
    c = run_agent_step(agent, {"speed": (0, {"speed": 0.0})}, 0.0)
    assert (c.throttle, c.brake) == (0.0, 1.0)


def test_lane_follow_agent_declares_leaderboard_sensors_and_fits_gps() -> None:
    cls, module = load_agent("lane_follow")
    agent = cls()
    agent.setup("")
    assert sorted(s.type for s in validate_sensors(agent.sensors())) == [
        "sensor.other.gnss", "sensor.other.imu", "sensor.speedometer",
    ]  # fmt: skip
    geo = GeoReference(49.0, 8.0)  # CARLA towns' typical geoReference
    lat, lon, _ = geo.to_gps(np.array([123.4, -56.7, 0.0]))
    fit = module.fit_georeference((lat, lon), (123.4, -56.7))
    assert fit.lat0_deg == pytest.approx(49.0, abs=1e-9)
    assert fit.lon0_deg == pytest.approx(8.0, abs=1e-9)
    far = geo.to_gps(np.array([-800.0, 950.0, 2.0]))
    np.testing.assert_allclose(fit.from_gps(far), [-800.0, 950.0, 2.0], atol=1e-6)


def test_agents_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_agent(tmp_path, "do_nothing_agent", "Replacement")
    monkeypatch.setenv(AGENTS_DIR_ENV, str(tmp_path))
    assert load_agent("do_nothing")[0].__name__ == "Replacement"
    with pytest.raises(AgentLoadError, match="registered agent 'lane_follow'"):
        load_agent("lane_follow")


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentLoadError, match="neither a registered name"):
        load_agent(tmp_path / "missing_agent.py")
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(AgentLoadError, match="not a .py file"):
        load_agent(txt)
    broken = tmp_path / "broken_agent.py"
    broken.write_text("raise ImportError('no module named torchvision_xyz')\n")
    with pytest.raises(AgentLoadError, match="ImportError: no module named torchvision_xyz"):
        load_agent(broken)
    no_entry = tmp_path / "no_entry_agent.py"
    no_entry.write_text("class A:\n    pass\n")
    with pytest.raises(AgentLoadError, match="no get_entry_point"):
        load_agent(no_entry)
    wrong_name = tmp_path / "wrong_name_agent.py"
    wrong_name.write_text("def get_entry_point():\n    return 'Missing'\n")
    with pytest.raises(AgentLoadError, match="'Missing', which is not a class"):
        load_agent(wrong_name)
    not_agent = tmp_path / "not_agent.py"
    not_agent.write_text("def get_entry_point():\n    return 'A'\n\nclass A:\n    pass\n")
    with pytest.raises(AgentLoadError, match="lacks setup"):
        load_agent(not_agent)
    clash = tmp_path / "agents.py"
    clash.write_text("def get_entry_point():\n    return 'A'\n")
    with pytest.raises(AgentLoadError, match="other than 'agents'"):
        load_agent(clash)


def test_lane_follow_agent_completes_a_short_route_closed_loop() -> None:
    """The sensor-only baseline on the built-in town, scored by the route criteria."""
    from harness.leaderboard.criteria import RouteGeometry, town_lane_check
    from harness.leaderboard.route_criteria import CriteriaConfig, RouteCriteria
    from harness.maps import load_town
    from harness.routes.generate import generate_routes
    from harness.routes.interpolate import global_plan, plan_route
    from harness.sim.embedded.simulator import EmbeddedSimulator
    from harness.world.backend import EpisodeSpec, TrafficConfig

    town = load_town("Harness01")
    route = generate_routes(town, 1, 60.0, seed=3)[0]
    planned = plan_route(town, route.keypoints, route.id)
    plan = global_plan(planned, town, 50.0)
    cls, _ = load_agent("lane_follow")
    agent = cls()
    agent.set_global_plan(plan.gps, plan.world)
    agent.setup("")
    sim = EmbeddedSimulator()
    x0, y0 = (float(v) for v in planned.xy[0])
    state = sim.reset(EpisodeSpec(
        town="Harness01", ego_start=(x0, y0, 0.0, float(planned.yaw_rad[0])), route_xy=planned.xy,
        sensors=tuple(agent.sensors()), traffic=TrafficConfig(vehicles=0, pedestrians=0),
    ))  # fmt: skip
    crit = RouteCriteria(
        RouteGeometry.from_planned(planned), CriteriaConfig.bench2drive(), town_lane_check(town)
    )
    crit.update(state)
    while not crit.done[0]:
        state = sim.tick(run_agent_step(agent, sim.sensor_data(), state.time_s))
        crit.update(state)
        plan_poses = checked_plan(agent.planned_trajectory())
        assert plan_poses is None or plan_poses.shape == (30, 3)
    out = crit.summary()
    assert crit.done == (True, "completed")
    assert out.route_completion_pct == 100.0 and out.outside_lanes_m == 0.0
    assert out.status in ("Perfect", "Completed")
