"""Maps layer core: town resolution and loading, lanes (Frenet API), lane graph, drivable area."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.errors import MapLoadError, UnknownTownError
from harness.maps import Town, available_towns, load_town, resolve_town
from harness.maps.lanes import LaneSet
from tests.conftest import REAL_TOWNS, SHARED_MAPS

SAMPLES_CHECKED_PER_TOWN = 300  # lane samples checked against carla.Map.get_waypoint per town


@pytest.fixture(scope="session")
def towns() -> Iterator[dict[str, Town]]:
    """Town01-06 loaded once through load_town (which fills the per-process cache)."""
    if not SHARED_MAPS.exists():
        pytest.skip(
            f"{SHARED_MAPS} not present (real CARLA data lives in ../shared/data beside the project)"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_MAPS", str(SHARED_MAPS))
        mp.delenv("CARLA_ROOT", raising=False)
        yield {name: load_town(name) for name in REAL_TOWNS}


def _lane_set(polylines: list[list[tuple[float, float]]], width_m: float = 3.5) -> LaneSet:
    """A hand-built LaneSet of straight polylines (yaw from the segment direction)."""
    xy = np.concatenate([np.asarray(p, dtype=np.float64) for p in polylines])
    count = np.array([len(p) for p in polylines], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    lane_of = np.repeat(np.arange(len(polylines)), count)
    yaw, s = np.zeros(len(xy)), np.zeros(len(xy))
    for i, (a, c) in enumerate(zip(start, count, strict=True)):
        d = np.diff(xy[a : a + c], axis=0)
        yaw[a : a + c] = np.arctan2(d[0, 1], d[0, 0])
        s[a : a + c] = np.concatenate([[0.0], np.cumsum(np.hypot(d[:, 0], d[:, 1]))])
        del i
    n_lanes, n_pts = len(polylines), len(xy)
    return LaneSet(
        road_id=np.arange(n_lanes, dtype=np.int64),
        section_id=np.zeros(n_lanes, np.int64),
        lane_id=-np.ones(n_lanes, np.int64),
        junction_id=-np.ones(n_lanes, np.int64),
        length_m=s[start + count - 1],
        start=start,
        count=count,
        xy=xy,
        z_m=np.zeros(n_pts),
        yaw_rad=yaw,
        s_m=s,
        width_m=np.full(n_pts, width_m),
        lane_of_point=lane_of,
        lane_change=np.zeros(n_pts, np.int8),
        marking_type=np.zeros((n_pts, 2), np.int8),
        marking_color=np.zeros((n_pts, 2), np.int8),
    )


# --- hand-built geometry -------------------------------------------------------------------------


def test_project_known_lateral_offsets() -> None:
    lanes = _lane_set([[(x, 0.0) for x in range(11)], [(50.0, y) for y in range(11)]])
    # heading (1, 0): the +90 deg side is +y, so (5, 1.5) is +1.5 (right-hand side in CARLA's frame)
    proj = lanes.project(np.array([[5.0, 1.5], [2.25, -2.0], [49.0, 4.0], [12.0, 0.0]]))
    np.testing.assert_array_equal(proj.lane, [0, 0, 1, 0])
    np.testing.assert_allclose(proj.s_m, [5.0, 2.25, 4.0, 10.0], atol=1e-12)
    # lane 1 heads +y; its +90 deg side is -x, so x = 49 is +1
    np.testing.assert_allclose(proj.lateral_m, [1.5, -2.0, 1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(proj.distance_m, [1.5, 2.0, 1.0, 2.0], atol=1e-12)
    assert np.isnan(proj.heading_error_rad).all()


def test_project_yaw_picks_overlapping_opposite_lane() -> None:
    forward = [(float(x), 0.0) for x in range(11)]
    lanes = _lane_set([forward, forward[::-1]])
    pt = np.array([3.0, 0.2])
    fwd = lanes.project(pt, 0.1)
    back = lanes.project(pt, np.pi - 0.1)
    assert (int(fwd.lane), int(back.lane)) == (0, 1)
    assert float(fwd.s_m) == pytest.approx(3.0) and float(back.s_m) == pytest.approx(7.0)
    assert float(fwd.lateral_m) == pytest.approx(0.2) and float(back.lateral_m) == pytest.approx(
        -0.2
    )
    assert float(fwd.heading_error_rad) == pytest.approx(0.1) and float(
        back.heading_error_rad
    ) == pytest.approx(-0.1)


@pytest.mark.parametrize("shape", [(), (2, 1)])
def test_position_and_project_batch_shapes(shape: tuple[int, ...]) -> None:
    lanes = _lane_set([[(x, 0.0) for x in range(11)]])
    lane = np.zeros(shape, np.int64)
    xy, yaw = lanes.position(lane, np.full(shape, 2.5))
    assert xy.shape == shape + (2,) and yaw.shape == shape
    np.testing.assert_allclose(xy[..., 0], 2.5)
    proj = lanes.project(xy + np.array([0.0, -0.5]), np.zeros(shape))
    assert proj.s_m.shape == shape
    np.testing.assert_allclose(proj.lateral_m, -0.5)
    far_xy, _ = lanes.position(0, 99.0)  # s is clamped to the lane
    np.testing.assert_allclose(far_xy, [10.0, 0.0])


# --- real towns ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_TOWNS)
def test_real_towns_load_with_plausible_counts(towns: dict[str, Town], name: str) -> None:
    town = towns[name]
    assert town.origin == "HARNESS_MAPS" and town.path is not None and town.path.resolve() == (SHARED_MAPS / f"{name}.xodr").resolve()
    assert len(town.sha256) == 64
    assert town.road_count > 50
    assert town.lanes.n_lanes >= 80
    assert len(town.junctions) >= 8
    lanes = town.lanes
    assert lanes.count.min() >= 2 and lanes.xy.shape == (int(lanes.count.sum()), 2)
    step = np.hypot(*np.diff(lanes.xy, axis=0).T)[np.diff(lanes.lane_of_point) == 0]
    assert step.max() < 2.0 and np.median(step) < 1.01  # about 1 m (outer lanes of curves: longer)
    assert town.area.drivable.area > 10_000.0
    assert load_town(name) is town  # cached per process


def test_lane_samples_lie_on_carla_lanes(towns: dict[str, Town]) -> None:
    """Each sample lies on the centerline of the lane CARLA finds there: across-lane distance to
    the waypoint's heading line < 0.1 m (get_waypoint itself can land ~0.2 m along curved lanes)."""
    import carla

    rng = np.random.default_rng(0)
    for town in towns.values():
        lanes = town.lanes
        idx = rng.choice(len(lanes.xy), SAMPLES_CHECKED_PER_TOWN, replace=False)
        across, along = [], []
        for i in idx.tolist():
            loc = carla.Location(
                x=float(lanes.xy[i, 0]), y=float(lanes.xy[i, 1]), z=float(lanes.z_m[i])
            )
            tr = town.cmap.get_waypoint(loc).transform
            d = lanes.xy[i] - [tr.location.x, tr.location.y]
            yaw = np.deg2rad(tr.rotation.yaw)
            across.append(abs(-np.sin(yaw) * d[0] + np.cos(yaw) * d[1]))
            along.append(abs(np.cos(yaw) * d[0] + np.sin(yaw) * d[1]))
        assert max(across) < 0.1 and max(along) < 1.0, town.name


