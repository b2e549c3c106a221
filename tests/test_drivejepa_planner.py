"""The Drive-JEPA planner (drivejepa.planner, checkpoint, runtime, train, the agent): shapes, the
MTD loss and the layer recursion against hand-computed values, online targets against the scorer,
momentum selection's switch point, a falling training loss, checkpoint refusals, and the agent
driving a built-in route end to end from a tiny random checkpoint."""

from __future__ import annotations

import collections
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from drivejepa import checkpoint as ckpt_mod
from drivejepa.camera import CameraSetup
from drivejepa.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from drivejepa.planner.bev import (
    BEV_NX,
    BEV_NY,
    NUM_BEV,
    BevChannel,
    bev_loss,
    bev_target,
    box_cells,
    cell_centres,
)
from drivejepa.planner.losses import (
    combine_layers,
    imitation_score_term,
    kinematic_term,
    layer_loss,
    planner_loss,
)
from drivejepa.planner.model import (
    ROUTE_CLIP,
    DriveJEPAPlanner,
    PlannerConfig,
    ScoreColumn,
    route_features,
)
from drivejepa.planner.selection import (
    MomentumSelector,
    choose,
    ec_violations,
    implied_accels,
    inconsistency,
    kinematically_feasible,
    plan_states,
)
from drivejepa.planner.targets import batch_targets, held_poses, world_score_poses
from drivejepa.runtime import (
    PlannerRuntime,
    PlanStep,
    braking_envelope,
    lane_keep,
    read_agent_config,
    tracking_speeds,
)
from drivejepa.train.planner import (
    PlannerTrainer,
    TrainConfig,
    collate,
    min_ade,
    picked_lateral_error,
    turning_scenes,
    waiting_scenes,
)
from harness.dynamics.tracking import PIDState, PlannedTrajectory, PurePursuitPID
from harness.errors import ConfigError
from harness.geometry import to_world
from harness.planning.paths import HIGHWAY_CRUISE_MPS
from harness.world.state import ActorKind
from harness.world.timing import planner_to_score_poses
from teachers.per_scene import normalise_scores
from teachers.scoring import Metric, score_candidates
from tests.test_scoring_scenes import make_scene, straight_town

REPO = Path(__file__).resolve().parents[1]
ROUTES = REPO / "scenarios" / "routes" / "harness01_routes.xml"
CAMERA = CameraSetup(width=64, height=32)
TINY = PlannerConfig(proposals=4, poses=8, refinements=2, dim=32, heads=2)


@dataclass(frozen=True)
class TinyConfig:
    image_h: int = 32
    image_w: int = 64
    patch: int = 16
    dim: int = 16


