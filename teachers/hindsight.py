"""Closed-loop PDMS / EPDMS of an episode's planning steps, scored in hindsight (NAVSIM's
non-reactive setting: every other actor follows what it really did next).

An episode is kept as a :class:`HindsightLog`: the world on the 0.1 s grid of the scorer (every
second simulator tick, row 0 = the reset state) and, at every planning step (every
PLANNER_DT_S = 0.5 s, rows 0, 5, 10, ...), the agent's planned trajectory when it exposed one.
A step at row r is scored when the log holds its full 4 s of hindsight (rows r .. r + 40); the
last 4 s of an episode are not scored (no truncated horizons: every step is scored over the
same 4 s, as every NAVSIM scene is).

Per step, the scored trajectory is the agent's plan (tracked by the scorer's LQR + bicycle from
the ego's real state, as NAVSIM simulates a submission) or, for an agent exposing none, the
ego's executed next 4 s (scored as given). The scene: the ego's real state and past 1.5 s (the
reset state repeated before the episode started), the other actors within AGENT_RADIUS_M
followed by actor id over rows r .. r + 40, the on-route lights near the ego with their real
states, and the route around the ego. EC compares with the previous step's scored trajectory
(0.5 s earlier, NAVSIM's two-frame rule); EP pairs the trajectory with the ego's executed next
4 s as the reference (NAVSIM pairs a submission with PDM-Closed), so a plan that progresses as
far as the ego really went gets EP = 1, and a controls-only agent always gets EP = 1.

Speed: the steps are scored at the end of the episode, each through the scorer's public
``score_states`` (vectorised over trajectories x time x agents); steps whose ego states fit in
one CHUNK_SPAN_M square share map rasters (the raster window snaps to a world grid, so a shared
raster answers exactly as a per-step one): one set for all steps without a red on-route light in
their horizon, and one per distinct red-light timeline (the rasters carry the red lights' masks
and states), so a wait at a red light costs one raster set, not one per step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import NUM_POSES
from harness.dynamics.vehicle import LINCOLN_MKZ_2017
from harness.maps.town import Town
from harness.routes.interpolate import PlannedRoute
from harness.world.state import ActorArrays, LightState
from harness.world.timing import HORIZON_STEPS, PLANNER_DT_S, POSE_DT_S
from teachers.episode_scenes import (
    ROUTE_AHEAD_M,
    ROUTE_BEHIND_M,
    agent_futures,
    ego_past_states,
    light_indices,
    route_index,
)
from teachers.rollout import rollout_candidates
from teachers.scene import PAST_POSES, Scene
from teachers.scoring import Metric, score_states
from teachers.scoring.aggregate import NUM_METRICS, state_bounds, with_aggregates
from teachers.scoring.rasters import SceneRasters, expand_route_lanes
from teachers.selection import pairwise_progress, safe_mask

ROWS_PER_STEP = int(round(PLANNER_DT_S / POSE_DT_S))  # 0.1 s rows between planning steps [-]
CHUNK_SPAN_M = 100.0  # steps share map rasters while their ego states fit a square this wide [m]

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class HindsightLog:
    """An episode on the scorer's 0.1 s grid. Rows R: ``frame`` (R,) simulator frames,
    ``time_s`` (R,) [s], ``actors`` an :class:`ActorArrays` whose fields are (R, N) (ego in
    column 0), ``light_state`` (R, T) LightState. Planning steps S (step s at row
    ROWS_PER_STEP * s): ``plans`` (S, 40, 3) [x, y, yaw] world-frame box-centre poses at
    t = 0.1 .. 4.0 s after the step, meaningful where ``has_plan`` (S,)."""

    frame: NDArray[np.int64]
    time_s: Float
    actors: ActorArrays
    light_state: NDArray[np.int8]
    plans: Float
    has_plan: Bool

    def __post_init__(self) -> None:
        r = self.frame.shape[0]
        if self.time_s.shape != (r,) or self.actors.valid.ndim != 2 or self.actors.n != r:
            raise ValueError("HindsightLog rows disagree between frame, time_s and actors")
        if self.light_state.ndim != 2 or self.light_state.shape[0] != r:
            raise ValueError(f"HindsightLog.light_state must be (R={r}, T)")
        s = self.has_plan.shape[0]
        if self.plans.shape != (s, HORIZON_STEPS, 3):
            raise ValueError(f"HindsightLog.plans must be (S={s}, {HORIZON_STEPS}, 3)")

    @property
    def num_rows(self) -> int:
        """R."""
        return int(self.frame.shape[0])

    def scorable_steps(self) -> NDArray[np.int64]:
        """Planning steps with a full 4 s of hindsight logged."""
        last = (self.num_rows - 1 - HORIZON_STEPS) // ROWS_PER_STEP
        return np.arange(min(last + 1, self.has_plan.shape[0]), dtype=np.int64)

    def executed(self, row: int) -> Float:
        """The ego's executed poses (40, 3) at rows row + 1 .. row + 40."""
        a, rows = self.actors, row + 1 + np.arange(HORIZON_STEPS)
        return np.column_stack([a.x[rows, 0], a.y[rows, 0], a.yaw[rows, 0]])


