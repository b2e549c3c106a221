"""Exception types raised for bad input; the CLI turns them into one message and exit status 2."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class: an error the user can fix. The message says what to do."""

    exit_code: int = 2


class UnknownTownError(HarnessError):
    """A town name that no search location provides."""


class MapLoadError(HarnessError):
    """An OpenDRIVE file that cannot be read or is not valid OpenDRIVE."""


class RouteFileError(HarnessError):
    """A route file (XML or scenarios JSON) that cannot be parsed; names the file and line."""


class RoutePlanningError(HarnessError):
    """A route whose keypoints cannot be connected on the lane graph; names route id and keypoint."""


class SensorConfigError(HarnessError):
    """An agent's sensors() list that breaks the leaderboard sensor rules."""


class ConfigError(HarnessError):
    """A command-line or configuration value that is out of range or inconsistent."""