class TinyEncoder(nn.Module):
    """The VideoEncoder interface in miniature: one tubelet-2 patch embedding."""

    def __init__(self, cfg: TinyConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or TinyConfig()
        self.patchify = nn.Conv2d(6, self.cfg.dim, self.cfg.patch, stride=self.cfg.patch)

    def forward(self, clip: Tensor, keep: Tensor | None = None) -> Tensor:
        b, t, c, h, w = clip.shape
        return self.patchify(clip.reshape(b, t * c, h, w)).flatten(2).transpose(1, 2)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """torch on one thread: on a loaded machine two spinning threads make tiny steps crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints may name the TinyEncoder architecture (this process only)."""
    monkeypatch.setitem(ckpt_mod.ENCODER_BUILDERS, "TinyEncoder",
                        lambda cfg: TinyEncoder(TinyConfig(**cfg)))  # fmt: skip


def tiny_planner(seed: int = 0) -> DriveJEPAPlanner:
    torch.manual_seed(seed)
    return DriveJEPAPlanner(TinyEncoder(), TINY)


# --- model ---------------------------------------------------------------------------------------
def test_output_shapes() -> None:
    out = tiny_planner()(torch.rand(3, 2, 3, 32, 64), torch.zeros(3, 11))
    assert out.proposals.shape == (2, 3, 4, 8, 3)
    assert out.score_logits.shape == (3, 4, 6)
    assert out.final.shape == (3, 4, 8, 3)
    assert torch.isfinite(out.proposals).all()


def test_proposals_are_refined_residually() -> None:
    """Each layer differs from the previous one (the refiner adds an update)."""
    out = tiny_planner()(torch.rand(1, 2, 3, 32, 64), torch.zeros(1, 11))
    assert not torch.allclose(out.proposals[0], out.proposals[1])


# --- losses --------------------------------------------------------------------------------------
def _two_by_two() -> tuple[Tensor, Tensor, Tensor]:
    """1 sample, 2 proposals, 2 teachers, 2 poses; distances worked out below."""
    proposals = torch.tensor([[[[1.0, 0, 0], [2, 0, 0]], [[0, 1, 0], [0, 0, 0.3]]]])
    expert = torch.zeros(1, 2, 3)
    teachers = torch.tensor([[[[1.0, 0, 0], [2, 0, 0]], [[0, 1, 0], [0, 0, 0]]]])
    return proposals, expert, teachers


def test_mtd_loss_by_hand() -> None:
    proposals, expert, teachers = _two_by_two()
    # expert: p0 (1 + 2) / 6 = 0.5, p1 (1 + 0.3) / 6 -> min 1.3 / 6
    # teacher 0: p0 0, p1 (1 + 1 + 2 + 0.3) / 6 -> 0; teacher 1: p0 4 / 6, p1 0.3 / 6 -> 0.05
    im, mtd = layer_loss(proposals, expert, teachers, torch.ones(1, 2))
    assert im.item() == pytest.approx(1.3 / 6)
    assert mtd.item() == pytest.approx(0.025)
    _, mtd_one = layer_loss(proposals, expert, teachers, torch.tensor([[0.0, 1.0]]))
    assert mtd_one.item() == pytest.approx(0.05)
    terms = planner_loss(proposals[None], torch.zeros(1, 2, 6), expert, teachers,
                         torch.ones(1, 2), torch.tensor([[[0.0] * 6, [1.0] * 6]]))  # fmt: skip
    assert terms.total.item() == pytest.approx(1.3 / 6 + 0.5 * 0.025 + 2 * math.log(2))
    assert terms.score.item() == pytest.approx(math.log(2))  # BCE of logit 0, any target
    no_mtd = planner_loss(proposals[None], torch.zeros(1, 2, 6), expert, teachers,
                          torch.ones(1, 2), None, mtd=False)  # fmt: skip
    assert no_mtd.total.item() == pytest.approx(1.3 / 6)


def test_layer_combination_by_hand() -> None:
    """T = 0.1 T + L_l: layers with imitation 1.0, 0.5, 0.2 -> 0.1 (0.1 x 1.0 + 0.5) + 0.2."""
    expert = torch.zeros(1, 2, 3)
    layers = torch.stack([torch.full((1, 1, 2, 3), v) for v in (1.0, 0.5, 0.2)])
    assert combine_layers([torch.tensor(v) for v in (1.0, 0.5, 0.2)]).item() == pytest.approx(0.26)
    terms = planner_loss(layers, torch.zeros(1, 1, 6), expert, None, None, None)
    assert terms.imitation.item() == pytest.approx(0.26)


def test_kinematic_term_by_hand() -> None:
    """'Jump and stop' (3 m in the first 0.5 s, then still): implied accelerations -12, 0 x 6;
    -12 lies 7.95 below NAVSIM's -4.05, so the term is 7.95 / 7 x 0.5^2 m; a steady 10 m/s plan
    and a 1 m/s2 start cost nothing. Only the jump gets a gradient, and the weight only moves the
    total, not the reported (unweighted) term."""
    t = 0.5 * torch.arange(1, 9, dtype=torch.float64)
    jump = torch.zeros(8, 3, dtype=torch.float64)
    jump[:, 0] = 3.0
    steady = torch.stack([10.0 * t, torch.zeros(8), torch.zeros(8)], dim=-1)
    start = torch.stack([0.5 * t * t, torch.zeros(8), torch.zeros(8)], dim=-1)
    want = 7.95 / 7 * 0.25
    assert kinematic_term(jump[None]).item() == pytest.approx(want)
    assert kinematic_term(steady[None]).item() == 0.0 == kinematic_term(start[None]).item()
    props = torch.stack([jump, steady, start]).requires_grad_(True)
    kinematic_term(props).backward()
    assert props.grad is not None and torch.isfinite(props.grad).all()
    assert props.grad[0].abs().sum() > 0 and props.grad[1:].abs().sum() == 0
    expert = steady[None].float()
    layers = torch.stack([jump, steady])[None, None].float()  # (L=1, B=1, P=2, K, 3)
    plain = planner_loss(layers, torch.zeros(1, 2, 6), expert, None, None, None)
    weighted = planner_loss(layers, torch.zeros(1, 2, 6), expert, None, None, None,
                            kinematic_weight=2.0)  # fmt: skip
    assert plain.kinematic.item() == pytest.approx(want / 2) == weighted.kinematic.item()
    assert weighted.total.item() == pytest.approx(plain.total.item() + 2.0 * want / 2)


# --- online targets ------------------------------------------------------------------------------
def _straight(speed: float, lateral: float = 0.0) -> np.ndarray:
    t = 0.5 * np.arange(1, 9)
    return np.column_stack([speed * t, np.full(8, lateral), np.zeros(8)])


def test_world_score_poses_by_hand() -> None:
    """Ego at (10, 20) heading +y (pi/2): local (x fwd, y right) = world (-y, x) offsets;
    0.1 s poses interpolate linearly from the ego."""
    local = np.array([[5.0, 1.0, 0.0]] + [[5.0 * k, 1.0, 0.0] for k in range(2, 9)])
    world = world_score_poses(local, np.array([10.0, 20.0, np.pi / 2]))
    assert world.shape == (40, 3)
    np.testing.assert_allclose(world[4], [9.0, 25.0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(world[1], [10.0 - 0.4, 20.0 + 2.0, np.pi / 2], atol=1e-12)


def test_online_targets_equal_the_scorer() -> None:
    scene, town = make_scene(speed_mps=10.0), straight_town()
    local = np.stack([_straight(10.0), _straight(10.0, -3.5), _straight(2.0), _straight(10.0, 6.0)])
    expert = _straight(10.0)
    targets = batch_targets([(scene, town)], local[None], expert[None])[0]
    # by hand: ego at (0, 1.75) heading +x, so world = (x, 1.75 + y); 0.1 s poses linear
    t = 0.1 * np.arange(1, 41)
    speeds, lat = np.array([10.0, 10.0, 2.0, 10.0, 10.0]), np.array([0, -3.5, 0, 6, 0])
    frac = np.minimum(t / 0.5, 1.0)
    world = np.stack([np.column_stack([v * t, 1.75 + y * frac, np.zeros(40)])
                      for v, y in zip(speeds, lat, strict=True)])  # fmt: skip
    raw, _ = score_candidates(scene, town, world, profile="navsim")
    ref = normalise_scores(raw, 4, "navsim")
    for col, metric in [(ScoreColumn.NC, Metric.NC), (ScoreColumn.DAC, Metric.DAC),
                        (ScoreColumn.EP, Metric.EP), (ScoreColumn.TTC, Metric.TTC),
                        (ScoreColumn.C, Metric.C), (ScoreColumn.FINAL, Metric.EPDMS)]:  # fmt: skip
        np.testing.assert_allclose(targets[:, col], ref.values[metric, :4], atol=1e-6)
    assert targets[0, ScoreColumn.FINAL] > targets[3, ScoreColumn.FINAL]  # off-road loses
    assert targets[3, ScoreColumn.DAC] == 0.0
    assert targets[2, ScoreColumn.EP] < targets[0, ScoreColumn.EP]  # slow makes less progress


def test_held_poses_by_hand() -> None:
    """The held rollout keeps the first segment's mean speed along the proposal's path."""
    steady = _straight(4.0)
    np.testing.assert_allclose(held_poses(steady), steady, atol=1e-12)  # already held: unchanged
    jump = np.tile([3.0, 0.0, 0.0], (8, 1))  # 3 m in 0.5 s, then still: 6 m/s held
    np.testing.assert_allclose(held_poses(jump)[:, 0], 3.0 * np.arange(1, 9), atol=1e-12)
    fast = _straight(20.0)  # 10 m a segment: capped at the tracker's 14 m/s, 7 m a segment
    np.testing.assert_allclose(held_poses(fast)[:, 0], 7.0 * np.arange(1, 9), atol=1e-12)
    hop = np.tile([0.1, 0.0, 0.0], (8, 1))  # 0.2 m/s: below the tracker's stop speed
    np.testing.assert_array_equal(held_poses(hop), 0.0)
    # 2 m ahead, a right-angle turn, 4 m along +y and stop: 4 m/s held reaches each vertex on
    # time, then goes straight on along the last yaw (+y) past the path's end at 6 m
    turn = np.array([[2.0, 0.0, 0.0], [2.0, 2.0, np.pi / 2]] + [[2.0, 4.0, np.pi / 2]] * 6)
    held = held_poses(turn)
    expect_y = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]
    np.testing.assert_allclose(held[:, 0], 2.0, atol=1e-12)
    np.testing.assert_allclose(held[:, 1], expect_y, atol=1e-12)
    np.testing.assert_allclose(held[1:, 2], np.pi / 2, atol=1e-12)
    np.testing.assert_allclose(held_poses(np.stack([jump, turn]))[1], held, atol=1e-12)  # batched


def test_held_targets_score_the_jump_as_driven() -> None:
    """Ego at 10 m/s, a stopped car 20 m ahead: a proposal that jumps 7 m and stops is safe as
    drawn (the LQR stops before the car) and a collision as executed (14 m/s held for 4 s)."""
    car = (20.0, 1.75, 0.0, 0.0, int(ActorKind.VEHICLE))
    scene, town = make_scene(speed_mps=10.0, agents=[car]), straight_town()
    jump = np.tile([7.0, 0.0, 0.0], (8, 1))
    local = np.stack([jump, _straight(1.0)])[None]
    plan = batch_targets([(scene, town)], local)[0]
    held = batch_targets([(scene, town)], local, execution="held")[0]
    assert plan[0, ScoreColumn.NC] == 1.0 and held[0, ScoreColumn.NC] == 0.0
    assert held[0, ScoreColumn.FINAL] == 0.0 < held[1, ScoreColumn.FINAL]
    with pytest.raises(ValueError, match="execution"):
        batch_targets([(scene, town)], local, execution="drawn")


# --- momentum-aware selection --------------------------------------------------------------------
def test_choice_switches_exactly_at_the_score_gap() -> None:
    score, incons = np.array([0.75, 0.5]), np.array([1.0, 0.0])
    assert choose(score, incons, 0.0) == 0
    assert choose(score, incons, 0.25) == 0  # lambda x gap == score gap: a tie keeps the first
    assert choose(score, incons, 0.25 + 1e-9) == 1
    assert choose(score, incons, 0.2) == 0


def _braking(v0: float, accel: float) -> np.ndarray:
    t = 0.5 * np.arange(1, 9)
    return np.column_stack([v0 * t + 0.5 * accel * t * t, np.zeros(8), np.zeros(8)])


def _turning(speed: float, yaw_rate: float) -> np.ndarray:
    t = 0.5 * np.arange(1, 9)
    r = speed / yaw_rate
    yaw = yaw_rate * t
    return np.column_stack([r * np.sin(yaw), r * (1 - np.cos(yaw)), yaw])


def test_inconsistency_of_real_plans() -> None:
    """Against a previous plan at constant 10 m/s, 0.1 s later: the same motion and a constant
    2 m/s (EC compares accelerations, not speeds) are consistent; braking at 2 m/s2 breaks the
    acceleration term (RMS difference ~2 > 0.7 m/s2) and no yaw term; a 0.3 rad/s turn breaks
    the yaw-rate term (0.3 > 0.1 rad/s)."""
    prev = MomentumSelector(1.0)
    prev.executed(_straight(10.0), np.array([0.0, 0.0, 0.0]), 0.0)
    ego = np.array([1.0, 0.0, 0.0])  # 0.1 s later, 1 m further along the same plan
    cur = np.stack([_straight(10.0), _straight(2.0), _braking(10.0, -2.0), _turning(10.0, 0.3)])
    previous = prev.previous_states(ego)
    assert previous is not None
    bad = ec_violations(plan_states(cur), previous, 1)  # columns: accel, jerk, yaw rate, yaw acc
    assert not bad[0].any() and not bad[1].any()
    assert bad[2, 0] and not bad[2, 2] and not bad[2, 3]
    assert bad[3, 2] and not bad[3, 0]
    incons = inconsistency(plan_states(cur), previous, 1)
    np.testing.assert_array_equal(incons, bad.mean(axis=1))
    # selection between the consistent plan (score 0.6) and the braking one (0.7): the braking
    # plan loses exactly when lambda x its inconsistency exceeds the 0.1 score gap
    pair, scores = cur[[0, 2]], np.array([0.6, 0.7])
    switch = 0.1 / incons[2]
    for lam, want in [(0.0, 1), (0.99 * switch, 1), (1.01 * switch, 0)]:
        sel = MomentumSelector(lam)
        sel.previous = prev.previous
        assert sel.select(pair, scores, ego, 0.1).index == want, lam


def test_previous_plan_is_moved_into_the_current_frame() -> None:
    """The same world motion seen from a rotated, shifted ego frame stays consistent."""
    sel = MomentumSelector(1.0)
    yaw = 0.7
    sel.executed(_straight(8.0), np.array([5.0, -3.0, yaw]), 2.0)
    ego = np.array([5.0 + 0.8 * np.cos(yaw), -3.0 + 0.8 * np.sin(yaw), yaw])
    states = sel.previous_states(ego)
    assert states is not None
    np.testing.assert_allclose(states[1, :2], [0.0, 0.0], atol=1e-9)  # at t+0.1 s: here
    assert inconsistency(plan_states(_straight(8.0)[None]), states, 1)[0] == 0.0


def test_implied_accels_and_the_kinematic_filter() -> None:
    """Hand-computed: a plan braking at 2 m/s2 implies -2 m/s2 between every pair of its 0.5 s
    segments (mean speeds 9.5, 8.5, ...); 'jump and stop' (3 m in the first 0.5 s, then still)
    implies -12 m/s2 and then 0; a start at 1 m/s2 from standstill +1. NAVSIM's bounds are
    [-4.05, 2.4]: only the jump is out. The step from the ego's speed to the first segment is not
    checked, so a 10 m/s cruise stays consistent whatever the ego's speed."""
    braking, cruise, start = _braking(10.0, -2.0), _straight(10.0), _braking(0.0, 1.0)
    jump = np.zeros((8, 3))
    jump[:, 0] = 3.0
    np.testing.assert_allclose(implied_accels(braking[None])[0], -2.0, atol=1e-5)
    np.testing.assert_allclose(implied_accels(cruise[None])[0], 0.0, atol=1e-5)
    np.testing.assert_allclose(implied_accels(start[None])[0], 1.0, atol=1e-5)
    np.testing.assert_allclose(implied_accels(jump[None])[0], [-12.0, 0, 0, 0, 0, 0, 0], atol=1e-5)
    feasible = kinematically_feasible(np.stack([braking, cruise, start, jump]))
    assert feasible.tolist() == [True, True, True, False]
    # the selector skips the higher-scored inconsistent proposal, and falls back to all of them
    # when none is consistent
    sel, ego = MomentumSelector(0.0, kinematic_filter=True), np.zeros(3)
    two, scores = np.stack([jump, start]), np.array([0.9, 0.5])
    choice = sel.select(two, scores, ego, 0.0)
    assert choice.index == 1 and choice.feasible.tolist() == [False, True]
    assert MomentumSelector(0.0).select(two, scores, ego, 0.0).index == 0
    assert sel.select(jump[None].repeat(2, 0), scores, ego, 0.0).index == 0


# --- training ------------------------------------------------------------------------------------
def _samples(n: int, seed: int = 0) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        speed = 4.0 + 8.0 * (i % 4) / 3
        status = torch.zeros(11)
        status[3], status[8] = speed, 1.0
        expert = torch.from_numpy(_straight(speed)).float()
        teachers = torch.stack([expert + torch.tensor([0.5 * k, 0.0, 0.0]) for k in range(4)])
        out.append({
            "frames": torch.rand(2, 3, 32, 64, generator=g), "status": status, "expert": expert,
            "teachers": teachers, "teacher_mask": torch.tensor([1.0, 1.0, 0.0, 0.0]),
            "key": ("route", i),
        })  # fmt: skip
    return out


def _lookup(route: str, index: int) -> tuple[Any, Any]:
    return make_scene(speed_mps=4.0 + 8.0 * (index % 4) / 3), straight_town()


def test_picked_lateral_error_by_hand() -> None:
    """|lateral error| at the last pose, and the turn flag from the target's heading (0.1 rad)."""
    picked, expert, status = torch.zeros(3, 8, 3), torch.zeros(3, 8, 3), torch.zeros(3, 11)
    picked[0, -1, 1], expert[0, -1, 1] = 1.5, -0.5  # 2 m apart at 4 s
    picked[1, 3, 1] = 9.0  # off at 2 s only: not counted
    picked[2, -1, 1], expert[2, -1, 1] = 10.0, 14.0
    status[:, 2] = torch.tensor([0.05, -0.1, -0.6])
    err, turns = picked_lateral_error(picked, expert, status)
    assert err.tolist() == pytest.approx([2.0, 0.0, 4.0])
    assert turns.tolist() == [False, False, True]


def test_training_loss_falls_and_resumes(tmp_path: Path, tiny_arch: None) -> None:
    cfg = TrainConfig(out=tmp_path, epochs=8, batch=4, lr=1e-2, planner=TINY)
    torch.manual_seed(0)
    trainer = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _lookup)
    history = trainer.fit(_samples(8), _samples(4, seed=1))
    assert len(history) == 8
    assert history[-1]["train_imitation"] < 0.7 * history[0]["train_imitation"]
    assert history[-1]["train_total"] < history[0]["train_total"]
    assert 0.0 < history[-1]["target_share"] < 1.0
    assert {"val_min_ade_m", "val_score_mae", "val_chosen_target"} <= set(history[-1])
    bands = {"val_lateral_4s_straight_m", "val_lateral_4s_turn_m"} & set(history[-1])
    assert bands and all(history[-1][k] >= 0.0 for k in bands)
    ck = load_checkpoint(tmp_path / "model.pt", CAMERA)
    assert ck.train["epochs"] == 8 and ck.camera == CAMERA
    log = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 9))
    again = PlannerTrainer(replace(cfg, epochs=9, resume=True), TinyEncoder(), CAMERA, _lookup)
    more = again.fit(_samples(8), _samples(4, seed=1))
    assert [r["epoch"] for r in more] == list(range(1, 10)) and again.step == 18
    # the loss and optimizer options must stay those of the run being resumed
    for change, needle in [({"kinematic_weight": 1.0}, "kinematic_weight 0.0 -> 1.0"),
                           ({"mtd": False}, "mtd True -> False"),
                           ({"lr": 1e-3}, "lr 0.01 -> 0.001")]:  # fmt: skip
        other = PlannerTrainer(replace(cfg, epochs=10, resume=True, **change), TinyEncoder(),
                               CAMERA, _lookup)  # fmt: skip
        with pytest.raises(ConfigError, match=needle):
            other.fit(_samples(8), _samples(4, seed=1))
    blind = replace(cfg, epochs=10, resume=True, planner=replace(TINY, ego_motion=False))
    with pytest.raises(ConfigError, match="planner configuration .ego_motion True -> False"):
        PlannerTrainer(blind, TinyEncoder(), CAMERA, _lookup).fit(_samples(8), _samples(4, seed=1))


