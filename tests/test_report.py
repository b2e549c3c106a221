"""report.html and `harness report`: the numbers of a hand-built eval folder (leaderboard means,
the Bench2Drive metrics computed from results.json + route file + metric_info when
harness/bench2drive.json is absent, closed-loop means, infraction places from
infractions.parquet), self-containment (no link out, every picture inline), a real render in
headless Chromium (where installed), the comparison page, and `harness eval` end to end: the
report's Bench2Drive numbers are those of harness/bench2drive.json and the console."""

from __future__ import annotations

import html
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
from harness.leaderboard import bench2drive as b2d
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.report.inputs import BENCH2DRIVE_FILE, COMPUTED, READ, infraction_marks, load_run
from harness.report.page import (
    B2D_HEAD,
    REPORT_FILE,
    render_report,
    summarise,
    write_report,
)
from harness.runner.closed_loop import SCORE_COLUMNS, step_scores_path, write_step_scores
from harness.runner.evaluation import RUN_FILE
from harness.runner.metric_info import metric_info_path
from harness.runner.tables import INFRACTION_SCHEMA, INFRACTIONS_TABLE

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


def _route_xml(path: Path, types: list[str]) -> None:
    """A route file of len(types) routes (ids 0, 1, ...) on Harness01, route k's first
    scenario of type types[k]."""
    routes = []
    for k, kind in enumerate(types):
        routes.append(
            f'<route id="{k}" town="Harness01"><waypoints>'
            '<position x="20.0" y="1.75" z="0.0"/><position x="121.0" y="1.75" z="0.0"/>'
            f'</waypoints><scenarios><scenario name="{kind}_1" type="{kind}">'
            '<trigger_point x="60.0" y="1.75" z="0.0" yaw="0.0"/></scenario></scenarios></route>'
        )
    path.write_text("<routes>" + "".join(routes) + "</routes>")


def _comfortable_metric_info(n: int) -> b2d.MetricInfo:
    """n samples of an ego at rest facing +x: every comfort bound holds."""
    z = np.zeros((n, 3))
    fwd, right = np.tile([1.0, 0.0, 0.0], (n, 1)), np.tile([0.0, 1.0, 0.0], (n, 1))
    return b2d.MetricInfo(np.arange(n), z, z, fwd, right, z, z)


def _eval_dir(tmp_path: Path, name: str = "run_a") -> Path:
    """Three of four routes done: a perfect Accident route (min speed 80 % of the traffic's), a
    DynamicObjectCrossing route with a vehicle collision at (x=10, y=-20), an InvadingTurn route
    blocked at 40 % after a red light at (x=5.5, y=7.25). Hand-computed leaderboard means over
    the run's 4 routes: DS = (100 + 60 + 28) / 4 = 47, RC = 60, IP = (1 + 0.6 + 0.7) / 4 = 0.575,
    success 1 / 4 = 25 %. The route file holds 5 routes (the run took 0-3), so Bench2Drive's
    DS = 188 / 5 = 37.6 and SR = 1 / 5 = 20 %; efficiency 80 %; comfortness: route 0's 40
    comfortable samples, 100 %; abilities Overtaking 1/1, Emergency_Brake 0/1, Give_Way 0/1,
    mean over the three 33.33 %. Closed loop of route 2: PDMS (1 + 0.5 + 0) / 3 = 0.5,
    EPDMS (1 + 1 + 0.4) / 3 = 0.8."""
    out = tmp_path / name
    out.mkdir()
    speed = "Average speed is 80.0% of the surrounding traffic's one"
    records = [
        _record(0, "Accident_1", "Perfect", 100.0, {"min_speed_infractions": [speed]}),
        _record(1, "DynamicObjectCrossing_3", "Completed", 100.0, {
            "collisions_vehicle": ["Agent collided against object with type=vehicle.tesla and id=12 at (x=10.0, y=-20.0, z=0.1)"]}),
        _record(2, "InvadingTurn_2", "Failed - Agent got blocked", 40.0, {
            "red_light": ["Agent ran a red light 3 at (x=5.5, y=7.25, z=0.0)"],
            "vehicle_blocked": ["Agent got blocked at (x=9.0, y=7.0, z=0.0)"]}),
    ]  # fmt: skip
    results = {"_checkpoint": {"global_record": {}, "progress": [3, 4], "records": records},
               "entry_status": "Started", "eligible": False, "sensors": [], "values": [], "labels": []}  # fmt: skip
    (out / "results.json").write_text(json.dumps(results))
    routes_xml = out / "routes.xml"
    _route_xml(routes_xml, ["Accident", "DynamicObjectCrossing", "InvadingTurn",
                            "ParkedObstacle", "HardBreakRoute"])  # fmt: skip
    (out / RUN_FILE).parent.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"config": {
        "agent": "hand", "routes_file": str(routes_xml), "subset": "0-3"}}))  # fmt: skip
    info = metric_info_path(out, records[0]["save_name"])
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps(_comfortable_metric_info(40).to_json()))
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
    scores = {c: np.ones(3) for c in SCORE_COLUMNS}
    scores["pdms"] = np.array([1.0, 0.5, 0.0])
    scores["epdms"] = np.array([1.0, 1.0, 0.4])
    write_step_scores(
        step_scores_path(out, "RouteScenario_2_rep0"), np.array([10, 20, 30]),
        np.array([0.5, 1.0, 1.5]), scores, np.zeros(3), ["agent", "agent", "executed"],
    )  # fmt: skip
    return out


