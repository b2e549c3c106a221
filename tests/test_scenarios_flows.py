"""Flow scenarios on their Bench2Drive routes: from ``start_actor_flow`` to ``end_actor_flow``,
after the trigger only, spaced by ``source_dist_interval``, at ``flow_speed``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenarios.placement import path_s
from tests.test_scenarios_support import drive


@pytest.mark.parametrize(
    ("route_id", "kind"), [("27506", "EnterActorFlow"), ("26394", "MergerIntoSlowTrafficV2")]
)
def test_flow_runs_start_to_end_spaced_at_flow_speed(
    bench2drive_xml: Path, route_id: str, kind: str
) -> None:
    run = drive(bench2drive_xml, route_id, 130)
    p = run.config.params
    assert run.config.type == kind
    start = np.array([float(p["start_actor_flow"]["x"]), float(p["start_actor_flow"]["y"])])
    end = np.array([float(p["end_actor_flow"]["x"]), float(p["end_actor_flow"]["y"])])
    lo, hi = float(p["source_dist_interval"]["from"]), float(p["source_dist_interval"]["to"])
    speed = float(p["flow_speed"]["value"])
    path = run.scenario.path
    assert np.hypot(*(path[0] - start)) < 3.0 and np.hypot(*(path[-1] - end)) < 3.0
    t0 = run.first_trigger_tick()
    assert all(not a for a in run.actors[:t0]), "nothing before the trigger"
    snap = run.actors[t0 + 1]
    s_path = path_s(path)
    s_veh = sorted(
        float(s_path[int(np.argmin(np.hypot(*(path - np.array(a[1:3])).T)))]) for a in snap.values()
    )
    gaps = np.diff(s_veh)
    assert gaps.size >= 1 and np.all(gaps >= lo - 1.5) and np.all(gaps <= hi + 1.5)
    assert all(np.hypot(*(path - np.array(a[1:3])).T).min() < 0.5 for a in run.actors[-1].values())
    assert max(a[4] for a in run.actors[-1].values()) == pytest.approx(speed, abs=0.3)