def test_wait_keep_thins_only_the_waiting_scenes(tmp_path: Path) -> None:
    """20 waits (standstill, target still), 10 starts (standstill, target 2 m on at +1 s), 10
    moving scenes: with wait_keep 0.5 an epoch keeps every start and moving scene and some of the
    waits, the same ones for the same (seed, epoch) and others for the next epoch."""
    data = _samples(40)
    for i, item in enumerate(data[:30]):
        item["status"][3] = 0.0
        item["expert"] = torch.zeros(8, 3) if i < 20 else torch.from_numpy(_braking(0.0, 4.0)).float()
    waits = waiting_scenes(data)
    assert waits.tolist() == [True] * 20 + [False] * 20
    cfg = TrainConfig(out=tmp_path, batch=4, wait_keep=0.5, planner=TINY)
    trainer = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _lookup)
    first = trainer.epoch_scenes(data)
    kept = {int(first[j]["key"][1]) for j in range(len(first))}
    assert set(range(20, 40)) <= kept and 0 < len(kept & set(range(20))) < 20
    assert [first[j]["key"] for j in range(len(first))] == [
        trainer.epoch_scenes(data)[j]["key"] for j in range(len(first))
    ]
    trainer.epoch = 1
    second = trainer.epoch_scenes(data)
    assert {int(second[j]["key"][1]) for j in range(len(second))} != kept
    assert PlannerTrainer(replace(cfg, wait_keep=1.0), TinyEncoder(), CAMERA,
                          _lookup).epoch_scenes(data) is data  # fmt: skip
    with pytest.raises(ConfigError, match="--wait-keep must be in"):
        replace(cfg, wait_keep=0.0)


