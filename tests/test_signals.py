"""Junctions and signals on the real CARLA towns (../shared/data) and on hand-made inputs."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import carla
import numpy as np
import pytest
from shapely.geometry import Point

from harness.maps.junctions import arm_labels, build_junctions, junction_kind
from harness.maps.signals import STOP_AREA_LENGTH_M, STOP_LIGHT, build_signals
from harness.maps.town import Town
from harness.maps.towns import load_town

REAL_LIGHT_TOWNS = ("Town01", "Town02", "Town04", "Town06")
SIGNAL_FREE_TOWNS = ("Town03", "Town05")


@pytest.fixture(scope="module")
def towns(shared_maps: Path) -> dict[str, Town]:
    """Town01-06 loaded once for this module (load_town caches per process as well)."""
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's autouse env
        mp.setenv("HARNESS_MAPS", str(shared_maps))
        mp.delenv("CARLA_ROOT", raising=False)
        return {name: load_town(name) for name in (*REAL_LIGHT_TOWNS, *SIGNAL_FREE_TOWNS)}


def test_junction_kind_names() -> None:
    assert [junction_kind(a) for a in (1, 2, 3, 4, 5, 6)] == [
        "merge",
        "merge",
        "T",
        "cross",
        "multi",
        "multi",
    ]


def test_arm_labels_cluster_directions() -> None:
    # a cross: two lanes per arm (in/out of each street, ~10 deg apart), arms 90 deg apart,
    # one arm straddling the 0/360 seam
    deg = np.array([355.0, 5.0, 85.0, 95.0, 175.0, 185.0, 265.0, 275.0])
    labels = arm_labels(np.radians(deg))
    assert len(set(labels.tolist())) == 4
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[4] == labels[5]
    # a T: three arms; a single direction: one arm
    assert len(set(arm_labels(np.radians([0.0, 90.0, 180.0])).tolist())) == 3
    assert arm_labels(np.radians([10.0])).tolist() == [0]


@pytest.mark.parametrize("name", [*REAL_LIGHT_TOWNS, *SIGNAL_FREE_TOWNS])
def test_junctions_plausible(towns: dict[str, Town], name: str) -> None:
    town = towns[name]
    js = town.junctions
    assert len(js) > 0
    ids = {int(i) for i in np.unique(town.lanes.junction_id[town.lanes.junction_id >= 0])}
    assert {j.id for j in js} == ids
    for j in js:
        assert j.kind == junction_kind(j.arms)
        assert j.connector_lanes and all(
            town.lanes.junction_id[c] == j.id for c in j.connector_lanes
        )
        assert all(town.lanes.junction_id[i] != j.id for i in j.incoming_lanes)
        # every incoming lane ends where one of the junction's connectors starts
        starts = town.lanes.xy[town.lanes.start[list(j.connector_lanes)]]
        for i in j.incoming_lanes:
            end = town.lanes.xy[town.lanes.start[i] + town.lanes.count[i] - 1]
            assert np.min(np.hypot(*(starts - end).T)) < 1.5  # Town03 (2019 export) has 1 m gaps
        assert j.polygon.convex_hull.distance(Point(j.center_xy)) < 1e-6


def test_town01_is_t_junctions(towns: dict[str, Town]) -> None:
    # Town01 is a grid of two-lane roads whose 12 junctions are all T-junctions
    kinds = Counter(j.kind for j in towns["Town01"].junctions)
    assert kinds == {"T": 12}
    assert all(j.arms == 3 for j in towns["Town01"].junctions)


def test_town05_has_crossings(towns: dict[str, Town]) -> None:
    assert Counter(j.kind for j in towns["Town05"].junctions)["cross"] >= 5


@pytest.mark.parametrize("name", REAL_LIGHT_TOWNS)
def test_real_lights_match_landmarks(towns: dict[str, Town], name: str) -> None:
    town, sig = towns[name], towns[name].signals
    landmarks = [lm for lm in town.cmap.get_all_landmarks() if lm.type == "1000001"]
    assert not sig.synthesised and not sig.light_synthesised.any()
    # one light per OpenDRIVE signal id (several landmarks reference each physical light)
    assert sorted(sig.light_id.tolist()) == sorted({str(lm.id) for lm in landmarks})
    if name == "Town01":
        assert len(landmarks) == 72 and sig.lights_count == 36
    by_id: dict[str, set[tuple[int, int]]] = {}
    for lm in landmarks:
        for lo, hi in lm.get_lane_validities():
            by_id.setdefault(str(lm.id), set()).update(
                (lm.road_id, k) for k in range(lo, hi + 1) if k
            )
    for i in range(sig.lights_count):
        lanes = sig.controlled_lanes(i)
        got = {(int(town.lanes.road_id[k]), int(town.lanes.lane_id[k])) for k in lanes}
        assert got and got <= by_id[str(sig.light_id[i])]
        assert sig.light_junction[i] >= 0
        assert all(town.lanes.junction_id[k] == sig.light_junction[i] for k in lanes)
    signalised = {j.id for j in town.junctions if j.signalised}
    assert set(sig.groups) == signalised


@pytest.mark.parametrize("name", REAL_LIGHT_TOWNS)
def test_stop_lines_on_incoming_lane_at_junction_entry(towns: dict[str, Town], name: str) -> None:
    town, sig = towns[name], towns[name].signals
    junctions = {j.id: j for j in town.junctions}
    assert sig.stops_count >= sig.lights_count > 0
    mid = 0.5 * (sig.stop_a + sig.stop_b)
    heading = np.stack([np.cos(sig.light_yaw), np.sin(sig.light_yaw)], -1)
    for i in range(sig.stops_count):
        lane, owner = int(sig.stop_lane[i]), int(sig.stop_owner[i])
        assert sig.stop_kind[i] == STOP_LIGHT
        j = junctions[int(sig.light_junction[owner])]
        assert lane in j.incoming_lanes
        # CARLA's own projection of a point 1 m back from the line (clear of the junction) lies
        # on the stop lane (or the lane before it, for 1 m lanes) within 0.5 m
        yaw = math.atan2(*(sig.stop_b[i] - sig.stop_a[i])[::-1]) - math.pi / 2
        probe = mid[i] - np.array([math.cos(yaw), math.sin(yaw)])
        wp = town.cmap.get_waypoint(
            carla.Location(x=float(probe[0]), y=float(probe[1])), lane_type=carla.LaneType.Driving
        )
        allowed = [lane, *town.graph.predecessors(lane)]  # short lanes: the probe may be before it
        keys = {(int(town.lanes.road_id[k]), int(town.lanes.lane_id[k])) for k in allowed}
        assert (wp.road_id, wp.lane_id) in keys
        assert (
            math.hypot(wp.transform.location.x - probe[0], wp.transform.location.y - probe[1]) < 0.5
        )
        # at the junction entry: on the junction polygon's edge, and a few metres on is inside it
        assert j.polygon.distance(Point(mid[i])) < 0.5
        assert any(w.is_junction for w in wp.next(3.0))
        # the stop line spans the lane width and the light controls traffic along the lane
        assert abs(np.linalg.norm(sig.stop_b[i] - sig.stop_a[i]) - wp.lane_width) < 0.3
        assert np.dot(heading[owner], [math.cos(yaw), math.sin(yaw)]) > 0.5


@pytest.mark.parametrize("name", SIGNAL_FREE_TOWNS)
def test_signal_free_towns_get_synthesised_lights(towns: dict[str, Town], name: str) -> None:
    town, sig = towns[name], towns[name].signals
    assert not [lm for lm in town.cmap.get_all_landmarks() if lm.type == "1000001"]
    assert sig.synthesised and sig.lights_count > 0 and sig.light_synthesised.all()
    assert all(str(i).startswith("synth-") for i in sig.light_id)
    signalised = [j for j in town.junctions if j.signalised]
    assert signalised and set(sig.groups) == {j.id for j in signalised}
    assert all(j.arms >= 3 for j in signalised)
    for j in signalised:
        members = sig.groups[j.id]
        # one light per approach: every incoming lane has exactly one stop line in the group
        stops = [s for s in range(sig.stops_count) if sig.stop_owner[s] in members]
        assert sorted(int(sig.stop_lane[s]) for s in stops) == sorted(j.incoming_lanes)
        assert sorted(sig.light_phase[list(members)].tolist()) == list(range(len(members)))
    mid = 0.5 * (sig.stop_a + sig.stop_b)
    proj = town.lanes.project(mid)
    assert np.all(proj.distance_m < 0.5)
    assert np.allclose(sig.stop_s_m, town.lanes.length_m[sig.stop_lane])


def test_town03_roundabout_not_signalised(towns: dict[str, Town]) -> None:
    # Town03's central roundabout (radius ~20 m around the origin) has no traffic lights in CARLA
    ring = [j for j in towns["Town03"].junctions if np.hypot(*j.center_xy) < 30.0]
    assert len(ring) >= 4 and not any(j.signalised for j in ring)


def test_synthesis_is_deterministic(towns: dict[str, Town]) -> None:
    t = towns["Town05"]
    junctions = build_junctions(t.cmap, t.lanes, t.graph, t.area)
    a, b = t.signals, build_signals(t.cmap, t.lanes, t.graph, junctions, t.area)
    assert a.light_id.tolist() == b.light_id.tolist()
    assert np.array_equal(a.stop_a, b.stop_a) and dict(a.groups) == dict(b.groups)


def test_stop_area_is_the_lane_strip_before_the_line(towns: dict[str, Town]) -> None:
    town, sig = towns["Town01"], towns["Town01"].signals
    for i in range(sig.stops_count):
        area = sig.stop_area(i)
        width = float(np.linalg.norm(sig.stop_b[i] - sig.stop_a[i]))
        assert area.is_valid
        assert area.area == pytest.approx(STOP_AREA_LENGTH_M * width, rel=0.05)
        lane = int(sig.stop_lane[i])
        inside, _ = town.lanes.position(lane, sig.stop_s_m[i] - 0.5 * STOP_AREA_LENGTH_M)
        outside, _ = town.lanes.position(lane, sig.stop_s_m[i] - 2.0 * STOP_AREA_LENGTH_M)
        assert area.contains(Point(inside)) and not area.contains(Point(outside))


def test_stop_sign_landmarks(towns: dict[str, Town]) -> None:
    # the shared towns carry no stop signs ('206'): turn Town01's light 360 into one
    text = towns["Town01"].xodr
    m = re.search(r'<signal name="[^"]*" id="360"[^>]*type="1000001"', text)
    assert m is not None
    edited = (
        text[: m.start()] + m.group(0).replace('type="1000001"', 'type="206"') + text[m.end() :]
    )
    town = Town.from_xodr("Town01", edited, "HARNESS_MAPS")
    sig = town.signals
    assert sig.stop_signs_count == 1 and sig.lights_count == 35 and sig.sign_id.tolist() == ["360"]
    (stop,) = np.flatnonzero(sig.stop_kind == 1)
    assert sig.stop_owner[stop] == 0
    lane = int(sig.stop_lane[stop])
    assert sig.stop_s_m[stop] == pytest.approx(town.lanes.length_m[lane])
    assert sig.sign_junction[0] >= 0
    assert town.lanes.junction_id[lane] < 0
