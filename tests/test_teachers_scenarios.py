"""Teacher drives with the route's scenarios: a Bench2Drive crossing route driven as gen-teachers
drives it puts the crossing walker among the scored agents of the scenes after the trigger, and
a drive that ends early still leaves its scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.maps import load_town
from harness.routes.generate import generate_routes
from harness.routes.xml_io import read_routes
from harness.world.state import ActorKind, WorldState
from scenarios.route_scenario import RouteScenario
from teachers.drive import drive_route
from teachers.episode_scenes import extract_scene, load_episode, scene_rows


def test_crossing_walker_is_a_scored_scenario_agent(bench2drive_xml: Path, tmp_path: Path) -> None:
    route = {r.id: r for r in read_routes(bench2drive_xml)}["24211"]  # Town01, one crossing
    assert [s.type for s in route.scenarios] == ["DynamicObjectCrossing"]
    town = load_town(route.town)
    path = drive_route(town, route, None, tmp_path / "route_24211.parquet", seed=0)
    ep = load_episode(path, town)
    track = ep.scenarios
    assert track is not None and len(track.frames) == len(ep.recording)
    fired = np.flatnonzero(track.triggered)
    assert fired.size and set(track.types[i] for i in fired) == {"DynamicObjectCrossing"}
    # the scenario's actors, read from the recording: a walker among them
    a = ep.recording.actors
    ids = set(np.concatenate([track.actor_ids[i] for i in fired]).tolist())
    walkers = {int(x) for x in np.unique(a.actor_id[a.valid & (a.kind == ActorKind.PEDESTRIAN)])}
    crossing = ids & walkers
    assert crossing, "the crossing walker is a scenario actor"
    rows = [r for r in scene_rows(ep, 0.5) if track.triggered[r]]
    assert rows, "scenes after the trigger"
    seen = 0
    for r in rows:
        rec = extract_scene(ep, town, int(r))
        assert (rec.scenario_type, rec.scenario_triggered) == ("DynamicObjectCrossing", True)
        marked = set(rec.agent_ids[rec.scenario_agents].tolist())
        assert marked <= ids  # only scenario actors are marked
        assert set(rec.agent_ids.tolist()) & ids == marked  # and every one present is
        seen += bool(marked & crossing)
    assert seen, "the walker is among the scored agents of some scene after the trigger"
    assert ep.recording.meta["scenarios"][0]["triggered"] is True


def test_drive_ended_by_a_scenario_error_keeps_its_scenes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    town = load_town("Harness01")
    route = generate_routes(town, 1, 300.0, seed=0)[0]

    def failing_tick(self: RouteScenario, state: WorldState) -> None:
        if state.time_s > 8.0:
            raise RuntimeError("scenario broke")

    monkeypatch.setattr(RouteScenario, "tick", failing_tick)
    path = drive_route(town, route, None, tmp_path / "route.parquet", seed=0)
    ep = load_episode(path, town)
    assert "world error" in ep.recording.meta["ended"]
    assert ep.recording.time_s[-1] - ep.recording.time_s[0] == pytest.approx(8.0, abs=0.2)
    rows = scene_rows(ep, 0.5)
    assert len(rows) >= 4  # 8 s recorded: scenes from 1.5 s to 4 s
    assert extract_scene(ep, town, int(rows[0])).scenario_type == ""