def test_lane_ends_match_topology(towns: dict[str, Town]) -> None:
    town = towns["Town05"]
    lanes = town.lanes
    for entry, _exit in town.cmap.get_topology()[:200]:
        lane = lanes.index(entry.road_id, entry.section_id, entry.lane_id)
        first = lanes.xy[lanes.start[lane]]
        assert np.hypot(*(first - [entry.transform.location.x, entry.transform.location.y])) < 0.05


@pytest.mark.parametrize("name", ["Town01", "Town05"])
def test_frenet_round_trip(towns: dict[str, Town], name: str) -> None:
    lanes = towns[name].lanes
    rng = np.random.default_rng(2)
    lane = rng.integers(0, lanes.n_lanes, 3000)
    lane = lane[(lanes.length_m[lane] > 4.0) & (lanes.junction_id[lane] < 0)]
    s = rng.uniform(1.0, lanes.length_m[lane] - 1.0)
    xy, yaw = lanes.position(lane, s)
    half_width = lanes.width_m[lanes.start[lane]] / 2.0
    offset = rng.uniform(-0.8, 0.8, lane.shape) * np.minimum(half_width, 1.5)
    point = xy + offset[:, None] * np.stack([-np.sin(yaw), np.cos(yaw)], axis=-1)
    proj = lanes.project(point, yaw)
    same = proj.lane == lane

    # the projection is 2-D: elsewhere only a lane on another level (Town05's overpasses) may win
    def z_at(lane_idx: int, s_m: float) -> float:
        pts = lanes.lane_points(lane_idx)
        return float(lanes.z_m[pts][np.argmin(np.abs(lanes.s_m[pts] - s_m))])

    for k in np.flatnonzero(~same).tolist():
        assert abs(z_at(int(proj.lane[k]), proj.s_m[k]) - z_at(int(lane[k]), s[k])) > 3.0
    assert same.mean() > 0.97
    # s: the offset follows the interpolated yaw, not the segment normal, hence cm on curves
    np.testing.assert_allclose(proj.s_m[same], s[same], atol=0.1)
    np.testing.assert_allclose(proj.lateral_m[same], offset[same], atol=5e-3)
    np.testing.assert_allclose(proj.heading_error_rad[same], 0.0, atol=0.05)


