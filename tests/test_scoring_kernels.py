"""Each numba kernel of the scorer equals its test oracle, the vectorised NumPy path it replaced
(``tests/oracles``):
the LQR rollout (to 1e-9), TTC, NC's contacts, the box facts and centre-line distance of
:func:`ego_areas`, DDC, heading unwrap and the banded Savitzky-Golay filters, on the hand-built
straight-town scenes and on synthetic scenes on the built-in Harness01 town."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pytest

from harness.dynamics.lqr import NUM_POSES, LQRConfig, lqr_rollout
from harness.maps import load_town
from harness.world.state import ActorKind
from teachers.rollout import full_plan, navsim_rollout, rollout_candidates, scene_lqr_config
from teachers.scene import Scene
from teachers.scoring import comfort, compliance
from teachers.scoring.aggregate import state_bounds
from teachers.scoring.collisions import (
    AgentTable,
    contacts,
    navsim_time_to_collision,
    time_to_collision,
)
from teachers.scoring.egopose import EgoPose
from teachers.scoring.rasters import SceneRasters, ScoringMap, ego_areas
from tests.oracles.lqr_navsim_numpy import navsim_rollout_numpy
from tests.oracles.lqr_numpy import lqr_rollout_numpy
from tests.oracles.scoring_numpy import (
    centerline_distance_xy_numpy,
    contacts_numpy,
    driving_direction_compliance_numpy,
    ego_areas_numpy,
    navsim_comfort_numpy,
    navsim_ttc_numpy,
    time_to_collision_numpy,
    unwrap_time_numpy,
)
from tests.oracles.synthetic import candidate_fan, synthetic_scene
from tests.test_scoring_scenes import make_scene, straight_poses, straight_town


def _straight_case() -> tuple[Scene, ScoringMap, np.ndarray]:
    """Straight-town scene with a car ahead, an oncoming car and a static object, and plans
    that brake, cruise, accelerate and swerve into them."""
    scene = make_scene(
        agents=[
            (25.0, 1.75, 0.0, 2.0, ActorKind.VEHICLE),
            (60.0, -1.75, np.pi, 8.0, ActorKind.VEHICLE),
            (40.0, 5.25, 0.0, 0.0, ActorKind.STATIC),
        ]
    )
    plans = [straight_poses(0.0, 1.75, v, a) for v in (0.0, 5.0, 10.0) for a in (-3.0, 0.0, 2.0)]
    swerve = straight_poses(0.0, 1.75, 10.0)
    swerve[:, 1] += np.linspace(0.0, 5.0, NUM_POSES)
    return scene, straight_town(), np.stack([*plans, swerve])


def _synthetic_case(seed: int) -> tuple[Scene, ScoringMap, np.ndarray]:
    town = load_town("Harness01")
    scene = synthetic_scene(town, n_agents=30, seed=seed)
    return scene, town, candidate_fan(scene, 12, 12)


CASES = [pytest.param(_straight_case, id="straight")] + [
    pytest.param(lambda s=s: _synthetic_case(s), id=f"harness01-{s}") for s in (0, 1, 2)
]


Case = tuple[Scene, ScoringMap, np.ndarray, SceneRasters]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> Case:
    scene, town, plans = request.param()
    states = rollout_candidates(scene, plans)
    return scene, town, states, SceneRasters.build(scene, town, state_bounds(states))


@pytest.mark.parametrize("make", CASES)
def test_lqr_kernel_matches_numpy(make: Callable[[], tuple[Scene, ScoringMap, np.ndarray]]) -> None:
    scene, _, plans = make()
    plan = full_plan(scene, plans)
    cfg, yaw_rate = scene_lqr_config(scene), scene.ego_yaw_rate_radps
    v0, a0 = scene.ego_speed_mps, scene.ego_accel_mps2
    fast = lqr_rollout(plan, v0, a0, yaw_rate_radps=yaw_rate, config=cfg)
    ref = lqr_rollout_numpy(plan, v0, a0, yaw_rate_radps=yaw_rate, config=cfg)
    assert fast.shape == ref.shape
    np.testing.assert_allclose(fast, ref, rtol=0.0, atol=1e-9)


def test_lqr_kernel_matches_numpy_with_given_steer_and_batch_of_one() -> None:
    plan = np.stack([straight_poses(0.0, 0.0, 8.0, -2.0)])
    plan[0, :, 1] += 0.02 * np.arange(NUM_POSES) ** 1.5
    uneven = LQRConfig(gain_speeds_mps=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 40.0))  # np.interp path
    for steer, yaw_rate, cfg in ((0.05, None, None), (None, -0.1, uneven), (None, None, None)):
        fast = lqr_rollout(plan, 8.0, 0.5, steer_rad=steer, yaw_rate_radps=yaw_rate, config=cfg)
        ref = lqr_rollout_numpy(
            plan, 8.0, 0.5, steer_rad=steer, yaw_rate_radps=yaw_rate, config=cfg
        )
        np.testing.assert_allclose(fast, ref, rtol=0.0, atol=1e-9)


def test_collision_kernels_match_numpy(case: Case) -> None:
    scene, _, states, rasters = case
    pose = EgoPose.of(states)
    table = AgentTable.of(scene)
    fast, ref = contacts(scene, pose, table), contacts_numpy(scene, pose, table)
    assert sorted(zip(fast.b, fast.t, fast.a, strict=True)) == sorted(
        zip(ref.b, ref.t, ref.a, strict=True)
    )
    np.testing.assert_array_equal(fast.start, ref.start)
    areas = ego_areas_numpy(rasters, states, scene.ego_length_m, scene.ego_width_m, pose)
    np.testing.assert_array_equal(
        time_to_collision(scene, states, areas, ref, pose),
        time_to_collision_numpy(scene, states, areas, ref, pose),
    )


def test_navsim_ttc_kernel_matches_numpy(case: Case) -> None:
    scene, _, states, rasters = case
    pose = EgoPose.of(states)
    hits = contacts(scene, pose, AgentTable.of(scene))
    areas = ego_areas(rasters, states, scene.ego_length_m, scene.ego_width_m, pose)
    loose = areas.multiple_lanes | areas.off_drivable | areas.in_junction
    for last, stopped in ((31, 5e-3), (40, 0.05)):
        kw = {"last_step": last, "stopped_mps": stopped}
        fast = navsim_time_to_collision(scene, pose, loose, hits.start, **kw)
        ref = navsim_ttc_numpy(scene, pose, loose, hits.start, **kw)
        np.testing.assert_array_equal(fast, ref)


def test_navsim_rollout_kernel_matches_numpy(case: Case) -> None:
    scene, _, states, _ = case
    plan = full_plan(scene, states[:, 1:, :3])
    args = (scene.ego_speed_mps, scene.ego_accel_mps2, scene.ego_yaw_rate_radps,
            scene.ego_wheelbase_m, scene.ego_rear_axle_to_center_m)  # fmt: skip
    np.testing.assert_allclose(navsim_rollout(plan, *args), navsim_rollout_numpy(plan, *args),
                               rtol=0.0, atol=1e-8)  # fmt: skip


def test_area_kernels_match_numpy(case: Case) -> None:
    scene, _, states, rasters = case
    pose = EgoPose.of(states)
    fast = ego_areas(rasters, states, scene.ego_length_m, scene.ego_width_m, pose)
    ref = ego_areas_numpy(rasters, states, scene.ego_length_m, scene.ego_width_m, pose)
    for f in fields(fast):
        np.testing.assert_array_equal(getattr(fast, f.name), getattr(ref, f.name), err_msg=f.name)
    np.testing.assert_array_equal(
        rasters.centerline_distance_xy(pose.x, pose.y),
        centerline_distance_xy_numpy(rasters, pose.x, pose.y),
    )
    np.testing.assert_array_equal(
        compliance.driving_direction_compliance(states, fast),
        driving_direction_compliance_numpy(states, ref),
    )


def test_comfort_kernels_match_numpy(case: Case) -> None:
    _, _, states, _ = case
    yaw = np.ascontiguousarray(states[..., 2])
    np.testing.assert_array_equal(comfort.unwrap_time(yaw), unwrap_time_numpy(yaw))
    signal = states[..., 4]
    for n in (NUM_POSES, 56, 9, 3):
        y = np.ascontiguousarray(np.tile(signal, (1, 2))[:, :n])
        for window, deriv in ((8, 0), (15, 1), (5, 1)):
            band = comfort.savgol_band(n, window, deriv, 0.1)
            dense = y @ comfort.savgol_matrix(n, window, deriv, 0.1)
            np.testing.assert_allclose(comfort._apply_band(y, *band), dense, atol=1e-9, rtol=1e-12)


def test_navsim_comfort_signals_match_scipy(case: Case) -> None:
    scene, _, _, _ = case
    plans = candidate_fan(scene, n_curvature=6, n_accel=6)
    states = np.ascontiguousarray(rollout_candidates(scene, plans))
    d = scene.ego_rear_axle_to_center_m
    for order in (3, 2):
        fast = comfort.navsim_comfort_signals(states, d, yaw_accel_order=order)
        ref = navsim_comfort_numpy(states, d, yaw_accel_order=order)
        for name, want in ref.items():
            # the banded kernel sums in another order than scipy's correlate: equal to rounding,
            # so a value may land on the other side of an 8-decimal rounding step (1e-8)
            np.testing.assert_allclose(getattr(fast, name), want, rtol=0, atol=1.5e-8, err_msg=name)
