"""The leaderboard compatibility layer: leaderboard / Bench2Drive agent files (tests/lb_agents/,
written in the style of their dummy_agent.py and npc_agent.py) run by path on the embedded
backend; the global plan's types and density match the leaderboard's (downsampling rule
hand-checked); the world facade answers with carla value types; carla <-> project conversions;
the recorder agent's episodes equal the harness's own recording; route files keep an empty
<scenarios/>; a deep agent import failure names its place and logs the traceback."""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import carla
import numpy as np
import pytest

from harness.cli.main import run as cli_run
from harness.errors import ConfigError
from harness.leaderboard import compat
from harness.leaderboard.agent import as_vehicle_control
from harness.leaderboard.carla_world import (
    LIGHT_ID_OFFSET,
    CarlaWorld,
    carla_timestamp,
    to_carla_control,
)
from harness.leaderboard.loader import AgentLoadError, load_agent
from harness.maps import load_town
from harness.routes import plan_route, read_routes, write_routes
from harness.routes.interpolate import RoadOption, downsample_index
from harness.routes.model import RouteConfig
from harness.runner.drivers import AgentDriver
from harness.world.control import VehicleControl
from harness.world.recording import load_recording
from harness.world.state import ActorArrays, ActorKind, ActorRole, LightState, WorldState

REPO = Path(__file__).resolve().parents[1]
LB_AGENTS = REPO / "tests" / "lb_agents"
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
FAST = ("--blocked-time", "2", "--traffic", "3", "--pedestrians", "0", "--no-closed-loop",
        "--quiet", "--routes", str(ROUTES), "--routes-subset", "0")  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent folders put on sys.path do not leak between tests."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture(scope="module")
def town_route() -> tuple[Any, Any]:
    route = read_routes(ROUTES)[0]
    town = load_town(route.town)
    return town, plan_route(town, route.keypoints, route.id)


def _before_reset() -> WorldState:
    raise ConfigError("no episode yet")


# ---------------------------------------------------------------- route manipulation
def _line_route(options: list[int]) -> list[tuple[carla.Transform, RoadOption]]:
    return [
        (carla.Transform(carla.Location(x=float(i), y=0.0, z=0.0)), RoadOption(o))
        for i, o in enumerate(options)
    ]


def test_downsample_route_hand_checked() -> None:
    """1 m spacing along x: 5 LANEFOLLOW, 3 LEFT, 2 CHANGELANELEFT, 120 LANEFOLLOW. Kept: the
    start, the option change at 5, both lane-change points, then (after a lane change no option
    change counts) a point once the distance *before* it exceeds 50 m: 61 (52 m after 9) and 113,
    and the end 129; with 200 m only the end."""
    from leaderboard.utils.route_manipulation import downsample_route

    opts = [4] * 5 + [1] * 3 + [5] * 2 + [4] * 120
    route = _line_route(opts)
    assert downsample_route(route, 50) == [0, 5, 8, 9, 61, 113, 129]
    assert downsample_route(route, 200) == [0, 5, 8, 9, 129]


