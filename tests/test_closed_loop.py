"""Closed-loop PDMS / EPDMS of an episode's planning steps: hand-built episodes on a straight lane
of the built-in town with known answers (a plan along an empty lane scores 1 everywhere; a plan
into a recorded stopped car loses NC exactly at the steps whose 4 s reach it; a plan leaving the
road loses DAC; identical consecutive plans keep EC and alternating ones lose it; the executed
path of a controls-only agent), the shared rasters against per-step scoring, the plan-format
rules, the file format and means, and ``harness eval`` end to end on a real Bench2Drive route."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from harness.cli import eval_cmd  # noqa: F401  (registers `harness eval` on the app)
from harness.cli.main import app
from harness.maps import load_town
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.runner.closed_loop import (
    SCHEMA,
    SCORE_COLUMNS,
    closed_loop_summary,
    overall_means,
    read_route_means,
    step_scores_path,
    write_step_scores,
)
from harness.world.state import ActorArrays, ActorKind, LightState
from harness.world.timing import HORIZON_STEPS, POSE_DT_S
from teachers.closed_loop import ClosedLoopScoring, score_poses
from teachers.hindsight import (
    ROWS_PER_STEP,
    HindsightLog,
    route_frame,
    score_episode,
    step_scene,
)
from teachers.rollout import rollout_candidates
from teachers.scoring import Metric, score_states

LANE = 107  # Harness01: a driving lane, straight for its first 117 m
S0_M = 5.0  # ego arc length on the lane at row 0 [m]
SPEED_MPS = 5.0  # ego speed [m/s]
ROWS = 61  # 6 s on the 0.1 s grid: steps 0 .. 4 have a full 4 s of hindsight
EGO_LENGTH_M, EGO_WIDTH_M = 4.9, 2.1
CAR_LENGTH_M, CAR_WIDTH_M = 4.5, 1.9


@pytest.fixture(scope="module")
def town() -> Town:
    return load_town("Harness01")


@pytest.fixture(scope="module")
def planned(town: Town) -> PlannedRoute:
    lanes = town.lanes
    (a, b), _ = lanes.position(np.array([LANE, LANE]), np.array([1.0, 115.0]))
    return plan_route(town, np.array([[*a, 0.0], [*b, 0.0]]), "straight")


def _lane_poses(town: Town, s_m: np.ndarray, lateral_m: np.ndarray | float = 0.0) -> np.ndarray:
    """(..., 3) poses on LANE at arc lengths ``s_m``, shifted ``lateral_m`` to the left [m]."""
    s = np.asarray(s_m, dtype=np.float64)
    xy, yaw = town.lanes.position(np.full(s.shape, LANE), s)
    lat = np.broadcast_to(np.asarray(lateral_m, dtype=np.float64), s.shape)
    x = xy[..., 0] - np.sin(yaw) * lat
    y = xy[..., 1] + np.cos(yaw) * lat
    return np.stack([x, y, yaw], axis=-1)


def _log(
    town: Town,
    plans: np.ndarray | None,
    car_s_m: float | None = None,
    ego: np.ndarray | None = None,
    light_state: np.ndarray | None = None,
) -> HindsightLog:
    """The ego at SPEED_MPS along LANE from S0_M (or at ``ego`` (ROWS, 3)) for ROWS rows;
    ``plans`` (S, 40, 3) or None (controls-only); a stopped car on the lane centre at
    ``car_s_m`` when given; every light green unless ``light_state`` (ROWS, T) says otherwise."""
    n = 2 if car_s_m is not None else 1
    t = POSE_DT_S * np.arange(ROWS)
    if ego is None:
        ego = _lane_poses(town, S0_M + SPEED_MPS * t)
    if light_state is None:
        light_state = np.full((ROWS, town.signals.lights_count), LightState.GREEN, np.int8)
    f = np.zeros((ROWS, n))
    fields: dict[str, np.ndarray] = {k: f.copy() for k in
                                     ("x", "y", "z", "yaw", "speed", "accel", "yaw_rate",
                                      "length", "width", "height")}  # fmt: skip
    fields["x"][:, 0], fields["y"][:, 0], fields["yaw"][:, 0] = ego.T
    fields["speed"][:, 0] = SPEED_MPS
    fields["length"][:, 0], fields["width"][:, 0] = EGO_LENGTH_M, EGO_WIDTH_M
    kind = np.zeros((ROWS, n), np.int8)
    kind[:, 0] = ActorKind.VEHICLE
    if car_s_m is not None:
        car = _lane_poses(town, np.array([car_s_m]))[0]
        fields["x"][:, 1], fields["y"][:, 1], fields["yaw"][:, 1] = car
        fields["length"][:, 1], fields["width"][:, 1] = CAR_LENGTH_M, CAR_WIDTH_M
        kind[:, 1] = ActorKind.VEHICLE
    actors = ActorArrays(
        actor_id=np.tile(np.arange(n), (ROWS, 1)), kind=kind, role=np.zeros((ROWS, n), np.int8),
        valid=np.ones((ROWS, n), bool), **fields,
    )  # fmt: skip
    steps = (ROWS - 1) // ROWS_PER_STEP + 1
    has = plans is not None
    return HindsightLog(
        frame=2 * np.arange(ROWS, dtype=np.int64),
        time_s=t,
        actors=actors,
        light_state=light_state,
        plans=plans if plans is not None else np.zeros((steps, HORIZON_STEPS, 3)),
        has_plan=np.full(steps, has),
    )


def _cruise_plans(town: Town, lateral_m: float = 0.0) -> np.ndarray:
    """Per planning step, the plan that keeps SPEED_MPS along the lane for 4 s (each the exact
    continuation of the previous one), the end shifted ``lateral_m`` to the left linearly."""
    steps = (ROWS - 1) // ROWS_PER_STEP + 1
    t = POSE_DT_S * np.arange(1, HORIZON_STEPS + 1)
    t0 = ROWS_PER_STEP * POSE_DT_S * np.arange(steps)[:, None]
    return _lane_poses(town, S0_M + SPEED_MPS * (t0 + t), lateral_m * t / t[-1])


def test_plan_along_an_empty_lane_scores_one_everywhere(town: Town, planned: PlannedRoute) -> None:
    scores = score_episode(_log(town, _cruise_plans(town)), town, planned)
    assert scores.step.tolist() == [0, 1, 2, 3, 4]  # (60 - 40) // 5 + 1: the last 4 s unscored
    assert scores.frame.tolist() == [0, 10, 20, 30, 40]
    assert scores.from_plan.all()
    np.testing.assert_allclose(scores.values, 1.0, atol=1e-9)  # EC of identical plans: 1
    # 4 s at 5 m/s along the route
    np.testing.assert_allclose(scores.progress_m, SPEED_MPS * 4.0, atol=0.05)


def test_plan_into_a_recorded_stopped_car_loses_nc_where_it_reaches_it(
    town: Town, planned: PlannedRoute
) -> None:
    # step k: ego at S0 + 2.5 k, its plan's front reaches S0 + 2.5 k + 20 + 2.45; the car's back
    # is at S0 + 31 - 2.25: contact within 4 s from k = 3 on (gaps: k=2 1.3 m, k=3 -1.2 m)
    scores = score_episode(_log(town, _cruise_plans(town), car_s_m=S0_M + 31.0), town, planned)
    assert scores.values[Metric.NC].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert scores.values[Metric.PDMS, 3:].tolist() == [0.0, 0.0]
    assert scores.values[Metric.EPDMS, 3:].tolist() == [0.0, 0.0]


def test_plan_leaving_the_road_loses_dac(town: Town, planned: PlannedRoute) -> None:
    plans = _cruise_plans(town, lateral_m=15.0)
    ends = plans[:, -1, :2]
    assert not town.area.contains(ends).any()  # precondition: every plan ends off the road
    scores = score_episode(_log(town, plans), town, planned)
    assert scores.values[Metric.DAC].tolist() == [0.0] * 5
    assert scores.values[Metric.PDMS].tolist() == [0.0] * 5


def test_alternating_plans_lose_ec(town: Town, planned: PlannedRoute) -> None:
    plans = _cruise_plans(town)
    t = POSE_DT_S * np.arange(1, HORIZON_STEPS + 1)
    # 2 m lateral weave over the 4 s (the plan's headings stay the lane's): NAVSIM's LQR tracks
    # a 1 m weave so smoothly that the RMS yaw-rate difference stays ~0.07 rad/s < 0.1
    weave = 2.0 * np.sin(2 * np.pi * t / 4.0)
    steps = plans.shape[0]
    t0 = ROWS_PER_STEP * POSE_DT_S * np.arange(steps)[:, None]
    woven = _lane_poses(town, S0_M + SPEED_MPS * (t0 + t), weave)
    plans[1::2] = woven[1::2]
    scores = score_episode(_log(town, plans), town, planned)
    assert scores.values[Metric.EC].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_controls_only_agent_is_scored_on_its_executed_path(
    town: Town, planned: PlannedRoute
) -> None:
    scores = score_episode(_log(town, None), town, planned)
    assert not scores.from_plan.any()
    np.testing.assert_allclose(scores.values, 1.0, atol=1e-9)
    # into the stopped car: the executed path itself hits it once the 4 s reach it
    hit = score_episode(_log(town, None, car_s_m=S0_M + 31.0), town, planned)
    assert hit.values[Metric.NC].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_shared_rasters_score_as_per_step_scenes(town: Town, planned: PlannedRoute) -> None:
    """Every sub-score but EP (paired with the executed path) equals a plain per-step call of the
    scorer on the step's scene, rasters built for that step alone."""
    log = _log(town, _cruise_plans(town, lateral_m=2.0), car_s_m=S0_M + 31.0)
    scores = score_episode(log, town, planned)
    for i in scores.step.tolist():
        r = ROWS_PER_STEP * i
        prev = None
        if i:
            start = log.actors.x[r - 5, 0], log.actors.y[r - 5, 0], log.actors.yaw[r - 5, 0]
            prev = np.concatenate([[start], log.plans[i - 1]])
        scene = step_scene(log, r, town, route_frame(town, planned), planned.xy, prev)
        states = np.ascontiguousarray(rollout_candidates(scene, log.plans[i][None]))
        direct = score_states(scene, town, states).values[:, 0]
        for m in Metric:
            if m not in (Metric.EP, Metric.PDMS, Metric.EPDMS):
                assert scores.values[m, i] == direct[m], (i, m.name)