@dataclass(frozen=True, eq=False)
class StepScores:
    """Scores of an episode's scored steps (S'): ``step`` (S',) planning-step indices,
    ``frame`` / ``time_s`` of their rows, ``values`` (NUM_METRICS, S') by :class:`Metric`,
    ``progress_m`` (S',) [m] and ``from_plan`` (S',) whether the agent's plan was scored."""

    step: NDArray[np.int64]
    frame: NDArray[np.int64]
    time_s: Float
    values: Float
    progress_m: Float
    from_plan: Bool

    def __len__(self) -> int:
        return int(self.step.shape[0])


@dataclass(frozen=True, eq=False)
class RouteFrame:
    """Per-route constants of the scenes: on-route lanes, which lights control an on-route
    connector, and the dense route."""

    route_lanes: NDArray[np.int64]
    light_on_route: Bool
    planned: PlannedRoute


def route_frame(town: Town, planned: PlannedRoute) -> RouteFrame:
    """The per-route constants of the scenes of a drive along ``planned`` in ``town``."""
    route_lanes = expand_route_lanes(town.lanes, np.unique(planned.lane))
    sig = town.signals
    on_route = np.array(
        [np.isin(sig.light_lanes[i][sig.light_lanes_valid[i]], route_lanes).any()
         for i in range(sig.lights_count)], dtype=bool,
    )  # fmt: skip
    return RouteFrame(route_lanes, on_route.reshape(sig.lights_count), planned)


def _route_window(frame: RouteFrame, poses: Float) -> Float:
    """The route centerline from ROUTE_BEHIND_M behind the first to ROUTE_AHEAD_M ahead of the
    last of the ego poses (P, 3) of a chunk (the same cut as the teachers' scenes)."""
    p = frame.planned
    s0 = p.s_m[[route_index(p, pose) for pose in poses]]
    keep = (p.s_m >= s0.min() - ROUTE_BEHIND_M) & (p.s_m <= s0.max() + ROUTE_AHEAD_M)
    xy = p.xy[keep]
    if len(xy) < 2:
        k = int(np.argmin(np.abs(p.s_m - s0.min())))
        xy = p.xy[max(0, k - 1) : k + 2]
    return np.ascontiguousarray(xy)


def step_scene(
    log: HindsightLog,
    row: int,
    town: Town,
    frame: RouteFrame,
    route_xy: Float,
    previous_plan: Float | None,
) -> Scene:
    """The scoring scene at ``row`` (see module docstring); ``previous_plan`` (41, 3) poses
    from t - 0.5 s or None."""
    a = log.actors
    fut = row + np.arange(NUM_POSES)
    past = np.maximum(row - np.arange(PAST_POSES)[::-1], 0)
    ego_pose = np.array([a.x[row, 0], a.y[row, 0], a.yaw[row, 0]])
    ego_past = ego_past_states(a, past)
    wb = LINCOLN_MKZ_2017.wheelbase_m
    slots, boxes, valid, speed = agent_futures(a, row, fut, ego_pose)

    sig = town.signals
    lights = light_indices(town, ego_pose)
    lights = lights[frame.light_on_route[lights]] if lights.size else lights
    return Scene(
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
        light_state=log.light_state[fut][:, lights].T.astype(np.int64),
        route_xy=route_xy,
        route_lanes=frame.route_lanes,
        previous_plan=previous_plan,
        ego_length_m=float(a.length[row, 0]),
        ego_width_m=float(a.width[row, 0]),
        ego_wheelbase_m=wb,
    )


def _chunks(extents: Float) -> list[NDArray[np.int64]]:
    """Consecutive runs of steps whose (xmin, ymin, xmax, ymax) ``extents`` (S, 4) [m] fit one
    CHUNK_SPAN_M square together."""
    out: list[NDArray[np.int64]] = []
    start = 0
    lo, hi = extents[0, :2].copy(), extents[0, 2:].copy()
    for i in range(1, len(extents)):
        nlo, nhi = np.minimum(lo, extents[i, :2]), np.maximum(hi, extents[i, 2:])
        if (nhi - nlo).max() > CHUNK_SPAN_M:
            out.append(np.arange(start, i))
            start, nlo, nhi = i, extents[i, :2].copy(), extents[i, 2:].copy()
        lo, hi = nlo, nhi
    out.append(np.arange(start, len(extents)))
    return out