def test_project_matches_brute_force_distance(towns: dict[str, Town]) -> None:
    lanes = towns["Town03"].lanes
    rng = np.random.default_rng(3)
    pts = lanes.xy[rng.integers(0, len(lanes.xy), 200)] + rng.normal(0.0, 3.0, (200, 2))
    proj = lanes.project(pts)
    a, b = lanes.xy[:-1], lanes.xy[1:]
    same = lanes.lane_of_point[:-1] == lanes.lane_of_point[1:]
    a, b = a[same], b[same]
    d = b - a
    t = np.clip(
        np.einsum("pkc,kc->pk", pts[:, None, :] - a, d) / np.maximum((d * d).sum(1), 1e-12), 0, 1
    )
    brute = np.hypot(*np.moveaxis(pts[:, None, :] - a - t[..., None] * d, -1, 0)).min(axis=1)
    np.testing.assert_allclose(proj.distance_m, brute, atol=1e-9)


def test_graph_follows_topology_and_carla_neighbours(towns: dict[str, Town]) -> None:
    town = towns["Town05"]
    lanes, graph = town.lanes, town.graph
    for a, b in town.cmap.get_topology():
        u, v = (
            lanes.index(a.road_id, a.section_id, a.lane_id),
            lanes.index(b.road_id, b.section_id, b.lane_id),
        )
        assert v in graph.successors(u) and u in graph.predecessors(v)
        assert graph.g.edges[u, v]["weight"] == pytest.approx(lanes.length_m[u])
    import carla

    checked = 0
    for lane in np.flatnonzero((graph.left >= 0) | (graph.right >= 0)).tolist():
        mid = int(lanes.start[lane] + lanes.count[lane] // 2)
        wp = town.cmap.get_waypoint(
            carla.Location(x=float(lanes.xy[mid, 0]), y=float(lanes.xy[mid, 1]))
        )
        if (wp.road_id, wp.section_id, wp.lane_id) != tuple(
            int(k[lane]) for k in (lanes.road_id, lanes.section_id, lanes.lane_id)
        ):
            continue  # overlapping lanes: CARLA picked another one
        for ours, theirs in (
            (graph.left[lane], wp.get_left_lane()),
            (graph.right[lane], wp.get_right_lane()),
        ):
            if ours >= 0:
                assert theirs is not None and theirs.lane_id == lanes.lane_id[ours]
                checked += 1
    assert checked > 50
    assert (graph.left >= 0).sum() > 20 and (graph.right >= 0).sum() > 20
    opp = graph.left_opposite >= 0
    assert opp.sum() > 50
    assert (np.sign(lanes.lane_id[graph.left_opposite[opp]]) == -np.sign(lanes.lane_id[opp])).all()
    kinds = {d["kind"] for _u, _v, d in graph.g.edges(data=True)}
    assert kinds == {"follow", "left", "right"}


def test_drivable_area_and_lanes_at(towns: dict[str, Town]) -> None:
    town = towns["Town01"]
    lanes, area = town.lanes, town.area
    interior = np.ones(len(lanes.xy), bool)
    interior[lanes.start] = interior[lanes.start + lanes.count - 1] = False  # ends lie on the edge
    assert area.contains(lanes.xy[interior][::7]).all()
    rng = np.random.default_rng(4)
    probe = rng.uniform(lanes.xy.min(0) - 50.0, lanes.xy.max(0) + 50.0, (2000, 2))
    far = lanes.project(probe).distance_m > 15.0  # wider than any lane: off-road
    assert far.sum() > 100 and not area.contains(probe[far]).any()
    pick = rng.integers(0, len(lanes.xy), 100)
    hits = area.lanes_at(lanes.xy[pick])
    assert all(int(lanes.lane_of_point[i]) in h for i, h in zip(pick, hits, strict=True))
    assert area.sidewalks.area > 1000.0
    assert area.markings and {m.color for m in area.markings} <= {
        "white",
        "yellow",
        "blue",
        "green",
        "red",
        "other",
    }
    assert {m.kind for m in area.markings} == {
        "broken"
    }  # Town01 paints only its broken centre lines
    kinds05 = {m.kind for m in towns["Town05"].area.markings}
    assert {"broken", "solid", "solid_solid"} <= kinds05


# --- resolution and errors -----------------------------------------------------------------------


def test_unknown_town_lists_search_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("HARNESS_MAPS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path / "carla"))
    with pytest.raises(UnknownTownError) as err:
        resolve_town("NoSuchTown")
    msg = str(err.value)
    for place in (
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        str(tmp_path / "carla" / "CarlaUE4"),
        "built-in",
    ):
        assert place in msg
    assert "Harness01" in msg  # the names that are available


def test_resolution_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_maps: Path
) -> None:
    first, carla_maps = (
        tmp_path / "first",
        tmp_path / "carla" / "CarlaUE4/Content/Carla/Maps/OpenDrive",
    )
    first.mkdir()
    carla_maps.mkdir(parents=True)
    (first / "Town02.xodr").symlink_to(shared_maps / "Town02.xodr")
    (carla_maps / "Town02.xodr").symlink_to(shared_maps / "Town02.xodr")
    (carla_maps / "Town04.xodr").symlink_to(shared_maps / "Town04.xodr")
    monkeypatch.setenv("HARNESS_MAPS", f"{first}{os.pathsep}{shared_maps}")
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path / "carla"))
    assert resolve_town("Town02").path == first / "Town02.xodr"
    assert resolve_town("Town04").origin == "HARNESS_MAPS"
    monkeypatch.setenv("HARNESS_MAPS", str(first))
    assert resolve_town("Town04").origin == "CARLA_ROOT"
    names = [t.name for t in available_towns()]
    assert names.count("Town02") == 1 and names[0] == "Town02" and "Harness01" in names
    assert resolve_town("harness01").origin == "builtin"


@pytest.mark.parametrize(
    "text",
    [
        "hello world, not xml",
        "<roads><road/></roads>",
        "<OpenDRIVE><header/></OpenDRIVE>",
        "<OpenDRIVE><road",
    ],
)
def test_garbage_xodr_raises_map_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    (tmp_path / "Broken.xodr").write_text(text)
    monkeypatch.setenv("HARNESS_MAPS", str(tmp_path))
    with pytest.raises(MapLoadError) as err:
        load_town("Broken")
    assert str(tmp_path / "Broken.xodr") in str(err.value)


def test_towns_command_lists_towns(towns: dict[str, Town]) -> None:
    import harness.cli.commands  # noqa: F401  (registers the commands on the app)
    from harness.cli.main import app

    result = CliRunner().invoke(
        app, ["towns", "Town01", "Town03"], env={"HARNESS_MAPS": str(SHARED_MAPS)}
    )
    assert result.exit_code == 0, result.output
    assert (
        "Town01" in result.output and "Town03" in result.output and "synthesised" in result.output
    )
    assert str(towns["Town01"].lanes.n_lanes) in result.output