RED_LIGHT = 2  # Harness01: the light of connector 48, straight on from lane 89 to lane 88
RED_CONNECTOR, RED_APPROACH, RED_EXIT = 48, 89, 88


def test_plan_into_a_red_light_loses_tlc(town: Town) -> None:
    """A plan driving on into a junction whose light stays red: TLC 0 from the step whose 4 s
    reach the connector; the steps share one raster set (same red timeline) and score as
    per-step scenes do."""
    lanes = town.lanes
    assert RED_CONNECTOR in town.signals.light_lanes[RED_LIGHT]
    (a, b), _ = lanes.position(np.array([RED_APPROACH, RED_EXIT]), np.array([1.0, 30.0]))
    planned = plan_route(town, np.array([[*a, 0.0], [*b, 0.0]]), "red")
    assert RED_CONNECTOR in planned.lane
    entry_m = float(planned.s_m[np.flatnonzero(planned.lane == RED_CONNECTOR)[0]])

    def along(s_m: np.ndarray) -> np.ndarray:
        x = np.interp(s_m, planned.s_m, planned.xy[:, 0])
        y = np.interp(s_m, planned.s_m, planned.xy[:, 1])
        yaw = np.interp(s_m, planned.s_m, np.unwrap(planned.yaw_rad))
        return np.stack([x, y, yaw], axis=-1)

    # step k: the plan's front reaches start + 2.5 k + 20 + 2.45; the connector starts at entry:
    # k = 0 stays 3.05 m short, k >= 2 enters it by >= 1.95 m
    start = entry_m - 25.5
    t = POSE_DT_S * np.arange(ROWS)
    steps = (ROWS - 1) // ROWS_PER_STEP + 1
    t_plan = POSE_DT_S * np.arange(1, HORIZON_STEPS + 1)
    t0 = ROWS_PER_STEP * POSE_DT_S * np.arange(steps)[:, None]
    plans = along(start + SPEED_MPS * (t0 + t_plan))
    lights = np.full((ROWS, town.signals.lights_count), LightState.GREEN, np.int8)
    lights[:, RED_LIGHT] = LightState.RED
    log = _log(town, plans, ego=along(start + SPEED_MPS * t), light_state=lights)
    scores = score_episode(log, town, planned)
    tlc = scores.values[Metric.TLC]
    assert tlc[0] == 1.0 and tlc[2:].tolist() == [0.0, 0.0, 0.0]
    green = score_episode(_log(town, plans, ego=along(start + SPEED_MPS * t)), town, planned)
    assert green.values[Metric.TLC].tolist() == [1.0] * 5
    for i in scores.step.tolist():
        r = ROWS_PER_STEP * i
        prev = None
        if i:
            p0 = log.actors.x[r - 5, 0], log.actors.y[r - 5, 0], log.actors.yaw[r - 5, 0]
            prev = np.concatenate([[p0], log.plans[i - 1]])
        scene = step_scene(log, r, town, route_frame(town, planned), planned.xy, prev)
        states = np.ascontiguousarray(rollout_candidates(scene, log.plans[i][None]))
        assert score_states(scene, town, states).values[Metric.TLC, 0] == tlc[i]


