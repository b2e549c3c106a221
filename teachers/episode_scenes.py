"""Scoring scenes cut from recorded expert episodes (NAVSIM semantics: non-reactive agents whose
futures are what really happened next in the recording).

An episode is a recording (``harness.world.recording``, 20 Hz) plus the planned route it drove and,
when the driving agent exposed one, its planned trajectory per tick (``*.plans.parquet``). A scene
at recorded row i takes the ego's state, its past 1.5 s and its real future 4 s at 0.1 s (every
second tick), the other actors within AGENT_RADIUS_M tracked by actor id over the next 4 s, the
lights within LIGHT_RADIUS_M over the same window, the route around the ego and, when the drive
ran the route's scenarios (``*.scenarios.parquet``), the scenario active at that tick and which
of the scene's agents are scenario actors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.boxes import BOX_DIM
from harness.dynamics.lqr import NUM_POSES, StateIndex
from harness.dynamics.vehicle import LINCOLN_MKZ_2017
from harness.errors import ConfigError
from harness.geometry import wrap_angle
from harness.io import atomic_output
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute, RoadOption, plan_route
from harness.world.recording import Recording, load_recording
from harness.world.state import ActorArrays
from harness.world.timing import HORIZON_STEPS, SIM_DT_S, TICKS_PER_POSE
from teachers.scene import MIN_MOVING_SPEED_MPS, PAST_POSES, PREVIOUS_PLAN_OFFSET_STEPS, Scene
from teachers.scoring.rasters import expand_route_lanes

PAST_TICKS = (PAST_POSES - 1) * TICKS_PER_POSE  # 1.5 s of history [ticks]
FUTURE_TICKS = (NUM_POSES - 1) * TICKS_PER_POSE  # 4 s of future [ticks]
AGENT_RADIUS_M = 60.0  # agents whose centre is this close to the ego at t=0 are scored [m]
LIGHT_RADIUS_M = 80.0  # lights whose pole is this close to the ego are kept [m]
ROUTE_BEHIND_M = 10.0  # route centerline kept behind the ego [m]
ROUTE_AHEAD_M = 150.0  # and ahead of it (covers 4 s at any town speed) [m]
COMMAND_LOOKAHEAD_M = 20.0  # the route command is the first turn option this far ahead [m]
ROUTE_HEADING_TOL_RAD = np.pi / 2  # route points facing away from the ego are not matched
PLAN_VALUES = HORIZON_STEPS * 3  # floats per stored plan (40 x [x, y, yaw])

Float = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ScenarioTrack:
    """The route scenario active at every recorded state of a drive: ``frames`` (N,) simulator
    frames, ``types`` / ``names`` (N,) of the active scenario ("" when none), ``triggered`` (N,)
    whether it had triggered, ``actor_ids`` (N,) arrays of the actor ids every scenario of the
    route owned then."""

    frames: NDArray[np.int64]
    types: tuple[str, ...]
    names: tuple[str, ...]
    triggered: NDArray[np.bool_]
    actor_ids: tuple[NDArray[np.int64], ...]

    def __post_init__(self) -> None:
        n = len(self.frames)
        if (
            not len(self.types)
            == len(self.names)
            == len(self.triggered)
            == len(self.actor_ids)
            == n
        ):
            raise ValueError("ScenarioTrack columns must all have one entry per frame")

    def at(self, frame: int) -> tuple[str, str, bool, NDArray[np.int64]]:
        """(type, name, triggered, scenario actor ids) at ``frame`` (none when not logged)."""
        j = int(np.searchsorted(self.frames, frame))
        if j >= len(self.frames) or self.frames[j] != frame:
            return "", "", False, np.zeros(0, np.int64)
        return self.types[j], self.names[j], bool(self.triggered[j]), self.actor_ids[j]

    def write(self, path: Path) -> None:
        """One Parquet file (atomic)."""
        table = pa.table(
            {
                "frame": pa.array(self.frames, type=pa.int64()),
                "type": pa.array(list(self.types), type=pa.string()),
                "name": pa.array(list(self.names), type=pa.string()),
                "triggered": pa.array(self.triggered, type=pa.bool_()),
                "actor_ids": pa.array([a.tolist() for a in self.actor_ids],
                                      type=pa.list_(pa.int64())),
            }
        )  # fmt: skip
        with atomic_output(path) as tmp:
            pq.write_table(table, tmp)

    @staticmethod
    def read(path: Path) -> ScenarioTrack:
        """The track :meth:`write` stored."""
        t = pq.read_table(path)
        return ScenarioTrack(
            frames=t.column("frame").to_numpy().astype(np.int64),
            types=tuple(t.column("type").to_pylist()),
            names=tuple(t.column("name").to_pylist()),
            triggered=np.asarray(t.column("triggered").to_pylist(), dtype=bool),
            actor_ids=tuple(
                np.asarray(a, dtype=np.int64) for a in t.column("actor_ids").to_pylist()
            ),
        )


@dataclass(frozen=True, eq=False)
class Episode:
    """A recorded drive: ``recording``, the ``planned`` route, ``route_id``, the agent's plans
    (``plan_frames`` (P,) simulator frames, ``plans`` (P, 40, 3) world poses at 0.1 s from one
    step ahead) or None when the driver exposed none, the recording's ``path`` and the drive's
    ``scenarios`` track (None for recordings made without one)."""

    path: Path
    route_id: str
    recording: Recording
    planned: PlannedRoute
    plan_frames: NDArray[np.int64] | None
    plans: Float | None
    scenarios: ScenarioTrack | None = None


@dataclass(frozen=True, eq=False)
class SceneRecord:
    """One scene and what the dataset stores beside the scorer's :class:`Scene`: ids, the
    recorded ``frame`` / ``time_s``, ``agent_ids`` (A,), the route ``command`` (RoadOption),
    ``route_lane_seq`` ordered route lanes from the ego's, the expert's real ``expert_future``
    (40, 3) and its ``expert_plan`` (40, 3) at this tick (None when not recorded); the route
    scenario active then (``scenario_type`` / ``scenario_name``, "" when none, and whether it
    had ``scenario_triggered``) and ``scenario_agent`` (A,) which agents are scenario actors."""

    scene_id: str
    route_id: str
    frame: int
    time_s: float
    scene: Scene
    agent_ids: NDArray[np.int64]
    command: int
    route_lane_seq: NDArray[np.int64]
    expert_future: Float
    expert_plan: Float | None
    scenario_type: str = ""
    scenario_name: str = ""
    scenario_triggered: bool = False
    scenario_agent: NDArray[np.bool_] | None = None

    @property
    def scenario_agents(self) -> NDArray[np.bool_]:
        """(A,) which agents are scenario actors (all False when unknown)."""
        if self.scenario_agent is None:
            return np.zeros(self.scene.num_agents, dtype=bool)
        return self.scenario_agent


def scenarios_path(recording_path: Path) -> Path:
    """Where the scenario track of the episode recorded at ``recording_path`` lives."""
    return recording_path.with_name(recording_path.name.replace(".parquet", ".scenarios.parquet"))


def plans_path(recording_path: Path) -> Path:
    """Where the plans of the episode recorded at ``recording_path`` live."""
    return recording_path.with_name(recording_path.name.replace(".parquet", ".plans.parquet"))


def write_plans(path: Path, frames: list[int], plans: list[Float]) -> None:
    """Store per-tick plans (40, 3) with their simulator frames as one Parquet file (atomic)."""
    flat = np.asarray(plans, dtype=np.float64).reshape(len(plans), PLAN_VALUES)
    table = pa.table(
        {
            "frame": pa.array(np.asarray(frames, dtype=np.int64)),
            "poses": pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), PLAN_VALUES),
        }
    )
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp)


def load_episode(path: str | os.PathLike[str], town: Town) -> Episode:
    """Load a recording written by :func:`teachers.drive.drive_routes` (its meta carries the
    route id and keypoints, which are re-planned deterministically) and its plans if any."""
    p = Path(path)
    rec = load_recording(p)
    if "route_keypoints" not in rec.meta:
        raise ConfigError(f"{p} has no route keypoints in its meta; record it with gen-teachers")
    kp = np.asarray(rec.meta["route_keypoints"], dtype=np.float64)
    route_id = str(rec.meta.get("route_id", p.stem))
    planned = plan_route(town, kp, route_id)
    pp = plans_path(p)
    frames: NDArray[np.int64] | None = None
    plans: Float | None = None
    if pp.is_file():
        t = pq.read_table(pp)
        frames = t.column("frame").to_numpy().astype(np.int64)
        flat = t.column("poses").combine_chunks().flatten().to_numpy()
        plans = np.asarray(flat, dtype=np.float64).reshape(len(frames), HORIZON_STEPS, 3)
    sp = scenarios_path(p)
    track = ScenarioTrack.read(sp) if sp.is_file() else None
    return Episode(p, route_id, rec, planned, frames, plans, track)


def scene_rows(episode: Episode, every_s: float) -> NDArray[np.int64]:
    """Recorded rows that can be scenes (1.5 s of past and 4 s of future recorded), every
    ``every_s`` seconds."""
    if every_s <= 0:
        raise ConfigError(f"--every must be positive, got {every_s}")
    stride = max(1, int(round(every_s / SIM_DT_S)))
    n = len(episode.recording)
    return np.arange(PAST_TICKS, n - FUTURE_TICKS, stride, dtype=np.int64)


def route_index(planned: PlannedRoute, pose: Float) -> int:
    """Index of the route point nearest the pose among those heading the same way."""
    d2 = ((planned.xy - pose[:2]) ** 2).sum(1)
    facing = np.abs(wrap_angle(planned.yaw_rad - pose[2])) < ROUTE_HEADING_TOL_RAD
    return int(np.argmin(np.where(facing, d2, d2 + 1e6)))


def route_command(planned: PlannedRoute, k: int) -> int:
    """The first turn option (not lane-follow / void) within COMMAND_LOOKAHEAD_M of route point
    k, else LANEFOLLOW: the driving command Drive-JEPA feeds its planner."""
    ahead = (planned.s_m >= planned.s_m[k]) & (planned.s_m <= planned.s_m[k] + COMMAND_LOOKAHEAD_M)
    opts = planned.option[ahead]
    turn = opts[(opts != RoadOption.LANEFOLLOW) & (opts != RoadOption.VOID)]
    return int(turn[0]) if turn.size else int(RoadOption.LANEFOLLOW)


def _ordered_unique(a: NDArray[np.int64]) -> NDArray[np.int64]:
    keep = np.concatenate([[True], a[1:] != a[:-1]]) if a.size else np.zeros(0, bool)
    return a[keep]


def ego_past_states(a: ActorArrays, past: NDArray[np.int64]) -> NDArray[np.float64]:
    """(PAST_POSES, len(StateIndex)) ego states at the recorded rows ``past`` (F, N arrays); the
    steering angle from the yaw rate by the kinematic bicycle (0 below MIN_MOVING_SPEED_MPS)."""
    ego_past = np.zeros((len(past), len(StateIndex)))
    for col, arr in ((StateIndex.X, a.x), (StateIndex.Y, a.y), (StateIndex.YAW, a.yaw),
                     (StateIndex.SPEED, a.speed), (StateIndex.ACCEL, a.accel),
                     (StateIndex.YAW_RATE, a.yaw_rate)):  # fmt: skip
        ego_past[:, col] = arr[past, 0]
    wb = LINCOLN_MKZ_2017.wheelbase_m
    v_past = a.speed[past, 0]
    moving = np.abs(v_past) > MIN_MOVING_SPEED_MPS
    ego_past[:, StateIndex.STEER] = np.where(
        moving, np.arctan(wb * a.yaw_rate[past, 0] / np.where(moving, v_past, 1.0)), 0.0
    )
    return ego_past


def agent_futures(
    a: ActorArrays, row: int, fut: NDArray[np.int64], ego_pose: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """The agents within AGENT_RADIUS_M of the ego at ``row``, followed by actor id over the rows
    ``fut`` (slots are recycled): their slots at ``row``, boxes (A, len(fut), 5), validity and
    speed per step. Invalid steps keep the first box so the arrays stay finite (they are masked)."""
    near = a.valid[row] & (
        np.hypot(a.x[row] - ego_pose[0], a.y[row] - ego_pose[1]) < AGENT_RADIUS_M
    )
    near[0] = False
    slots = np.flatnonzero(near)
    ids = a.actor_id[row, slots]
    match = (a.actor_id[fut][None, :, :] == ids[:, None, None]) & a.valid[fut][None]  # (A, T, N)
    valid = match.any(-1)
    slot_t = match.argmax(-1)
    rows_t = np.broadcast_to(fut[None], slot_t.shape)
    boxes = np.zeros((len(slots), len(fut), BOX_DIM))
    for j, arr in enumerate((a.x, a.y, a.yaw, a.length, a.width)):
        boxes[..., j] = arr[rows_t, slot_t]
    boxes = np.where(valid[..., None], boxes, boxes[:, :1])
    speed = np.where(valid, a.speed[rows_t, slot_t], 0.0)
    return slots, boxes, valid, speed


def extract_scene(episode: Episode, town: Town, row: int) -> SceneRecord:
    """The scene at recorded row ``row`` (see :func:`scene_rows` for the valid rows)."""
    rec, a = episode.recording, episode.recording.actors
    if not PAST_TICKS <= row < len(rec) - FUTURE_TICKS:
        raise ConfigError(f"row {row} lacks 1.5 s of past or 4 s of future in {episode.path}")
    fut = row + TICKS_PER_POSE * np.arange(NUM_POSES)  # rows t = 0 .. 4 s
    past = row - TICKS_PER_POSE * np.arange(PAST_POSES)[::-1]  # rows t-1.5 .. t
    ego_pose = np.array([a.x[row, 0], a.y[row, 0], a.yaw[row, 0]])
    ego_past = ego_past_states(a, past)
    wb = LINCOLN_MKZ_2017.wheelbase_m
    slots, boxes, valid, speed = agent_futures(a, row, fut, ego_pose)
    ids = a.actor_id[row, slots]

    sig = town.signals
    lights = light_indices(town, ego_pose)
    light_state = rec.light_state[fut][:, lights].T.astype(np.int64)

    planned = episode.planned
    k = route_index(planned, ego_pose)
    s0 = planned.s_m[k]
    keep = (planned.s_m >= s0 - ROUTE_BEHIND_M) & (planned.s_m <= s0 + ROUTE_AHEAD_M)
    route_xy = planned.xy[keep]
    if len(route_xy) < 2:
        route_xy = planned.xy[max(0, k - 1) : k + 2]
    lane_seq = _ordered_unique(planned.lane[k:][planned.s_m[k:] <= s0 + ROUTE_AHEAD_M])

    previous_plan = None
    expert_plan = None
    if episode.plans is not None and episode.plan_frames is not None:
        pf = episode.plan_frames
        prev_row = row - PREVIOUS_PLAN_OFFSET_STEPS * TICKS_PER_POSE
        j = np.searchsorted(pf, rec.frames[prev_row])
        if j < len(pf) and pf[j] == rec.frames[prev_row]:
            start = np.array([[a.x[prev_row, 0], a.y[prev_row, 0], a.yaw[prev_row, 0]]])
            previous_plan = np.concatenate([start, episode.plans[j]], axis=0)
        j = np.searchsorted(pf, rec.frames[row])
        if j < len(pf) and pf[j] == rec.frames[row]:
            expert_plan = episode.plans[j].copy()

    scene = Scene(
        town_name=town.name,
        ego_pose=ego_pose,
        ego_speed_mps=float(a.speed[row, 0]),
        ego_accel_mps2=float(a.accel[row, 0]),
        ego_yaw_rate_radps=float(a.yaw_rate[row, 0]),
        ego_past=ego_past,
        agent_boxes=np.ascontiguousarray(boxes),
        agent_kind=a.kind[row, slots].astype(np.int64),
        agent_valid=valid,
        agent_speed_mps=speed,
        light_lanes=sig.light_lanes[lights],
        light_lanes_valid=sig.light_lanes_valid[lights],
        light_state=light_state,
        route_xy=np.ascontiguousarray(route_xy),
        route_lanes=expand_route_lanes(town.lanes, np.unique(planned.lane)),
        previous_plan=previous_plan,
        ego_length_m=float(a.length[row, 0]),
        ego_width_m=float(a.width[row, 0]),
        ego_wheelbase_m=wb,
    )
    future = np.column_stack([a.x[fut[1:], 0], a.y[fut[1:], 0], a.yaw[fut[1:], 0]])
    s_type, s_name, s_trig, s_ids = (
        episode.scenarios.at(int(rec.frames[row]))
        if episode.scenarios is not None
        else ("", "", False, np.zeros(0, np.int64))
    )
    return SceneRecord(
        scene_id=f"{episode.route_id}-{int(rec.frames[row]):06d}",
        route_id=episode.route_id,
        frame=int(rec.frames[row]),
        time_s=float(rec.time_s[row]),
        scene=scene,
        agent_ids=ids.astype(np.int64),
        command=route_command(planned, k),
        route_lane_seq=lane_seq.astype(np.int64),
        expert_future=future,
        expert_plan=expert_plan,
        scenario_type=s_type,
        scenario_name=s_name,
        scenario_triggered=s_trig,
        scenario_agent=np.isin(ids, s_ids),
    )


def light_indices(town: Town, ego_pose: Float) -> NDArray[np.int64]:
    """Indices of the town's lights that a scene at ``ego_pose`` keeps (same rule as
    :func:`extract_scene`)."""
    sig = town.signals
    if not sig.lights_count:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.hypot(*(sig.light_xy - ego_pose[:2]).T) < LIGHT_RADIUS_M)
