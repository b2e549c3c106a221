"""Reactive check of teachers (issue item 6): re-simulate each teacher closed loop in the embedded
simulator with reactive traffic and flag which stay collision-free.

Scoring (NAVSIM) replays the other agents' recorded futures; a teacher that brakes hard may then
be "rear-ended" by a recorded car that in reality would have braked too, and a teacher that
pulls in front of a car is not hit only because the car's recording ignores it. Here the scene's
state at t = 0 is rebuilt in an :class:`EmbeddedSimulator` episode started at the scene's frame
(so the lights are the recorded ones): the ego at its pose, speed and acceleration; every other
vehicle that lies on a lane (within LANE_SNAP_M of a centreline, heading within
LANE_HEADING_TOL_RAD) as REACTIVE background traffic (IDM, lights, junction rules, braking for the
ego) at its recorded speed, planned along the lanes its recording drove; pedestrians, bicycles,
statics and off-lane vehicles as scenario actors following their recorded 4 s paths at their
recorded mean speed (not reacting). The ego then tracks the teacher with the pure-pursuit + PID
tracker for 4 s at 20 Hz and the teacher is flagged collision-free when no collision event
involves it. As in NAVSIM's NC, actors already overlapping the ego at t = 0 are ignored; unlike
NC, every contact counts (no at-fault analysis): a teacher must not be hit either.

The simulator steps one world per teacher (the traffic reacts to that teacher's ego), so the
work is K episodes x 80 ticks through the runner's episode loop (the scene's actors are placed
by a world hook through the backend protocol, so any backend can re-simulate); the scene set-up
(lane projections, lane plans) is computed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.boxes import boxes_overlap, make_boxes
from harness.dynamics.tracking import (
    PIDState,
    PlannedTrajectory,
    PurePursuitPID,
    PurePursuitPIDConfig,
)
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.maps import load_town
from harness.maps.town import Town
from harness.runner.backends import BackendSpec, make_backend
from harness.runner.episode import (
    DriverOutput,
    SensorData,
    after_ticks,
    any_of,
    ego_collided,
    run_episode,
)
from harness.world.backend import (
    ActorCommand,
    ActorSpec,
    EpisodeSpec,
    SimulatorBackend,
    TrafficConfig,
    TrafficVehicleSpec,
)
from harness.world.control import VehicleControl
from harness.world.state import ActorKind, WorldState
from harness.world.timing import HORIZON_S, HORIZON_STEPS, POSE_DT_S, SIM_DT_S
from teachers.episode_scenes import SceneRecord
from teachers.scene import Scene

LANE_SNAP_M = 2.0  # vehicles this close to a lane centreline become reactive traffic [m]
LANE_HEADING_TOL_RAD = 0.6  # and heading this close to the lane's [rad]
MIN_SCRIPTED_SPEED_MPS = 0.2  # slower scripted actors hold position [m/s]
REACTIVE_KINDS = (ActorKind.VEHICLE, ActorKind.EMERGENCY)

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


@dataclass(frozen=True)
class ReactiveConfig:
    """Re-simulation settings: horizon [s], lane snapping tolerances, the ego tracker and the
    ego's vehicle parameters (the backend's light timings must be the recording's for the
    lights to match)."""

    horizon_s: float = HORIZON_S
    lane_snap_m: float = LANE_SNAP_M
    lane_heading_tol_rad: float = LANE_HEADING_TOL_RAD
    tracker: PurePursuitPIDConfig = field(default_factory=PurePursuitPIDConfig)
    vehicle: VehicleParams = LINCOLN_MKZ_2017  # the ego the backend simulates (tracker gains)
    seed: int = 0


@dataclass(frozen=True, eq=False)
class ReactiveSetup:
    """The scene's actors at t = 0, split once per scene: ``reactive`` rows of agents placed as
    traffic with their ``lane`` (R,), ``s_m`` (R,), ``speed_mps`` (R,), ``desired_mps`` (R,) and
    ``plans`` (lane sequences, -1 padded (R, P)); ``scripted`` rows following their recording;
    ``ignored`` rows overlapping the ego at t = 0."""

    reactive: NDArray[np.int64]
    lane: NDArray[np.int64]
    s_m: Float
    speed_mps: Float
    desired_mps: Float
    plans: NDArray[np.int64]
    scripted: NDArray[np.int64]
    ignored: NDArray[np.int64]


def _lane_plans(town: Town, lanes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Per agent, the ordered distinct lanes of its projected future (A, T) kept while each is a
    successor of the previous one (-1 padded, (A, T))."""
    out = np.full(lanes.shape, -1, dtype=np.int64)
    for i, row in enumerate(lanes):
        seq = [int(row[0])]
        for v in row[1:].tolist():
            if v == seq[-1] or v < 0:
                continue
            if v not in set(town.graph.successors(seq[-1])):
                break
            seq.append(v)
        out[i, : len(seq)] = seq
    return out


