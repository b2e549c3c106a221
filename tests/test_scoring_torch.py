"""The torch engine (rollout + every metric on a torch device) reproduces the NumPy engine: in
float64 the rollouts agree to ~1e-6 m and every sub-score is equal; in float32 at least 99 % of
the candidates agree on every sub-score (float32 can flip decisions that sit on a threshold)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.maps import load_town  # noqa: E402
from teachers.rollout import full_plan, rollout_candidates  # noqa: E402
from teachers.scoring import Metric, score_candidates, score_states  # noqa: E402
from teachers.scoring.aggregate import SUB_METRICS, plan_window, state_bounds  # noqa: E402
from teachers.scoring.rasters import SceneRasters  # noqa: E402
from teachers.scoring.synthetic import candidate_fan, synthetic_scene  # noqa: E402
from teachers.scoring.torch_engine import score_candidates_torch  # noqa: E402
from tests.test_scoring_scenes import make_scene, straight_poses, straight_town  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _both(scene, town, plans, dtype, device="cpu", **kw):
    plan = full_plan(scene, plans)
    rasters = SceneRasters.build(scene, town, plan_window(plan))
    states = rollout_candidates(scene, plans, rollout=kw.get("rollout", True))
    fast = score_states(scene, town, states, rasters=rasters)
    tch, t_states = score_candidates_torch(
        scene, town, plans, device=device, dtype=dtype, rasters=rasters, **kw
    )
    return fast, tch, states, t_states


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("device", DEVICES)
def test_torch_float64_equals_numpy_on_harness01(seed: int, device: str) -> None:
    town = load_town("Harness01")
    scene = synthetic_scene(town, n_agents=30, seed=seed)
    plans = candidate_fan(scene, n_curvature=12, n_accel=10)
    fast, tch, states, t_states = _both(scene, town, plans, torch.float64, device)
    np.testing.assert_allclose(t_states, states, atol=1e-4)
    for m in SUB_METRICS:
        np.testing.assert_allclose(tch[m], fast[m], atol=1e-6, err_msg=m.name)
    np.testing.assert_allclose(tch[Metric.EPDMS], fast[Metric.EPDMS], atol=1e-6)
    np.testing.assert_allclose(tch.progress_m, fast.progress_m, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_float32_agrees_with_numpy(device: str) -> None:
    town = load_town("Harness01")
    scene = synthetic_scene(town, n_agents=30, seed=1)
    plans = candidate_fan(scene, n_curvature=12, n_accel=10)
    fast, tch, _, _ = _both(scene, town, plans, torch.float32, device)
    same = np.all(
        np.isclose(tch.values[list(SUB_METRICS)], fast.values[list(SUB_METRICS)], atol=1e-4),
        axis=0,
    )
    assert same.mean() >= 0.99


def test_torch_matches_numpy_on_straight_road_scenes() -> None:
    from harness.world.state import ActorKind, LightState

    town = straight_town()
    scene = make_scene(
        ego_xy=(35.0, 1.75),
        agents=[
            (60.0, -1.75, np.pi, 6.0, ActorKind.VEHICLE),
            (55.0, 1.75, 0.0, 0.0, ActorKind.STATIC),
        ],
        light=LightState.RED,
        previous_plan=straight_poses(30.0, 1.75, 10.0),
    )
    plans = candidate_fan(scene, n_curvature=9, n_accel=5, max_curvature_per_m=0.05)
    for rollout in (True, False):
        fast, tch, _, _ = _both(scene, town, plans, torch.float64, rollout=rollout)
        np.testing.assert_allclose(tch.values, fast.values, atol=1e-6)


def test_score_candidates_device_dispatch() -> None:
    town = straight_town()
    scene = make_scene()
    plans = np.stack([straight_poses(0.0, 1.75, 10.0), straight_poses(0.0, 1.75, 10.0, -2.0)])
    cpu, _ = score_candidates(scene, town, plans)
    tch, states = score_candidates(scene, town, plans, device="torch-cpu")
    assert states.shape == (2, 41, 7)
    np.testing.assert_allclose(tch.values, cpu.values, atol=1e-9)
    with pytest.raises(Exception, match="not available"):
        score_candidates(scene, town, plans, device="tpu")


def test_numpy_engine_uses_state_window_rasters_like_before() -> None:
    town = load_town("Harness01")
    scene = synthetic_scene(town, n_agents=10, seed=2)
    states = rollout_candidates(scene, candidate_fan(scene, 4, 4))
    a = score_states(scene, town, states)
    b = score_states(
        scene, town, states, rasters=SceneRasters.build(scene, town, state_bounds(states))
    )
    np.testing.assert_array_equal(a.values, b.values)
