"""``PlannerRuntime``: the planner as the agent runs it. Keeps the 0.5 s frame buffer, builds the
11-value ego status from the route target and the ego readings, plans at 10 Hz, applies
momentum-aware selection and returns the chosen (8, 3) plan, all proposals and their scores.

Frames: the leaderboard camera's BGRA (H, W, 4) uint8 images are kept as RGB float tensors; the
frame paired with the current one is the newest frame at least ``FRAME_PERIOD_S`` old (the oldest
one held, i.e. the current frame itself, during the first 0.5 s of a route).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from numpy.typing import NDArray

from drivejepa.camera import FRAME_PERIOD_S, CameraSetup
from drivejepa.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from drivejepa.planner.model import ScoreColumn
from drivejepa.planner.selection import MomentumSelector
from drivejepa.status import TURN_HEADING_RAD, RouteTarget, ego_status
from harness.dynamics.tracking import path_station
from harness.errors import ConfigError
from harness.geometry import to_world, wrap_angle
from harness.planning.paths import HIGHWAY_CRUISE_MPS
from harness.planning.proposals import YELLOW_DECEL_MPS2
from harness.world.timing import HORIZON_STEPS, PLANNER_DT_S, POSE_DT_S, planner_to_score_poses

PLAN_PERIOD_S = 0.1  # [s] the planner runs at 10 Hz (every 2nd tick of the 20 Hz leaderboard)
DEFAULT_LAMBDA = 0.1  # [-] momentum weight of the inconsistency against the predicted score
# [m/s] the tracker never targets more than the fastest the data's driver (the expert) cruises
DEFAULT_MAX_SPEED_MPS = HIGHWAY_CRUISE_MPS
TIME_EPS_S = 1e-6  # [s] tolerance of the clock comparisons
# [m/s2] braking the tracker may assume to honour a plan's later, slower part when the agent
# config turns the envelope on (``envelope_decel_mps2``; off by default, MODEL_CARD.md): the
# deceleration the expert stops with for a yellow light (harness.planning.proposals)
ENVELOPE_DECEL_MPS2 = YELLOW_DECEL_MPS2
# [s] the agent tracks the plan's mean speed over its first 2 s (``speed_window_s``): on the val
# split the mean over 2 s of the proposal it picks is within 0.5-2 m/s of the label's where its
# first 0.5 s runs 1-9 m/s ahead (:func:`tracking_speeds`, agents/drivejepa/MODEL_CARD.md)
DEFAULT_SPEED_WINDOW_S = 2.0
# [s] lane keeping (agent config ``lane_keep_m``, off by default; :func:`lane_keep`): the plan
# time by which a kept plan reaches the route line
LANE_KEEP_SETTLE_S = 2.0

Float = NDArray[np.float64]


def lane_keep(
    plan: Float,
    target: Sequence[float] | NDArray[np.floating[Any]],
    max_offset_m: float,
    settle_s: float = LANE_KEEP_SETTLE_S,
) -> Float:
    """The chosen plan (K, 3) (ego frame, poses 0.5 s apart) moved onto the route line.

    The route line passes through the status's route ``target`` (x, y, heading h; ego frame) along
    h; a pose's signed offset from it is cos h (y_k - y) - sin h (x_k - x) (+ right). Where the
    route runs straight to the target (|h| <= TURN_HEADING_RAD) and no pose of the plan
    (nor the ego) lies farther than ``max_offset_m`` from the line (a plan that leaves the lane,
    to pass an obstacle or change lanes, is kept as it is), each pose k at time t_k is moved
    across the line by - offset_k x min(1, t_k / ``settle_s``): the plan converges on the route's
    lane centre by ``settle_s``. Otherwise the plan is returned unchanged (a copy)."""
    out = np.array(plan, dtype=np.float64, copy=True)
    tx, ty, th = (float(v) for v in target[:3])
    if max_offset_m <= 0.0 or abs(th) > TURN_HEADING_RAD or tx <= 0.0:
        return out
    c, s = np.cos(th), np.sin(th)
    offsets = c * (out[:, 1] - ty) - s * (out[:, 0] - tx)
    ego_offset = tx * s - ty * c
    if abs(ego_offset) > max_offset_m or np.any(np.abs(offsets) > max_offset_m):
        return out
    t = PLANNER_DT_S * np.arange(1, len(out) + 1)
    shift = -offsets * np.minimum(1.0, t / settle_s)
    out[:, 0] += -s * shift
    out[:, 1] += c * shift
    return out


@dataclass(frozen=True)
class PlanStep:
    """One planning step: ``plan`` (8, 3) the chosen proposal in the ego frame at ``origin``
    (world x, y, yaw) and ``plan_world`` (40, 3) world poses at 0.1 s; ``proposals`` (P, 8, 3)
    ego frame; ``scores`` (P,) sigmoid of the final logit; ``inconsistency`` (P,); ``index``."""

    time_s: float
    origin: Float
    plan: Float
    plan_world: Float
    proposals: Float
    scores: Float
    inconsistency: Float
    index: int
    imitation: Float | None = None


def tracking_speeds(
    step: PlanStep, max_speed_mps: float, ego_xy: Sequence[float] | None = None,
    decel_mps2: float = ENVELOPE_DECEL_MPS2, lead_s: float = 0.0, window_s: float = 0.0,
) -> Float:  # fmt: skip
    """(40,) target speeds [m/s] of ``step.plan_world``: the plan's own speed over each 0.1 s
    (its first pose measured from the pose it was planned at), capped at ``max_speed_mps`` and,
    with ``ego_xy`` and ``decel_mps2`` > 0, at the plan's braking envelope seen from the ego;
    with ``lead_s`` > 0 the speeds are read that much later in the plan (the last one held), so
    the tracker's preview looks further ahead in the speed profile only; with ``window_s`` > 0 the
    speeds over the plan's first ``window_s`` are replaced by their mean (the plan's arc length
    to its pose at ``window_s`` over ``window_s``), before the cap and the lead.

    The window: the planner's proposals place their first pose too far ahead. On the val split
    the default checkpoint's pick runs 1-9 m/s faster than the label over its first 0.5 s, its
    mean over the first 2 s 0.5-2 m/s off the label's; with the imitation term (w = 2) 0.8-3 m/s
    and within 0.25 m/s (agents/drivejepa/MODEL_CARD.md). Re-planned at 10 Hz only the start of
    a plan is tracked, so the first segment's error is what the ego drives. The agent's default
    is :data:`DEFAULT_SPEED_WINDOW_S`; this function's is 0 (off).

    The lead: re-planned every 0.1 s, only the start of each plan is ever tracked, and a plan
    that accelerates within comfort bounds raises its first 0.5 s mean speed by only 0.25 s x its
    acceleration above the ego's; ``lead_s`` = 0.5 reads the plan's second 0.5 s segment, the
    TransFuser / TCP convention (|wp1 - wp0| / 0.5 s). Off (0) by default (MODEL_CARD.md).

    The plan's speed, not the distance from where the ego is now: a plan lagging behind a fast ego
    would otherwise read as a demand to speed up. The cap keeps the tracker inside the speeds the
    training data's driver holds (the expert cruises at most ``HIGHWAY_CRUISE_MPS``); past them the
    planner sees inputs it never saw, and its plans run away (docs/DIFFERENCES.md).

    The envelope: wherever the plan is slow further on, the ego must be able to get down to that
    speed by then, braking at ``decel_mps2``: target <= min over plan points k ahead of the ego of
    sqrt(v_k^2 + 2 b (s_k - s_ego)), s the arc length along the plan (origin first) and s_ego the
    ego's projection on it (:func:`braking_envelope`). The planner often places its first pose
    far ahead (about the ego's speed x 0.5 s, plus its bias) and stops after it; re-planned at
    10 Hz, such a plan's stop is never reached and only its first segment is ever tracked (the 46
    routes' logs: 11 m plans that stop, tracked at the cap into turns). The envelope is off by
    default: it moved the default checkpoint's first collisions from 14.4 to 10.3 m/s (median)
    without changing DS beyond noise, and stalled a checkpoint trained longer (MODEL_CARD.md)."""
    xy = np.concatenate([step.origin[None, :2], step.plan_world[:, :2]])
    speeds = np.linalg.norm(np.diff(xy, axis=0), axis=1) / POSE_DT_S
    n = min(int(round(window_s / POSE_DT_S)), len(speeds))
    if n > 0:
        speeds[:n] = speeds[:n].mean()  # arc length over the window / the window
    speeds = np.minimum(speeds, max_speed_mps)
    if ego_xy is not None and decel_mps2 > 0.0:
        speeds = np.minimum(speeds, braking_envelope(xy, speeds, ego_xy, decel_mps2))
    shift = min(int(round(lead_s / POSE_DT_S)), len(speeds) - 1)
    if shift > 0:
        speeds = np.concatenate([speeds[shift:], np.full(shift, speeds[-1])])
    return speeds


def braking_envelope(
    xy: Float, speeds: Float, ego_xy: Sequence[float], decel_mps2: float
) -> float:
    """The highest speed [m/s] from which the ego, at its projection on the polyline ``xy``
    (N + 1, 2), can brake at ``decel_mps2`` to ``speeds[k]`` (the speed of segment k, (N,)) by
    the end of every segment k ahead of it; past the polyline's end, ``speeds[-1]``."""
    s_cum, s_ego = path_station(xy, ego_xy)
    s_end = s_cum[1:]  # arc length at the end of each segment
    ahead = s_end > s_ego + 1e-9
    if not ahead.any():
        return float(speeds[-1])
    room = s_end[ahead] - s_ego
    return float(np.sqrt(speeds[ahead] ** 2 + 2.0 * decel_mps2 * room).min())


def checkpoint_imitation_weight(ckpt: Checkpoint, requested: float | None) -> float:
    """The selection's imitation weight: ``requested`` when given, else the one the checkpoint's
    training record chose on its val split (``train["imitation_weight"]``, written by ``harness
    train head --fit imitation``), else 0. A weight > 0 for a checkpoint without an imitation
    head is refused (a CheckpointError naming the file)."""
    weight = ckpt.train.get("imitation_weight", 0.0) if requested is None else requested
    weight = float(weight)
    if weight > 0.0 and ckpt.planner.imitation_head is None:
        raise CheckpointError(
            f"{ckpt.path}: imitation_weight {weight:g} asks for the imitation head this "
            "checkpoint does not have; add one with `harness train head DATA --checkpoint "
            f"{ckpt.path} --fit imitation --out DIR` or set imitation_weight to 0"
        )
    return weight


class PlannerRuntime:
    """The checkpoint's planner with its frame buffer, route target and selector."""

    def __init__(self, checkpoint: Checkpoint | Path | str, lambda_: float = DEFAULT_LAMBDA,
                 camera: CameraSetup | None = None, kinematic_filter: bool = False,
                 imitation_weight: float | None = None,
                 lane_keep_m: float = 0.0) -> None:  # fmt: skip
        ckpt = (
            checkpoint
            if isinstance(checkpoint, Checkpoint)
            else load_checkpoint(Path(checkpoint), camera)
        )
        self.checkpoint = ckpt
        self.camera = ckpt.camera
        self.planner = ckpt.planner.eval()
        weight = checkpoint_imitation_weight(ckpt, imitation_weight)
        self.selector = MomentumSelector(lambda_, kinematic_filter, weight)
        self.lane_keep_m = float(lane_keep_m)
        self.route: RouteTarget | None = None
        self._frames: collections.deque[tuple[float, torch.Tensor]] = collections.deque()
        self.last: PlanStep | None = None

    def set_route(self, xy: Float, yaw_rad: Float, options: Sequence[int]) -> None:
        """The route's global plan (world x, y [m], yaw [rad], RoadOption per point)."""
        self.route = RouteTarget(xy, yaw_rad, options)
        self.reset()

    def reset(self) -> None:
        self._frames.clear()
        self.selector.reset()
        self.last = None

    def add_frame(self, bgra: NDArray[np.uint8], time_s: float) -> None:
        """Buffer one camera image (H, W, 4) BGRA or (H, W, 3) RGB uint8 taken at ``time_s``."""
        img = np.asarray(bgra)
        expected = (self.camera.height, self.camera.width)
        if img.shape[:2] != expected:
            raise ValueError(f"camera image {img.shape[:2]} is not the checkpoint's {expected}")
        rgb = img[..., 2::-1] if img.shape[-1] == 4 else img
        t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
        self._frames.append((float(time_s), t))
        while len(self._frames) > 1 and self._frames[1][0] <= time_s - FRAME_PERIOD_S + TIME_EPS_S:
            self._frames.popleft()

    def clip(self) -> torch.Tensor:
        """(1, 2, 3, H, W): the frame 0.5 s ago (or the oldest held) and the newest."""
        if not self._frames:
            raise ValueError("no camera frame buffered yet")
        return torch.stack([self._frames[0][1], self._frames[-1][1]])[None]

    def due(self, time_s: float) -> bool:
        """Whether a new plan is due at ``time_s`` (10 Hz)."""
        return self.last is None or time_s - self.last.time_s >= PLAN_PERIOD_S - TIME_EPS_S

    def status(
        self, ego_pose: Float, speed_mps: float, accel_xy: Sequence[float]
    ) -> NDArray[np.float32]:
        """(11,) status for the ego pose (world x, y, yaw) and its readings."""
        if self.route is None:
            raise ValueError("PlannerRuntime.set_route() first")
        pose = [float(v) for v in ego_pose]
        self.route.update(pose[:2])
        target, command = self.route.target(pose)
        return ego_status(target, command, speed_mps, accel_xy)

    @torch.no_grad()
    def plan(
        self, time_s: float, ego_pose: Sequence[float], speed_mps: float, accel_xy: Sequence[float]
    ) -> PlanStep:
        """Plan from the buffered frames; selects, remembers and returns the executed plan."""
        pose = np.asarray(ego_pose, dtype=np.float64)
        readings = self.status(pose, speed_mps, accel_xy)
        status = torch.from_numpy(readings)[None]
        out = self.planner(self.clip(), status)
        proposals = out.final[0].double().numpy()
        scores = torch.sigmoid(out.score_logits[0, :, ScoreColumn.FINAL]).double().numpy()
        imitation = (
            None
            if out.imitation_logits is None
            else torch.softmax(out.imitation_logits[0].double(), dim=0).numpy()
        )
        choice = self.selector.select(proposals, scores, pose, time_s, imitation)
        plan = lane_keep(proposals[choice.index], readings[:3], self.lane_keep_m)
        self.selector.executed(plan, pose, time_s)
        world = np.empty_like(plan)
        world[:, :2] = to_world(plan[:, :2], pose[:2], pose[2])
        world[:, 2] = np.unwrap(plan[:, 2]) + pose[2]
        dense = planner_to_score_poses(world, pose)
        dense[:, 2] = wrap_angle(dense[:, 2])
        self.last = PlanStep(time_s, pose, plan, dense, proposals, scores, choice.inconsistency,
                             choice.index, imitation)  # fmt: skip
        return self.last


@dataclass(frozen=True)
class AgentConfig:
    """What the agent reads from ``--agent-config``: ``checkpoint`` path, momentum ``lambda_``,
    the ``camera`` the checkpoint must fit (default: the project's :class:`CameraSetup`), the
    torch ``threads`` of its process (1: evaluation workers run side by side), the highest
    speed the tracker targets, ``max_speed_mps``, the deceleration of the plan's braking
    envelope, ``envelope_decel_mps2`` (0, the default: no envelope; :func:`tracking_speeds`), and
    whether the choice is made among the kinematically feasible proposals only,
    ``kinematic_filter`` (:mod:`drivejepa.planner.selection`), and how much later in the plan
    the tracked speeds are read, ``speed_lead_s`` (0, the default; :func:`tracking_speeds`), and
    the selection's weight of the imitation probability, ``imitation_weight`` (None, the default:
    the checkpoint's own, :func:`checkpoint_imitation_weight`), and over how much of the plan's
    start the tracked speeds are averaged, ``speed_window_s`` (:data:`DEFAULT_SPEED_WINDOW_S`, the
    default; 0: not at all; :func:`tracking_speeds`), and the largest offset from the route line
    that :func:`lane_keep` moves the chosen plan back from, ``lane_keep_m`` (0, the default: off)."""

    checkpoint: Path
    lambda_: float = DEFAULT_LAMBDA
    camera: CameraSetup = CameraSetup()
    threads: int = 1
    max_speed_mps: float = DEFAULT_MAX_SPEED_MPS
    envelope_decel_mps2: float = 0.0
    kinematic_filter: bool = False
    speed_lead_s: float = 0.0
    imitation_weight: float | None = None
    speed_window_s: float = DEFAULT_SPEED_WINDOW_S
    lane_keep_m: float = 0.0


AGENT_CONFIG_KEYS = (
    "checkpoint", "lambda", "camera", "threads", "max_speed_mps", "envelope_decel_mps2",
    "kinematic_filter", "speed_lead_s", "imitation_weight", "speed_window_s", "lane_keep_m",
)  # fmt: skip


def _finite_non_negative(path: Path, key: str, value: float, meaning: str) -> None:
    """Refuse an agent-config ``value`` of ``key`` that is negative, infinite or NaN, in one
    line naming the file and saying what ``meaning`` (what 0 does) is."""
    if not (0.0 <= value < np.inf):
        raise ConfigError(
            f"DriveJEPA agent config {path}: {key} must be finite and >= 0 ({meaning}), got {value}"
        )


def read_agent_config(path: str, default_checkpoint: Path) -> AgentConfig:
    """The agent config from a YAML or JSON file (``path`` empty: all defaults). Keys:
    ``checkpoint`` (relative paths are relative to the config file), ``lambda`` (>= 0),
    ``camera`` (CameraSetup fields), ``threads`` (>= 1), ``max_speed_mps`` (> 0),
    ``envelope_decel_mps2`` (>= 0; 0, the default, leaves the braking envelope off),
    ``kinematic_filter`` (true or false), ``speed_lead_s`` (>= 0 and below the plan's 4 s),
    ``imitation_weight`` (>= 0; absent: the checkpoint's own), ``speed_window_s`` (>= 0, at most
    the plan's 4 s; absent: 2 s, 0 turns the window off), ``lane_keep_m`` (>= 0; 0, the default,
    leaves the plan where the planner put it)."""
    if not path:
        return AgentConfig(default_checkpoint)
    p = Path(path)
    try:
        obj = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read the DriveJEPA agent config {p} ({exc}); pass a YAML/JSON file with "
            f"keys {', '.join(AGENT_CONFIG_KEYS)}"
        ) from exc
    obj = {} if obj is None else obj
    if not isinstance(obj, dict) or set(obj) - set(AGENT_CONFIG_KEYS):
        raise ConfigError(
            f"DriveJEPA agent config {p} must be a mapping with keys among "
            f"{', '.join(AGENT_CONFIG_KEYS)}; got {obj if not isinstance(obj, dict) else sorted(obj)}"
        )
    ckpt = Path(str(obj["checkpoint"])) if "checkpoint" in obj else default_checkpoint
    if not ckpt.is_absolute() and "checkpoint" in obj:
        ckpt = p.parent / ckpt
    try:
        lam = float(obj.get("lambda", DEFAULT_LAMBDA))
        camera = CameraSetup.from_json(dict(obj.get("camera", {})))
        threads = int(obj.get("threads", 1))
        max_speed = float(obj.get("max_speed_mps", DEFAULT_MAX_SPEED_MPS))
        envelope = float(obj.get("envelope_decel_mps2", 0.0))
        kinematic = obj.get("kinematic_filter", False)
        lead = float(obj.get("speed_lead_s", 0.0))
        imitation = None if obj.get("imitation_weight") is None else float(obj["imitation_weight"])
        window = float(obj.get("speed_window_s", DEFAULT_SPEED_WINDOW_S))
        keep = float(obj.get("lane_keep_m", 0.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"DriveJEPA agent config {p}: bad lambda, camera, threads, max_speed_mps, "
            f"envelope_decel_mps2, speed_lead_s, imitation_weight, speed_window_s or lane_keep_m "
            f"({exc})"
        ) from exc
    sizes = (camera.width, camera.height)
    if not all(isinstance(v, int) and v > 0 for v in sizes) or not all(
        isinstance(getattr(camera, f), (int, float)) for f in CameraSetup.__dataclass_fields__
    ):
        raise ConfigError(
            f"DriveJEPA agent config {p}: bad camera {camera.to_json()} (width and height "
            "positive integers, the rest numbers)"
        )
    if not (np.isfinite(lam) and lam >= 0.0) or threads < 1 or not (0.0 < max_speed < np.inf):
        raise ConfigError(
            f"DriveJEPA agent config {p}: lambda must be finite and >= 0, threads >= 1 and "
            f"max_speed_mps finite and > 0, got {lam}, {threads}, {max_speed}"
        )
    _finite_non_negative(p, "envelope_decel_mps2", envelope, "0 turns the braking envelope off")
    if not (0.0 <= lead < HORIZON_STEPS * POSE_DT_S):
        raise ConfigError(
            f"DriveJEPA agent config {p}: speed_lead_s must be >= 0 and below the plan's "
            f"{HORIZON_STEPS * POSE_DT_S:g} s (0 reads the plan's speeds where they are), got {lead}"
        )
    if not isinstance(kinematic, bool):
        raise ConfigError(
            f"DriveJEPA agent config {p}: kinematic_filter must be true or false, got {kinematic!r}"
        )
    if imitation is not None:
        _finite_non_negative(p, "imitation_weight", imitation,
                             "0 turns the imitation term off; leave it out for the checkpoint's "
                             "own")  # fmt: skip
    if not (0.0 <= window <= HORIZON_STEPS * POSE_DT_S):
        raise ConfigError(
            f"DriveJEPA agent config {p}: speed_window_s must be >= 0 and at most the plan's "
            f"{HORIZON_STEPS * POSE_DT_S:g} s (0 tracks the plan's own speeds; default "
            f"{DEFAULT_SPEED_WINDOW_S:g}), got {window}"
        )
    _finite_non_negative(p, "lane_keep_m", keep, "0 turns lane keeping off")
    return AgentConfig(ckpt, lam, camera, threads, max_speed, envelope, kinematic, lead, imitation,
                       window, keep)  # fmt: skip