def test_turn_repeat_repeats_only_the_moving_turns(tmp_path: Path) -> None:
    """40 scenes: 10 moving with the target 0.3 rad to the side (turns), 5 with it 0.05 rad off
    (straight), 5 at 0.3 rad but at standstill, 20 straight: turn_repeat 3 shows each of the 10
    turns three times and every other scene once; with wait_keep the repeats follow the kept."""
    data = _samples(40)
    for i, item in enumerate(data[:20]):
        item["status"][2] = 0.3 if i < 10 or i >= 15 else 0.05
        if i >= 15:
            item["status"][3] = 0.0
    turns = turning_scenes(data)
    assert turns.tolist() == [True] * 10 + [False] * 30
    cfg = TrainConfig(out=tmp_path, batch=4, turn_repeat=3, planner=TINY)
    epoch = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _lookup).epoch_scenes(data)
    seen = collections.Counter(int(epoch[j]["key"][1]) for j in range(len(epoch)))
    assert len(epoch) == 60 and all(seen[i] == (3 if i < 10 else 1) for i in range(40))
    for item in data[30:]:  # ten waits
        item["status"][3], item["expert"] = 0.0, torch.zeros(8, 3)
    thinned = PlannerTrainer(replace(cfg, wait_keep=0.5), TinyEncoder(), CAMERA,
                             _lookup).epoch_scenes(data)  # fmt: skip
    seen = collections.Counter(int(thinned[j]["key"][1]) for j in range(len(thinned)))
    assert all(seen[i] == 3 for i in range(10)) and all(seen[i] <= 1 for i in range(30, 40))
    with pytest.raises(ConfigError, match="--turn-repeat must be >= 1"):
        replace(cfg, turn_repeat=0)


def test_min_ade_by_hand() -> None:
    final = torch.zeros(1, 2, 2, 3)
    final[0, 1, :, 1] = 3.0  # proposal 1 is 3 m to the side, proposal 0 on the expert
    expert = torch.zeros(1, 2, 3)
    expert[0, :, 0] = 4.0  # 4 m ahead: proposal 0 is 4 m off, proposal 1 is 5 m off
    assert min_ade(final, expert).item() == pytest.approx(4.0)


