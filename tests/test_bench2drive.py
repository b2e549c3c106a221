"""Bench2Drive's record values and metrics against hand-built records and metric_info samples
whose answers are worked out by hand below (the rules of Bench2Drive's tools/ on branch 0.0.4:
merge_route_json.py, ability_benchmark.py, efficiency_smoothness_benchmark.py)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.leaderboard import bench2drive as b2d
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.routes.model import RouteConfig, ScenarioConfig, Weather
from harness.runner.episode import Tick
from harness.runner.metric_info import MetricInfoObserver, ego_sample
from harness.world.control import VehicleControl
from harness.world.state import ActorArrays, WorldState

MIN_SPEED = "min_speed_infractions"


def _record(
    route_id: str, status: str, ds: float, rc: float = 100.0, **infractions: list[str]
) -> dict[str, Any]:
    inf = {k: [] for k in INFRACTION_KEYS} | infractions
    return {
        "route_id": f"RouteScenario_{route_id}_rep0", "status": status, "infractions": inf,
        "scores": {"score_route": rc, "score_penalty": 1.0, "score_composed": ds},
        "save_name": f"save_{route_id}",
    }  # fmt: skip


def _route(route_id: str, scenario_type: str | None, **kw: Any) -> RouteConfig:
    scen = () if scenario_type is None else (
        ScenarioConfig(f"{scenario_type}_1", scenario_type, (0.0, 0.0, 0.0, 0.0)),
    )  # fmt: skip
    return RouteConfig(route_id, "Town01", np.zeros((2, 3)), scenarios=scen, **kw)


def _speed_msg(pct: float) -> str:
    return f"Average speed is {pct}% of the surrounding traffic's one"


# ------------------------------------------------------------------ record values
def test_run_stamp_and_save_name() -> None:
    stamp = b2d.run_stamp(datetime(2026, 12, 6, 20, 45, 3))
    assert stamp == "12_06_20_45_03"  # %m_%d_%H_%M_%S
    route = _route("7", "Accident", weathers=(Weather(0.0, {}),))
    # no weather values: the base weather (cloudiness 50, sun altitude 70, the rest 0) = case 26
    assert b2d.save_name("RouteScenario_7_rep0", route, stamp) == (
        "RouteScenario_7_rep0_Town01_Accident_1_26_12_06_20_45_03"
    )
    assert b2d.first_scenario_name(_route("8", None)) is None


def test_weather_id_matches_the_first_keyframe_against_weather_xml() -> None:
    rain = {"cloudiness": 100.0, "precipitation": 50.0, "precipitation_deposits": 100.0,
            "wetness": 80.0, "wind_intensity": 80.0, "sun_azimuth_angle": -1.0,
            "sun_altitude_angle": 45.0, "fog_density": 10.0}  # fmt: skip
    # weather.xml case 15: cloudiness 100, precipitation 50, deposits 100, wetness 80, wind 80,
    # azimuth -1, altitude 45, fog 10; the later keyframe (100 %) plays no part
    later = Weather(100.0, rain | {"cloudiness": 5.0})
    assert b2d.weather_id([later, Weather(0.0, rain)]) == "15"
    assert b2d.weather_id([Weather(0.0, rain | {"fog_density": 11.0})]) is None
    assert b2d.weather_id([]) == "26"  # no <weathers>: the parser's base weather


def test_sensor_icons() -> None:
    assert b2d.sensor_icons(["sensor.other.gnss", "sensor.camera.rgb", "sensor.speedometer"]) == [
        "carla_gnss", "carla_camera", "carla_speedometer",
    ]  # fmt: skip


# ------------------------------------------------------------------ DS, SR, efficiency
def test_driving_score_and_success_rate_over_all_routes_of_the_file() -> None:
    records = [
        _record("1", "Perfect", 100.0),
        _record("2", "Completed", 50.0, **{MIN_SPEED: [_speed_msg(80.0)]}),  # min speed only
        _record("3", "Failed - Agent got blocked", 0.0, rc=10.0),
        _record("4", "Completed", 80.0, collisions_vehicle=["hit"]),  # not a success
    ]
    # 10 routes in the file, 6 never ran: DS = (100 + 50 + 0 + 80) / 10, SR = 2 / 10
    assert b2d.driving_score(records, 10) == pytest.approx(23.0)
    assert b2d.success_rate(records, 10) == pytest.approx(0.2)


def test_efficiency_is_the_mean_of_per_route_means() -> None:
    records = [
        _record("1", "Completed", 100.0, **{MIN_SPEED: [_speed_msg(80.0), _speed_msg(60.0)]}),
        _record("2", "Completed", 100.0, **{MIN_SPEED: [_speed_msg(1500.0), _speed_msg(90.0)]}),
        _record("3", "Perfect", 100.0),
    ]
    # route 1: (80 + 60) / 2 = 70; route 2: 1500 % > 1000 % is left out -> 90; route 3 has none
    assert b2d.route_efficiency_pct(records[0]) == pytest.approx(70.0)
    assert b2d.route_efficiency_pct(records[2]) is None
    assert b2d.driving_efficiency_pct(records) == pytest.approx((70.0 + 90.0) / 2)


# ------------------------------------------------------------------ smoothness
def _info(lon_acc: list[float], yaw_rate_degps: list[float] | float = 0.0) -> b2d.MetricInfo:
    """Straight along +x: acceleration (a, 0, 0), forward (1, 0, 0), right (0, 1, 0)."""
    n = len(lon_acc)
    z = np.zeros((n, 3))
    acc = z.copy()
    acc[:, 0] = lon_acc
    ang = z.copy()
    ang[:, 2] = yaw_rate_degps
    fwd, right = z.copy(), z.copy()
    fwd[:, 0], right[:, 1] = 1.0, 1.0
    return b2d.MetricInfo(np.arange(n) * 2, acc, ang, fwd, right, z.copy(), z.copy())


def test_smoothness_windows() -> None:
    # 45 samples at rest: windows [0, 20), [20, 40) both comfortable, the last 5 samples unused
    assert b2d.route_smoothness(_info([0.0] * 45)) == 1.0
    # yaw rate 1 deg/s in the first window only: the tool compares deg/s with the 0.95 (rad/s)
    # bound, so that window fails; the second passes -> 1 / 2
    info = _info([0.0] * 45, [1.0] * 20 + [0.0] * 25)
    assert b2d.route_smoothness(info) == 0.5
    assert b2d.route_smoothness(_info([0.0] * 45, 0.9)) == 1.0  # 0.9 < 0.95
    # a route of at most 20 samples is one window: constant 3.0 m/s2 > 2.40 m/s2 -> 0
    assert b2d.route_smoothness(_info([3.0] * 10)) == 0.0
    # a linear ramp -3.0, -2.55, ..., 1.05 m/s2 over 10 samples: every value inside
    # (-4.05, 2.40), the Savitzky-Golay fit of a line is exact, so the longitudinal jerk is
    # 0.45 m/s2 / 0.1 s = 4.5 m/s3 > 4.13 -> 0; the ramp by 0.40 (jerk 4.0 m/s3) passes -> 1
    assert b2d.route_smoothness(_info([-3.0 + 0.45 * i for i in range(10)])) == 0.0
    assert b2d.route_smoothness(_info([-3.0 + 0.40 * i for i in range(10)])) == 1.0
    assert b2d.route_smoothness(_info([0.0, 0.0])) is None  # too short for the filter
    assert b2d.driving_smoothness([1.0, 0.5, None, 0.0]) == pytest.approx(0.5)


def test_metric_info_json_round_trip() -> None:
    info = _info([0.5, 1.0, 1.5])
    data = json.loads(json.dumps(info.to_json()))
    assert list(data) == ["0", "2", "4"]
    assert data["2"] == {
        "acceleration": [1.0, 0.0, 0.0], "angular_velocity": [0.0, 0.0, 0.0],
        "forward_vector": [1.0, 0.0, 0.0], "right_vector": [0.0, 1.0, 0.0],
        "location": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0],
    }  # fmt: skip
    back = b2d.MetricInfo.from_json(data)
    assert np.array_equal(back.acceleration, info.acceleration)
    assert np.array_equal(back.steps, info.steps)


def _ego_state(frame: int, yaw: float, speed: float, accel: float, yaw_rate: float) -> WorldState:
    a = ActorArrays.empty(1)
    for name, v in (("x", 3.0), ("y", -4.0), ("z", 0.5), ("yaw", yaw), ("speed", speed),
                    ("accel", accel), ("yaw_rate", yaw_rate)):  # fmt: skip
        getattr(a, name)[0] = v
    a.valid[0] = True
    return WorldState(frame, frame * 0.05, a, np.zeros(0, np.int8), np.zeros(0))


def test_ego_sample_in_the_carla_frame() -> None:
    # heading +y (yaw 90 deg, CARLA: a right turn from +x), 10 m/s, 1 m/s2 along the heading,
    # yaw rate 0.1 rad/s: forward (0, 1, 0), right (-1, 0, 0); acceleration = 1 * forward
    # + 10 * 0.1 * right = (-1, 1, 0); angular velocity z = 0.1 rad/s = 5.7296 deg/s
    acc, ang, fwd, right, loc, rot = ego_sample(_ego_state(0, math.pi / 2, 10.0, 1.0, 0.1))
    assert acc == pytest.approx([-1.0, 1.0, 0.0])
    assert ang == pytest.approx([0.0, 0.0, 5.729578])
    assert fwd == pytest.approx([0.0, 1.0, 0.0])
    assert right == pytest.approx([-1.0, 0.0, 0.0])
    assert loc == [3.0, -4.0, 0.5]
    assert rot == pytest.approx([0.0, 0.0, 90.0])
    assert ego_sample(_ego_state(0, 3.5 * math.pi, 0.0, 0.0, 0.0))[5][2] == pytest.approx(-90.0)


def test_observer_keeps_every_second_tick(tmp_path: Path) -> None:
    obs = MetricInfoObserver()
    states = [_ego_state(f, 0.0, 1.0, 0.0, 0.0) for f in range(6)]
    obs.on_start(states[0])
    for before, after in zip(states, states[1:], strict=False):
        obs.on_tick(Tick(before, VehicleControl(), None, after))
    # ticks 0 (reset) .. 5: kept 0, 2, 4 -> samples 0.1 s apart
    path = obs.write(tmp_path / "m" / "metric_info.json")
    assert list(json.loads(path.read_text())) == ["0", "2", "4"]


# ------------------------------------------------------------------ multi-ability
def test_multi_ability_as_ability_benchmark_counts() -> None:
    routes = [
        _route("1", "DynamicObjectCrossing"),  # Emergency_Brake
        _route("2", "ParkingCutIn"),  # Emergency_Brake
        _route("3", "Accident"),  # Overtaking
        _route("4", "SignalizedJunctionLeftTurn"),  # Merging + Traffic_Signs
        _route("5", "VehicleTurningRoute"),  # Emergency_Brake + Traffic_Signs
        _route("6", "InvadingTurn"),  # Give_Way, never ran
        _route("7", "YieldToEmergencyVehicle"),  # Give_Way
    ]
    records = [
        _record("1", "Perfect", 100.0),
        _record("2", "Completed", 60.0, collisions_vehicle=["hit"]),
        _record("3", "Perfect", 100.0),
        _record("4", "Failed - Agent got blocked", 80.0, rc=80.0),
        _record("5", "Failed - Agent got blocked", 63.0, rc=90.0, red_light=["ran it"]),
        _record("7", "Completed", 100.0, **{MIN_SPEED: [_speed_msg(70.0)]}),
    ]
    # route 4 failed but drove 80 % > its junction completion 50 % without red light / stop:
    # a Traffic_Signs success (not a Merging one); route 5 passed 30 % but ran a red light
    res = b2d.multi_ability(routes, records, {"4": 0.5, "5": 0.3})
    assert res.counts == {
        "Overtaking": (1, 1), "Merging": (0, 1), "Emergency_Brake": (1, 3), "Give_Way": (1, 1),
        "Traffic_Signs": (1, 2),
    }  # fmt: skip
    assert res.missing == (("InvadingTurn", "6"),)
    # mean = (1 + 0 + 1/3 + 1 + 1/2) / 5 = 2.8333 / 5
    assert res.mean == pytest.approx((1 + 0 + 1 / 3 + 1 + 0.5) / 5)
    assert b2d.multi_ability(routes, records).counts["Traffic_Signs"] == (0, 2)  # no 2nd chance
    empty = b2d.multi_ability(routes[:1], records)
    assert empty.rates["Give_Way"] is None and empty.mean == pytest.approx(1.0)


def test_traffic_signs_route_counts_once_with_the_junction_second_chance() -> None:
    """ability_benchmark.py of Bench2Drive 0.0.4 (tools/, release 7ec25d1): update_Ability adds
    each route once to every ability listing its type (the duplicates in its Traffic_Signs list
    do not count twice); a *failed* Traffic_Signs route then gets a success, without another
    route in the total, when its completion passed the first junction (+8 points) with no
    red-light or stop infraction."""
    routes = [
        _route("1", "PedestrianCrossing"),  # Emergency_Brake + Traffic_Signs
        _route("2", "SignalizedJunctionLeftTurn"),  # Merging + Traffic_Signs
        _route("3", "VehicleTurningRoute"),  # Emergency_Brake + Traffic_Signs
    ]
    records = [
        _record("1", "Failed - Agent got blocked", 30.0, rc=30.0),
        _record("2", "Completed", 70.0, red_light=["ran it"]),
        _record("3", "Perfect", 100.0),
    ]
    res = b2d.multi_ability(routes, records, {"1": 0.2, "2": 0.2, "3": 0.2})
    # Traffic_Signs: route 1 failed but passed its junction (30 % > 20 %, no red light / stop):
    # success; route 2 failed with a red light: none; route 3 succeeded: 2 of 3 routes
    assert res.counts["Traffic_Signs"] == (2, 3)
    assert res.counts["Emergency_Brake"] == (1, 2) and res.counts["Merging"] == (0, 1)


def test_junction_completion() -> None:
    in_junction = np.zeros(20, dtype=bool)
    in_junction[[4, 5, 12]] = True
    # first junction point is the 5th (1-based): (5 + 8) / 20
    assert b2d.junction_completion(in_junction) == pytest.approx(0.65)
    assert b2d.junction_completion(np.zeros(5, dtype=bool)) is None


def test_bench2drive_metrics_summary() -> None:
    routes = [_route("1", "Accident"), _route("2", "ParkingCutIn"), _route("3", "Accident")]
    records = [
        _record("1", "Completed", 100.0, **{MIN_SPEED: [_speed_msg(50.0)]}),
        _record("2", "Completed", 40.0, collisions_pedestrian=["hit"]),
    ]
    m = b2d.bench2drive_metrics(routes, records, {"save_1": 1.0, "save_2": 0.25})
    # DS = 140 / 3, SR = 1 / 3, efficiency 50, smoothness (1 + 0.25) / 2,
    # Overtaking 1/1, Emergency_Brake 0/1, the rest have no route: mean (1 + 0) / 2
    assert m.driving_score == pytest.approx(140.0 / 3)
    assert m.success_rate == pytest.approx(1.0 / 3)
    assert m.efficiency_pct == pytest.approx(50.0)
    assert m.smoothness == pytest.approx(0.625)
    assert m.abilities.mean == pytest.approx(0.5)
    assert m.to_json()["missing_routes"] == [["Accident", "3"]]


def test_console_table_prints_every_bench2drive_number() -> None:
    from rich.console import Console

    from harness.cli.eval_cmd import bench2drive_table

    routes = [_route("1", "Accident"), _route("2", "ParkingCutIn"), _route("3", "Accident"),
              _route("4", "InvadingTurn")]  # fmt: skip
    records = [
        _record("1", "Completed", 100.0, **{MIN_SPEED: [_speed_msg(50.0)]}),
        _record("2", "Completed", 40.0, collisions_pedestrian=["hit"]),
    ]
    m = b2d.bench2drive_metrics(routes, records, {"save_1": 1.0, "save_2": 0.25})
    console = Console(width=200, record=True)
    console.print(bench2drive_table(m))
    text = " ".join(console.export_text().split())
    # DS 140 / 4 = 35.00, SR 1 / 4 = 25.00 %, efficiency 50.00 %, comfortness 62.50 %,
    # Overtaking 100.00, Emergency Brake 0.00, the rest '-', mean (100 + 0) / 2 = 50.00
    assert "over all 4 routes" in text
    assert "│ 2/4 │ 35.00 │ 25.00 │ 50.00 │ 62.50 │ 100.00 │ - │ 0.00 │ - │ - │ 50.00 │" in text
