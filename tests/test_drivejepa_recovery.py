"""Recovery views (``drivejepa.data.recovery``, ``harness train planner --recovery``): the label's
way back by hand (a straight plan at 10 m/s, a plan that stops), the status and the ego moved
into the view's frame by hand, the clearance test, the scorer's scene moved rigidly, the seeded
draw, and the dataset's items (a zero view renders exactly the stored frame)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from drivejepa.data.recovery import (
    RecoveryConfig,
    draw_view,
    ego_is_clear,
    recovery_label,
    return_weights,
    view_scene,
    view_state,
    view_status,
)
from drivejepa.data.scenes import SceneSource
from drivejepa.data.store import PlannerSamples
from drivejepa.status import ego_status
from drivejepa.train.planner import TrainConfig, batch_scenes, collate
from harness.errors import ConfigError
from harness.geometry import to_world
from harness.world.state import ActorArrays, ActorKind, WorldState
from tests.test_drivejepa_planner import tiny_arch  # noqa: F401 (a fixture)


def _straight(step_m: float) -> np.ndarray:
    """(8, 3) a plan straight ahead, ``step_m`` per 0.5 s."""
    return np.array([[step_m * k, 0.0, 0.0] for k in range(1, 9)])


def test_label_returns_to_the_plan_over_the_distance_of_three_seconds() -> None:
    # 10 m/s: L = 30 m; pose k has driven 5k m, so w = (1 + cos(pi k / 6)) / 2
    label = recovery_label(_straight(5.0), np.array([0.0, 1.0, 0.0]), 10.0)
    w = (1.0 + np.cos(np.pi * np.arange(1, 9) / 6.0)) / 2.0
    w[5:] = 0.0  # 30 m and beyond: back on the plan
    np.testing.assert_allclose(label[:, 0], 5.0 * np.arange(1, 9), atol=1e-5)
    # the view stands 1 m right of the plan: the plan lies 1 m to its left
    np.testing.assert_allclose(label[:, 1], w - 1.0, atol=1e-5)
    assert label[2, 1] == pytest.approx(-0.5, abs=1e-6)  # half way at 15 m
    # heading of pose 3: the step from pose 2 (w 0.75) to pose 4 (w 0.25) is 10 m on, 0.5 m left
    assert label[2, 2] == pytest.approx(math.atan2(-0.5, 10.0), abs=1e-6)
    np.testing.assert_allclose(label[6:, 2], 0.0, atol=1e-7)  # back on the plan, along it


def test_a_plan_that_stops_keeps_the_offset_it_has_left() -> None:
    # 2 m/s: L = max(6, 10) = 10 m; the plan stops after 5 m, where w = (1 + cos(pi / 2)) / 2
    plan = np.array([[min(2.5 * k, 5.0), 0.0, 0.0] for k in range(1, 9)])
    np.testing.assert_allclose(return_weights(plan, 2.0)[1:], 0.5, atol=1e-12)
    label = recovery_label(plan, np.array([0.0, -2.0, 0.0]), 2.0)
    np.testing.assert_allclose(label[1:, 1], 1.0, atol=1e-5)  # 2 m right, half way back
    assert np.all(np.isfinite(label))
    assert label[-1, 2] == 0.0  # standing still: the heading is the plan's


def test_zero_view_is_the_recording() -> None:
    plan = np.array([[4.0 * k, 0.1 * k * k, 0.02 * k] for k in range(1, 9)])
    zero = np.zeros(3)
    np.testing.assert_allclose(recovery_label(plan, zero, 8.0), plan, atol=1e-5)
    status = ego_status(np.array([30.0, -2.0, 0.1]), 1, 8.0, (0.5, 0.0))
    np.testing.assert_array_equal(view_status(status, zero), status)


def test_status_target_in_the_view_frame() -> None:
    status = ego_status(np.array([20.0, 0.0, 0.0]), 1, 8.0, (0.5, -0.2))
    turned = view_status(status, np.array([0.0, 0.0, 0.1]))  # the ego turned 0.1 rad right
    assert turned[0] == pytest.approx(20.0 * math.cos(0.1), abs=1e-5)
    assert turned[1] == pytest.approx(-20.0 * math.sin(0.1), abs=1e-5)  # now to its left
    assert turned[2] == pytest.approx(-0.1, abs=1e-6)
    np.testing.assert_array_equal(turned[3:], status[3:])  # speed, accel, command as recorded
    moved = view_status(status, np.array([0.0, 1.5, 0.0]))
    assert moved[1] == pytest.approx(-1.5)
    far = view_status(ego_status(np.array([59.0, 0.0, 0.0]), 1, 8.0, (0, 0)),
                      np.array([0.0, -70.0, 0.0]))  # fmt: skip
    assert far[1] == pytest.approx(60.0)  # clipped as the status clips


def _state(x: list[float], y: list[float], yaw: list[float]) -> WorldState:
    n = len(x)
    f = np.zeros(n)
    kind = np.full(n, int(ActorKind.VEHICLE), dtype=np.int8)
    actors = ActorArrays(
        actor_id=np.arange(n), kind=kind, role=np.zeros(n, np.int8), valid=np.ones(n, bool),
        x=np.array(x, float), y=np.array(y, float), z=f.copy(), yaw=np.array(yaw, float),
        speed=f.copy(), accel=f.copy(), yaw_rate=f.copy(), length=np.full(n, 4.8),
        width=np.full(n, 2.0), height=np.full(n, 1.6),
    )  # fmt: skip
    return WorldState(0, 0.0, actors, np.zeros(0, np.int8), np.zeros(0))


def test_view_state_moves_the_ego_to_its_right() -> None:
    # CARLA's frame seen from above: heading +x has its right at +y, heading +y at -x
    east = view_state(_state([10.0], [5.0], [0.0]), np.array([0.0, 1.0, 0.05]))
    assert (east.actors.x[0], east.actors.y[0]) == pytest.approx((10.0, 6.0))
    assert east.actors.yaw[0] == pytest.approx(0.05)
    south = view_state(_state([10.0], [5.0], [math.pi / 2]), np.array([0.0, 1.0, 0.0]))
    assert (south.actors.x[0], south.actors.y[0]) == pytest.approx((9.0, 5.0))


def test_a_view_into_another_car_is_not_clear() -> None:
    # a car 3.5 m to the ego's right, side by side
    state = _state([0.0, 0.0], [0.0, 3.5], [0.0, 0.0])

    def clear(view: list[float]) -> bool:
        return ego_is_clear([view_state(state, np.array(view))])

    assert not clear([0.0, 2.0, 0.0])  # 0.5 m apart, boxes 2 m wide
    assert clear([0.0, 1.4, 0.0])  # 0.1 m between the flanks
    assert clear([0.0, -2.0, 0.0])
    far = _state([0.0, 0.0], [0.0, 8.0], [0.0, 0.0])
    view = np.array([0.0, 2.0, 0.0])
    assert not ego_is_clear([view_state(far, view), view_state(state, view)])  # any state counts


def test_draw_is_seeded_and_within_bounds() -> None:
    cfg = RecoveryConfig(probability=1.0, min_shift_m=0.5, max_shift_m=2.0, max_yaw_rad=0.1)
    views = [draw_view(cfg, 8.0, 0, 1, i) for i in range(200)]
    assert all(v is not None for v in views)
    arr = np.array(views)
    assert np.all((np.abs(arr[:, 1]) >= 0.5) & (np.abs(arr[:, 1]) <= 2.0))
    assert np.all(np.abs(arr[:, 2]) <= 0.1) and np.all(arr[:, 0] == 0.0)
    assert (arr[:, 1] > 0).any() and (arr[:, 1] < 0).any()
    again = draw_view(cfg, 8.0, 0, 1, 7)
    assert again is not None and np.array_equal(again, arr[7])
    other = draw_view(cfg, 8.0, 0, 2, 7)
    assert other is not None and not np.array_equal(other, arr[7])  # a new draw each epoch
    assert draw_view(cfg, 2.9, 0, 1, 7) is None  # below the least speed
    assert draw_view(RecoveryConfig(), 8.0, 0, 1, 7) is None  # off by default
    half = [draw_view(replace_p(cfg, 0.5), 8.0, 0, 1, i) for i in range(400)]
    assert 0.4 < np.mean([v is not None for v in half]) < 0.6


def replace_p(cfg: RecoveryConfig, p: float) -> RecoveryConfig:
    return RecoveryConfig(p, cfg.min_shift_m, cfg.max_shift_m, cfg.max_yaw_rad, cfg.min_speed_mps)


def test_bad_recovery_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="--recovery must be in"):
        RecoveryConfig(probability=1.5)
    with pytest.raises(ConfigError, match="--recovery-shift-m"):
        RecoveryConfig(probability=0.5, max_shift_m=0.1)
    with pytest.raises(ConfigError, match="--recovery-shift-m"):
        TrainConfig(out=Path("x"), recovery=0.5, recovery_shift_m=float("inf"))


def test_the_scorer_scene_moves_rigidly(drivejepa_collection: Path) -> None:
    source = SceneSource(drivejepa_collection)
    key = next(iter(source.towns_of))
    scene = source.scene(key, 5)
    view = np.array([0.0, 1.5, 0.08])
    moved = view_scene(scene, view)
    yaw = scene.ego_pose[2]
    right = np.array([-math.sin(yaw), math.cos(yaw)])
    np.testing.assert_allclose(moved.ego_pose[:2], scene.ego_pose[:2] + 1.5 * right, atol=1e-9)
    assert moved.ego_pose[2] == pytest.approx(math.remainder(yaw + 0.08, 2 * math.pi))
    # the past keeps its shape: distances between its poses and to the ego are unchanged
    for s in (scene, moved):
        assert s.ego_past.shape == scene.ego_past.shape
    d0 = np.hypot(*(scene.ego_past[:, :2] - scene.ego_pose[:2]).T)
    d1 = np.hypot(*(moved.ego_past[:, :2] - moved.ego_pose[:2]).T)
    np.testing.assert_allclose(d1, d0, atol=1e-9)
    np.testing.assert_array_equal(moved.agent_boxes, scene.agent_boxes)
    np.testing.assert_array_equal(moved.route_xy, scene.route_xy)


def test_dataset_items_from_recovery_views(drivejepa_collection: Path) -> None:
    plain = PlannerSamples(drivejepa_collection, "train")
    views = PlannerSamples(drivejepa_collection, "train",
                           recovery=RecoveryConfig(probability=1.0, min_shift_m=1.0))  # fmt: skip
    assert views.views is not None
    # the renderer draws a zero view exactly as the collection stored the frame
    key, i = plain.index[10]
    r = plain.routes[key]
    k = int(r["scene_frame"][i])
    states = views.views.states(key, k)
    unmoved = [view_state(s, np.zeros(3)) for s in states]
    np.testing.assert_array_equal(views.views.render(key, unmoved), r["frames"][k - 1 : k + 1])
    moving = [j for j in range(len(plain)) if float(plain[j]["status"][3]) >= 3.0]
    assert moving, "the fixture drives should move"
    seen = 0
    for j in moving:
        a, b = plain[j], views[j]
        assert torch.equal(a["status"][3:], b["status"][3:])
        if not bool(b["view"].any()):  # the moved ego would overlap another actor
            assert torch.equal(a["frames"], b["frames"])
            continue
        seen += 1
        assert not torch.equal(a["frames"], b["frames"])
        assert not bool(b["teacher_mask"].any())  # no teachers from a moved pose
        # back in the recorded frame the label is the scene's plan moved sideways by the shift
        # times the return weights of the plan at the scene's speed
        view = b["view"].double().numpy()
        label = b["expert"].double().numpy()
        back = to_world(label[:, :2], view[:2], view[2])
        plan = a["expert"].double().numpy()
        w = return_weights(plan, float(a["status"][3]))
        np.testing.assert_allclose(back[:, 0], plan[:, 0], atol=1e-4)
        np.testing.assert_allclose(back[:, 1] - plan[:, 1], view[1] * w, atol=1e-4)
    assert seen >= len(moving) // 2
    # the scorer's scenes of a batch follow the items' views
    lookup_source = SceneSource(drivejepa_collection)

    def lookup(route: str, index: int):  # type: ignore[no-untyped-def]
        return lookup_source.scene(route, index), None

    batch = collate([views[j] for j in moving[:4]])
    scenes = batch_scenes(lookup, batch)
    for b, (scene, _) in enumerate(scenes):
        recorded = lookup_source.scene(*batch["key"][b])
        gap = float(np.hypot(*(scene.ego_pose[:2] - recorded.ego_pose[:2])))
        assert gap == pytest.approx(abs(float(batch["view"][b, 1])), abs=1e-5)


@pytest.mark.usefixtures("tiny_arch")
def test_fine_tune_from_a_checkpoint_with_recovery_views(
    drivejepa_collection: Path, tmp_path: Path
) -> None:
    from drivejepa.checkpoint import load_checkpoint, save_checkpoint
    from drivejepa.train.planner import read_manifest_camera, train_from_data
    from tests.test_drivejepa_planner import TINY, tiny_planner

    camera = read_manifest_camera(drivejepa_collection)
    start = tiny_planner(seed=5)
    init = save_checkpoint(tmp_path / "start.pt", start, camera, {"epochs": 3})
    cfg = TrainConfig(out=tmp_path / "ft", epochs=1, batch=4, lr=1e-12, encoder_lr_scale=0.0,
                      recovery=1.0, recovery_shift_m=2.0, planner=replace(TINY, dim=16))  # fmt: skip
    history = train_from_data(drivejepa_collection, None, cfg, init=init)
    assert history[-1]["steps"] >= 1 and math.isfinite(history[-1]["train_total"])
    # the val scenes seen from beside the driven pose: the lateral error of the way back
    assert 0.0 <= history[-1]["val_recovery_lateral_2s_m"] < 10.0
    assert 0.0 <= history[-1]["val_recovery_lateral_4s_m"] < 10.0
    ck = load_checkpoint(tmp_path / "ft" / "model.pt", camera)
    assert ck.planner.cfg == TINY  # the architecture is the checkpoint's, not cfg.planner's
    assert ck.train["init"] == str(init) and ck.train["recovery"] == 1.0
    tuned, begun = ck.planner.state_dict(), start.state_dict()
    assert all(torch.allclose(tuned[k], begun[k], atol=1e-6) for k in begun)  # lr 1e-12
    # a resumed run keeps its share of recovery views
    with pytest.raises(ConfigError, match="recovery 1.0 -> 0.0"):
        train_from_data(drivejepa_collection, None,
                        replace(cfg, epochs=2, resume=True, recovery=0.0), init=init)  # fmt: skip