def test_plan_formats() -> None:
    origin = np.array([1.0, 2.0, 0.0])
    t = 0.5 * np.arange(1, 9)
    eight = np.column_stack([1.0 + 4.0 * t, np.full(8, 2.0), np.zeros(8)])  # 4 m/s along x
    poses = score_poses(eight, origin)
    assert poses is not None and poses.shape == (40, 3)
    np.testing.assert_allclose(poses[:, 0], 1.0 + 4.0 * 0.1 * np.arange(1, 41))
    long = np.arange(45 * 3, dtype=np.float64).reshape(45, 3)
    assert np.array_equal(score_poses(long, origin), long[:40])
    assert score_poses(np.zeros((30, 3)), origin) is None  # 3 s: shorter than the horizon
    assert score_poses(None, origin) is None


def test_step_file_schema_and_means(tmp_path: Path) -> None:
    path = step_scores_path(tmp_path, "RouteScenario_7_rep0")
    assert path == tmp_path / "closed_loop" / "RouteScenario_7_rep0.parquet"
    cols = {c: np.array([1.0, 0.5, 0.0]) for c in SCORE_COLUMNS}
    write_step_scores(path, np.array([0, 10, 20]), np.array([0.0, 0.5, 1.0]), cols,
                      np.array([20.0, 10.0, 0.0]), ["agent", "agent", "executed"],
                      {"route_id": "7"})  # fmt: skip
    table = pq.read_table(path)
    assert table.schema.remove_metadata() == SCHEMA
    assert table.schema.metadata[b"harness.route_id"] == b"7"
    means = read_route_means(path)
    assert means is not None
    assert means["pdms"] == 0.5 and means["steps"] == 3.0
    assert means["agent_plan_share"] == pytest.approx(2 / 3)
    assert read_route_means(tmp_path / "missing.parquet") is None
    other = {**{c: 1.0 for c in SCORE_COLUMNS}, "steps": 5.0, "agent_plan_share": 1.0}
    summary = overall_means([means, other, None])
    assert summary.routes == 2 and summary.steps == 8
    assert summary.means["nc"] == 0.75  # each route weighs the same
    assert closed_loop_summary(tmp_path, ["RouteScenario_7_rep0", "nope"]).means["nc"] == 0.5
    with pytest.raises(ValueError, match="lack"):
        write_step_scores(path, np.zeros(1), np.zeros(1), {}, np.zeros(1), ["agent"])


