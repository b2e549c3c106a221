"""report.html and `harness report`: the numbers of a hand-built results.json, the Bench2Drive
ability counting, self-containment (no link out, every picture inline), a real render in headless Chromium (where installed), the
comparison page, and `harness eval --videos failed` end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.cli.main import run
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.report.abilities import AbilityRoute, ability_scores, scenario_type_of
from harness.report.inputs import infraction_marks, load_run
from harness.report.page import REPORT_FILE, render_report, summarise, write_report

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"


def _record(
    index: int, scenario: str, status: str, rc: float, infractions: dict[str, list[str]]
) -> dict[str, Any]:
    factors = {"collisions_vehicle": 0.6, "red_light": 0.7}
    ip = float(np.prod([factors.get(k, 1.0) for k, v in infractions.items() for _ in v]))
    return {
        "index": index, "route_id": f"RouteScenario_{index}_rep0", "scenario_name": scenario,
        "weather_id": None, "save_name": f"{index}_Harness01_{scenario}_0_stamp", "status": status,
        "num_infractions": sum(len(v) for v in infractions.values()),
        "infractions": {k: list(infractions.get(k, [])) for k in INFRACTION_KEYS},
        "scores": {"score_route": rc, "score_penalty": ip, "score_composed": rc * ip},
        "meta": {"route_length": 100.0, "duration_game": 10.0, "duration_system": 1.0},
        "town_name": "Harness01",
    }  # fmt: skip


def _eval_dir(tmp_path: Path) -> Path:
    """Three of four routes done: a perfect Accident route, a DynamicObjectCrossing route with
    a vehicle collision at (x=10, y=-20), an InvadingTurn route blocked at 40 % after a red
    light at (x=5.5, y=7.25). Hand-computed: DS = (100 + 60 + 28) / 4 = 47, RC = 60,
    IP = (1 + 0.6 + 0.7) / 4 = 0.575, success 1 / 4 = 25 %."""
    out = tmp_path / "run_a"
    out.mkdir()
    records = [
        _record(0, "Accident_1", "Perfect", 100.0, {}),
        _record(1, "DynamicObjectCrossing_3", "Completed", 100.0, {
            "collisions_vehicle": ["Agent collided against object with type=vehicle.tesla and id=12 at (x=10.0, y=-20.0, z=0.1)"]}),
        _record(2, "InvadingTurn_2", "Failed - Agent got blocked", 40.0, {
            "red_light": ["Agent ran a red light 3 at (x=5.5, y=7.25, z=0.0)"],
            "vehicle_blocked": ["Agent got blocked at (x=9.0, y=7.0, z=0.0)"]}),
    ]  # fmt: skip
    results = {"_checkpoint": {"global_record": {}, "progress": [3, 4], "records": records},
               "entry_status": "Started", "eligible": False, "sensors": [], "values": [], "labels": []}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results))
    steps = out / "steps"
    steps.mkdir()
    t = np.arange(0.0, 5.0, 0.05)
    plan = [[float(x) + 1.0, float(x) + 2.0] for x in t]
    table = pa.table({
        "time_s": t, "x_m": 2.0 * t, "y_m": np.zeros_like(t), "speed_mps": np.full_like(t, 2.0),
        "route_progress_pct": 8.0 * t, "infractions": (t > 2.5).astype(np.int64),
        "plan_x_m": plan, "plan_y_m": [[0.0, 0.0]] * len(t), "plan_yaw_rad": [[0.0, 0.0]] * len(t),
    })  # fmt: skip
    pq.write_table(table, steps / "RouteScenario_2_rep0.parquet")
    return out


def test_infraction_locations_are_parsed() -> None:
    rec = _record(0, "x", "Completed", 100.0, {
        "red_light": ["Agent ran a red light 3 at (x=5.5, y=-7.25, z=0.0)"],
        "min_speed_infractions": ["Average speed is 49.61% of the surrounding traffic's one"]})  # fmt: skip
    marks = infraction_marks(rec)
    assert [(m.key, m.x_m, m.y_m) for m in marks[:1]] == [("red_light", 5.5, -7.25)]
    assert marks[1].key == "min_speed_infractions" and np.isnan(marks[1].x_m)


def test_ability_counting_follows_bench2drive() -> None:
    ok = _record(0, "", "Completed", 100.0, {})
    bad = _record(1, "", "Failed - Agent got blocked", 30.0, {})
    red = _record(
        2, "", "Completed", 100.0, {"red_light": ["Agent ran a red light at (x=1, y=1, z=0)"]}
    )
    scores = ability_scores([
        AbilityRoute(ok, "ParkedObstacle"),  # Overtaking
        AbilityRoute(bad, "YieldToEmergencyVehicle"),  # Give_Way
        # Traffic_Signs counted twice: once by success, once by the junction rule
        AbilityRoute(bad, "PedestrianCrossing", junction_fraction=0.2),  # 30 % > 20 %: passes junction
        # Merging and Traffic_Signs; the red light fails both Traffic_Signs counts
        AbilityRoute(red, "SignalizedJunctionLeftTurn", junction_fraction=0.2),
    ])  # fmt: skip
    got = {a: (s.successes, s.routes) for a, s in scores.items()}
    assert got == {
        "Merging": (0, 1), "Overtaking": (1, 1), "Emergency_Brake": (0, 1), "Give_Way": (0, 1),
        "Traffic_Signs": (1, 4),
    }  # fmt: skip
    assert scenario_type_of("DynamicObjectCrossing_12+Accident") == "DynamicObjectCrossing"
    assert scenario_type_of(None) is None


def test_report_holds_the_hand_computed_numbers(tmp_path: Path) -> None:
    run_data = load_run(_eval_dir(tmp_path))
    # step files are found by route id (Bench2Drive's save_name differs)
    assert [r.steps is not None for r in run_data.routes] == [False, False, True]
    s = summarise(run_data)
    assert (s.routes_done, s.total_routes) == (3, 4)
    assert s.ds == pytest.approx(47.0) and s.rc == pytest.approx(60.0)
    assert s.ip == pytest.approx(0.575) and s.success_rate_pct == pytest.approx(25.0)
    assert s.statuses == {"Perfect": 1, "Completed": 1, "Failed - Agent got blocked": 1}
    assert s.infractions["collisions_vehicle"] == 1 and s.infractions["red_light"] == 1
    assert s.infractions["vehicle_blocked"] == 1 and sum(s.infractions.values()) == 3
    got = {a: (x.successes, x.routes) for a, x in s.abilities.items()}
    assert got["Overtaking"] == (1, 1) and got["Emergency_Brake"] == (0, 1)
    assert got["Give_Way"] == (0, 1) and got["Merging"] == (0, 0)

    page = render_report(run_data)
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", page))
    for needle in ("3/4", "47.000", "60.000", "0.575", "25.00", "Failed - Agent got blocked",
                   "RouteScenario_1_rep0", "collisions_vehicle x1"):  # fmt: skip
        assert needle in text, needle
    assert page.count("<img ") == 1 + 3  # the ability bars, one figure per route
    _assert_self_contained(page)


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://|file:|ftp:", page)
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "<script" not in page and "<link" not in page and "@import" not in page


def _chromium() -> str | None:
    return next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary (Debian: apt-get install chromium)")
    report = write_report(_eval_dir(tmp_path))
    shot = tmp_path / "shot.png"
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "47.000" in dom.stdout and "Failed - Agent got blocked" in dom.stdout
    subprocess.run([*base, f"--screenshot={shot}", report.as_uri()], capture_output=True,
                   timeout=120, check=False)  # fmt: skip
    from PIL import Image

    with Image.open(shot) as im:
        px = np.asarray(im.convert("L"))
    assert px.shape == (1400, 1000)
    assert (px < 128).mean() > 0.002  # text, tables and plots drawn, not a blank page


def test_cli_report_regenerates_and_compares(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _eval_dir(tmp_path)
    b = tmp_path / "run_b"
    b.mkdir()
    data = json.loads((a / "results.json").read_text())
    data["_checkpoint"]["records"] = data["_checkpoint"]["records"][:1]
    (b / "results.json").write_text(json.dumps(data))
    assert run(["report", str(a)]) == 0
    assert (a / REPORT_FILE).is_file()
    cmp_path = tmp_path / "cmp.html"
    assert run(["report", str(a), str(b), "--out", str(cmp_path)]) == 0
    page = cmp_path.read_text()
    _assert_self_contained(page)
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", page))
    assert "run_a" in text and "run_b" in text
    assert "47.000" in text and "25.000" in text  # DS of a; b: 100 / 4
    capsys.readouterr()
    assert run(["report", str(tmp_path / "nothing")]) == 2
    assert run(["report", str(tmp_path)]) == 2  # a folder without results.json
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") and "harness eval" in e for e in err)


def test_eval_writes_report_and_videos_of_failed_routes(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    rc = run(["eval", "--agent", "do_nothing", "--routes", str(ROUTES), "--routes-subset", "0",
              "--out", str(out), "--blocked-time", "1", "--traffic", "2", "--pedestrians", "0",
              "--videos", "failed", "--no-resume"])  # fmt: skip
    assert rc == 0
    videos = list((out / "videos").iterdir())
    assert [v.stem for v in videos] == ["RouteScenario_0_rep0"]  # the blocked route failed
    assert videos[0].stat().st_size > 0
    assert not (out / "recordings").exists()  # kept in memory only (no --record)
    page = (out / REPORT_FILE).read_text()
    assert "videos/RouteScenario_0_rep0" in page and "Failed - Agent got blocked" in page
    assert run(["eval", "--agent", "do_nothing", "--routes", str(ROUTES), "--out", str(out),
                "--videos", "some"]) == 2  # fmt: skip


def test_polygon_exteriors_skip_lines_in_clipped_lane_polygons() -> None:
    import shapely

    from harness.maps.area import polygon_exteriors

    square = shapely.box(0.0, 0.0, 1.0, 1.0)
    far = shapely.box(5.0, 5.0, 7.0, 6.0)
    mixed = shapely.GeometryCollection(
        [square, shapely.LineString([(0, 0), (3, 3)]), shapely.MultiPolygon([far])]
    )
    rings = polygon_exteriors(mixed)
    assert [r.shape for r in rings] == [(5, 2), (5, 2)]
    np.testing.assert_allclose(sorted(r[:, 0].max() for r in rings), [1.0, 7.0])
    assert polygon_exteriors(shapely.Polygon()) == []


def test_comparison_labels_tell_same_named_folders_apart(tmp_path: Path) -> None:
    from harness.report.page import run_labels

    a = _eval_dir(tmp_path)
    other = tmp_path / "new" / "run_a"
    shutil.copytree(a, other)
    runs = [load_run(a), load_run(other)]
    assert run_labels(runs) == [f"{tmp_path.name}/run_a", "new/run_a"]
    assert run_labels(runs[:1]) == ["run_a"]
