"""One test per PDMS/EPDMS sub-metric on the hand-built straight road (see test_scoring_scenes),
with the answers worked out by hand in the comments. Plans are scored as given
(``rollout=False``: states by finite differences) so the geometry is exact."""

from __future__ import annotations

import numpy as np
import pytest

from harness.dynamics.lqr import NUM_POSES
from harness.world.state import ActorKind, LightState
from teachers.scoring import Metric, score_candidates
from teachers.scoring.aggregate import NUM_METRICS, with_aggregates
from tests.test_scoring_scenes import make_scene, straight_poses, straight_town

TOWN = straight_town()


def score(scene, plans, **kw):
    return score_candidates(scene, TOWN, np.stack(plans), rollout=False, **kw)[0]


def test_head_on_collision_is_at_fault() -> None:
    # ego 10 m/s east, a car 30 m ahead driving west at 5 m/s in the ego lane: centres meet
    # within 4.9 m at t = (30 - 4.9) / 15 = 1.67 s, front bumper first -> NC 0
    scene = make_scene(agents=[(30.0, 1.75, np.pi, 5.0, ActorKind.VEHICLE)])
    s = score(scene, [straight_poses(0.0, 1.75, 10.0)])
    assert s[Metric.NC][0] == 0.0
    assert s[Metric.TTC][0] == 0.0
    assert s[Metric.PDMS][0] == 0.0


def test_rear_end_into_stopped_ego_is_not_at_fault() -> None:
    # ego stands still; a car 10 m behind drives into it at 5 m/s (contact at ~1 s)
    scene = make_scene(speed_mps=0.0, agents=[(-10.0, 1.75, 0.0, 5.0, ActorKind.VEHICLE)])
    s = score(scene, [straight_poses(0.0, 1.75, 0.0)])
    assert s[Metric.NC][0] == 1.0
    assert s[Metric.TTC][0] == 1.0  # ego stopped: TTC skipped


def test_static_object_hit_scores_half() -> None:
    # a cone-like static box (4.9 x 2.1) 20 m ahead in the lane, ego at 10 m/s hits it
    scene = make_scene(agents=[(20.0, 1.75, 0.0, 0.0, ActorKind.STATIC)])
    s = score(scene, [straight_poses(0.0, 1.75, 10.0)])
    assert s[Metric.NC][0] == 0.5


def test_object_overlapping_at_start_is_ignored() -> None:
    scene = make_scene(agents=[(2.0, 1.75, 0.0, 0.0, ActorKind.VEHICLE)])
    s = score(scene, [straight_poses(0.0, 1.75, 10.0)])
    assert s[Metric.NC][0] == 1.0


def test_leaving_the_road_fails_dac() -> None:
    scene = make_scene()
    off = straight_poses(0.0, 1.75, 10.0)
    off[:, 1] += np.linspace(0.0, 4.0, NUM_POSES)  # drifts 4 m right: corners beyond y = 3.5
    s = score(scene, [straight_poses(0.0, 1.75, 10.0), off])
    assert s[Metric.DAC].tolist() == [1.0, 0.0]
    assert s[Metric.PDMS][1] == 0.0


@pytest.mark.parametrize(("speed", "expected"), [(1.5, 1.0), (3.0, 0.5), (7.0, 0.0)])
def test_driving_direction_compliance(speed: float, expected: float) -> None:
    # ego in the oncoming (westbound, off-route) lane the whole horizon: oncoming progress in 1 s
    # = speed x 1 s -> 1.5 m: 1, 3 m: 0.5, 7 m: 0
    scene = make_scene(ego_xy=(0.0, -1.75), speed_mps=speed)
    s = score(scene, [straight_poses(0.0, -1.75, speed)])
    assert s[Metric.DDC][0] == expected


@pytest.mark.parametrize(
    ("light", "speed", "expected"),
    [(LightState.RED, 5.0, 0.0), (LightState.GREEN, 5.0, 1.0), (LightState.RED, 0.5, 1.0)],
)
def test_traffic_light_compliance(light: LightState, speed: float, expected: float) -> None:
    # ego centre at x = 40; the connector starts at x = 50: the front (2.45 m ahead) reaches it
    # after 7.55 m -> within 4 s at 5 m/s (20 m), not at 0.5 m/s (2 m)
    scene = make_scene(ego_xy=(40.0, 1.75), speed_mps=speed, light=light)
    s = score(scene, [straight_poses(40.0, 1.75, speed)])
    assert s[Metric.TLC][0] == expected


