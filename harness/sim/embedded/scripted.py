"""Scenario actors of the embedded simulator: spawned and commanded by scenarios, they follow a
given path at a target speed with bounded acceleration. By default they do not yield (they exist
to create situations); an actor commanded with ``ignore_others=False`` keeps an IDM gap to
whatever lies on its path ahead: the other scenario actors (e.g. the vehicles of an actor flow)
and any ``obstacles`` the simulator passes to :meth:`ScriptedActors.step` (the ego and
background vehicles, when it does). Few per episode, so a small loop per tick is fine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.idm import IDMParams, idm_accel
from harness.errors import ConfigError
from harness.sim.embedded.contacts import WALKER_DOWN_HEIGHT_M
from harness.world.backend import ActorCommand, ActorSpec
from harness.world.state import ActorKind, ActorRole

GAP_LOOKAHEAD_M = 40.0  # [m] how far along its path a yielding actor looks for a leader
GAP_CORRIDOR_M = 1.5  # [m] a box centre this close to the path ahead blocks it
GAP_IDM = IDMParams(a_max_mps2=2.0, b_comf_mps2=3.0, s0_m=2.5, headway_s=1.0)

FIELDS = (
    "actor_id",
    "kind",
    "role",
    "x",
    "y",
    "z",
    "yaw",
    "speed",
    "accel",
    "yaw_rate",
    "length",
    "width",
    "height",
)


@dataclass
class _Actor:
    """Mutable state of one scenario actor; ``s_m`` is the progress along the command path."""

    actor_id: int
    spec: ActorSpec
    x: float
    y: float
    yaw: float
    speed: float
    accel: float = 0.0
    yaw_rate: float = 0.0
    command: ActorCommand | None = None
    path_s: NDArray[np.float64] | None = None  # (M,) cumulative arc length of the command path
    s_m: float = 0.0
    hold_s: float = 0.0  # [s] still to stand after a collision with the ego
    down: bool = False  # a walker knocked down by the ego: lies still for good

    @property
    def height(self) -> float:
        return WALKER_DOWN_HEIGHT_M if self.down else self.spec.height


class ScriptedActors:
    """The scenario actors of one episode, keyed by id in spawn order."""

    def __init__(self, first_id: int) -> None:
        self._next_id = first_id
        self._actors: dict[int, _Actor] = {}

    def spawn(self, spec: ActorSpec) -> int:
        if not all(np.isfinite([spec.x, spec.y, spec.yaw, spec.length, spec.width])):
            raise ConfigError(f"scenario actor spec has non-finite values: {spec}")
        aid = self._next_id
        self._next_id += 1
        self._actors[aid] = _Actor(aid, spec, spec.x, spec.y, spec.yaw, spec.speed)
        return aid

    def command(self, actor_id: int, command: ActorCommand) -> None:
        a = self._get(actor_id)
        path = np.asarray(command.path_xy, dtype=np.float64).reshape(-1, 2)
        a.command = command
        if path.shape[0] >= 2:
            seg = np.hypot(*np.diff(path, axis=0).T)
            a.path_s = np.concatenate([[0.0], np.cumsum(seg)])
            # start from the path point nearest to where the actor is now
            d = np.hypot(path[:, 0] - a.x, path[:, 1] - a.y)
            a.s_m = float(a.path_s[int(np.argmin(d))])
        else:
            a.path_s = None

    def destroy(self, actor_id: int) -> None:
        self._get(actor_id)
        del self._actors[actor_id]

    def step(
        self,
        dt_s: float,
        obstacles: NDArray[np.float64] | None = None,
        obstacle_speed: NDArray[np.float64] | None = None,
    ) -> None:
        """Advance every actor along its command path toward its target speed; actors commanded
        with ``ignore_others=False`` keep an IDM gap to the other scenario actors and to
        ``obstacles`` (K, 5) [x, y, yaw, length, width] moving at ``obstacle_speed`` (K,)."""
        leaders = self._leader_gaps(obstacles, obstacle_speed)
        for a in self._actors.values():
            c = a.command
            if c is None or a.down:
                continue
            if a.hold_s > 0.0:  # held after a collision: stands still
                a.hold_s = max(a.hold_s - dt_s, 0.0)
                a.speed, a.accel, a.yaw_rate = 0.0, 0.0, 0.0
                continue
            target = c.target_speed_mps if a.path_s is not None else 0.0
            if a.path_s is not None and a.s_m >= a.path_s[-1] - 1e-6:
                target = 0.0
            dv = np.clip(target - a.speed, -c.max_decel_mps2 * dt_s, c.max_accel_mps2 * dt_s)
            if a.actor_id in leaders and target > 0.0:
                gap, v_lead = leaders[a.actor_id]
                acc = float(idm_accel(a.speed, target, gap, a.speed - v_lead, GAP_IDM))
                dv = min(float(dv), float(np.clip(acc, -c.max_decel_mps2, c.max_accel_mps2)) * dt_s)
            v_new = max(a.speed + float(dv), 0.0)
            a.accel = (v_new - a.speed) / dt_s
            ds = 0.5 * (a.speed + v_new) * dt_s
            a.speed = v_new
            if a.path_s is None or ds <= 0.0:
                a.yaw_rate = 0.0
                continue
            path = np.asarray(c.path_xy, dtype=np.float64).reshape(-1, 2)
            a.s_m = min(a.s_m + ds, float(a.path_s[-1]))
            i = int(np.clip(np.searchsorted(a.path_s, a.s_m, side="right") - 1, 0, len(path) - 2))
            seg = a.path_s[i + 1] - a.path_s[i]
            u = 0.0 if seg <= 0.0 else (a.s_m - a.path_s[i]) / seg
            a.x, a.y = (path[i] + u * (path[i + 1] - path[i])).tolist()
            new_yaw = float(np.arctan2(*(path[i + 1] - path[i])[::-1]))
            a.yaw_rate = float((new_yaw - a.yaw + np.pi) % (2 * np.pi) - np.pi) / dt_s
            a.yaw = new_yaw

    def hit(self, actor_id: int, hold_s: float) -> None:
        """A collision with the ego: a walker falls and lies still for good; anything else stops
        at once and stands for hold_s [s] before its command resumes."""
        a = self._get(actor_id)
        a.speed, a.accel, a.yaw_rate = 0.0, 0.0, 0.0
        if a.spec.kind == ActorKind.PEDESTRIAN:
            a.down = True
        else:
            a.hold_s = max(a.hold_s, hold_s)

    def place(self, actor_id: int, x: float, y: float, yaw: float, back_m: float = 0.0) -> None:
        """Put an actor at (x, y, yaw) [m, rad], its path progress back_m [m] earlier (undoing a
        step into the ego, or where a hit walker falls)."""
        a = self._get(actor_id)
        a.x, a.y, a.yaw = x, y, yaw
        a.s_m = max(a.s_m - back_m, 0.0)

    def _leader_gaps(
        self, obstacles: NDArray[np.float64] | None, obstacle_speed: NDArray[np.float64] | None
    ) -> dict[int, tuple[float, float]]:
        """For each yielding actor: (bumper gap [m], leader speed [m/s]) of the nearest box on
        its path ahead within GAP_LOOKAHEAD_M."""
        yielding = [
            a for a in self._actors.values()
            if a.command is not None and not a.command.ignore_others and a.path_s is not None
        ]  # fmt: skip
        if not yielding:
            return {}
        own = self.boxes()
        ids = np.array(list(self._actors), dtype=np.int64)
        speeds = self.speed()
        if obstacles is not None and len(obstacles):
            own = np.concatenate([own, np.asarray(obstacles, dtype=np.float64).reshape(-1, 5)])
            ob_v = np.zeros(len(obstacles)) if obstacle_speed is None else obstacle_speed
            speeds = np.concatenate([speeds, np.asarray(ob_v, dtype=np.float64)])
            ids = np.concatenate([ids, np.full(len(obstacles), -1, dtype=np.int64)])
        out: dict[int, tuple[float, float]] = {}
        for a in yielding:
            assert a.command is not None and a.path_s is not None
            path = np.asarray(a.command.path_xy, dtype=np.float64).reshape(-1, 2)
            ahead = (a.path_s > a.s_m) & (a.path_s < a.s_m + GAP_LOOKAHEAD_M)
            if not ahead.any():
                continue
            pts, ps = path[ahead], a.path_s[ahead]
            others = ids != a.actor_id
            if not others.any():
                continue
            d = np.hypot(
                own[others, 0][:, None] - pts[None, :, 0], own[others, 1][:, None] - pts[None, :, 1]
            )  # (K, P)
            k_best, p_best = np.unravel_index(
                np.argmin(np.where(d < GAP_CORRIDOR_M, ps[None, :], np.inf)), d.shape
            )
            if d[k_best, p_best] >= GAP_CORRIDOR_M:
                continue
            lead_len = own[others, 3][k_best]
            gap = float(ps[p_best] - a.s_m - 0.5 * (a.spec.length + lead_len))
            out[a.actor_id] = (max(gap, 0.0), float(speeds[others][k_best]))
        return out

    def boxes(self) -> NDArray[np.float64]:
        """(K, 5) [x, y, yaw, length, width]."""
        if not self._actors:
            return np.zeros((0, 5))
        return np.array(
            [[a.x, a.y, a.yaw, a.spec.length, a.spec.width] for a in self._actors.values()]
        )

    def speed(self) -> NDArray[np.float64]:
        return np.array([a.speed for a in self._actors.values()], dtype=np.float64)

    def arrays(self) -> dict[str, NDArray[np.float64]]:
        """Per-field (K,) arrays in spawn order, named as ActorArrays' fields."""
        rows = [
            (a.actor_id, int(a.spec.kind), int(ActorRole.SCENARIO), a.x, a.y, a.spec.z, a.yaw, a.speed,
             a.accel, a.yaw_rate, a.spec.length, a.spec.width, a.height)
            for a in self._actors.values()
        ]  # fmt: skip
        table = np.array(rows, dtype=np.float64).reshape(-1, len(FIELDS))
        return {name: table[:, k] for k, name in enumerate(FIELDS)}

    def _get(self, actor_id: int) -> _Actor:
        try:
            return self._actors[actor_id]
        except KeyError:
            raise ConfigError(f"no scenario actor with id {actor_id}") from None
