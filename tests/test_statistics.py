"""Penalty arithmetic, global record, Bench2Drive summary and results.json write / resume,
against hand-computed values."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness.leaderboard.outcome import Infraction, InfractionKey, RouteOutcome
from harness.leaderboard.results import (
    LABELS,
    ResultsFile,
    ResultsFileError,
    RouteRecord,
    leaderboard_route_id,
    record_from_outcome,
    resume_plan,
)
from harness.leaderboard.statistics import (
    BENCH2DRIVE,
    LEADERBOARD_1_0,
    LEADERBOARD_2_0,
    bench2drive_summary,
    global_record,
    infraction_penalty,
    penalty_factor,
    route_scores,
)

K = InfractionKey


def test_penalty_arithmetic() -> None:
    assert infraction_penalty([(K.COLLISIONS_VEHICLE, None), (K.RED_LIGHT, None)]) == pytest.approx(
        0.42
    )
    assert infraction_penalty([(K.OUTSIDE_ROUTE_LANES, 10.0)]) == pytest.approx(0.9)
    two_peds_one_car = [(K.COLLISIONS_PEDESTRIAN, None)] * 2 + [(K.COLLISIONS_VEHICLE, None)]
    assert infraction_penalty(two_peds_one_car) == pytest.approx(0.15)
    assert infraction_penalty([]) == 1.0
    # min speed 60.43 %: 1 - 0.3 x (1 - 0.6043) = 0.88129 (2.0); ignored by Bench2Drive and 1.0
    assert penalty_factor(K.MIN_SPEED_INFRACTIONS, 60.43) == pytest.approx(0.88129)
    assert penalty_factor(K.MIN_SPEED_INFRACTIONS, 60.43, BENCH2DRIVE) == 1.0
    assert penalty_factor(K.MIN_SPEED_INFRACTIONS, 60.43, LEADERBOARD_1_0) == 1.0
    table = {K.COLLISIONS_LAYOUT: 0.65, K.STOP_INFRACTION: 0.8, K.SCENARIO_TIMEOUTS: 0.7,
             K.YIELD_EMERGENCY_VEHICLE_INFRACTIONS: 0.7, K.ROUTE_DEV: 1.0, K.VEHICLE_BLOCKED: 1.0,
             K.ROUTE_TIMEOUT: 1.0}  # fmt: skip
    for key, factor in table.items():
        assert penalty_factor(key, None, LEADERBOARD_2_0) == factor


def _outcome(
    rc: float, infractions: list[Infraction], status: str = "Failed", length: float = 200.0
) -> RouteOutcome:
    return RouteOutcome(
        route_id="r", status=status, route_completion_pct=rc, completed=rc >= 100.0, failure="",
        end_reason="", infractions=tuple(infractions), route_length_m=length, duration_game_s=12.0, ticks=240,
    )  # fmt: skip


def _inf(key: InfractionKey, msg: str = "m", pct: float | None = None) -> Infraction:
    return Infraction(key, msg, 0, 0.0, 0.0, 0.0, percentage=pct)


def test_route_scores_ds_is_rc_times_ip() -> None:
    out = _outcome(80.0, [_inf(K.COLLISIONS_VEHICLE), _inf(K.RED_LIGHT)])
    s = route_scores(out)
    assert (s.score_route, s.score_penalty, s.score_composed) == (80.0, 0.42, 33.6)


def _record(
    index: int, rc: float, ip: float, status: str, length: float, **infractions: list[str]
) -> dict[str, Any]:
    rec = RouteRecord(
        index=index, route_id=leaderboard_route_id(str(index)), status=status,
        num_infractions=sum(len(v) for v in infractions.values()), infractions=infractions,
        scores=route_scores(_outcome(rc, [])).__class__(rc, ip, round(rc * ip, 6)),
        route_length_m=length, duration_game_s=10.0, duration_system_s=20.0,
    )  # fmt: skip
    return rec.to_json()


def test_global_record_means_over_all_routes_and_per_km() -> None:
    recs = [
        _record(0, 100.0, 0.6, "Completed", 1000.0, collisions_vehicle=["hit"]),
        _record(1, 50.0, 1.0, "Failed - Agent got blocked", 2000.0, vehicle_blocked=["b"],
                outside_route_lanes=["Agent went outside its route lanes for about 250.0 meters (25.0% of the completed route)"]),
    ]  # fmt: skip
    g = global_record(recs, total_routes=4)  # two routes missing: they count 0
    assert g["scores_mean"] == {
        "score_composed": (60.0 + 50.0) / 4,
        "score_route": 150.0 / 4,
        "score_penalty": 1.6 / 4,
    }
    km = 1.0 * 1.0 + 2.0 * 0.5  # route length x RC
    assert g["infractions"]["collisions_vehicle"] == round(1 / km, 3)
    assert g["infractions"]["vehicle_blocked"] == round(1 / km, 3)
    assert g["infractions"]["outside_route_lanes"] == 0.25  # km driven outside route lanes
    assert g["status"] == "Failed"
    assert g["meta"]["exceptions"] == [["RouteScenario_1_rep0", 1, "Failed - Agent got blocked"]]
    assert g["meta"]["total_length"] == 3000.0
    # std dev over the stored records, divided by total - 1
    assert g["scores_std_dev"]["score_route"] == round(
        ((100 - 37.5) ** 2 + (50 - 37.5) ** 2) ** 0.5 / 3**0.5, 3
    )


def test_bench2drive_summary() -> None:
    recs = [
        _record(0, 100.0, 0.9, "Completed", 100.0, min_speed_infractions=["slow"]),
        _record(1, 100.0, 1.0, "Perfect", 100.0),
        _record(2, 100.0, 0.6, "Completed", 100.0, collisions_vehicle=["hit"]),
        _record(3, 40.0, 1.0, "Failed - Agent got blocked", 100.0),
    ]
    b = bench2drive_summary(recs, total_routes=220)
    assert b.num_success == 2 and b.success_rate_pct == pytest.approx(2 / 220 * 100)
    assert b.driving_score == pytest.approx((90.0 + 100.0 + 60.0 + 40.0) / 220)


def _outcomes() -> list[RouteOutcome]:
    return [
        _outcome(100.0, [], "Perfect", 150.0),
        _outcome(100.0, [_inf(K.RED_LIGHT, "Agent ran a red light 3 at (x=1.0, y=2.0, z=0.0)")], "Completed"),
        _outcome(37.5, [_inf(K.VEHICLE_BLOCKED, "Agent got blocked at (x=1.0, y=2.0, z=0.0)")],
                 "Failed - Agent got blocked", 321.5),
        _outcome(100.0, [_inf(K.OUTSIDE_ROUTE_LANES, "Agent went outside its route lanes for about 12.5 meters "
                              "(6.25% of the completed route)", 6.25)], "Completed"),
    ]  # fmt: skip


def _run(results: ResultsFile, indices: range, system_s: float) -> None:
    for i in indices:
        results.commit(record_from_outcome(
            _outcomes()[i], i, route_id=leaderboard_route_id(str(10 + i)), duration_system_s=system_s,
            scenario_name=f"Scenario{i}", town_name="Town01", weather_id=str(i), save_name=f"save_{i}",
        ))  # fmt: skip


def _without_system_time(d: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(d)
    for rec in d["_checkpoint"]["records"]:
        rec["meta"].pop("duration_system")
    d["_checkpoint"]["global_record"]["meta"].pop("duration_system")
    return d


def test_results_json_format(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    results = ResultsFile(path, total_routes=4, sensors=["sensor.speedometer"])
    _run(results, range(2), 5.0)
    data = json.loads(path.read_text())
    assert data["_checkpoint"]["progress"] == [2, 4]
    assert data["entry_status"] == "Started" and data["eligible"] is False
    rec = data["_checkpoint"]["records"][1]
    assert list(rec) == ["index", "route_id", "scenario_name", "weather_id", "save_name", "status",
                         "num_infractions", "infractions", "scores", "meta", "town_name"]  # fmt: skip
    assert rec["route_id"] == "RouteScenario_11_rep0" and rec["status"] == "Completed"
    assert rec["scores"] == {"score_route": 100.0, "score_penalty": 0.7, "score_composed": 70.0}
    assert rec["meta"] == {"route_length": 200.0, "duration_game": 12.0, "duration_system": 5.0}
    assert len(data["values"]) == len(data["labels"]) == len(LABELS) == 15
    assert data["values"][0] == str((100.0 + 70.0) / 4)
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp files left
    _run(results, range(2, 4), 5.0)
    data = json.loads(path.read_text())
    assert data["entry_status"] == "Finished" and data["eligible"] is True


def test_resume_gives_the_same_file_as_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = ResultsFile(tmp_path / "whole.json", total_routes=4)
    _run(whole, range(4), 1.0)

    killed = ResultsFile(tmp_path / "resumed.json", total_routes=4)
    _run(killed, range(2), 2.0)
    reloaded = ResultsFile.load(tmp_path / "resumed.json")
    ids = [leaderboard_route_id(str(10 + i)) for i in range(4)]
    todo = resume_plan(reloaded, ids)
    assert todo == [2, 3]
    _run(reloaded, range(2, 4), 3.0)

    a = json.loads((tmp_path / "whole.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert _without_system_time(a) == _without_system_time(b)
    assert resume_plan(ResultsFile.load(tmp_path / "resumed.json"), ids) == []


def test_resume_checks_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results = ResultsFile(path, total_routes=4)
    _run(results, range(2), 1.0)
    loaded = ResultsFile.load(path)
    with pytest.raises(ResultsFileError, match="written for 4 routes"):
        resume_plan(loaded, ["a", "b"])
    with pytest.raises(ResultsFileError, match="has route 'RouteScenario_10_rep0' at index 0"):
        resume_plan(loaded, ["x", "y", "z", "w"])
    crashed = record_from_outcome(_outcomes()[0], 1, route_id=leaderboard_route_id("11"))
    loaded.put(RouteRecord(**{**crashed.__dict__, "status": "Failed - Simulation crashed"}))
    ids = [leaderboard_route_id(str(10 + i)) for i in range(4)]
    assert resume_plan(loaded, ids, rerun_crashed=True) == [1, 2, 3]
    with pytest.raises(ResultsFileError, match="does not exist"):
        ResultsFile.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultsFileError, match="not a readable"):
        ResultsFile.load(tmp_path / "bad.json")
    with pytest.raises(ResultsFileError, match="in order"):
        ResultsFile(tmp_path / "x.json", total_routes=4).put(crashed)
