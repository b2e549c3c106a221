"""The recording's route track (schema 2) and what the replay draws from it: the route band,
the goal, scenario actors apart from background traffic, the running score; schema-1 files
still load and replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from harness.world.recording import (
    LAYOUT_KEY,
    ROUTE_KEY,
    EpisodeRecorder,
    RouteTrack,
    ScoredInfraction,
    load_recording,
)
from harness.world.state import ActorArrays, ActorKind, ActorRole, WorldState


def _track(route_xy: np.ndarray) -> RouteTrack:
    """Completion 0 -> 10 -> 50 % at frames 1, 2, 3; a vehicle collision (x0.6) at frame 2 and a
    red light (x0.7) at frame 3, at the route's 4th and 5th points."""
    (ax, ay), (bx, by) = route_xy[3 % len(route_xy)], route_xy[4 % len(route_xy)]
    return RouteTrack(
        route_xy=route_xy,
        frames=np.array([1, 2, 3], np.int64),
        progress_pct=np.array([0.0, 10.0, 50.0]),
        infractions=(
            ScoredInfraction("collisions_vehicle", "hit a car", 2, 0.1, float(ax), float(ay), 0.6),
            ScoredInfraction("red_light", "ran a red light", 3, 0.15, float(bx), float(by), 0.7),
        ),
    )


def test_scores_at_follow_completion_and_penalties() -> None:
    t = _track(np.array([[0.0, 0.0], [10.0, 0.0]]))
    assert t.scores_at(0) == (0.0, 1.0, 0.0)  # before any sample
    assert t.scores_at(1) == (0.0, 1.0, 0.0)
    rc, ip, ds = t.scores_at(2)
    assert (rc, ip) == (10.0, 0.6) and ds == pytest.approx(6.0)
    rc, ip, ds = t.scores_at(99)
    assert rc == 50.0 and ip == pytest.approx(0.42) and ds == pytest.approx(21.0)


def _tick(frame: int, x0: float, y0: float, lights: int) -> WorldState:
    """Ego, a background car and a scenario car side by side, moving east 1 m per frame."""
    a = ActorArrays.empty(3)
    for slot, role in enumerate((ActorRole.EGO, ActorRole.BACKGROUND, ActorRole.SCENARIO)):
        a.valid[slot], a.actor_id[slot], a.kind[slot], a.role[slot] = (
            True, slot, ActorKind.VEHICLE, role,
        )  # fmt: skip
        a.x[slot], a.y[slot] = x0 + frame + 8.0 * slot, y0 + 4.0 * slot
        a.length[slot], a.width[slot], a.height[slot] = 4.5, 2.0, 1.5
    return WorldState(frame, 0.05 * frame, a, np.zeros(lights, np.int8), np.zeros(lights))


def _recording(tmp_path: Path, with_route: bool) -> tuple[Path, object, np.ndarray]:
    from harness.maps import load_town

    town = load_town("Town01")
    lanes = town.lanes
    start, count = int(lanes.start[0]), int(lanes.count[0])
    route_xy = lanes.xy[start : start + count].astype(np.float64)
    x0, y0 = route_xy[0]
    rec = EpisodeRecorder({"town": "Town01"})
    for f in range(1, 4):
        rec.append(_tick(f, x0, y0, town.signals.lights_count))
    if with_route:
        rec.route = _track(route_xy)
    return rec.write(tmp_path / "ep.parquet"), town, route_xy


def test_route_track_round_trips(tmp_path: Path, shared_maps: Path) -> None:
    path, _, route_xy = _recording(tmp_path, with_route=True)
    loaded = load_recording(path)
    assert loaded.route is not None
    np.testing.assert_allclose(loaded.route.route_xy, np.round(route_xy, 3))
    np.testing.assert_array_equal(loaded.route.frames, [1, 2, 3])
    assert [i.key for i in loaded.route.infractions] == ["collisions_vehicle", "red_light"]
    assert [i.factor for i in loaded.route.infractions] == [0.6, 0.7]
    assert json.loads(pq.read_schema(path).metadata[LAYOUT_KEY])["schema_version"] == 2


def test_schema_1_file_loads_and_replays_without_route(tmp_path: Path, shared_maps: Path) -> None:
    from harness.sim.replay import render_topdown

    path, town, _ = _recording(tmp_path, with_route=False)
    table = pq.read_table(path)
    md = dict(table.schema.metadata)
    layout = json.loads(md[LAYOUT_KEY])
    layout["schema_version"] = 1
    md[LAYOUT_KEY] = json.dumps(layout).encode()
    assert ROUTE_KEY not in md
    old = tmp_path / "v1.parquet"
    pq.write_table(table.replace_schema_metadata(md), old)
    loaded = load_recording(old)
    assert loaded.route is None and len(loaded) == 3
    assert render_topdown(loaded, town, tmp_path / "v1.gif", every=1, size_px=128).is_file()


def _colours(img: Image.Image) -> set[tuple[int, int, int]]:
    return {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 16) or []}


def test_replay_draws_route_goal_scenario_actors_and_panel(
    tmp_path: Path, shared_maps: Path
) -> None:
    from harness.sim.replay import _COLORS, panel_height, render_topdown

    path, town, _ = _recording(tmp_path, with_route=True)
    out = render_topdown(load_recording(path), town, tmp_path / "frames", every=1, size_px=256)
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 3
    with Image.open(frames[-1]) as im:
        assert im.size == (256, 256 + panel_height(10))
        map_part = _colours(im.crop((0, 0, 256, 256)))
        panel = _colours(im.crop((0, 256, 256, im.size[1])))
    # the route still to drive, the part driven (RC 50 % at the last frame), the scenario
    # actor's outline and the infraction crosses are all on the map
    for name in ("route_left", "route_done", "scenario", "event", "ego", "vehicle"):
        assert _COLORS[name] in map_part, name
    # the panel lists the infractions (event colour for fresh ones) and the legend swatches
    for name in ("event", "goal", "route_left", "text"):
        assert _COLORS[name] in panel, name
    with Image.open(frames[0]) as im:  # frame 1: nothing driven yet, no infraction yet
        first = _colours(im.crop((0, 0, 256, 256)))
    assert _COLORS["route_done"] not in first and _COLORS["event"] not in first
