"""The built-in highway (Harness02) and interurban (Harness03) towns: lanes, ramps, junctions,
lights and stop signs as their layouts say, and the expert driving onto and off the motorway and
through a stop sign; scenarios of unimplemented types reported by `routes info` / `routes check`
and recorded in the eval's results, never dropped silently."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from harness.leaderboard.route_criteria import CriteriaConfig
from harness.maps.builtin import builtin_layout, builtin_names, builtin_osm, builtin_xodr
from harness.maps.builtin import harness02 as h02
from harness.maps.builtin import harness03 as h03
from harness.maps.builtin.osm import add_stop_signs, layout_to_world, osm_to_xodr
from harness.maps.town import Town
from harness.maps.towns import available_towns, load_town
from harness.routes import RouteConfig, write_routes
from harness.routes.check import check_route_file, unimplemented_by_type
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.routes.model import ScenarioConfig
from harness.runner import Mode, RunConfig, run_evaluation
from harness.world.backend import TrafficConfig
from scenarios.registry import SCENARIO_CLASSES

KPH = 1.0 / 3.6  # [m/s per km/h]
REAL_TYPE = "ParkedObstacle"  # a real type, taken out of the registry where a test says so
MADE_UP_TYPE = "NoSuchScenarioType"
# Harness02, layout (x, y [m], CARLA heading [deg]): up on-ramp 1 (eastbound, interchange A), the
# rightmost through lane of Motorway East, off-ramp 2 (interchange B)
RAMP_ROUTE_M = ((1000.0, -40.0, -22.0), (1160.0, -3.4, 0.0), (1390.0, -80.0, 45.0))


def _town(name: str) -> Town:
    with pytest.MonkeyPatch.context() as mp:  # only the built-in search location
        mp.delenv("HARNESS_MAPS", raising=False)
        mp.delenv("CARLA_ROOT", raising=False)
        return load_town(name)


@pytest.fixture(scope="module")
def highway() -> Town:
    return _town(h02.NAME)


@pytest.fixture(scope="module")
def interurban() -> Town:
    return _town(h03.NAME)


def _roads(town: Town) -> dict[str, list[list[tuple[int, float | None]]]]:
    """Street name -> per non-junction lane section: [(driving lane id, speed limit [m/s])]."""
    out: dict[str, list[list[tuple[int, float | None]]]] = {}
    for road in ET.fromstring(town.xodr).findall("road"):
        if road.get("junction") != "-1":
            continue
        for sec in road.findall("lanes/laneSection"):
            lanes = []
            for lane in sec.iter("lane"):
                if lane.get("type") == "driving":
                    sp = lane.find("speed")
                    lanes.append(
                        (
                            int(lane.get("id", "0")),
                            None if sp is None else float(sp.get("max", "nan")),
                        )
                    )
            out.setdefault(road.get("name", ""), []).append(lanes)
    return out


def _speeds(sections: list[list[tuple[int, float | None]]]) -> set[float | None]:
    """The speed limits [m/s] of these lane sections, to 0.1 m/s (the file writes 0.01)."""
    return {None if sp is None else round(sp, 1) for sec in sections for _, sp in sec}


def _near(town: Town, layout_pts: tuple[tuple[float, float], ...]) -> list[int]:
    """Junction id nearest each layout point (within 15 m, else -1)."""
    want = layout_to_world(np.array(layout_pts), town.xodr)
    got = np.array([j.center_xy for j in town.junctions])
    d = np.linalg.norm(want[:, None] - got[None], axis=-1)
    ids = [town.junctions[int(k)].id for k in np.argmin(d, axis=1)]
    return [i if d[n].min() < 15.0 else -1 for n, i in enumerate(ids)]


def _route(
    town: Town, rid: str, pts: tuple[tuple[float, float, float], ...]
) -> tuple[RouteConfig, PlannedRoute]:
    """A route through layout points (x, y, CARLA heading [deg]) snapped onto lane centerlines."""
    xy = layout_to_world(np.array([p[:2] for p in pts]), town.xodr)
    proj = town.lanes.project(xy, np.radians([p[2] for p in pts]))
    cxy, _ = town.lanes.position(np.asarray(proj.lane), np.asarray(proj.s_m))
    keypoints = np.column_stack([np.asarray(cxy), np.zeros(len(pts))])
    route = RouteConfig(id=rid, town=town.name, keypoints=keypoints)
    return route, plan_route(town, keypoints, rid)


def _lane_streets(town: Town, planned: PlannedRoute) -> list[str]:
    """Street names along the planned route, junction connectors dropped, repeats merged."""
    names = {
        int(r.get("id", "-1")): r.get("name", "") for r in ET.fromstring(town.xodr).findall("road")
    }
    seq = [names[int(town.lanes.road_id[k])] for k in planned.lane if town.lanes.junction_id[k] < 0]
    return [n for i, n in enumerate(seq) if i == 0 or seq[i - 1] != n]


# ---------------------------------------------------------------- towns


def test_registered_and_listed() -> None:
    assert builtin_names() == ["Harness01", "Harness02", "Harness03"]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HARNESS_MAPS", raising=False)
        mp.delenv("CARLA_ROOT", raising=False)
        listed = {t.name: t.origin for t in available_towns()}
    assert listed == dict.fromkeys(builtin_names(), "builtin")


@pytest.mark.parametrize("name", [h02.NAME, h03.NAME])
def test_generation_is_deterministic(name: str) -> None:
    layout = builtin_layout(name)
    fresh = add_stop_signs(osm_to_xodr(builtin_osm(name), name), name, layout.stop_signs)
    assert fresh == builtin_xodr(name) and f'name="{name}"' in fresh


def test_highway_lanes_and_speeds(highway: Town) -> None:
    roads = _roads(highway)
    for name in ("Motorway East", "Motorway West"):
        secs = roads[name]
        # one-way: every driving lane on the right of the reference line; 3 lanes, 4 beside a ramp
        assert all(lid < 0 for sec in secs for lid, _ in sec)
        assert Counter(len(sec) for sec in secs).keys() == {3, 4}
        assert _speeds(secs) == {round(100.0 * KPH, 1)}
    ramps = [n for n in roads if n.startswith(("Exit ", "Entry "))]
    assert sorted(ramps) == [f"{w} {k}" for w in ("Entry", "Exit") for k in range(1, 5)]
    assert all(len(sec) == 1 for n in ramps for sec in roads[n])
    # the local roads are two-way: Osm2Odr writes one one-lane road per direction
    assert all(len(sec) == 1 for sec in roads["South Rd"]) and len(roads["South Rd"]) % 2 == 0
    # the carriageways are 40 m apart: no motorway lane has an oncoming neighbour
    road_name = {
        int(r.get("id", "-1")): r.get("name", "")
        for r in ET.fromstring(highway.xodr).findall("road")
    }
    motorway = np.array([road_name[int(r)].startswith("Motorway") for r in highway.lanes.road_id])
    assert np.all(highway.graph.left_opposite[motorway] < 0)


def test_highway_ramps_join_the_carriageway_on_their_right(highway: Town) -> None:
    lanes, graph = highway.lanes, highway.graph
    names = {
        int(r.get("id", "-1")): r.get("name", "")
        for r in ET.fromstring(highway.xodr).findall("road")
    }
    street = np.array([names[int(r)] for r in lanes.road_id])
    links = Counter()
    for c in np.flatnonzero(lanes.junction_id >= 0):
        for p in graph.predecessors(int(c)):
            for s in graph.successors(int(c)):
                links[(street[p].split()[0], street[s].split()[0])] += 1
    # off-ramps leave a motorway, on-ramps join one, and the ramps' other ends meet the local roads
    assert links[("Motorway", "Exit")] >= 4 and links[("Entry", "Motorway")] >= 4
    assert links[("Exit", "South")] + links[("Exit", "North")] >= 4
    assert links[("South", "Entry")] + links[("North", "Entry")] >= 4
    assert links[("Motorway", "Entry")] == links[("Exit", "Motorway")] == 0
    # eastbound ramps (y = 0) reach South Rd, westbound ones North Rd
    _, planned = _route(highway, "ramps", RAMP_ROUTE_M)
    assert _lane_streets(highway, planned) == ["Entry 1", "Motorway East", "Exit 2"]


def test_highway_junctions(highway: Town) -> None:
    js = highway.junctions
    signalised = {j.id for j in js if j.signalised}
    assert signalised == set(_near(highway, h02.SIGNALISED_NODES_M))
    assert all(j.kind == "T" for j in js if j.id in signalised)
    # the 8 ramp ends on the local roads are unsignalised T-junctions
    ends = tuple(r[-1] for r in h02.EB_OFF_RAMPS_M + h02.WB_OFF_RAMPS_M) + tuple(
        r[0] for r in h02.EB_ON_RAMPS_M + h02.WB_ON_RAMPS_M
    )
    ids = _near(highway, ends)
    assert -1 not in ids and len(set(ids)) == 8
    assert all(j.kind == "T" and not j.signalised for j in js if j.id in ids)
    assert highway.signals.lights_count == 4 * 3 - 2  # 3 approaches per T, the exit-only arm none
    assert highway.signals.stop_signs_count == 0


def test_interurban_roads(interurban: Town) -> None:
    roads = _roads(interurban)
    want_kph = {"Route 1": 90, "Middle Rd": 80, "Route 2": 70, "County Rd W": 60, "County Rd E": 60,
                "Farm Rd": 50, "Cross Rd": 70, "Mill Rd": 50}  # fmt: skip
    assert set(roads) == set(want_kph)
    for name, kph in want_kph.items():
        assert all(len(sec) == 1 for sec in roads[name])  # single lane per direction road
        assert _speeds(roads[name]) == {round(kph * KPH, 1)}
    # two-way: mid-block on Route 1 an eastbound lane with a westbound one a lane width to its left
    # (CARLA frame: left of east is -y); no same-direction neighbour
    lanes = interurban.lanes
    p = layout_to_world(np.array([[200.0, 0.0]]), interurban.xodr)
    east = lanes.project(p + [0.0, 1.75], np.array([0.0]))
    west = lanes.project(p - [0.0, 1.75], np.array([np.pi]))
    assert float(east.distance_m[0]) < 0.3 and float(west.distance_m[0]) < 0.3
    assert (
        abs(float(east.heading_error_rad[0])) < 0.1 and abs(float(west.heading_error_rad[0])) < 0.1
    )
    assert interurban.graph.left[int(east.lane[0])] < 0
    # Osm2Odr writes each direction as its own road: the oncoming lane is found alongside
    g = interurban.graph
    assert g.left_opposite[int(east.lane[0])] == int(west.lane[0])
    assert g.left_opposite[int(west.lane[0])] == int(east.lane[0])
    # every rural lane outside junctions has one (no one-way street in Harness03)
    assert np.all(g.left_opposite[lanes.junction_id < 0] >= 0)
    # the Route 2 curve reaches 50 m north of the straight line (layout y 950)
    curve = layout_to_world(np.array([[600.0, 950.0]]), interurban.xodr)
    assert float(interurban.lanes.project(curve).distance_m[0]) < 3.0


def test_interurban_junctions_lights_and_stop_signs(interurban: Town) -> None:
    js = interurban.junctions
    assert Counter(j.kind for j in js) == {"cross": 3, "T": 8, "merge": 4}  # merge: the corners
    assert {j.id for j in js if j.signalised} == set(_near(interurban, h03.SIGNALISED_NODES_M))
    assert interurban.signals.lights_count == 3 + 4 + 3  # T, crossing, T: one per approach
    sig = interurban.signals
    assert sig.stop_signs_count == len(h03.STOP_SIGNS) == 5
    want = _near(interurban, tuple(s.junction for s in h03.STOP_SIGNS))
    assert sorted(sig.sign_junction.tolist()) == sorted(want)
    # each sign faces its approach's travel direction (CARLA yaw of layout south = +90 deg, ...)
    for s, jid in zip(h03.STOP_SIGNS, want, strict=True):
        dx, dy = np.subtract(s.junction, s.towards)
        yaw = np.degrees(np.arctan2(-dy, dx))  # layout (x, y) -> CARLA (x, -y)
        k = [i for i in range(sig.stop_signs_count) if sig.sign_junction[i] == jid and abs(
            (np.degrees(sig.sign_yaw[i]) - yaw + 180.0) % 360.0 - 180.0) < 10.0]  # fmt: skip
        assert len(k) == 1
    # stop lines within 10 m of their junction's centre; the unsignalised Mill Rd crossing has none
    centre = {j.id: j.center_xy for j in js}
    signs = np.flatnonzero(sig.stop_kind == 1)
    xy, _ = interurban.lanes.position(sig.stop_lane[signs], sig.stop_s_m[signs])
    owners = sig.sign_junction[sig.stop_owner[signs]]
    assert np.all(
        np.linalg.norm(np.asarray(xy) - np.array([centre[int(o)] for o in owners]), axis=1) < 10.0
    )
    plain = _near(interurban, h03.UNSIGNALISED_NODES_M)
    assert not set(plain) & set(sig.sign_junction.tolist())
    assert not any(j.signalised for j in js if j.id in plain)


# ---------------------------------------------------------------- unimplemented types


def _scenario(planned: PlannedRoute, name: str, type_: str, at_m: float) -> ScenarioConfig:
    i = int(np.searchsorted(planned.s_m, at_m))
    x, y = planned.xy[i]
    yaw = float(np.degrees(planned.yaw_rad[i])) % 360.0
    params = {"distance": {"value": "40"}, "direction": {"value": "right"}}
    return ScenarioConfig(
        name=name, type=type_, trigger=(float(x), float(y), 0.0, yaw), params=params
    )


@pytest.fixture(scope="module")
def stop_sign_routes(interurban: Town, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Harness03 routes: Farm Rd south through the stop sign at Route 1, then left (east);
    the first names a made-up type and a real one, the second the made-up type only."""
    route, planned = _route(
        interurban, "0", ((400.0, 200.0, 90.0), (400.0, 60.0, 90.0), (550.0, 0.0, 0.0))
    )
    first = RouteConfig("0", interurban.name, route.keypoints, scenarios=(
        _scenario(planned, "made_up_1", MADE_UP_TYPE, 20.0),
        _scenario(planned, "parked_1", REAL_TYPE, 40.0),
    ))  # fmt: skip
    second = RouteConfig("1", interurban.name, route.keypoints, scenarios=(
        _scenario(planned, "made_up_2", MADE_UP_TYPE, 30.0),
    ))  # fmt: skip
    path = tmp_path_factory.mktemp("routes") / "h03.xml"
    write_routes([first, second], path)
    return path