@pytest.mark.parametrize(("car_x", "expected"), [(22.0, 0.0), (25.0, 1.0)])
def test_time_to_collision(car_x: float, expected: float) -> None:
    # ego brakes 10 m/s at 3 m/s2 and stops at 16.67 m behind a stopped car: no contact. The
    # 0.9 s constant-speed projection reaches 9 + 7.3 t - 1.5 t^2 <= 17.88 m (t = 2.43 s); it
    # touches the car when that is >= car_x - 4.9 -> car at 22 m: TTC 0; at 25 m: TTC 1
    scene = make_scene(agents=[(car_x, 1.75, 0.0, 0.0, ActorKind.VEHICLE)])
    s = score(scene, [straight_poses(0.0, 1.75, 10.0, -3.0)])
    assert s[Metric.NC][0] == 1.0
    assert s[Metric.TTC][0] == expected


def test_ego_progress_ratio_and_reference() -> None:
    scene = make_scene()
    plans = [straight_poses(0.0, 1.75, 10.0), straight_poses(0.0, 1.75, 5.0)]  # 40 m and 20 m
    s = score(scene, plans)
    np.testing.assert_allclose(s.progress_m, [40.0, 20.0], atol=1e-9)
    np.testing.assert_allclose(s[Metric.EP], [1.0, 0.5])
    s = score(scene, plans, reference_progress_m=80.0)
    np.testing.assert_allclose(s[Metric.EP], [0.5, 0.25])
    slow = [straight_poses(0.0, 1.75, 1.0)]  # best progress 4 m <= 5 m -> EP 1
    assert score(make_scene(speed_mps=1.0), slow)[Metric.EP][0] == 1.0


@pytest.mark.parametrize(("steps", "expected"), [(21, 0.0), (19, 1.0), (30, 0.0)])
def test_lane_keeping(steps: int, expected: float) -> None:
    # centre 0.6 m right of the lane centerline for `steps` x 0.1 s: 2.1 s fails, 1.9 s passes
    scene = make_scene(speed_mps=5.0)
    plan = straight_poses(0.0, 1.75, 5.0)
    plan[5 : 5 + steps, 1] += 0.6
    assert score(scene, [plan])[Metric.LK][0] == expected


def test_comfort_hard_braking_fails_gentle_passes() -> None:
    scene = make_scene(speed_mps=15.0)
    hard = straight_poses(0.0, 1.75, 15.0, -5.0)  # -5 m/s2 < -4.05
    gentle = straight_poses(0.0, 1.75, 15.0, -1.0)
    s = score(scene, [hard, gentle])
    assert s[Metric.C].tolist() == [0.0, 1.0]


def test_history_comfort_sees_the_past() -> None:
    # the real past braked at 5 m/s2 into t = 0; the plan cruises: C 1 but HC 0
    hard_past = make_scene(speed_mps=10.0, past_accel_mps2=-5.0)
    calm_past = make_scene(speed_mps=10.0)
    plan = [straight_poses(0.0, 1.75, 10.0)]
    assert score(hard_past, plan)[Metric.C][0] == 1.0
    assert score(hard_past, plan)[Metric.HC][0] == 0.0
    assert score(calm_past, plan)[Metric.HC][0] == 1.0


def test_extended_comfort_against_previous_plan() -> None:
    # previous plan (from t-0.5 s) cruised at 10 m/s; a cruising plan agrees (EC 1), a plan
    # braking at 2 m/s2 differs by an RMS acceleration of about 2 > 0.7 m/s2 (EC 0)
    previous = straight_poses(-5.0, 1.75, 10.0)
    scene = make_scene(previous_plan=previous)
    s = score(scene, [straight_poses(0.0, 1.75, 10.0), straight_poses(0.0, 1.75, 10.0, -2.0)])
    assert s[Metric.EC].tolist() == [1.0, 0.0]
    assert score(make_scene(), [straight_poses(0.0, 1.75, 10.0, -2.0)])[Metric.EC][0] == 1.0


