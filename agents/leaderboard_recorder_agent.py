"""Privileged recorder for the official leaderboard: wraps another leaderboard agent file and
writes the harness's episode format (``harness.world.recording``, one Parquet file per route)
from ``CarlaDataProvider``'s actors every tick, so ``gen-teachers`` and ``harness replay`` can
work from real CARLA drives.

Use it as the ``--agent`` of the leaderboard's ``leaderboard_evaluator.py`` (or of ``harness
eval``), with the environment:

- ``HARNESS_RECORD_AGENT``: path of the agent file to wrap (its ``--agent-config`` is passed
  through unchanged);
- ``HARNESS_RECORD_DIR``: folder for the recordings (``<nnnn>_<town>.parquet``, one per route,
  written atomically when the route ends).

The wrapped agent is loaded as the leaderboard loads agents (its folder on ``sys.path``, imported
by file stem, ``get_entry_point()``), gets the dense global plan (its base class cuts it) and
drives; the recorder only reads the world. Each tick: the hero (role_name 'hero') in row 0, every
other vehicle, walker and static prop with its box (centre = the actor's transform applied to
its bounding-box location), signed speed and longitudinal acceleration along its heading and yaw
rate; traffic lights matched to the town's lights by OpenDRIVE signal id, else to the nearest
town light within ``LIGHT_MATCH_M`` (unmatched town lights are recorded OFF). The town must be
resolvable by the harness (``$HARNESS_MAPS``; the server's map name). In the leaderboard's own
environment the ``harness`` package (numpy, pyarrow) must be importable beside it.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness.maps import load_town
from harness.world.recording import EpisodeRecorder
from harness.world.state import ActorArrays, ActorKind, ActorRole, LightState, WorldState
from leaderboard.autoagents import autonomous_agent
from srunner.scenariomanager.carla_data_provider import CarlaDataProvider
from srunner.scenariomanager.timer import GameTime

AGENT_ENV = "HARNESS_RECORD_AGENT"
DIR_ENV = "HARNESS_RECORD_DIR"
LIGHT_MATCH_M = 10.0  # [m] furthest a CARLA light may stand from the town light it is matched to
EMERGENCY_MODELS = ("ambulance", "firetruck", "police")  # CARLA blueprint names of emergency cars
RECORDED_PREFIXES = ("vehicle.", "walker.", "static.")


def get_entry_point() -> str:
    return "LeaderboardRecorderAgent"


def _load_wrapped(path_text: str) -> type:
    """The agent class of a leaderboard agent file, loaded as the leaderboard does."""
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"${AGENT_ENV}={path_text} is not an agent file; set it to one")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    module = importlib.import_module(path.stem)
    cls: type = getattr(module, module.get_entry_point())
    return cls


def _kind(actor: Any) -> ActorKind:
    type_id = actor.type_id
    if type_id.startswith("walker."):
        return ActorKind.PEDESTRIAN
    if type_id.startswith("static."):
        return ActorKind.STATIC
    attrs = actor.attributes
    if attrs.get("special_type") == "emergency" or any(m in type_id for m in EMERGENCY_MODELS):
        return ActorKind.EMERGENCY
    if attrs.get("number_of_wheels") == "2":
        return ActorKind.BICYCLE
    return ActorKind.VEHICLE


def _role(actor: Any, kind: ActorKind) -> ActorRole:
    name = actor.attributes.get("role_name", "")
    if name == "hero":
        return ActorRole.EGO
    if name == "scenario":
        return ActorRole.SCENARIO
    return ActorRole.PEDESTRIAN if kind is ActorKind.PEDESTRIAN else ActorRole.BACKGROUND


class LeaderboardRecorderAgent(autonomous_agent.AutonomousAgent):
    """Drives with the wrapped agent, records the world (see the module docstring)."""

    def __init__(self, carla_host: Any, carla_port: Any, debug: bool = False) -> None:
        super().__init__(carla_host, carla_port, debug)
        if AGENT_ENV not in os.environ or DIR_ENV not in os.environ:
            raise RuntimeError(
                f"set ${AGENT_ENV} (the agent file to wrap) and ${DIR_ENV} (where recordings go)"
            )
        self.out_dir = Path(os.environ[DIR_ENV]).expanduser()
        self.wrapped = _load_wrapped(os.environ[AGENT_ENV])(carla_host, carla_port, debug)
        self.recorder: EpisodeRecorder | None = None
        self.town: Any = None
        self._light_of: dict[int, int] = {}  # carla light id -> town light index

    # ------------------------------------------------------------------ pass-through
    def setup(self, path_to_conf_file: str) -> None:
        self.wrapped.setup(path_to_conf_file)
        self.track = self.wrapped.track
        cmap = CarlaDataProvider.get_map()
        self.town = load_town(str(cmap.name).split("/")[-1])
        self.recorder = EpisodeRecorder(
            {"town": self.town.name, "source": "leaderboard_recorder",
             "agent": os.environ[AGENT_ENV]}
        )  # fmt: skip

    def sensors(self) -> list[dict[str, Any]]:
        return list(self.wrapped.sensors())

    def set_global_plan(self, global_plan_gps: Any, global_plan_world_coord: Any) -> None:
        super().set_global_plan(global_plan_gps, global_plan_world_coord)
        sample = getattr(self.wrapped, "global_plan_sample_m", None)
        if sample is not None:
            self.wrapped.global_plan_sample_m = self.global_plan_sample_m
        self.wrapped.set_global_plan(global_plan_gps, global_plan_world_coord)

    def run_step(self, input_data: dict[str, Any], timestamp: float) -> Any:
        if self.recorder is not None:
            self.recorder.append(self._world_state())
        return self.wrapped.run_step(input_data, timestamp)

    def destroy(self) -> None:
        try:
            self.wrapped.destroy()
        finally:
            if self.recorder is not None and len(self.recorder):
                n = len(list(self.out_dir.glob("*.parquet"))) if self.out_dir.is_dir() else 0
                self.recorder.write(self.out_dir / f"{n:04d}_{self.town.name}.parquet")
            self.recorder = None

    # ------------------------------------------------------------------ the world, read
    def _world_state(self) -> WorldState:
        actors = list(CarlaDataProvider.get_world().get_actors())
        movers = [a for a in actors if a.type_id.startswith(RECORDED_PREFIXES)]
        movers.sort(key=lambda a: (a.attributes.get("role_name") != "hero", a.id))
        arr = ActorArrays.empty(max(len(movers), 1))
        for row, actor in enumerate(movers):
            self._fill(arr, row, actor)
        state, elapsed = self._lights(
            [a for a in actors if a.type_id.startswith("traffic.traffic_light")]
        )
        return WorldState(
            frame=int(GameTime.get_frame()), time_s=float(GameTime.get_time()), actors=arr,
            light_state=state, light_elapsed_s=elapsed,
        )  # fmt: skip

    @staticmethod
    def _fill(arr: ActorArrays, row: int, actor: Any) -> None:
        kind = _kind(actor)
        role = _role(actor, kind)
        transform = actor.get_transform()
        box = actor.bounding_box
        centre = transform.transform(box.location)
        yaw = math.radians(transform.rotation.yaw)
        fwd = (math.cos(yaw), math.sin(yaw))
        v, acc = actor.get_velocity(), actor.get_acceleration()
        values = {
            "x": centre.x, "y": centre.y, "z": transform.location.z, "yaw": yaw,
            "speed": v.x * fwd[0] + v.y * fwd[1], "accel": acc.x * fwd[0] + acc.y * fwd[1],
            "yaw_rate": math.radians(actor.get_angular_velocity().z),
            "length": 2 * box.extent.x, "width": 2 * box.extent.y, "height": 2 * box.extent.z,
        }  # fmt: skip
        for name, value in values.items():
            getattr(arr, name)[row] = value
        arr.actor_id[row] = 0 if role is ActorRole.EGO else int(actor.id)
        arr.kind[row] = int(kind)
        arr.role[row] = int(role)
        arr.valid[row] = True

    def _lights(self, lights: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(state, elapsed) per town light from the world's traffic lights."""
        sig = self.town.signals
        n = len(sig.light_id)
        state = np.full(n, int(LightState.OFF), dtype=np.int8)
        elapsed = np.zeros(n, dtype=np.float64)
        for tl in lights:
            i = self._light_of.get(tl.id)
            if i is None:
                i = self._light_of[tl.id] = self._match(tl)
            if i >= 0:
                state[i] = int(tl.state)
                elapsed[i] = float(tl.get_elapsed_time())
        return state, elapsed

    def _match(self, tl: Any) -> int:
        """The town light of a CARLA light: same OpenDRIVE id, else the nearest within
        LIGHT_MATCH_M, else -1."""
        sig = self.town.signals
        ids = [str(i) for i in sig.light_id]
        opendrive_id = str(tl.get_opendrive_id())
        if opendrive_id in ids:
            return ids.index(opendrive_id)
        if not len(ids):
            return -1
        loc = tl.get_transform().location
        d = np.hypot(sig.light_xy[:, 0] - loc.x, sig.light_xy[:, 1] - loc.y)
        best = int(np.argmin(d))
        return best if d[best] <= LIGHT_MATCH_M else -1