def _text(page: str) -> str:
    """The page's text: markup and pictures dropped, cells separated by one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", page)).split())


def test_infraction_places_come_from_the_infractions_table(tmp_path: Path) -> None:
    out = _eval_dir(tmp_path)
    msg = "Agent collided against object with type=vehicle.tesla and id=12 at (x=10.0, y=-20.0, z=0.1)"
    pq.write_table(pa.Table.from_pylist([
        {"index": 1, "route_id": "1", "record_route_id": "RouteScenario_1_rep0",
         "kind": "collisions_vehicle", "frame": 40, "time_s": 2.0, "x_m": 11.5, "y_m": -19.0,
         "text": msg}], schema=INFRACTION_SCHEMA), out / INFRACTIONS_TABLE)  # fmt: skip
    routes = load_run(out).routes
    m = routes[1].marks
    assert [(x.key, x.x_m, x.y_m, x.time_s) for x in m] == [
        ("collisions_vehicle", 11.5, -19.0, 2.0)
    ]
    # records the table does not cover: the place the message names, no time
    assert [(x.key, x.x_m, x.y_m) for x in routes[2].marks[:1]] == [("red_light", 5.5, 7.25)]
    assert np.isnan(routes[2].marks[0].time_s)


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
    assert s.infractions["vehicle_blocked"] == 1 and sum(s.infractions.values()) == 4
    # no harness/bench2drive.json: computed from results.json, the route file and metric_info
    m = run_data.bench2drive
    assert m is not None and run_data.bench2drive_source == COMPUTED
    assert (m.num_records, m.total_routes) == (3, 5)
    assert m.driving_score == pytest.approx(37.6) and m.success_rate == pytest.approx(0.2)
    assert m.efficiency_pct == pytest.approx(80.0) and m.smoothness == pytest.approx(1.0)
    assert m.abilities.counts == {"Overtaking": (1, 1), "Merging": (0, 0),
                                  "Emergency_Brake": (0, 1), "Give_Way": (0, 1),
                                  "Traffic_Signs": (0, 0)}  # fmt: skip
    assert m.abilities.mean == pytest.approx(1.0 / 3.0)
    assert [(r.efficiency_pct, r.smoothness) for r in run_data.routes] == [
        (80.0, 1.0), (None, None), (None, None)]  # fmt: skip
    cl = run_data.closed_loop
    assert (cl.routes, cl.steps) == (1, 3)
    assert cl.means["pdms"] == pytest.approx(0.5) and cl.means["epdms"] == pytest.approx(0.8)

    page = render_report(run_data)
    text = _text(page)
    for needle in ("3/4 47.000 60.000 0.575 25.00", "Failed - Agent got blocked",
                   "RouteScenario_1_rep0", "collisions_vehicle x1",
                   " ".join(B2D_HEAD).replace("_", " "),
                   "3/5 37.60 20.00 80.00 100.00 100.00 - 0.00 0.00 - 33.33",
                   "1 3 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 0.500 0.800",
                   "RouteScenario_2_rep0 3 1.000", "100.00 80.00 100.00 - -"):  # fmt: skip
        assert needle in text, needle
    assert page.count("<img ") == 1 + 3  # the ability bars, one figure per route
    _assert_self_contained(page)


def test_stored_bench2drive_json_is_what_the_report_shows(tmp_path: Path) -> None:
    out = _eval_dir(tmp_path)
    computed = load_run(out).bench2drive
    assert computed is not None
    # a run's own summary wins over recomputing (here: different numbers, to tell them apart)
    stored = b2d.Bench2DriveMetrics(12.5, 0.125, 3, 8, None, 0.5, b2d.AbilityResult(
        {a: (1, 2) for a in b2d.ABILITIES}, (("Accident", "7"),)))  # fmt: skip
    (out / BENCH2DRIVE_FILE).write_text(json.dumps(stored.to_json()))
    run_data = load_run(out)
    assert run_data.bench2drive == stored and run_data.bench2drive_source == READ
    assert "3/8 12.50 12.50 - 50.00 50.00 50.00 50.00 50.00 50.00 50.00" in _text(
        render_report(run_data)
    )
    # one that does not cover the records (another run's) is recomputed
    (out / BENCH2DRIVE_FILE).write_text(json.dumps({**stored.to_json(), "eval_num": 2}))
    assert load_run(out).bench2drive == computed


def test_infraction_locations_are_parsed() -> None:
    rec = _record(0, "x", "Completed", 100.0, {
        "red_light": ["Agent ran a red light 3 at (x=5.5, y=-7.25, z=0.0)"],
        "min_speed_infractions": ["Average speed is 49.61% of the surrounding traffic's one"]})  # fmt: skip
    marks = infraction_marks(rec)
    assert [(m.key, m.x_m, m.y_m) for m in marks[:1]] == [("red_light", 5.5, -7.25)]
    assert marks[1].key == "min_speed_infractions" and np.isnan(marks[1].x_m)


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
    b = _eval_dir(tmp_path, "run_b")
    shutil.rmtree(b / "closed_loop")
    data = json.loads((a / "results.json").read_text())
    data["_checkpoint"]["records"] = data["_checkpoint"]["records"][:1]
    (b / "results.json").write_text(json.dumps(data))
    assert run(["report", str(a)]) == 0
    assert (a / REPORT_FILE).is_file()
    cmp_path = tmp_path / "cmp.html"
    assert run(["report", str(a), str(b), "--out", str(cmp_path)]) == 0
    page = cmp_path.read_text()
    _assert_self_contained(page)
    text = _text(page)
    assert "run_a" in text and "run_b" in text
    assert "DS 47.000 25.000" in text  # b: 100 / 4
    # Bench2Drive over the 5 routes of the file; b: route 0 only
    assert "Bench2Drive DS 37.60 20.00" in text and "Bench2Drive SR % 20.00 20.00" in text
    assert "Bench2Drive efficiency % 80.00 80.00" in text
    assert "Bench2Drive ability mean % 33.33 100.00" in text
    assert "closed-loop PDMS 0.500 -" in text and "closed-loop EPDMS 0.800 -" in text
    assert "Closed-loop EPDMS per route" in text and "RouteScenario_2_rep0 0.800 -" in text
    capsys.readouterr()
    assert run(["report", str(tmp_path / "nothing")]) == 2
    assert run(["report", str(tmp_path)]) == 2  # a folder without results.json
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error: ") and "harness eval" in e for e in err)


def _row_cells(page: str, section: str) -> list[str]:
    """The cells of the first data row of the first table after the heading ``section``."""
    after = page[page.index(f"<h2>{section}</h2>") :]
    table = after[after.index("<table>") : after.index("</table>")]
    row = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1]
    return [
        html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)
    ]


def _console_cells(text: str, title: str) -> list[str]:
    """The cells of the data row of the console table titled ``title``."""
    lines = text[text.index(title) :].splitlines()
    row = next(ln for ln in lines if ln.lstrip().startswith("│"))
    return [c.strip() for c in row.strip().strip("│").split("│")]


def test_eval_report_shows_the_console_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A short eval (two do_nothing routes, one a failed Traffic_Signs route) prints its
    Bench2Drive and closed-loop tables; report.html shows the same cells, taken from
    harness/bench2drive.json, and the same again when the folder has only results.json, the
    route file and metric_info/ (the report computes them then)."""
    out = tmp_path / "ev"
    capsys.readouterr()
    rc = run(["eval", "--agent", "do_nothing", "--routes", str(ROUTES), "--routes-subset", "0,1",
              "--out", str(out), "--blocked-time", "6", "--traffic", "2", "--pedestrians", "0",
              "--videos", "failed", "--no-resume"])  # fmt: skip
    assert rc == 0
    console = capsys.readouterr().out
    videos = sorted(v.stem for v in (out / "videos").iterdir())
    assert videos == ["RouteScenario_0_rep0", "RouteScenario_1_rep0"]  # both blocked: failed
    assert not (out / "recordings").exists()  # kept in memory only (no --record)
    page = (out / REPORT_FILE).read_text()
    assert "videos/RouteScenario_0_rep0" in page and "Failed - Agent got blocked" in page
    b2d_cells = _row_cells(page, "Bench2Drive")
    assert b2d_cells == _console_cells(console, "Bench2Drive (over all")
    stored = json.loads((out / BENCH2DRIVE_FILE).read_text())
    assert b2d_cells[:2] == [f"{stored['eval_num']}/{stored['total_routes']}",
                             f"{stored['driving_score']:.2f}"]  # fmt: skip
    rates = [stored["ability"][a] for a in (*b2d.ABILITIES, "mean")]
    assert b2d_cells[5:] == ["-" if v is None else f"{100 * v:.2f}" for v in rates]
    cl_cells = _row_cells(page, "Closed-loop PDMS / EPDMS")
    assert cl_cells[:-1] == _console_cells(console, "Closed-loop PDMS / EPDMS")
    # an older folder: no harness/bench2drive.json, routes.parquet, infractions.parquet
    for name in (BENCH2DRIVE_FILE, "routes.parquet", INFRACTIONS_TABLE):
        (out / name).unlink()
    assert run(["report", str(out)]) == 0
    again = (out / REPORT_FILE).read_text()
    assert _row_cells(again, "Bench2Drive") == b2d_cells
    assert _row_cells(again, "Closed-loop PDMS / EPDMS") == cl_cells
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