def test_pdms_and_epdms_arithmetic() -> None:
    v = np.zeros((NUM_METRICS, 2))
    v[[Metric.NC, Metric.DAC, Metric.TLC, Metric.C, Metric.LK, Metric.EC], :] = 1.0
    v[Metric.EP] = 0.5
    v[Metric.DDC] = [0.5, 1.0]
    v[Metric.TTC] = [0.0, 1.0]
    v[Metric.HC] = [0.0, 1.0]
    out = with_aggregates(v)
    # PDMS = (5*0 + 5*0.5 + 2*1)/12 = 0.375 ; (5 + 2.5 + 2)/12 = 0.791666
    np.testing.assert_allclose(out[Metric.PDMS], [0.375, 9.5 / 12])
    # EPDMS = 0.5 * (2.5 + 0 + 2 + 0 + 2)/16 = 0.203125 ; (2.5 + 5 + 2 + 2 + 2)/16 = 0.84375
    np.testing.assert_allclose(out[Metric.EPDMS], [0.203125, 0.84375])
    v[Metric.NC] = [0.5, 0.0]
    np.testing.assert_allclose(with_aggregates(v)[Metric.PDMS], [0.1875, 0.0])


def test_rollout_path_scores_a_clean_cruise_perfectly() -> None:
    scene = make_scene()
    plan = straight_poses(0.0, 1.75, 10.0)[1:]  # (40, 3): the current pose is prepended
    s, states = score_candidates(scene, TOWN, plan[None])
    assert states.shape == (1, NUM_POSES, 7)
    assert s[Metric.PDMS][0] == pytest.approx(1.0)
    assert s[Metric.EPDMS][0] == pytest.approx(1.0)


def launch_poses(x0: float, y: float, accel_mps2: float, jerk_mps3: float) -> np.ndarray:
    """(41, 3) poses heading +x starting from rest: the acceleration ramps from 0 to accel_mps2
    at jerk_mps3 and then holds (closed form of the ramp + constant phases)."""
    t = np.arange(NUM_POSES) * 0.1
    t1 = accel_mps2 / jerk_mps3  # end of the ramp [s]
    ramp = jerk_mps3 * t**3 / 6.0
    x1, v1 = jerk_mps3 * t1**3 / 6.0, 0.5 * jerk_mps3 * t1**2
    hold = x1 + v1 * (t - t1) + 0.5 * accel_mps2 * (t - t1) ** 2
    x = x0 + np.where(t < t1, ramp, hold)
    return np.column_stack([x, np.full(NUM_POSES, y), np.zeros(NUM_POSES)])


def test_smooth_launch_from_rest_passes_history_comfort() -> None:
    # ego stood still for the whole 1.5 s past; a launch ramping to 1.5 m/s2 at 2 m/s3 stays
    # within every bound (lon. accel 1.5 < 2.4, jerk 2 < 4.13 even before filtering), so C = HC = 1
    # (a standing start is not a comfort violation); an instant 3 m/s2 launch breaks the 2.4
    # m/s2 bound (C = HC = 0).
    scene = make_scene(speed_mps=0.0)
    smooth = launch_poses(0.0, 1.75, 1.5, 2.0)
    harsh = straight_poses(0.0, 1.75, 0.0, 3.0)
    s = score(scene, [smooth, harsh])
    assert s[Metric.C].tolist() == [1.0, 0.0]
    assert s[Metric.HC].tolist() == [1.0, 0.0]


def test_standing_still_is_comfortable_and_scores_full_progress() -> None:
    # stopped ego, stopped plan: every comfort signal is 0 -> C = HC = 1; the best progress of
    # the batch is 0 m <= 5 m, so EP = 1 (NAVSIM) and EPDMS = 1 with no agents around
    scene = make_scene(speed_mps=0.0)
    s = score(scene, [straight_poses(0.0, 1.75, 0.0)])
    assert s[Metric.C][0] == s[Metric.HC][0] == s[Metric.EP][0] == 1.0
    assert s[Metric.EPDMS][0] == pytest.approx(1.0)