# --- checkpoint ----------------------------------------------------------------------------------
def _saved(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "model.pt"
    save_checkpoint(path, tiny_planner(), CAMERA, {"note": "test"})
    if changes:
        obj = torch.load(path, weights_only=True)
        obj.update(changes)
        torch.save(obj, path)
    return path


def test_checkpoint_round_trip(tmp_path: Path, tiny_arch: None) -> None:
    planner = tiny_planner(3)
    path = save_checkpoint(tmp_path / "m.pt", planner, CAMERA, {"epochs": 1})
    ck = load_checkpoint(path, CAMERA)
    x, s = torch.rand(1, 2, 3, 32, 64), torch.rand(1, 11)
    with torch.no_grad():
        a, b = planner.eval()(x, s), ck.planner(x, s)
    assert torch.equal(a.proposals, b.proposals) and torch.equal(a.score_logits, b.score_logits)


def test_ego_motion_off_hides_speed_and_acceleration(tmp_path: Path, tiny_arch: None) -> None:
    """With ego_motion False two statuses that differ only in velocity and acceleration plan
    alike (and the checkpoint keeps the choice); with it on (the recipe) they do not."""
    torch.manual_seed(3)
    blind = DriveJEPAPlanner(TinyEncoder(), replace(TINY, ego_motion=False)).eval()
    x = torch.rand(1, 2, 3, 32, 64)
    still, moving = torch.zeros(1, 11), torch.zeros(1, 11)
    still[0, 0], moving[0, 0] = 50.0, 50.0  # the same route target ahead
    moving[0, 3:7] = torch.tensor([8.0, 0.5, 1.5, -0.3])
    with torch.no_grad():
        assert torch.equal(blind(x, still).proposals, blind(x, moving).proposals)
        seeing = tiny_planner(3).eval()
        assert not torch.equal(seeing(x, still).proposals, seeing(x, moving).proposals)
        ck = load_checkpoint(save_checkpoint(tmp_path / "m.pt", blind, CAMERA, {}), CAMERA)
        assert ck.planner.cfg.ego_motion is False
        assert torch.equal(ck.planner(x, moving).proposals, blind(x, moving).proposals)


def test_route_features_by_hand() -> None:
    """The ego's offset from the route line and the route's heading, from the status's target."""
    status = torch.zeros(4, 11)
    status[0, :3] = torch.tensor([25.0, 1.0, 0.0])  # lane centre 1 m right, straight: ego 1 m left
    status[1, :3] = torch.tensor([25.0, -1.5, 0.0])  # the route line 1.5 m left: ego right of it
    # a line heading 10 deg right through (20, 0) passes 20 sin 10 deg = 3.47 m left of the ego
    status[2, :3] = torch.tensor([20.0, 0.0, math.radians(10.0)])
    status[3, :3] = torch.tensor([5.0, 40.0, -1.5])  # a turn: both features clipped
    feats = route_features(status)
    assert feats[0].tolist() == pytest.approx([-0.5, 0.0])
    assert feats[1].tolist() == pytest.approx([0.75, 0.0])
    assert feats[2].tolist() == pytest.approx(
        [20.0 * math.sin(math.radians(10.0)) / 2.0, math.radians(10.0) / 0.25], rel=1e-5
    )
    assert feats[3].tolist() == pytest.approx([-ROUTE_CLIP, -ROUTE_CLIP])
    torch.manual_seed(3)
    with_route = DriveJEPAPlanner(TinyEncoder(), replace(TINY, route_offset=True)).eval()
    assert with_route.status_proj.in_features == 13 and tiny_planner().status_proj.in_features == 11
    centred, off = torch.zeros(1, 11), torch.zeros(1, 11)
    centred[0, 0], off[0, 0], off[0, 1] = 25.0, 25.0, 1.0
    feats_c = with_route.status_features(centred)
    feats_o = with_route.status_features(off)
    # the lateral offset reaches the planner at 1/2 per metre, 15x the raw status's 1/30
    assert float(feats_o[0, 11] - feats_c[0, 11]) == pytest.approx(-0.5)
    assert float(feats_o[0, 1] - feats_c[0, 1]) == pytest.approx(1.0 / 30.0)


def test_route_features_in_checkpoints(tmp_path: Path, tiny_arch: None) -> None:
    """A checkpoint whose stored configuration has no route_offset (written before it existed)
    builds the 11-input planner it was trained as; one trained with the features keeps its 13."""
    old = DriveJEPAPlanner(TinyEncoder(), replace(TINY, route_offset=False)).eval()
    path = save_checkpoint(tmp_path / "old.pt", old, CAMERA, {})
    blob = torch.load(path, weights_only=False)
    blob["planner_cfg"].pop("route_offset")
    torch.save(blob, path)
    ck = load_checkpoint(path, CAMERA)
    assert ck.planner.cfg.route_offset is False and ck.planner.status_proj.in_features == 11
    x, s = torch.rand(1, 2, 3, 32, 64), torch.rand(1, 11)
    with torch.no_grad():
        assert torch.equal(ck.planner(x, s).proposals, old(x, s).proposals)
    torch.manual_seed(3)
    with_route = DriveJEPAPlanner(TinyEncoder(), replace(TINY, route_offset=True)).eval()
    new = load_checkpoint(save_checkpoint(tmp_path / "new.pt", with_route, CAMERA, {}), CAMERA)
    assert new.planner.cfg.route_offset is True and new.planner.status_proj.in_features == 13
    with torch.no_grad():
        assert torch.equal(new.planner(x, s).proposals, with_route(x, s).proposals)


def test_checkpoint_refusals(tmp_path: Path, tiny_arch: None) -> None:
    missing = tmp_path / "nothing.pt"
    with pytest.raises(CheckpointError, match=f"no checkpoint at {missing}.*harness train"):
        load_checkpoint(missing)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=f"{corrupt}.*corrupt or truncated"):
        load_checkpoint(corrupt)
    path = _saved(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=f"{truncated}.*corrupt or truncated"):
        load_checkpoint(truncated)
    with pytest.raises(
        CheckpointError,
        match=f"{path} was trained for another camera: width 64 "
        r"\(expected 256\), height 32 \(expected 128\)",
    ):
        load_checkpoint(path, CameraSetup())
    path = _saved(tmp_path, version=2)
    with pytest.raises(
        CheckpointError, match=f"{path} has format version 2, this code reads version 1"
    ):
        load_checkpoint(path)
    path = _saved(tmp_path, planner_cfg={**TINY.to_json(), "dim": 48, "heads": 2})
    with pytest.raises(CheckpointError, match=f"{path} does not fit the architecture.*shape"):
        load_checkpoint(path)
    path = _saved(tmp_path, encoder_arch="ViT-H")
    with pytest.raises(CheckpointError, match=f"{path} has encoder architecture 'ViT-H'"):
        load_checkpoint(path)
    path = _saved(tmp_path, format="something-else")
    with pytest.raises(CheckpointError, match=f"{path} is not a Drive-JEPA planner checkpoint"):
        load_checkpoint(path)