@pytest.fixture
def without_real_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry without REAL_TYPE, as if it were not implemented yet."""
    monkeypatch.delitem(SCENARIO_CLASSES, REAL_TYPE)


def test_check_lists_unimplemented_types(stop_sign_routes: Path, without_real_type: None) -> None:
    report = check_route_file(stop_sign_routes, implemented=set(SCENARIO_CLASSES))
    assert report.ok  # not a problem: the routes run, without those scenarios
    assert [(u.route_id, u.name, u.type) for u in report.unimplemented] == [
        ("0", "made_up_1", MADE_UP_TYPE), ("0", "parked_1", REAL_TYPE), ("1", "made_up_2", MADE_UP_TYPE),
    ]  # fmt: skip
    assert unimplemented_by_type(report.unimplemented) == {
        MADE_UP_TYPE: (2, ["0", "1"]),
        REAL_TYPE: (1, ["0"]),
    }
    assert check_route_file(stop_sign_routes).unimplemented == ()  # no implemented set: no check


@pytest.mark.parametrize("command", ["info", "check"])
def test_cli_reports_unimplemented_types(
    stop_sign_routes: Path, without_real_type: None, command: str
) -> None:
    from typer.testing import CliRunner

    from harness.cli import commands  # noqa: F401  (registers the command modules)
    from harness.cli.main import app

    res = CliRunner().invoke(app, ["routes", command, str(stop_sign_routes)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert f"{MADE_UP_TYPE} │ 2 │ 0, 1" in out and f"{REAL_TYPE} │ 1 │ 0" in out
    assert "3 scenarios of 2 types are not implemented; 2 routes would run without them" in out


def test_eval_records_unimplemented_types_and_expert_stops_at_the_sign(
    stop_sign_routes: Path, without_real_type: None, tmp_path: Path
) -> None:
    cfg = RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent="expert", routes_file=stop_sign_routes, out_dir=tmp_path, subset="0",
        criteria=CriteriaConfig(tick_limit=2000), traffic=TrafficConfig(vehicles=0, pedestrians=0),
    )  # fmt: skip
    result = run_evaluation(cfg)
    (rec,) = result.records
    assert rec.unimplemented_scenarios == (MADE_UP_TYPE, REAL_TYPE)
    data = json.loads((tmp_path / "results.json").read_text())["_checkpoint"]["records"][0]
    assert data["meta"]["unimplemented_scenarios"] == [MADE_UP_TYPE, REAL_TYPE]
    assert set(data["meta"]) == {
        "route_length",
        "duration_game",
        "duration_system",
        "unimplemented_scenarios",
    }
    row = pq.read_table(tmp_path / "routes.parquet").to_pylist()[0]
    assert row["unimplemented_scenarios"] == f"{MADE_UP_TYPE},{REAL_TYPE}"
    # the expert drove it: stopped at Farm Rd's stop sign, turned onto Route 1, no infraction
    assert rec.status == "Perfect" and rec.num_infractions == 0
    from harness.report.page import write_report

    page = write_report(tmp_path).read_text()
    assert "Scenario types not implemented" in page and MADE_UP_TYPE in page


def test_expert_drives_on_and_off_the_motorway(highway: Town, tmp_path: Path) -> None:
    route, _ = _route(highway, "0", RAMP_ROUTE_M)
    path = tmp_path / "h02.xml"
    write_routes([route], path)
    cfg = RunConfig.for_mode(
        Mode.BENCH2DRIVE, agent="expert", routes_file=path, out_dir=tmp_path / "out",
        criteria=CriteriaConfig(tick_limit=2000), traffic=TrafficConfig(vehicles=0, pedestrians=0),
    )  # fmt: skip
    (rec,) = run_evaluation(cfg).records
    assert rec.scores.score_route == 100.0 and rec.num_infractions == 0
    assert rec.unimplemented_scenarios == ()
    data = json.loads((tmp_path / "out" / "results.json").read_text())["_checkpoint"]["records"][0]
    assert "unimplemented_scenarios" not in data["meta"]  # the leaderboard layout is unchanged