def reactive_setup(scene: Scene, town: Town, config: ReactiveConfig) -> ReactiveSetup:
    """Split the scene's agents into reactive traffic, scripted actors and ignored ones."""
    boxes, valid = scene.agent_boxes, scene.agent_valid
    if scene.num_agents == 0:
        none, empty = np.zeros(0, np.int64), np.zeros(0)
        return ReactiveSetup(
            none, none, empty, empty, empty, np.zeros((0, 1), np.int64), none, none
        )
    now = valid[:, 0]
    x, y, yaw = scene.ego_pose
    ego = make_boxes(x, y, yaw, scene.ego_length_m, scene.ego_width_m)
    overlap = now & boxes_overlap(ego[None], boxes[:, 0])
    kind = scene.agent_kind
    vehicle = np.isin(kind, [int(k) for k in REACTIVE_KINDS]) & now & ~overlap
    a, t = boxes.shape[:2]
    flat = boxes.reshape(-1, boxes.shape[-1])
    proj = town.lanes.project(flat[:, :2], flat[:, 2])
    lane = np.asarray(proj.lane).reshape(a, t)
    dist = np.abs(np.asarray(proj.lateral_m)).reshape(a, t)
    head = np.abs(np.asarray(proj.heading_error_rad)).reshape(a, t)
    on_lane = (dist[:, 0] <= config.lane_snap_m) & (head[:, 0] <= config.lane_heading_tol_rad)
    reactive = np.flatnonzero(vehicle & on_lane)
    scripted = np.flatnonzero(now & ~overlap & ~(vehicle & on_lane))
    fut_lane = np.where(valid & (dist <= config.lane_snap_m), lane, -1)[reactive]
    speed = scene.agent_speed_mps
    return ReactiveSetup(
        reactive=reactive.astype(np.int64),
        lane=lane[reactive, 0].astype(np.int64),
        s_m=np.asarray(proj.s_m).reshape(a, t)[reactive, 0],
        speed_mps=speed[reactive, 0],
        desired_mps=np.maximum(np.where(valid, speed, 0.0).max(axis=1)[reactive], 1.0),
        plans=_lane_plans(town, fut_lane),
        scripted=scripted.astype(np.int64),
        ignored=np.flatnonzero(overlap).astype(np.int64),
    )


class PlaceSceneActors:
    """World hook: after the reset, the scene's actors join the episode (reactive ones as
    background traffic following their recorded lanes, the others as scripted actors following
    their recorded paths); afterwards it leaves the world alone."""

    def __init__(self, backend: SimulatorBackend, scene: Scene, setup: ReactiveSetup) -> None:
        self.backend, self.scene, self.setup_ = backend, scene, setup

    def setup(self) -> None:
        scene, setup, backend = self.scene, self.setup_, self.backend
        for j, i in enumerate(setup.reactive.tolist()):
            plan = setup.plans[j][setup.plans[j] >= 0]
            box = scene.agent_boxes[i, 0]
            backend.spawn_traffic_vehicle(
                TrafficVehicleSpec(
                    lane=int(setup.lane[j]), s_m=float(setup.s_m[j]),
                    speed_mps=float(setup.speed_mps[j]),
                    desired_speed_mps=float(setup.desired_mps[j]),
                    length_m=float(box[3]), width_m=float(box[4]),
                    lane_plan=tuple(int(v) for v in plan),
                )
            )  # fmt: skip
        for i in setup.scripted.tolist():
            valid = scene.agent_valid[i]
            b = scene.agent_boxes[i]
            path = b[valid, :2]
            kind = ActorKind(int(scene.agent_kind[i]))
            aid = backend.spawn_actor(
                ActorSpec(kind, float(b[0, 0]), float(b[0, 1]), float(b[0, 2]), float(b[0, 3]),
                          float(b[0, 4]), speed=float(scene.agent_speed_mps[i, 0]))
            )  # fmt: skip
            travelled = float(np.hypot(*np.diff(path, axis=0).T).sum()) if len(path) > 1 else 0.0
            span_s = max(float(np.count_nonzero(valid) - 1) * POSE_DT_S, POSE_DT_S)
            mean_speed = travelled / span_s
            moving = mean_speed >= MIN_SCRIPTED_SPEED_MPS and len(path) > 1
            backend.command_actor(
                aid,
                ActorCommand(path if moving else np.zeros((0, 2)), mean_speed if moving else 0.0,
                             max_accel_mps2=10.0, max_decel_mps2=10.0),
            )  # fmt: skip

    def perturb(self, control: VehicleControl) -> VehicleControl:
        return control

    def tick(self, state: WorldState) -> None:
        pass


