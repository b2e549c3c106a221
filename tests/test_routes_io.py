"""Route file model and XML I/O: Bench2Drive 2.0 XML, Leaderboard 1.0 XML + scenarios JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from harness.errors import RouteFileError
from harness.routes import (
    RouteConfig,
    ScenarioConfig,
    Weather,
    load_scenarios_json,
    read_route_file,
    read_routes,
    read_routes_v1,
    triggers_near_route,
    write_routes,
)

SMALL = """<?xml version="1.0"?>
<routes>
   <route id="7" town="Town01" extra_attr="keep me">
      <weathers>
         <weather route_percentage="0" cloudiness="5.0" wind_intensity="10.0"/>
      </weathers>
      <waypoints>
         <position x="1.5" y="2.0" z="0.0"/>
         <position x="11.5" y="2.0" z="0.25"/>
      </waypoints>
      <scenarios>
         <scenario name="S_1" type="HazardAtSideLane">
            <trigger_point x="1.5" y="2.0" z="0.0" yaw="0.0"/>
            <distance value="75"/>
            <source_dist_interval from="20" to="50"/>
         </scenario>
      </scenarios>
   </route>
</routes>
"""


@pytest.fixture(scope="module")
def b2d(bench2drive_xml: Path) -> list[RouteConfig]:
    return read_routes(bench2drive_xml)


def test_small_file_fields(tmp_path: Path) -> None:
    f = tmp_path / "r.xml"
    f.write_text(SMALL)
    (r,) = read_routes(f)
    assert r.id == "7" and r.town == "Town01" and r.extra == {"extra_attr": "keep me"}
    np.testing.assert_array_equal(r.keypoints, [[1.5, 2.0, 0.0], [11.5, 2.0, 0.25]])
    assert r.weathers == (Weather(0.0, {"cloudiness": 5.0, "wind_intensity": 10.0}),)
    (sc,) = r.scenarios
    assert sc.name == "S_1" and sc.type == "HazardAtSideLane" and sc.trigger == (1.5, 2.0, 0.0, 0.0)
    assert sc.params == {
        "distance": {"value": "75"},
        "source_dist_interval": {"from": "20", "to": "50"},
    }
    assert list(sc.params) == ["distance", "source_dist_interval"]


def test_bench2drive_counts(b2d: list[RouteConfig]) -> None:
    assert len(b2d) == 220
    types = Counter(sc.type for r in b2d for sc in r.scenarios)
    assert len(types) == 44 and set(types.values()) == {5}
    towns = Counter(r.town for r in b2d)
    assert [towns[f"Town0{i}"] for i in range(1, 7)] == [4, 4, 11, 12, 9, 6]
    assert all(len(r.weathers) == 2 for r in b2d)


def test_bench2drive_every_parameter_round_trips(
    b2d: list[RouteConfig], bench2drive_xml: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rt.xml"
    write_routes(b2d, out)
    again = read_routes(out)
    assert again == b2d

    # Independently of our parser: every parameter element of the source (tag + attributes) is in
    # the written file, for the same scenario name.
    def params(path: Path) -> dict[tuple[str, str], list[tuple[str, dict[str, str]]]]:
        root = ET.parse(path).getroot()
        return {
            (route.get("id", ""), sc.get("name", "")): [
                (p.tag, dict(p.attrib)) for p in sc if p.tag != "trigger_point"
            ]
            for route in root.iter("route")
            for sc in route.iter("scenario")
        }

    src, dst = params(bench2drive_xml), params(out)
    assert sum(len(v) for v in src.values()) == 430
    assert src == dst
    assert not list(tmp_path.glob(".rt.xml.*"))  # the atomic write left no temp file


def test_write_is_atomic_replace(tmp_path: Path) -> None:
    f = tmp_path / "r.xml"
    f.write_text(SMALL)
    routes = read_routes(f)
    write_routes(routes, f)  # overwrite in place
    assert read_routes(f) == routes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.xml"]


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.xml"
    f.write_text(
        '<routes>\n  <route id="1" town="Town01">\n    <waypoints>\n  </route>\n</routes>\n'
    )
    with pytest.raises(RouteFileError, match=r"bad\.xml:4:"):
        read_routes(f)


def test_missing_attribute_names_route_and_element(tmp_path: Path) -> None:
    f = tmp_path / "r.xml"
    f.write_text(SMALL.replace('<position x="11.5" y="2.0"', '<position x="11.5"'))
    with pytest.raises(RouteFileError, match=r"r\.xml:9: route 7: <position> lacks .*'y'"):
        read_routes(f)
    f.write_text(SMALL.replace('yaw="0.0"/>', "/>"))
    with pytest.raises(RouteFileError, match=r"route 7: <trigger_point> lacks .*'yaw'"):
        read_routes(f)
    f.write_text(SMALL.replace(' town="Town01"', ""))
    with pytest.raises(RouteFileError, match=r"route 7: <route> lacks .*'town'"):
        read_routes(f)


def test_not_a_number_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "r.xml"
    f.write_text(SMALL.replace('x="1.5" y="2.0" z="0.0"/>', 'x="abc" y="2.0" z="0.0"/>'))
    with pytest.raises(RouteFileError, match="not a number"):
        read_routes(f)
    with pytest.raises(RouteFileError, match="cannot read"):
        read_routes(tmp_path / "nope.xml")


def test_leaderboard_v1_routes_and_scenarios(leaderboard_dir: Path) -> None:
    routes = read_routes_v1(leaderboard_dir / "v1.0" / "routes_testing.xml")
    assert Counter(r.town for r in routes) == {"Town05": 10, "Town04": 10, "Town02": 6}
    first = routes[0]
    assert first.id == "0" and first.town == "Town02"
    np.testing.assert_allclose(first.keypoints[0], [-3.6973562240600586, 179.0623321533203, 0.0])
    assert read_route_file(leaderboard_dir / "v1.0" / "routes_testing.xml") == routes
    cands = load_scenarios_json(
        leaderboard_dir / "v1.0" / "all_towns_traffic_scenarios_public.json"
    )
    assert set(cands) == {f"Town0{i}" for i in range(1, 7)}
    town01 = cands["Town01"]
    s1 = [c for c in town01 if c.type == "Scenario1"]
    assert len(s1) == 40 and s1[0].trigger == (319.64, -2.20, 1.0, 180.0)
    s4 = next(c for c in town01 if c.type == "Scenario4" and c.trigger[:2] == (305.22, 330.72))
    roles = {a.role: a.transform for a in s4.other_actors}
    assert roles == {"front": (374.11, 326.55, 1.0, 180.000015), "left": (335.4, 291.71, 1.0, 90.0)}


def test_triggers_near_route_rule() -> None:
    # Straight route along +x (yaw 0) at y = 0.
    xy = np.column_stack([np.arange(0.0, 20.0), np.zeros(20)])
    yaw = np.zeros(20)
    trig = np.array(
        [
            [5.0, 1.9, 0.0, 0.0],  # 1.9 m, 0 deg: on route
            [5.0, 2.1, 0.0, 0.0],  # 2.1 m: off
            [5.0, 0.0, 0.0, 9.0],  # 9 deg: on
            [5.0, 0.0, 0.0, -11.0],  # 11 deg: off
            [5.0, 0.0, 0.0, 359.0],  # -1 deg written as 359: on
            [5.0, 0.0, 0.0, 180.0],  # opposite direction: off
        ]
    )
    hit, first = triggers_near_route(trig, xy, yaw)
    assert hit.tolist() == [True, False, True, False, True, False]
    assert first.tolist() == [5, -1, 4, -1, 4, -1]  # (4, 0) is 2.15 m from (5, 1.9)


def test_model_validation() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        RouteConfig("1", "Town01", np.zeros((3, 2)))
    sc = ScenarioConfig("a", "b", (1.0, 2.0, 3.0, 4.0))
    np.testing.assert_array_equal(sc.trigger_xy, [1.0, 2.0])