def test_gps_conversion_matches_the_harness_geo_reference(town_route: tuple[Any, Any]) -> None:
    from leaderboard.utils.route_manipulation import (
        _get_latlon_ref,
        _location_to_gps,
        location_route_to_gps,
    )

    town, _ = town_route
    world = CarlaWorld(lambda: None, town, (0.0, 0.0, 0.0, 0.0))
    lat0, lon0 = _get_latlon_ref(world)
    assert (lat0, lon0) == (town.geo.lat0_deg, town.geo.lon0_deg)
    origin = _location_to_gps(lat0, lon0, carla.Location(0.0, 0.0, 3.0))
    assert origin == pytest.approx({"lat": lat0, "lon": lon0, "z": 3.0})
    south = _location_to_gps(lat0, lon0, carla.Location(0.0, 1000.0, 0.0))
    assert south["lat"] < lat0  # CARLA's +y points south
    # 1000 m along a meridian ~ 1000 / 111,200 deg of latitude (spherical Earth, R 6378 km)
    assert lat0 - south["lat"] == pytest.approx(1000.0 / (6378137.0 * math.pi / 180.0), rel=1e-3)
    pts = np.array([[10.0, -20.0, 1.0], [250.0, 130.0, 0.5]])
    route = [(carla.Transform(carla.Location(*p)), RoadOption.LANEFOLLOW) for p in pts]
    ours = np.array(
        [[g["lat"], g["lon"], g["z"]] for g, _ in location_route_to_gps(route, lat0, lon0)]
    )
    np.testing.assert_allclose(ours, town.geo.to_gps(pts), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- plan handover
@pytest.mark.parametrize("spacing_m", [50.0, 200.0])
def test_plan_is_dense_carla_and_cut_by_the_base_class(
    town_route: tuple[Any, Any], spacing_m: float
) -> None:
    town, planned = town_route
    cls, _ = load_agent(LB_AGENTS / "b2d_dummy_agent.py")
    driver = AgentDriver.set_up(
        cls, planned, town, plan_spacing_m=spacing_m, agent_config="", world_state=_before_reset
    )
    try:
        agent = driver.agent
        from leaderboard.utils.route_manipulation import downsample_route

        dense_gps = agent._plan_gps_HACK
        assert len(dense_gps) == planned.num_points  # every route point handed over
        world = agent._global_plan_world_coord
        assert all(isinstance(t, carla.Transform) for t, _ in world)
        assert all(isinstance(o, RoadOption) for _, o in world)
        assert set(agent._global_plan[0][0]) == {"lat", "lon", "z"}
        # kept = the leaderboard rule on the dense plan = the harness's own downsampler
        kept = downsample_index(planned, spacing_m).tolist()
        dense_world = [(t, o) for t, o in zip(
            [carla.Transform(carla.Location(float(x), float(y), float(z)))
             for (x, y), z in zip(planned.xy, planned.z, strict=True)],
            [RoadOption(int(o)) for o in planned.option], strict=True)]  # fmt: skip
        assert downsample_route(dense_world, spacing_m) == kept
        assert len(world) == len(kept) < planned.num_points
        for (t, o), i in zip(world, kept, strict=True):
            assert (t.location.x, t.location.y) == pytest.approx(tuple(planned.xy[i]), abs=1e-3)
            assert t.rotation.yaw == pytest.approx(math.degrees(planned.yaw_rad[i]), abs=1e-3)
            assert int(o) == int(planned.option[i])
        # Bench2Drive's base class found the hero in __init__, at the route start
        hero = agent.hero_actor
        assert hero is not None and hero.attributes["role_name"] == "hero"
        loc = hero.get_location()
        assert (loc.x, loc.y) == pytest.approx(planned.start_pose[:2], abs=1e-3)
    finally:
        driver.close()
    from srunner.scenariomanager.carla_data_provider import CarlaDataProvider

    assert CarlaDataProvider.get_world() is None  # cleaned up after the route


def test_project_agents_keep_the_harness_plan(town_route: tuple[Any, Any]) -> None:
    town, planned = town_route
    cls, _ = load_agent("lane_follow")
    driver = AgentDriver.set_up(
        cls, planned, town, plan_spacing_m=50.0, agent_config="", world_state=_before_reset
    )
    try:
        (pose, _), *_ = driver.agent._global_plan_world_coord
        assert isinstance(pose, tuple) and len(pose) == 4
    finally:
        driver.close()


# ---------------------------------------------------------------- world facade
def _scene(town: Any) -> WorldState:
    a = ActorArrays.empty(4)
    rows = [  # id, kind, role, x, y, yaw, speed, accel, yaw_rate, l, w, h
        (0, ActorKind.VEHICLE, ActorRole.EGO, 10.0, 20.0, math.pi / 2, 5.0, 1.0, 0.2, 4.9, 2.1, 1.5),
        (7, ActorKind.VEHICLE, ActorRole.BACKGROUND, 30.0, 20.0, 0.0, 3.0, 0.0, 0.0, 4.0, 2.0, 1.6),
        (9, ActorKind.PEDESTRIAN, ActorRole.PEDESTRIAN, 12.0, 25.0, math.pi, 1.2, 0.0, 0.0, 0.5, 0.5, 1.8),
    ]  # fmt: skip
    for r, (i, k, ro, x, y, yaw, v, acc, rate, ln, w, h) in enumerate(rows):
        for name, val in (("x", x), ("y", y), ("yaw", yaw), ("speed", v), ("accel", acc),
                          ("yaw_rate", rate), ("length", ln), ("width", w), ("height", h)):  # fmt: skip
            getattr(a, name)[r] = val
        a.actor_id[r], a.kind[r], a.role[r], a.valid[r] = i, int(k), int(ro), True
    t = len(town.signals.light_id)
    lights = np.full(t, int(LightState.GREEN), np.int8)
    lights[0] = int(LightState.RED)
    return WorldState(frame=12, time_s=0.6, actors=a, light_state=lights,
                      light_elapsed_s=np.full(t, 1.5))  # fmt: skip


def test_world_facade_answers_with_carla_types(town_route: tuple[Any, Any]) -> None:
    town, _ = town_route
    state = _scene(town)
    world = CarlaWorld(lambda: state, town, (0.0, 0.0, 0.0, 0.0))
    actors = world.get_actors()
    assert len(actors.filter("vehicle.*")) == 2 and len(actors.filter("*walker*")) == 1
    lights = actors.filter("*traffic_light*")
    assert len(lights) == len(town.signals.light_id) > 0
    hero = next(a for a in actors if a.attributes.get("role_name") == "hero")
    assert hero.id == 1 and hero.type_id == "vehicle.lincoln.mkz_2020"
    assert world.get_actors().find(hero.id) is hero  # stable handles
    tf = hero.get_transform()
    assert isinstance(tf, carla.Transform) and tf.rotation.yaw == pytest.approx(90.0)
    v = hero.get_velocity()
    assert isinstance(v, carla.Vector3D) and (v.x, v.y) == pytest.approx((0.0, 5.0), abs=1e-6)
    # heading +y: forward (0, 1), right (-1, 0); a = 1 * forward + 5 * 0.2 * right
    acc = hero.get_acceleration()
    assert (acc.x, acc.y) == pytest.approx((-1.0, 1.0), abs=1e-6)
    assert hero.get_angular_velocity().z == pytest.approx(math.degrees(0.2), rel=1e-6)
    box = hero.bounding_box
    assert (box.extent.x, box.extent.y, box.extent.z) == pytest.approx((2.45, 1.05, 0.75))
    assert lights[0].id == LIGHT_ID_OFFSET and lights[0].state == carla.TrafficLightState.Red
    assert lights[1].get_state() == carla.TrafficLightState.Green
    assert lights[0].get_elapsed_time() == 1.5
    # the trigger volume, placed as CARLA's agents read it (light transform applied to its
    # location), sits on the middle of the stop lines the light owns
    sig = town.signals
    i = int(sig.stop_owner[(sig.stop_kind == 0)][0])
    owned = (sig.stop_owner == i) & (sig.stop_kind == 0)
    want = np.concatenate([sig.stop_a[owned], sig.stop_b[owned]]).mean(axis=0)
    tl = lights[i]
    at = tl.get_transform().transform(tl.trigger_volume.location)
    assert (at.x, at.y) == pytest.approx(tuple(want), abs=1e-3)
    assert isinstance(world.get_map(), carla.Map)
    snap = world.get_snapshot()
    assert snap.frame == 12 and snap.timestamp.elapsed_seconds == pytest.approx(0.6)
    assert (
        world.get_settings().synchronous_mode and world.get_settings().fixed_delta_seconds == 0.05
    )
    wp = world.get_map().get_waypoint(tf.location)
    assert isinstance(wp, carla.Waypoint)


def test_controls_convert_both_ways() -> None:
    theirs = carla.VehicleControl(throttle=0.5, steer=-0.25, brake=0.125, hand_brake=True,
                                  reverse=True, manual_gear_shift=True, gear=2)  # fmt: skip
    ours = as_vehicle_control(theirs)
    assert ours == VehicleControl(0.5, -0.25, 0.125, True, True, True, 2)
    back = to_carla_control(ours)
    assert isinstance(back, carla.VehicleControl)
    assert (back.throttle, back.steer, back.brake, back.hand_brake, back.reverse, back.gear) == (
        0.5, -0.25, 0.125, True, True, 2
    )  # fmt: skip


def test_game_time_counts_frames_as_scenario_runner() -> None:
    game_time = compat.game_time()
    game_time.restart()
    game_time.on_carla_tick(carla_timestamp(0, 0.0))  # not newer than frame 0: ignored
    assert (game_time.get_frame(), game_time.get_time()) == (0, 0.0)
    game_time.on_carla_tick(carla_timestamp(1, 0.05))  # the first tick counts one frame
    game_time.on_carla_tick(carla_timestamp(4, 0.2))  # skipped frames count
    assert game_time.get_frame() == 4 and game_time.get_time() == pytest.approx(0.2)
    game_time.restart()


def test_sensor_interface_waits_for_all_but_the_map() -> None:
    from leaderboard.envs.sensor_interface import (
        SensorConfigurationInvalid,
        SensorInterface,
        SensorReceivedNoData,
    )

    si = SensorInterface()
    si.register_sensor("GPS", "sensor.other.gnss", None)
    si.register_sensor("HD", "sensor.opendrive_map", None)
    with pytest.raises(SensorConfigurationInvalid):
        si.register_sensor("GPS", "sensor.other.gnss", None)
    si.update_sensor("GPS", [1.0, 2.0, 3.0], 5)
    assert si.get_data(5) == {"GPS": (5, [1.0, 2.0, 3.0])}
    with pytest.raises(SensorReceivedNoData):
        si.get_data(6)


def test_compat_packages_shadow_another_leaderboard(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the rebinding stays in this test
    fake = tmp_path / "leaderboard"
    fake.mkdir()
    (fake / "__init__.py").write_text("OWNER = 'someone else'\n")
    for name in [k for k in sys.modules if k.split(".")[0] in compat.COMPAT_PACKAGES]:
        del sys.modules[name]
    sys.path.insert(0, str(tmp_path))
    assert getattr(importlib.import_module("leaderboard"), "OWNER", None) == "someone else"
    with caplog.at_level(logging.WARNING):
        compat.bind_compat_packages()
    assert "shadowed" in caplog.text
    lb = importlib.import_module("leaderboard.autoagents.autonomous_agent")
    assert Path(lb.__file__).is_relative_to(REPO / "leaderboard")


# ---------------------------------------------------------------- harness eval by path
def _eval(tmp_path: Path, agent: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "out"
    assert cli_run(["eval", "--agent", str(agent), *FAST, "--out", str(out), *extra]) == 0
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def test_leaderboard_dummy_agent_runs_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PYTHONPATH", raising=False)
    (rec,) = _eval(tmp_path, LB_AGENTS / "lb_dummy_agent.py")["_checkpoint"]["records"]
    assert rec["status"] == "Failed - Agent got blocked"  # it never moves, but it ran
    printed = capsys.readouterr().out
    assert "[Center -- 000000] with shape (48, 64, 4)" in printed
    assert "[GPS -- 000001] with shape (3,)" in printed
    # the lidar's (N, 4) points and the radar's (N, 4) detections arrive too
    assert re.search(r"\[LIDAR -- \d{6}\] with shape \(\d+, 4\)", printed)
    assert re.search(r"\[RADAR -- \d{6}\] with shape \(\d+, 4\)", printed)


def test_npc_hero_lookup_and_plan_waypoints(town_route: tuple[Any, Any]) -> None:
    """What npc_agent.py does before CARLA's BasicAgent takes over."""
    town, planned = town_route
    cls, _ = load_agent(LB_AGENTS / "npc_hero_agent.py")
    driver = AgentDriver.set_up(
        cls, planned, town, plan_spacing_m=50.0, agent_config="", world_state=_before_reset
    )
    try:
        out = driver.step(_before_reset_state(planned), {})
        assert out.control.brake == 1.0
        wps = driver.agent.plan_waypoints
        assert len(wps) == len(driver.agent._global_plan_world_coord) >= 2
        for wp, (t, _) in zip(wps, driver.agent._global_plan_world_coord, strict=True):
            assert wp.transform.location.distance(t.location) < 0.5
    finally:
        driver.close()


def _before_reset_state(planned: Any) -> WorldState:
    from harness.leaderboard.carla_world import start_state

    return start_state(planned.start_pose)


def test_npc_agent_needs_carlas_pythonapi(tmp_path: Path) -> None:
    try:
        importlib.import_module("agents.navigation.basic_agent")
    except ImportError:
        with pytest.raises(AgentLoadError, match="PythonAPI/carla to PYTHONPATH"):
            load_agent(LB_AGENTS / "lb_npc_agent.py")
    else:  # CARLA's PythonAPI is on sys.path: the full npc agent must drive
        records = _eval(tmp_path, LB_AGENTS / "lb_npc_agent.py")["_checkpoint"]["records"]
        assert records[0]["scores"]["score_route"] > 0


def _actor_rows(state: WorldState) -> np.ndarray:
    """(valid actors, 9) [kind, role, x, y, yaw, speed, length, width, height], ego first, the
    rest sorted by position (the two recordings number the actors differently)."""
    a = state.actors
    rows = np.column_stack([a.kind, a.role, a.x, a.y, a.yaw, a.speed, a.length, a.width, a.height])[
        a.valid
    ]
    ego, rest = rows[:1], rows[1:]
    return np.concatenate([ego, rest[np.lexsort((rest[:, 3], rest[:, 2]))]])


def test_recorder_agent_records_what_the_harness_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder wraps an npc-style agent; its file, read from CarlaDataProvider's actors
    (here the embedded facade), equals the harness's own --record file tick by tick."""
    monkeypatch.setenv("HARNESS_RECORD_AGENT", str(LB_AGENTS / "npc_hero_agent.py"))
    monkeypatch.setenv("HARNESS_RECORD_DIR", str(tmp_path / "rec"))
    agent = REPO / "agents" / "leaderboard_recorder_agent.py"
    (rec,) = _eval(tmp_path, agent, "--record")["_checkpoint"]["records"]
    assert rec["status"] == "Failed - Agent got blocked"  # the wrapped agent braked throughout
    (path,) = sorted((tmp_path / "rec").glob("*.parquet"))
    ours = {s.frame: s for s in load_recording(path).states()}
    harness_rec = tmp_path / "out" / "recordings" / "RouteScenario_0_rep0.parquet"
    theirs = {s.frame: s for s in load_recording(harness_rec).states()}
    common = sorted(set(ours) & set(theirs))
    assert len(common) >= len(theirs) - 1 > 20
    moving = 0
    for f in common:
        a, b = _actor_rows(ours[f]), _actor_rows(theirs[f])
        assert a.shape == b.shape and a[0, 1] == ActorRole.EGO
        np.testing.assert_allclose(a[:, :2], b[:, :2])  # kinds and roles
        np.testing.assert_allclose(a[:, 2:4], b[:, 2:4], atol=1e-3)  # x, y: carla float32
        yaw_err = np.angle(np.exp(1j * (a[:, 4] - b[:, 4])))
        np.testing.assert_allclose(yaw_err, 0.0, atol=1e-5)
        np.testing.assert_allclose(a[:, 5:], b[:, 5:], atol=1e-4)  # speed and box
        np.testing.assert_array_equal(ours[f].light_state, theirs[f].light_state)
        assert ours[f].time_s == pytest.approx(theirs[f].time_s)
        moving += int(np.count_nonzero(np.abs(b[1:, 5]) > 1.0))
    assert moving > 0  # background traffic drove, so speeds and poses were compared in motion


# ---------------------------------------------------------------- item 6 odds and ends
def test_write_routes_keeps_an_empty_scenarios_element(tmp_path: Path) -> None:
    route = RouteConfig(
        id="3", town="Town01", keypoints=np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    )
    path = tmp_path / "r.xml"
    write_routes([route], path)
    (el,) = ET.parse(path).getroot().iter("route")
    scenarios = el.find("scenarios")
    assert scenarios is not None and len(scenarios) == 0
    assert read_routes(path)[0].scenarios == ()


def test_deep_import_failure_names_the_place_and_logs_the_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "deep_helper.py").write_text(
        "def build():\n    return {}['model']\n\nMODEL = build()\n"
    )
    (tmp_path / "broken_agent.py").write_text(
        "import deep_helper\n\ndef get_entry_point():\n    return 'X'\n"
    )
    with (
        caplog.at_level(logging.DEBUG, logger="harness.leaderboard.loader"),
        pytest.raises(AgentLoadError) as err,
    ):
        load_agent(tmp_path / "broken_agent.py")
    assert f"{tmp_path / 'deep_helper.py'}:2 in build" in str(err.value)
    assert "--verbose" in str(err.value)
    assert "Traceback" in caplog.text and "deep_helper.py" in caplog.text