def test_metric_names_match_the_file_columns() -> None:
    assert [m.name.lower() for m in Metric] == sorted(
        SCORE_COLUMNS, key=lambda c: Metric[c.upper()]
    )
    assert {m.name.lower() for m in Metric} == set(SCORE_COLUMNS)


def test_factory_pickles() -> None:
    assert pickle.loads(pickle.dumps(ClosedLoopScoring())) == ClosedLoopScoring()


def test_eval_writes_closed_loop_scores_for_plans_and_executed_paths(
    tmp_path: Path, bench2drive_xml: Path
) -> None:
    """``harness eval`` on Bench2Drive route 145 (Town03, ~28 s): the expert exposes 40-pose
    plans (scored as the agent's), lane_follow a 3 s plan, shorter than the horizon, so its
    executed path is scored."""
    routes = bench2drive_xml
    for agent, source in (("expert", "agent"), ("lane_follow", "executed")):
        out = tmp_path / agent
        res = CliRunner().invoke(app, ["eval", "--agent", agent, "--routes", str(routes),
                                       "--routes-subset", "145", "--out", str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "Closed-loop PDMS / EPDMS" in res.output
        steps = pd.read_parquet(out / "closed_loop" / "RouteScenario_24206_rep0.parquet")
        duration = pd.read_parquet(out / "steps" / "RouteScenario_24206_rep0.parquet")["time_s"]
        # every 0.5 s step with 4 s of hindsight: frames 0, 10, ... up to the last 4 s
        last = duration.iloc[-1] - 4.0
        assert steps["time_s"].tolist() == pytest.approx(list(np.arange(len(steps)) * 0.5))
        assert last - 0.5 < steps["time_s"].iloc[-1] <= last + 1e-9
        assert set(steps["source"]) == {source}
        for c in SCORE_COLUMNS:
            assert steps[c].between(0.0, 1.0).all(), c
        assert (steps["pdms"] <= steps["nc"] * steps["dac"] + 1e-12).all()


def test_eval_without_closed_loop_writes_none(tmp_path: Path, bench2drive_xml: Path) -> None:
    routes = bench2drive_xml
    res = CliRunner().invoke(app, ["eval", "--agent", "do_nothing", "--routes", str(routes),
                                   "--routes-subset", "145", "--out", str(tmp_path),
                                   "--no-closed-loop", "--blocked-time", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "closed_loop").exists()
    assert "Closed-loop" not in res.output
