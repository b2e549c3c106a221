"""The evaluation folder as Bench2Drive's tools read it: results.json the only JSON at the top,
Bench2Drive's record values, one metric_info.json per route at 10 Hz, and the run tables
(routes.parquet, infractions.parquet) kept across a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.leaderboard.results import RouteRecord
from harness.leaderboard.route_criteria import CriteriaConfig
from harness.leaderboard.statistics import RouteScores
from harness.runner import Mode, RunConfig, run_evaluation
from harness.runner.tables import INFRACTION_SCHEMA, infraction_rows
from harness.world.backend import TrafficConfig

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
BLOCKED_S = 1.0  # [s] do_nothing's route ends as blocked after this


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    cfg = RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent="do_nothing", routes_file=ROUTES, out_dir=out, subset="0",
        criteria=CriteriaConfig(blocked_time_s=BLOCKED_S, tick_limit=4000),
        traffic=TrafficConfig(vehicles=2, pedestrians=0),
    )  # fmt: skip
    run_evaluation(cfg)
    return out


def test_results_json_is_the_only_json_at_the_top(out: Path) -> None:
    assert sorted(p.name for p in out.glob("*.json")) == ["results.json"]  # merge_route_json.py
    assert (out / "harness" / "run.json").is_file()


def test_record_values_and_metric_info(out: Path) -> None:
    data = json.loads((out / "results.json").read_text())
    rec = data["_checkpoint"]["records"][0]
    stamp = json.loads((out / "harness" / "run.json").read_text())["stamp"]
    # route 0 of harness01_routes.xml: no scenario; its first weather keyframe is weather.xml's
    # case 0 (cloudiness 5, wind 10, azimuth -1, altitude 90, fog 2, the rest 0)
    assert rec["scenario_name"] is None and rec["weather_id"] == "0"
    assert rec["save_name"] == f"RouteScenario_0_rep0_Harness01_None_0_{stamp}"
    assert data["sensors"] == ["carla_speedometer"]
    info = json.loads((out / "metric_info" / rec["save_name"] / "metric_info.json").read_text())
    ticks = round(rec["meta"]["duration_game"] / 0.05)  # 20 Hz ticks after the reset
    # the reset state and every second tick: steps 0, 2, ..., 10 Hz
    assert list(info) == [str(k) for k in range(0, ticks + 1, 2)]
    first = info["0"]
    assert set(first) == {"acceleration", "angular_velocity", "forward_vector", "right_vector",
                          "location", "rotation"}  # fmt: skip
    f, r = first["forward_vector"], first["right_vector"]
    assert f[0] * r[0] + f[1] * r[1] == pytest.approx(0.0, abs=1e-12)  # perpendicular
    assert f[0] * r[1] - f[1] * r[0] == pytest.approx(1.0)  # right of forward: CARLA's frame


def test_run_tables(out: Path) -> None:
    routes = pq.read_table(out / "routes.parquet").to_pylist()
    assert len(routes) == 1
    row = routes[0]
    assert row["route_id"] == "0" and row["status"] == "Failed - Agent got blocked"
    assert row["n_vehicle_blocked"] == 1 and row["success"] is False
    assert row["smoothness"] == 1.0  # standing still: every bound holds
    infractions = pq.read_table(out / "infractions.parquet").to_pylist()
    blocked = [i for i in infractions if i["kind"] == "vehicle_blocked"]
    assert len(blocked) == 1 and blocked[0]["frame"] is not None and blocked[0]["x_m"] is not None
    summary = json.loads((out / "harness" / "bench2drive.json").read_text())
    assert summary["total_routes"] == 8 and summary["driving_score"] == 0.0


def _rec(index: int, **infractions: list[str]) -> RouteRecord:
    inf = {k: infractions.get(k, []) for k in INFRACTION_KEYS}
    return RouteRecord(
        index, f"RouteScenario_{index}_rep0", "Completed", sum(map(len, inf.values())), inf,
        RouteScores(100.0, 1.0, 100.0), 100.0, 10.0, 1.0,
    )  # fmt: skip


def test_infraction_rows_keep_what_is_known(tmp_path: Path) -> None:
    stored = [{"index": 0, "route_id": "a", "record_route_id": "RouteScenario_0_rep0",
               "kind": "red_light", "frame": 40, "time_s": 2.0, "x_m": 1.0, "y_m": 2.0,
               "text": "old"}]  # fmt: skip
    path = tmp_path / "infractions.parquet"
    pq.write_table(pa.Table.from_pylist(stored, schema=INFRACTION_SCHEMA), path)
    records = [_rec(0, red_light=["old"]), _rec(1, collisions_layout=["hit"]), _rec(2)]
    fresh = {2: [dict(stored[0], index=2, frame=7)]}
    rows = infraction_rows(path, records, ["a", "b", "c"], fresh)
    # record 0: the stored row (frame known); record 1: from its message (frame unknown);
    # record 2: this run's row
    assert [(r["index"], r["frame"], r["text"]) for r in rows] == [
        (0, 40, "old"), (1, None, "hit"), (2, 7, "old"),
    ]  # fmt: skip
