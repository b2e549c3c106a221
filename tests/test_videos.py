"""The route track the runner stores in recordings, the video policy, and that a refused video
never stops an evaluation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.leaderboard.outcome import Infraction, InfractionKey, RouteOutcome
from harness.leaderboard.statistics import BENCH2DRIVE, LEADERBOARD_2_0
from harness.runner.config import VideoPolicy
from harness.runner.steps import StepLog
from harness.runner.videos import route_track


def _outcome(*infractions: Infraction) -> RouteOutcome:
    return RouteOutcome(
        route_id="0", status="Failed", route_completion_pct=10.0, completed=False, failure="",
        end_reason="blocked", infractions=infractions, route_length_m=10.0, duration_game_s=1.0,
        ticks=2,
    )  # fmt: skip


def test_route_track_thins_the_route_and_scores_each_infraction() -> None:
    xy = np.stack([np.arange(11.0), np.zeros(11)], axis=1)  # 10 m at 1 m
    steps = StepLog()
    steps.ints["frame"] += [1, 2]
    steps.floats["route_progress_pct"] += [5.0, 10.0]
    late = Infraction(
        InfractionKey.OUTSIDE_ROUTE_LANES, "outside", 2, 0.1, 3.0, 0.0, percentage=20.0
    )
    early = Infraction(InfractionKey.COLLISIONS_VEHICLE, "hit", 1, 0.05, 2.0, 0.0)
    slow = Infraction(
        InfractionKey.MIN_SPEED_INFRACTIONS, "slow", 2, 0.1, 3.0, 0.0, percentage=50.0
    )
    track = route_track(xy, steps, _outcome(late, early, slow), LEADERBOARD_2_0)
    np.testing.assert_array_equal(track.route_xy[:, 0], [0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    assert [i.key for i in track.infractions][:2] == ["collisions_vehicle", "outside_route_lanes"]
    # 2.0 table: vehicle 0.6; outside lanes 1 - 20 % = 0.8; min speed 1 - 0.3 x (1 - 0.5) = 0.85
    assert [i.factor for i in track.infractions] == pytest.approx([0.6, 0.8, 0.85])
    rc, ip, ds = track.scores_at(2)
    assert rc == 10.0 and ip == pytest.approx(0.408) and ds == pytest.approx(4.08)
    b2d = route_track(xy, steps, _outcome(slow), BENCH2DRIVE)  # Bench2Drive: no min-speed penalty
    assert b2d.infractions[0].factor == 1.0


def test_video_policy() -> None:
    assert [VideoPolicy(p).wants(False) for p in ("none", "failed", "all")] == [False, True, True]
    assert [VideoPolicy(p).wants(True) for p in ("none", "failed", "all")] == [False, False, True]


def test_refused_video_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import harness.runner.videos as videos
    from harness.runner.observers import Recorder
    from harness.world.state import ActorArrays, WorldState

    def refuse(*args: Any, **kwargs: Any) -> Path:
        raise ConfigError("the replayed region needs a 20000x20000 px map image")

    monkeypatch.setattr(videos, "render_topdown", refuse)
    rec = Recorder({"town": "Harness01"})
    a = ActorArrays.empty(1)
    a.valid[0] = True
    rec.on_start(WorldState(0, 0.0, a, np.zeros(0, np.int8), np.zeros(0)))
    with caplog.at_level(logging.WARNING):
        assert videos.write_video(rec, object(), tmp_path, "RouteScenario_0_rep0") is None  # type: ignore[arg-type]
    assert "no video" in caplog.text and not (tmp_path / "videos").exists()
