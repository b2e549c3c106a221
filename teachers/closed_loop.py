"""Closed-loop PDMS / EPDMS of ``harness eval``: the per-route observer and its factory, which the
eval command puts in ``RunConfig.route_observers`` (the runner's extension point,
:mod:`harness.runner.extensions`).

While the route runs, :class:`ClosedLoopObserver` only copies arrays: the world every 0.1 s (every
second tick) and the agent's plan at every planning step (every 0.5 s). At the end of the route
it scores every step in hindsight (:func:`teachers.hindsight.score_episode`), writes
``OUT/closed_loop/<save_name>.parquet`` (format: :mod:`harness.runner.closed_loop`) and returns
the route's means.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.runner.closed_loop import (
    CLOSED_LOOP,
    SCORE_COLUMNS,
    SOURCE_AGENT,
    SOURCE_EXECUTED,
    read_route_means,
    step_scores_path,
    write_step_scores,
)
from harness.runner.episode import Tick
from harness.runner.extensions import RouteContext
from harness.world.state import EGO_INDEX, ActorArrays, WorldState
from harness.world.timing import (
    HORIZON_STEPS,
    PLANNER_DT_S,
    PLANNER_POSES,
    SIM_DT_S,
    TICKS_PER_POSE,
    planner_to_score_poses,
)
from teachers.hindsight import HindsightLog, score_episode
from teachers.scoring import Metric

TICKS_PER_STEP = int(round(PLANNER_DT_S / SIM_DT_S))  # simulator ticks between planning steps
_ACTOR_FIELDS = tuple(f.name for f in fields(ActorArrays))

Float = NDArray[np.float64]


def score_poses(plan: Float | None, origin: Float) -> Float | None:
    """An agent's plan as the scorer's (40, 3) poses at 0.1 s: the first 40 of a plan at 0.1 s,
    or a NAVSIM-style 8-pose plan at 0.5 s interpolated from ``origin`` (the ego pose it was made
    at); None for no plan or any other length (the step is then scored on the executed path)."""
    if plan is None:
        return None
    if plan.shape[0] >= HORIZON_STEPS:
        return np.array(plan[:HORIZON_STEPS], dtype=np.float64)
    if plan.shape[0] == PLANNER_POSES:
        return planner_to_score_poses(plan, origin)
    return None


class HindsightBuffer:
    """Appends the 0.1 s rows and the per-step plans of an episode (array copies only)."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.times: list[float] = []
        self.actors: dict[str, list[NDArray[np.generic]]] = {k: [] for k in _ACTOR_FIELDS}
        self.lights: list[NDArray[np.int8]] = []
        self.plans: list[Float | None] = []

    def __len__(self) -> int:
        return len(self.frames)

    def add_state(self, state: WorldState) -> None:
        """One 0.1 s row."""
        self.frames.append(int(state.frame))
        self.times.append(float(state.time_s))
        a = state.actors
        for k in _ACTOR_FIELDS:
            self.actors[k].append(getattr(a, k).copy())
        self.lights.append(np.asarray(state.light_state, dtype=np.int8).copy())

    def add_plan(self, plan: Float | None, made_at: WorldState) -> None:
        """The plan of one planning step, made at state ``made_at``."""
        a = made_at.actors
        origin = np.array([a.x[EGO_INDEX], a.y[EGO_INDEX], a.yaw[EGO_INDEX]])
        self.plans.append(score_poses(plan, origin))

    def log(self) -> HindsightLog:
        """The rows and plans as a :class:`HindsightLog` (actor capacity padded to the largest
        seen, padding rows invalid)."""
        n = max(len(v) for v in self.actors["valid"])
        pad = ActorArrays.empty(n)

        def stack(k: str) -> Any:
            filler = getattr(pad, k)
            return np.stack([np.concatenate([v, filler[len(v) :]]) for v in self.actors[k]])

        actors = ActorArrays(**{k: stack(k) for k in _ACTOR_FIELDS})
        plans = np.zeros((len(self.plans), HORIZON_STEPS, 3))
        has = np.array([p is not None for p in self.plans], dtype=bool)
        for i, p in enumerate(self.plans):
            if p is not None:
                plans[i] = p
        return HindsightLog(
            frame=np.asarray(self.frames, np.int64),
            time_s=np.asarray(self.times, np.float64),
            actors=actors,
            light_state=np.stack(self.lights),
            plans=plans,
            has_plan=has,
        )


class ClosedLoopObserver:
    """Collects one route's hindsight log and scores it at :meth:`finish`."""

    name = CLOSED_LOOP

    def __init__(self, context: RouteContext) -> None:
        self.context = context
        self.buffer = HindsightBuffer()
        self._ticks = 0

    def on_start(self, state: WorldState) -> None:
        self.buffer.add_state(state)

    def on_tick(self, tick: Tick) -> None:
        n = self._ticks  # the tick started from state n (0 = the reset state)
        self._ticks += 1
        if n % TICKS_PER_STEP == 0:
            self.buffer.add_plan(tick.plan, tick.before)
        if self._ticks % TICKS_PER_POSE == 0:
            self.buffer.add_state(tick.state)

    def finish(self) -> dict[str, float] | None:
        """Score, write ``OUT/closed_loop/<save_name>.parquet`` and return the route's means
        (None when the route never ticked: then no file, and an earlier run's is removed)."""
        ctx = self.context
        path = step_scores_path(ctx.out_dir, ctx.save_name)
        if self._ticks == 0 or not self.buffer.plans:
            path.unlink(missing_ok=True)  # no stale file of an earlier run in the same OUT
            return None
        scores = score_episode(self.buffer.log(), ctx.town, ctx.planned)
        columns = {m.name.lower(): scores.values[m] for m in Metric}
        write_step_scores(
            path,
            scores.frame,
            scores.time_s,
            {c: columns[c] for c in SCORE_COLUMNS},
            scores.progress_m,
            [SOURCE_AGENT if p else SOURCE_EXECUTED for p in scores.from_plan.tolist()],
            {"route_id": ctx.route.id, "town": ctx.route.town},
        )
        return read_route_means(path)


@dataclass(frozen=True)
class ClosedLoopScoring:
    """The factory ``harness eval`` puts in ``RunConfig.route_observers`` (picklable)."""

    def __call__(self, context: RouteContext) -> ClosedLoopObserver:
        return ClosedLoopObserver(context)
