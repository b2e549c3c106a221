"""``GameTime``: the simulation clock agents read (``get_time``, ``get_frame``,
``get_wallclocktime``), advanced by ``on_carla_tick(timestamp)`` with a ``carla.Timestamp``.

As ScenarioRunner's: the clock counts ``delta_seconds`` per new frame (the frames skipped since the
last call count too, except before the first call, which counts one), so with consecutive frames
from 0 the time equals ``frame * delta_seconds``; ``restart()`` sets it back to zero."""

from __future__ import annotations

import datetime
from typing import Any


class GameTime:
    """Process-wide simulation clock (class attributes, as ScenarioRunner's static class)."""

    _current_game_time = 0.0  # [s] since restart()
    _carla_time = 0.0  # [s] the server's elapsed_seconds of the last frame
    _last_frame = 0
    _platform_timestamp: datetime.datetime | None = None
    _init = False

    @staticmethod
    def on_carla_tick(timestamp: Any) -> None:
        """Advance to ``timestamp`` (``frame``, ``delta_seconds``, ``elapsed_seconds``); frames not
        newer than the last one are ignored."""
        frame = int(timestamp.frame)
        if frame <= GameTime._last_frame:
            return
        frames = frame - GameTime._last_frame if GameTime._init else 1
        GameTime._current_game_time += float(timestamp.delta_seconds) * frames
        GameTime._last_frame = frame
        GameTime._platform_timestamp = datetime.datetime.now()
        GameTime._init = True
        GameTime._carla_time = float(timestamp.elapsed_seconds)

    @staticmethod
    def restart() -> None:
        """Back to time 0, frame 0 (called at the start of every route)."""
        GameTime._current_game_time = 0.0
        GameTime._carla_time = 0.0
        GameTime._last_frame = 0
        GameTime._init = False

    @staticmethod
    def get_time() -> float:
        """Simulation time [s] since restart()."""
        return GameTime._current_game_time

    @staticmethod
    def get_carla_time() -> float:
        """The simulator's own elapsed time [s] at the last frame."""
        return GameTime._carla_time

    @staticmethod
    def get_wallclocktime() -> datetime.datetime | None:
        """Wall-clock time of the last frame (None before the first one)."""
        return GameTime._platform_timestamp

    @staticmethod
    def get_frame() -> int:
        """The last frame seen."""
        return GameTime._last_frame