class TeacherTracker:
    """Driver: the pure-pursuit + PID tracker following a teacher's poses, ``k`` ticks after the
    scene start seeing the plan as it stands ``k x 0.05 s`` later."""

    uses_sensors = False

    def __init__(self, poses: Float, config: ReactiveConfig) -> None:
        self.poses = poses
        self.tracker = PurePursuitPID(config.tracker, config.vehicle)
        self.pid = PIDState()
        self.ticks = 0

    def step(self, state: WorldState, input_data: SensorData) -> DriverOutput:
        a = state.actors
        pose = np.array([a.x[0], a.y[0], a.yaw[0]])
        plan = _plan_from(self.poses, self.ticks * SIM_DT_S)
        self.ticks += 1
        return DriverOutput(self.tracker.control(self.pid, pose, float(a.speed[0]), plan, SIM_DT_S))


def _plan_from(poses: Float, elapsed_s: float) -> PlannedTrajectory:
    """The teacher's poses (40, 3) at 0.1 .. 4.0 s from the scene start, as a plan seen
    ``elapsed_s`` later (poses already passed are dropped; the last one is kept)."""
    times = POSE_DT_S * np.arange(1, len(poses) + 1)
    first = min(int(np.searchsorted(times, elapsed_s + 1e-9, side="right")), len(poses) - 1)
    return PlannedTrajectory(poses[first:], POSE_DT_S, float(times[first] - elapsed_s))


def simulate_teacher(
    backend: SimulatorBackend,
    scene: Scene,
    town: Town,
    setup: ReactiveSetup,
    poses: Float,
    start_frame: int,
    config: ReactiveConfig,
) -> bool:
    """Re-simulate one teacher (40, 3); True when the ego collides with nothing (see module)."""
    x, y, yaw = (float(v) for v in scene.ego_pose)
    spec = EpisodeSpec(
        town=town.name, ego_start=(x, y, 0.0, yaw),
        traffic=TrafficConfig(vehicles=0, pedestrians=0, seed=config.seed), seed=config.seed,
        ego_speed_mps=max(scene.ego_speed_mps, 0.0), ego_accel_mps2=scene.ego_accel_mps2,
        start_frame=start_frame,
    )  # fmt: skip
    ticks = int(round(config.horizon_s / SIM_DT_S))
    end = run_episode(
        backend, spec, TeacherTracker(poses, config), any_of(after_ticks(ticks), ego_collided),
        hooks=(PlaceSceneActors(backend, scene, setup),),
    )  # fmt: skip
    return not ego_collided(end.state, end.ticks)


def reactive_flags(
    record: SceneRecord | Scene,
    town: Town | str,
    teacher_poses: Float,
    config: ReactiveConfig | None = None,
    backend: SimulatorBackend | None = None,
) -> Bool:
    """(K,) True where teacher ``k`` of ``teacher_poses`` (K, 40, 3) (box centres, world frame,
    t = 0.1 .. 4.0 s) stays collision-free when re-simulated with reactive traffic. A bare
    :class:`Scene` (no recorded frame) starts at frame 0, so its lights follow the schedule at
    time 0 rather than the recording's. Pass the same ``backend`` to successive calls to reuse
    its per-town tables (default: a fresh embedded simulator)."""
    cfg = config or ReactiveConfig()
    tw = load_town(town) if isinstance(town, str) else town
    scene = record.scene if isinstance(record, SceneRecord) else record
    frame = record.frame if isinstance(record, SceneRecord) else 0
    poses = np.asarray(teacher_poses, dtype=np.float64).reshape(-1, HORIZON_STEPS, 3)
    out = np.ones(len(poses), dtype=bool)
    if not len(poses):
        return out
    setup = reactive_setup(scene, tw, cfg)
    sim = backend if backend is not None else make_backend(BackendSpec())
    for k in range(len(poses)):
        out[k] = simulate_teacher(sim, scene, tw, setup, poses[k], frame, cfg)
    if backend is None:
        sim.close()
    return out
