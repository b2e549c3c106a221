"""Rebuild a collected scene for online scoring: the route's recording, kept beside its arrays,
gives the scorer's :class:`teachers.scene.Scene` (and the full :class:`SceneRecord`, which
``teachers.per_scene.score_trajectories`` takes) of scene i exactly as collection scored it."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from drivejepa.data.collect import MANIFEST_FILE, npz_path, recording_path
from harness.errors import ConfigError
from harness.maps import load_town
from harness.maps.town import Town
from teachers.episode_scenes import Episode, SceneRecord, extract_scene, load_episode
from teachers.scene import Scene

EPISODE_CACHE = 8  # recordings kept loaded (least recently used dropped first)


class SceneSource:
    """Scenes of a collection folder by (route key, scene index); episodes are loaded on first
    use and cached (EPISODE_CACHE of them), towns once."""

    def __init__(self, data: str | Path, cache: int = EPISODE_CACHE) -> None:
        self.data = Path(data)
        path = self.data / MANIFEST_FILE
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; collect the data with `harness collect`")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        self.towns_of = {str(r["id"]): str(r["town"]) for r in manifest["routes"]}
        self.cache = cache
        self._episodes: OrderedDict[str, Episode] = OrderedDict()
        self._rows: dict[str, NDArray[np.int64]] = {}
        self._towns: dict[str, Town] = {}

    def town(self, route_key: str) -> Town:
        name = self.towns_of.get(route_key)
        if name is None:
            raise ConfigError(f"route {route_key!r} is not in {self.data / MANIFEST_FILE}")
        if name not in self._towns:
            self._towns[name] = load_town(name)
        return self._towns[name]

    def episode(self, route_key: str) -> Episode:
        """The route's recorded episode (cached)."""
        if route_key in self._episodes:
            self._episodes.move_to_end(route_key)
            return self._episodes[route_key]
        ep = load_episode(recording_path(self.data, route_key), self.town(route_key))
        self._episodes[route_key] = ep
        while len(self._episodes) > self.cache:
            self._episodes.popitem(last=False)
        return ep

    def rows(self, route_key: str) -> NDArray[np.int64]:
        """(S,) recording row of every scene of the route."""
        if route_key not in self._rows:
            self.town(route_key)  # an unknown key is reported by name
            with np.load(npz_path(self.data, route_key)) as z:
                self._rows[route_key] = z["recording_row"].astype(np.int64)
        return self._rows[route_key]

    def record(self, route_key: str, i: int) -> SceneRecord:
        """Scene i of the route as the teachers pipeline cuts it (ids, expert future, scene)."""
        rows = self.rows(route_key)
        if not 0 <= i < len(rows):
            raise ConfigError(f"route {route_key!r} has scenes 0..{len(rows) - 1}, not {i}")
        return extract_scene(self.episode(route_key), self.town(route_key), int(rows[i]))

    def scene(self, route_key: str, i: int) -> Scene:
        """The scorer's scene of scene i."""
        return self.record(route_key, i).scene
