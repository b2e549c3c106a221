"""Export a dataset scene as a /v1/teachers request, so the service and gen-teachers can be
compared on the same scene.

The scene is re-extracted from the dataset's recorded episode (``DIR/episodes``) with
:func:`teachers.episode_scenes.extract_scene`, so the request carries everything the generator scored:
agents with their recorded futures, lights by id with their states, the route as the recording's
keypoints (a global plan), the ego's past, the previous plan and the expert's future and plan as
the reference (EP's reference and the human filter), and the options the generator used:
threshold, the scoring profile, the registered vocabulary id and its hash, the seed and the
pool cap. Floats go
through JSON unchanged (shortest round-trip repr), so the service reproduces the dataset's
teachers and pool exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from harness.dynamics.lqr import StateIndex
from harness.errors import ConfigError
from harness.maps import load_town
from harness.world.state import ActorKind, LightState
from teachers.dataset import load_dataset
from teachers.episode_scenes import extract_scene, light_indices, load_episode

PAST_COLUMNS = (StateIndex.X, StateIndex.Y, StateIndex.YAW, StateIndex.SPEED, StateIndex.ACCEL,
                StateIndex.YAW_RATE)  # fmt: skip


def _rows(a: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in a]


def export_scene(dataset: str | os.PathLike[str], scene_id: str) -> dict[str, Any]:
    """The /v1/teachers request body (k and threshold from the manifest) for ``scene_id``."""
    d = Path(dataset)
    ds = load_dataset(d)
    row = ds.scenes[ds.scenes.scene_id == scene_id]
    if row.empty:
        some = ", ".join(ds.scenes.scene_id.head(5))
        raise ConfigError(f"{d} has no scene {scene_id!r}; scene ids look like: {some}")
    sc = row.iloc[0]
    town = load_town(str(sc.town))
    if town.sha256 != ds.manifest.get("map_sha256"):
        raise ConfigError(f"{town.name} on this machine differs from the map {d} was made with")
    path = d / "episodes" / f"route_{sc.route_id}.parquet"
    if not path.is_file():
        raise ConfigError(f"{path} is missing; export needs the dataset's recorded episodes")
    ep = load_episode(path, town)
    frames = ep.recording.frames
    hit = np.flatnonzero(frames == int(sc.frame))
    if hit.size == 0:
        raise ConfigError(f"frame {sc.frame} of scene {scene_id} is not in {path}")
    rec = extract_scene(ep, town, int(hit[0]))
    s = rec.scene
    agents = []
    for i in range(s.num_agents):
        first = int(np.argmax(s.agent_valid[i]))
        b = s.agent_boxes[i]
        agents.append({
            "id": int(rec.agent_ids[i]),
            "kind": ActorKind(int(s.agent_kind[i])).name.lower(),
            "length": float(b[first, 3]),
            "width": float(b[first, 4]),
            "future": _rows(np.column_stack([b[:, :3], s.agent_speed_mps[i]])),
            "valid": [bool(v) for v in s.agent_valid[i]],
        })  # fmt: skip
    light_ids = [str(v) for v in town.signals.light_id]
    lights = [
        {"light_id": light_ids[int(idx)],
         "states": [LightState(int(v)).name.lower() for v in s.light_state[j]]}
        for j, idx in enumerate(light_indices(town, s.ego_pose))
    ]  # fmt: skip
    keypoints = np.asarray(ep.recording.meta["route_keypoints"], dtype=np.float64)[:, :2]
    scene: dict[str, Any] = {
        "town": town.name,
        "scene_id": scene_id,
        "ego": {
            "x": float(s.ego_pose[0]),
            "y": float(s.ego_pose[1]),
            "yaw": float(s.ego_pose[2]),
            "speed": s.ego_speed_mps,
            "accel": s.ego_accel_mps2,
            "yaw_rate": s.ego_yaw_rate_radps,
            "length": s.ego_length_m,
            "width": s.ego_width_m,
            "wheelbase": s.ego_wheelbase_m,
        },  # fmt: skip
        "past": _rows(s.ego_past[:, list(PAST_COLUMNS)]),
        "agents": agents,
        "lights": lights,
        "route": {"global_plan": _rows(keypoints)},
        "previous_plan": _rows(s.previous_plan) if s.previous_plan is not None else None,
        "reference": {
            "future": _rows(rec.expert_future),
            "plan": _rows(rec.expert_plan) if rec.expert_plan is not None else None,
        },
    }
    m = ds.manifest
    vinfo = m.get("vocabulary") or {}
    options: dict[str, Any] = {
        "threshold": float(m["threshold"]),
        "profile": str(m["scoring_profile"]),
        "vocabulary_sha256": str(vinfo["sha256"]),
        "seed": int(vinfo.get("seed", 0)),
        "pool_cap": int(vinfo.get("pool_cap", 256)),
    }
    if vinfo.get("id"):  # a file vocabulary cannot be named: the service must serve that file
        options["vocabulary"] = str(vinfo["id"])
    return {"scene": scene, "k": int(m["k"]), "options": options}