def _red_lights(scene: Scene) -> tuple[Scene, bytes]:
    """The scene with only its lights that are red at some step of the horizon (the only ones
    the map rasters hold), and a key equal for scenes whose rasters over one window are the
    same: steps of a chunk with equal keys share one raster set (all the steps without a red
    light, every step of a wait at a red light that stays red over the horizon)."""
    red = (scene.light_state == LightState.RED).any(axis=1)
    kept = replace(
        scene,
        light_lanes=scene.light_lanes[red],
        light_lanes_valid=scene.light_lanes_valid[red],
        light_state=scene.light_state[red],
    )
    key = b"".join(
        np.ascontiguousarray(a).tobytes()
        for a in (kept.light_lanes, kept.light_lanes_valid, kept.light_state)
    )
    return kept, key


def score_episode(log: HindsightLog, town: Town, planned: PlannedRoute) -> StepScores:
    """Score every planning step of ``log`` that has a full 4 s of hindsight (module
    docstring); ``planned`` is the dense route the episode drove."""
    steps = log.scorable_steps()
    values = np.zeros((NUM_METRICS, len(steps)))
    progress = np.zeros(len(steps))
    from_plan = log.has_plan[steps].copy()
    rows = steps * ROWS_PER_STEP
    if len(steps):
        frame = route_frame(town, planned)
        executed = np.stack([log.executed(int(r)) for r in rows])
        scored = np.where(from_plan[:, None, None], log.plans[steps], executed)
        ego = np.column_stack(
            [log.actors.x[rows, 0], log.actors.y[rows, 0], log.actors.yaw[rows, 0]]
        )
        both = np.concatenate([scored, executed, ego[:, None]], axis=1)  # (S', 81, 3)
        ext = np.column_stack([both[..., 0].min(1), both[..., 1].min(1),
                               both[..., 0].max(1), both[..., 1].max(1)])  # fmt: skip
        for chunk in _chunks(ext):
            _score_chunk(
                log, town, frame, chunk, rows, scored, executed, from_plan, values, progress
            )
    return StepScores(
        step=steps,
        frame=log.frame[rows],
        time_s=log.time_s[rows],
        values=values,
        progress_m=progress,
        from_plan=from_plan,
    )


def _score_chunk(  # noqa: PLR0913
    log: HindsightLog,
    town: Town,
    frame: RouteFrame,
    chunk: NDArray[np.int64],
    rows: NDArray[np.int64],
    scored: Float,
    executed: Float,
    from_plan: Bool,
    values: Float,
    progress: Float,
) -> None:
    """Score the steps ``chunk`` (indices into rows / scored / executed) into ``values`` and
    ``progress`` with one shared raster set where the steps allow it."""
    a = log.actors
    ego = np.column_stack([a.x[rows[chunk], 0], a.y[rows[chunk], 0], a.yaw[rows[chunk], 0]])
    route_xy = _route_window(frame, ego)
    scenes: list[Scene] = []
    states: list[Float] = []
    for i in chunk.tolist():
        r = int(rows[i])
        prev = None
        if i > 0:  # the previous step's scored trajectory, from its own start pose
            start = np.array([[a.x[r - ROWS_PER_STEP, 0], a.y[r - ROWS_PER_STEP, 0],
                               a.yaw[r - ROWS_PER_STEP, 0]]])  # fmt: skip
            prev = np.concatenate([start, scored[i - 1]], axis=0)
        scene = step_scene(log, r, town, frame, route_xy, prev)
        st = rollout_candidates(scene, scored[i][None], rollout=bool(from_plan[i]))
        if from_plan[i]:  # the executed future rides along as EP's reference
            ref = rollout_candidates(scene, executed[i][None], rollout=False)
            st = np.concatenate([st, ref], axis=0)
        scenes.append(scene)
        states.append(np.ascontiguousarray(st))
    bounds = np.array([state_bounds(s) for s in states])
    red = [_red_lights(scene) for scene in scenes]
    groups: dict[bytes, list[int]] = {}
    for j, (_, key) in enumerate(red):
        groups.setdefault(key, []).append(j)
    rasters: dict[bytes, SceneRasters | None] = {}
    for key, members in groups.items():  # a step alone builds its own (smaller) window
        b = bounds[members]
        window = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        shared = len(members) > 1
        rasters[key] = SceneRasters.build(red[members[0]][0], town, window) if shared else None
    for j, (i, scene, st) in enumerate(zip(chunk.tolist(), scenes, states, strict=True)):
        m = score_states(scene, town, st, rasters=rasters[red[j][1]])
        v = m.values.copy()
        safe = safe_mask(v)
        reference_m = float(m.progress_m[-1]) if safe[-1] else 0.0
        v[Metric.EP] = pairwise_progress(m.progress_m, safe, reference_m)
        values[:, i] = with_aggregates(v)[:, 0]
        progress[i] = m.progress_m[0]