# --- the agent -----------------------------------------------------------------------------------
def _eval(args: list[str], monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:  # fmt: skip
    from harness.cli.main import run

    code = run(["eval", *args])
    return code, " ".join(capsys.readouterr().err.split())


def test_agent_drives_a_builtin_route(
    tmp_path: Path, tiny_arch: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    camera = CameraSetup()  # the agent's default camera: a tiny encoder at 256 x 128
    torch.manual_seed(0)
    planner = DriveJEPAPlanner(TinyEncoder(TinyConfig(image_h=128, image_w=256)), TINY)
    save_checkpoint(tmp_path / "tiny.pt", planner, camera, {"note": "random init"})
    (tmp_path / "agent.yaml").write_text("checkpoint: tiny.pt\nlambda: 0.5\n")
    out = tmp_path / "out"
    code, err = _eval(["--agent", str(REPO / "agents" / "drivejepa_agent.py"),
                       "--agent-config", str(tmp_path / "agent.yaml"), "--routes", str(ROUTES),
                       "--routes-subset", "0", "--out", str(out), "--blocked-time", "2",
                       "--traffic", "0", "--pedestrians", "0"], monkeypatch, capsys)  # fmt: skip
    assert code == 0, err
    (rec,) = json.loads((out / "results.json").read_text())["_checkpoint"]["records"]
    assert rec["route_id"] == "RouteScenario_0_rep0" and rec["town_name"] == "Harness01"
    assert rec["status"] != "Failed - Agent couldn't be set up"
    import pyarrow.parquet as pq

    steps = pq.read_table(next((out / "closed_loop").glob("*.parquet"))).to_pydict()
    assert len(steps["frame"]) >= 1
    assert set(steps["source"]) >= {"agent"}  # scored on the planner's own plans


def test_agent_without_checkpoint_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The runner's rule for a failing setup: the route's status, the reason in the log."""
    (tmp_path / "agent.yaml").write_text("checkpoint: missing.pt\n")
    out = tmp_path / "out"
    code, err = _eval(["--agent", str(REPO / "agents" / "drivejepa_agent.py"),
                       "--agent-config", str(tmp_path / "agent.yaml"), "--routes", str(ROUTES),
                       "--routes-subset", "0", "--out", str(out)], monkeypatch, capsys)  # fmt: skip
    (rec,) = json.loads((out / "results.json").read_text())["_checkpoint"]["records"]
    assert rec["status"] == "Failed - Agent couldn't be set up", (code, err)
    assert f"no checkpoint at {tmp_path / 'missing.pt'}; train one with" in caplog.text


# --- runtime and configuration -------------------------------------------------------------------
def test_runtime_pairs_the_frame_half_a_second_old(tiny_arch: None, tmp_path: Path) -> None:
    """At 20 Hz the clip is (frame of t - 0.5 s, frame of t); before 0.5 s the first frame."""
    path = save_checkpoint(tmp_path / "m.pt", tiny_planner(), CAMERA, {})
    runtime = PlannerRuntime(path, 0.0, CAMERA)
    runtime.set_route(np.array([[0.0, 0.0], [100.0, 0.0]]), np.zeros(2), [4, 4])  # clears frames
    for k in range(16):  # frame k filled with value k, BGRA
        runtime.add_frame(np.full((32, 64, 4), k, dtype=np.uint8), 0.05 * k)
        clip = runtime.clip()
        old = max(0, k - 10)
        assert clip.shape == (1, 2, 3, 32, 64)
        assert clip[0, 0, 0, 0, 0].item() == pytest.approx(old / 255.0), k
        assert clip[0, 1, 0, 0, 0].item() == pytest.approx(k / 255.0)
    assert runtime.due(0.75)
    step = runtime.plan(0.75, (10.0, 2.0, 0.0), 5.0, (0.0, 0.0))
    assert not runtime.due(0.80) and runtime.due(0.85)
    assert step.proposals.shape == (4, 8, 3) and step.plan_world.shape == (40, 3)
    # the world plan is the chosen ego-frame plan moved to the ego pose (yaw 0: a shift)
    np.testing.assert_allclose(step.plan_world[4::5, :2], step.plan[:, :2] + [10.0, 2.0], atol=1e-9)


def test_tracking_speeds_are_the_plan_own_capped() -> None:
    # a plan made at (10, 2) heading +x: 0.5 s at 4 m/s (2 m), then 0.5 s at 20 m/s (10 m), then
    # standing; the ego has since driven 9 m past the plan's start (it must not raise the speed)
    plan = np.zeros((8, 3))
    plan[:, 0] = [2.0, 12.0, 12.0, 12.0, 12.0, 12.0, 12.0, 12.0]
    origin = np.array([10.0, 2.0, 0.0])
    world = planner_to_score_poses(plan + [10.0, 2.0, 0.0], origin)
    step = PlanStep(0.0, origin, plan, world, plan[None], np.ones(1), np.zeros(1), 0)
    speeds = tracking_speeds(step, max_speed_mps=14.0)
    np.testing.assert_allclose(speeds[:5], 4.0)
    np.testing.assert_allclose(speeds[5:10], 14.0)  # 20 m/s capped
    np.testing.assert_allclose(speeds[10:], 0.0)
    tracked = PlannedTrajectory(world, dt_s=0.1, speeds_mps=speeds)
    # 9 m down the road at 12 m/s, the target is still the plan's 4 m/s: the controller brakes
    ctl = PurePursuitPID().control(PIDState(), [19.0, 2.0, 0.0], 12.0, tracked, 0.05)
    assert ctl.brake > 0.0 and ctl.throttle == 0.0
    # read 0.5 s later: the second segment's 14 m/s from the start, then standing; 0.3 s later
    lead = tracking_speeds(step, max_speed_mps=14.0, lead_s=0.5)
    np.testing.assert_allclose(lead[:5], 14.0)
    np.testing.assert_allclose(lead[5:], 0.0)
    np.testing.assert_allclose(tracking_speeds(step, 14.0, lead_s=0.3)[:2], 4.0)
    np.testing.assert_allclose(tracking_speeds(step, 14.0, lead_s=0.3)[2:7], 14.0)
    # averaged over the first 2 s: (2 + 10 + 0 + 0) m / 2 s = 6 m/s over its first 20 entries
    # (the 20 m/s segment is averaged before the cap), the rest as before
    window = tracking_speeds(step, 14.0, window_s=2.0)
    np.testing.assert_allclose(window[:20], 6.0)
    np.testing.assert_allclose(window[20:], 0.0)
    # a plan that jumps 3 m in its first 0.5 s, then moves at 2 m/s: 1 s window = (3 + 1) m / 1 s
    plan[:, 0] = 3.0 + 1.0 * np.arange(8)
    world = planner_to_score_poses(plan + [10.0, 2.0, 0.0], origin)
    jump = PlanStep(0.0, origin, plan, world, plan[None], np.ones(1), np.zeros(1), 0)
    np.testing.assert_allclose(tracking_speeds(jump, 14.0)[:5], 6.0)
    np.testing.assert_allclose(tracking_speeds(jump, 14.0, window_s=1.0)[:10], 4.0)
    np.testing.assert_allclose(tracking_speeds(jump, 14.0, window_s=1.0)[10:], 2.0)


def test_braking_envelope_by_hand() -> None:
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    speeds = np.array([10.0, 0.0])  # 10 m/s over the first 10 m, then a stop at 20 m
    # from the start: min(sqrt(10^2 + 2 * 3 * 10), sqrt(0 + 2 * 3 * 20)) = sqrt(120)
    assert braking_envelope(xy, speeds, [0.0, 0.0], 3.0) == pytest.approx(np.sqrt(120.0))
    # 15 m along (0.5 m off the line): only the stop 5 m ahead counts: sqrt(2 * 3 * 5)
    assert braking_envelope(xy, speeds, [15.0, 0.5], 3.0) == pytest.approx(np.sqrt(30.0))
    assert braking_envelope(xy, speeds, [25.0, 0.0], 3.0) == 0.0  # past the end: its speed


def test_tracking_speeds_honour_a_plan_that_stops() -> None:
    # the 46 routes' logs: the first pose 11 m ahead (22 m/s), then 1.7 m/s for 1 s, then
    # standing; re-planned at 10 Hz only the first segment would ever be tracked
    plan = np.zeros((8, 3))
    plan[:, 0] = [11.0, 11.85, 12.7, 12.7, 12.7, 12.7, 12.7, 12.7]
    origin = np.array([10.0, 2.0, 0.0])
    world = planner_to_score_poses(plan + origin, origin)
    step = PlanStep(0.0, origin, plan, world, plan[None], np.ones(1), np.zeros(1), 0)
    np.testing.assert_allclose(tracking_speeds(step, 14.0)[:5], 14.0)  # the segment, capped
    speeds = tracking_speeds(step, 14.0, ego_xy=origin[:2], decel_mps2=3.0)
    # the nearest slow point: 11 m + 0.17 m ahead at 1.7 m/s -> sqrt(1.7^2 + 2 * 3 * 11.17)
    cap = np.sqrt(1.7**2 + 6.0 * 11.17)
    np.testing.assert_allclose(speeds[:5], cap, atol=1e-9)
    off = tracking_speeds(step, 14.0, ego_xy=origin[:2], decel_mps2=0.0)  # the config's 0: off
    np.testing.assert_allclose(off, tracking_speeds(step, 14.0))
    np.testing.assert_allclose(speeds[5:15], 1.7, atol=1e-9)
    np.testing.assert_allclose(speeds[15:], 0.0, atol=1e-9)
    tracked = PlannedTrajectory(world, dt_s=0.1, speeds_mps=speeds)
    ctl = PurePursuitPID().control(PIDState(), origin, 14.0, tracked, 0.05)
    assert ctl.brake > 0.0 and ctl.throttle == 0.0  # 14 m/s is over the envelope
    # an expert-like plan at a steady 8 m/s is tracked at 8 m/s: the envelope does not bind
    plan[:, 0] = [4.0 * (k + 1) for k in range(8)]
    world = planner_to_score_poses(plan + origin, origin)
    steady = PlanStep(0.0, origin, plan, world, plan[None], np.ones(1), np.zeros(1), 0)
    np.testing.assert_allclose(tracking_speeds(steady, 14.0, ego_xy=origin[:2]), 8.0, atol=1e-9)


def test_lane_keep_by_hand() -> None:
    """A straight plan 1 m left of a straight route reaches the route line by 2 s; a plan that
    leaves the lane, a curving route, an ego beyond the limit, or lane keeping off: unchanged."""
    straight = np.column_stack([5.0 * np.arange(1, 9), np.zeros(8), np.zeros(8)])
    target = (20.0, 1.0, 0.0)  # the lane centre 1 m right: the ego is 1 m left of it
    kept = lane_keep(straight, target, 1.75)
    assert kept[:, 1].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert np.array_equal(kept[:, 0], straight[:, 0]) and np.array_equal(kept[:, 2], straight[:, 2])
    swerve = straight.copy()
    swerve[:, 1] = -np.linspace(0.3, 2.4, 8)  # out to 3.4 m from the line: passing something
    assert np.array_equal(lane_keep(swerve, target, 1.75), swerve)
    assert np.array_equal(lane_keep(straight, (20.0, 1.0, 0.3), 1.75), straight)  # a curve
    assert np.array_equal(lane_keep(straight, (20.0, 2.0, 0.0), 1.75), straight)  # ego 2 m off
    assert np.array_equal(lane_keep(straight, target, 0.0), straight)  # off
    # a route 0.05 rad to the right through (20, 0): the line passes 20 sin 0.05 = 1.0 m left of
    # the ego; after 2 s every pose lies on it, moved across it (along (-sin h, cos h))
    h = 0.05
    kept = lane_keep(straight, (20.0, 0.0, h), 1.75)
    offsets = np.cos(h) * kept[:, 1] - np.sin(h) * (kept[:, 0] - 20.0)
    assert offsets[3:].tolist() == pytest.approx([0.0] * 5, abs=1e-12)
    before = np.cos(h) * straight[:, 1] - np.sin(h) * (straight[:, 0] - 20.0)
    assert offsets[0] == pytest.approx(0.75 * before[0])
    along = np.cos(h) * (kept[:, 0] - straight[:, 0]) + np.sin(h) * (kept[:, 1] - straight[:, 1])
    assert along.tolist() == pytest.approx([0.0] * 8, abs=1e-12)


def test_agent_config_errors(tmp_path: Path) -> None:
    default = tmp_path / "default.pt"
    assert read_agent_config("", default).checkpoint == default
    cfg = tmp_path / "a.json"
    cfg.write_text(json.dumps({"checkpoint": "sub/m.pt", "lambda": 0.3, "threads": 2,
                               "max_speed_mps": 8.0, "envelope_decel_mps2": 3,
                               "kinematic_filter": True, "speed_lead_s": 0.5,
                               "imitation_weight": 0.5, "speed_window_s": 1.5}))  # fmt: skip
    got = read_agent_config(str(cfg), default)
    assert got.checkpoint == tmp_path / "sub" / "m.pt" and got.lambda_ == 0.3 and got.threads == 2
    assert got.max_speed_mps == 8.0 and got.envelope_decel_mps2 == 3.0 and got.kinematic_filter
    assert not read_agent_config("", default).kinematic_filter and got.speed_lead_s == 0.5
    assert read_agent_config("", default).speed_lead_s == 0.0
    assert got.imitation_weight == 0.5 and read_agent_config("", default).imitation_weight is None
    cfg.write_text(json.dumps({"speed_window_s": 0}))
    assert read_agent_config(str(cfg), default).speed_window_s == 0.0  # the window off
    assert got.speed_window_s == 1.5 and read_agent_config("", default).speed_window_s == 2.0
    assert read_agent_config("", default).max_speed_mps == HIGHWAY_CRUISE_MPS
    assert read_agent_config("", default).envelope_decel_mps2 == 0.0  # off unless asked for
    assert read_agent_config("", default).lane_keep_m == 0.0  # off unless asked for
    cfg.write_text("lane_keep_m: 1.75\n")
    assert read_agent_config(str(cfg), default).lane_keep_m == 1.75
    for text, needle in [("lambda: -1\n", "lambda must be finite and >= 0"),
                         ("max_speed_mps: 0\n", "max_speed_mps finite and > 0"),
                         ("envelope_decel_mps2: -1\n", "envelope_decel_mps2 must be finite"),
                         ("kinematic_filter: 1\n", "kinematic_filter must be true or false"),
                         ("speed_lead_s: 4\n", "speed_lead_s must be >= 0 and below"),
                         ("imitation_weight: -1\n", "imitation_weight must be finite and >= 0"),
                         ("speed_window_s: 5\n", "speed_window_s must be >= 0 and at most"),
                         ("lane_keep_m: -1\n", "lane_keep_m must be finite and >= 0"),
                         ("speed: 3\n", "keys among checkpoint, lambda, camera, threads"),
                         ("camera: {width: x}\n", "bad camera"),
                         ("threads: x\n", "bad lambda, camera, threads, max_speed_mps"),
                         (": : :\n", "cannot read")]:  # fmt: skip
        cfg.write_text(text)
        with pytest.raises(ConfigError, match=needle):
            read_agent_config(str(cfg), default)


def test_train_planner_cli_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import run

    (tmp_path / "data").mkdir()
    for args, needle in [
        (["--scratch", "--encoder", str(tmp_path / "e.pt")], "exactly one of --encoder"),
        ([], "exactly one of --encoder"),
        (["--encoder", str(tmp_path / "e.pt")], "does not exist; run `harness train pretrain`"),
        (["--scratch"], "has no manifest.json"),
        (["--scratch", "--bev-weight", "-1"], "--bev-weight"),
        (["--scratch", "--imitation-loss-weight", "-1"], "--imitation-loss-weight"),
        (["--scratch", "--init", str(tmp_path / "m.pt")], "exactly one of --encoder"),
        (["--init", str(tmp_path / "m.pt")], "--init " + str(tmp_path / "m.pt") + " does not"),
        (["--scratch", "--recovery", "1.5"], "--recovery must be"),
        (["--scratch", "--recovery", "0.5", "--recovery-shift-m", "0.1"], "--recovery-shift-m"),
    ]:
        code = run(
            ["train", "planner", str(tmp_path / "data"), *args, "--out", str(tmp_path / "o")]
        )
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_time_limit_stops_after_a_step_and_checkpoints(tmp_path: Path, tiny_arch: None) -> None:
    cfg = TrainConfig(out=tmp_path, epochs=5, batch=2, max_minutes=1e-6, planner=TINY)
    history = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _lookup).fit(_samples(6), _samples(2))
    assert len(history) == 1 and history[0]["steps"] == 1.0
    assert load_checkpoint(tmp_path / "model.pt").train["steps"] == 1


# --- the auxiliary BEV head (drivejepa.planner.bev) -----------------------------------------------
def test_bev_grid_and_box_cells_by_hand() -> None:
    """24 x 16 cells of 2 m from (-8, -16) to (40, 16); a 4.9 x 2.1 m car 10 m ahead reaches the
    cells whose centres are within its half extents + 1 m (x 7..13, y -1..1: 8 cells), however
    the ego is placed and turned in the world; a 0.6 m pedestrian marks the one cell it is in."""
    centres = cell_centres()
    assert centres.shape == (BEV_NX, BEV_NY, 2) == (24, 16, 2)
    assert centres[0, 0].tolist() == [-7.0, -15.0] and centres[-1, -1].tolist() == [39.0, 15.0]
    expected = np.zeros((24, 16), dtype=bool)
    expected[7:11, 7:9] = True  # x centres 7, 9, 11, 13; y centres -1, 1
    for origin, yaw in [((0.0, 0.0), 0.0), ((100.0, 50.0), math.pi / 2), ((-3.0, 7.0), -2.5)]:
        world = to_world(centres, origin, yaw)
        car = to_world(np.array([10.0, 0.0]), origin, yaw)
        cells = box_cells(world, np.array([[car[0], car[1], yaw, 4.9, 2.1]]))
        assert np.array_equal(cells, expected)
        ped = to_world(np.array([20.5, -3.5]), origin, yaw)
        cells = box_cells(world, np.array([[ped[0], ped[1], yaw, 0.6, 0.6]]))
        assert np.argwhere(cells).tolist() == [[14, 6]]
    assert not box_cells(centres, np.zeros((0, 5))).any()


def test_bev_target_of_a_scene() -> None:
    """The straight town's road (y -3.5 .. 3.5) seen from the ego at (0, 1.75) heading +x: the
    drivable columns are those with centres y -5 .. 1 (right of the ego is -y in the world), all
    24 rows; a car 10 m ahead at 5 m/s covers x 7..13 now and x 13..17 at t + 1 s."""
    scene = make_scene(speed_mps=5.0, agents=[(10.0, 1.75, 0.0, 5.0, ActorKind.VEHICLE)])
    target = bev_target(scene, straight_town())
    assert target.shape == (NUM_BEV, 24, 16)
    drivable = np.zeros((24, 16))
    drivable[:, 5:9] = 1.0
    assert np.array_equal(target[BevChannel.DRIVABLE], drivable)
    now = np.zeros((24, 16))
    now[7:11, 7:9] = 1.0
    assert np.array_equal(target[BevChannel.OCCUPIED], now)
    later = np.zeros((24, 16))
    later[10:13, 7:9] = 1.0
    assert np.array_equal(target[BevChannel.OCCUPIED_1S], later)
    empty = bev_target(make_scene(), straight_town())
    assert not empty[BevChannel.OCCUPIED].any() and not empty[BevChannel.OCCUPIED_1S].any()


def _bev_lookup(route: str, index: int) -> tuple[Any, Any]:
    car = (5.0 + 4.0 * (index % 5), 1.75, 0.0, 3.0, ActorKind.VEHICLE)
    return make_scene(speed_mps=4.0 + 8.0 * (index % 4) / 3, agents=[car]), straight_town()


def test_bev_head_trains_only_when_weighted(tmp_path: Path, tiny_arch: None) -> None:
    """--bev-weight > 0 gives the planner the BEV head (the checkpoint keeps it, the agent never
    runs it), its loss falls, val reports its IoU per channel; 0 (the recipe) has no head; a
    resumed run keeps its weight."""
    # 20 epochs: the loss sits on a plateau (empty maps) for ~8 epochs before the drivable columns
    # are learnt; at 12 only some initialisations had left it (1 of seeds 0-2)
    cfg = TrainConfig(out=tmp_path, epochs=20, batch=4, lr=1e-2, bev_weight=1.0, planner=TINY)
    assert cfg.planner.bev and not TrainConfig(out=tmp_path, planner=TINY).planner.bev
    torch.manual_seed(0)
    trainer = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _bev_lookup)
    history = trainer.fit(_samples(8), _samples(4, seed=1))
    assert history[-1]["train_bev"] < 0.3 * history[0]["train_bev"]
    assert {"val_bev_iou_occupied", "val_bev_iou_occupied_1s", "val_bev_iou_drivable"} <= set(
        history[-1]
    )
    assert history[-1]["val_bev_iou_drivable"] > 0.9  # the same four columns in every scene
    ck = load_checkpoint(tmp_path / "model.pt", CAMERA)
    assert ck.planner.cfg.bev and ck.train["bev_weight"] == 1.0
    x, s = torch.rand(1, 2, 3, 32, 64), torch.zeros(1, 11)
    with torch.no_grad():
        assert ck.planner(x, s).bev_logits is None  # as the agent calls it: no BEV asked for
    plain = PlannerTrainer(replace(cfg, bev_weight=0.0, out=tmp_path / "p"), TinyEncoder(), CAMERA,
                           _bev_lookup)  # fmt: skip
    assert plain.model.bev_head is None and "train_bev" not in plain.fit(_samples(4), [])[-1]
    other = PlannerTrainer(replace(cfg, epochs=13, resume=True, bev_weight=0.5), TinyEncoder(),
                           CAMERA, _bev_lookup)  # fmt: skip
    with pytest.raises(ConfigError, match="bev_weight 1.0 -> 0.5"):
        other.fit(_samples(8), _samples(4, seed=1))
    with pytest.raises(ConfigError, match="--bev-weight must be finite"):
        replace(cfg, bev_weight=-1.0)


def test_imitation_head_trains_jointly_only_when_weighted(tmp_path: Path, tiny_arch: None) -> None:
    """--imitation-loss-weight > 0 gives the planner an imitation head trained with the rest:
    its cross-entropy falls, val reports its top-1, the checkpoint keeps it (and the agent's
    runtime reads its probabilities); 0 (the recipe) has none; a resumed run keeps the weight."""
    # 20 epochs: at 10 the head's gain over uniform logits depended on the initialisation (ratio
    # 0.2-1.2 over seeds 0-2); at 20 it was 0.05-0.6 for all of them
    cfg = TrainConfig(out=tmp_path, epochs=20, batch=4, lr=1e-2, imitation_loss_weight=1.0,
                      planner=TINY)  # fmt: skip
    assert cfg.planner.imitation and not TrainConfig(out=tmp_path, planner=TINY).planner.imitation
    torch.manual_seed(0)
    trainer = PlannerTrainer(cfg, TinyEncoder(), CAMERA, _lookup)
    history = trainer.fit(_samples(8), _samples(4, 1))
    assert "train_imitation_score" in history[0] and 0.0 <= history[-1]["val_imitation_top1"] <= 1
    # the target sharpens as the proposals spread, so the logged KL need not fall; on the final
    # proposals the trained head is much closer to its target than uniform logits are
    batch = collate(_samples(8))
    with torch.no_grad():
        out = trainer.model.eval()(batch["frames"], batch["status"])
    assert out.imitation_logits is not None
    trained = imitation_score_term(out.imitation_logits, out.final, batch["expert"])
    uniform = imitation_score_term(torch.zeros_like(out.imitation_logits), out.final,
                                   batch["expert"])  # fmt: skip
    assert float(trained) < 0.75 * float(uniform)
    ck = load_checkpoint(tmp_path / "model.pt", CAMERA)
    assert ck.planner.imitation_head is not None and ck.train["imitation_loss_weight"] == 1.0
    with torch.no_grad():
        logits = ck.planner(torch.rand(1, 2, 3, 32, 64), torch.zeros(1, 11)).imitation_logits
    assert logits is not None and logits.shape == (1, TINY.proposals)
    plain = PlannerTrainer(replace(cfg, imitation_loss_weight=0.0, out=tmp_path / "p"),
                           TinyEncoder(), CAMERA, _lookup)  # fmt: skip
    assert plain.model.imitation_head is None
    assert "train_imitation_score" not in plain.fit(_samples(4), [])[-1]
    other = PlannerTrainer(replace(cfg, epochs=21, resume=True, imitation_loss_weight=0.5),
                           TinyEncoder(), CAMERA, _lookup)  # fmt: skip
    with pytest.raises(ConfigError, match="imitation_loss_weight 1.0 -> 0.5"):
        other.fit(_samples(8), _samples(4, seed=1))
    with pytest.raises(ConfigError, match="--imitation-loss-weight must be finite"):
        replace(cfg, imitation_loss_weight=-1.0)


def test_bev_loss_by_hand() -> None:
    """Logit 0 everywhere: BCE ln 2 per cell; a box cell's positive weighs 8 in the occupancy
    channels and 1 in the drivable one. One box cell and one drivable cell among 2 x 3 x 24 x 16."""
    logits = torch.zeros(2, NUM_BEV, BEV_NX, BEV_NY)
    targets = torch.zeros_like(logits)
    targets[0, BevChannel.OCCUPIED, 3, 4] = 1.0
    targets[1, BevChannel.DRIVABLE, 0, 0] = 1.0
    cells = 2 * NUM_BEV * BEV_NX * BEV_NY
    expected = math.log(2.0) * (cells - 2 + 8.0 + 1.0) / cells
    assert bev_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_recovery_views_get_no_score_targets(tmp_path: Path) -> None:
    """Items seen from a recovery view train the trajectory terms only: the scorer is never asked
    for their scenes, and a batch of views only still steps."""
    data = _samples(8)
    for item in data:
        item["view"] = torch.zeros(3)
    for item in data[::2]:
        item["view"] = torch.tensor([0.0, 1.5, 0.05])
    asked: list[int] = []

    def lookup(route: str, index: int) -> tuple[Any, Any]:
        asked.append(index)
        return _lookup(route, index)

    cfg = TrainConfig(out=tmp_path, epochs=1, batch=4, planner=TINY)
    trainer = PlannerTrainer(cfg, TinyEncoder(), CAMERA, lookup)
    row = trainer.train_epoch(data, None)
    assert sorted(asked) == [1, 3, 5, 7] and row["steps"] == 2.0
    asked.clear()
    views_only = trainer.train_epoch(data[::2], None)
    assert asked == [] and views_only["train_score"] == 0.0 and views_only["steps"] == 1.0
