"""Episode videos of evaluated routes (``harness eval --videos failed|all``) and the route track
a recording carries so that its replay shows the route and the running score.

The episode is kept in memory by a :class:`~harness.runner.observers.Recorder` while the route
runs; a video is rendered only for the routes the policy selects, to ``OUT/videos/<save_name>``
as MP4 when imageio-ffmpeg is installed, else as GIF.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from harness.errors import ConfigError
from harness.leaderboard.outcome import RouteOutcome
from harness.leaderboard.statistics import PenaltyTable, penalty_factor
from harness.maps.town import Town
from harness.runner.observers import Recorder
from harness.runner.steps import StepLog
from harness.sim.replay import render_topdown
from harness.world.recording import RouteTrack, ScoredInfraction

log = logging.getLogger(__name__)

VIDEOS_DIR = "videos"  # OUT/videos/<save_name>.gif|.mp4
VIDEO_EVERY = 4  # render every 4th tick (0.2 s of simulation per frame)
VIDEO_FPS = 10.0  # [frames/s] so videos play at 2x real time
VIDEO_SIZE_PX = 384  # [px] frame side
ROUTE_TRACK_SPACING_M = 2.0  # [m] spacing of the route polyline stored in recordings


def video_suffix() -> str:
    """'.mp4' when imageio-ffmpeg is installed, else '.gif'."""
    return ".mp4" if importlib.util.find_spec("imageio_ffmpeg") is not None else ".gif"


def route_track(
    planned_xy: NDArray[np.float64], steps: StepLog, outcome: RouteOutcome, table: PenaltyTable
) -> RouteTrack:
    """The route track of a finished route: its planned polyline (thinned to about
    ROUTE_TRACK_SPACING_M), the completion of every logged tick and every infraction with its
    penalty factor under ``table``."""
    xy = np.asarray(planned_xy, dtype=np.float64)
    if len(xy) > 2:
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
        keep = np.unique(np.searchsorted(s, np.arange(0.0, s[-1], ROUTE_TRACK_SPACING_M)))
        xy = np.concatenate([xy[keep], xy[-1:]])
    infractions = tuple(
        ScoredInfraction(
            key=i.key.value,
            text=i.message,
            frame=int(i.frame),
            time_s=float(i.time_s),
            x_m=float(i.x_m),
            y_m=float(i.y_m),
            factor=penalty_factor(i.key.value, i.percentage, table),
        )  # fmt: skip
        for i in sorted(outcome.infractions, key=lambda i: i.frame)
    )
    return RouteTrack(
        route_xy=xy,
        frames=np.asarray(steps.ints["frame"], dtype=np.int64),
        progress_pct=np.asarray(steps.floats["route_progress_pct"], dtype=np.float64),
        infractions=infractions,
    )


def write_video(recorder: Recorder, town: Town, out_dir: Path, save_name: str) -> Path | None:
    """Render the recorded episode to ``out_dir/videos/<save_name>`` (.mp4 or .gif); None (and
    a warning) when the replay refuses it (a drive spanning a region too large to draw), so a
    video never stops an evaluation."""
    path = out_dir / VIDEOS_DIR / f"{save_name}{video_suffix()}"
    try:
        written = render_topdown(
            recorder.recorder.to_recording(), town, path, fps=VIDEO_FPS, every=VIDEO_EVERY,
            size_px=VIDEO_SIZE_PX,
        )  # fmt: skip
    except ConfigError as exc:
        log.warning("route %s: no video (%s)", save_name, exc)
        return None
    log.info("route %s: video %s", save_name, written)
    return written
