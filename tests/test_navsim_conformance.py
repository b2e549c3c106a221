"""Conformance of the ``navsim`` scoring profile with NAVSIM's rules (navsim commit 0a380a9;
REFERENCE.md sections 2, 2a, 3), one small hand-built case per rule with NAVSIM's answer derived
in the comments, the boundary cases included; where the ``harness`` profile answers differently
the case asserts that too, so each test shows the rule it pins.

Scenes are the straight road of tests/test_scoring_scenes.py (route y = 1.75 eastbound, lanes
3.5 m wide, junction x 50..70, light 0 on connector lane 2). States are written out directly
(no rollout) so every position and speed is exact; the ego box is 4.9016 x 2.1282 m with the
rear axle 1.32 m behind the centre (NAVSIM_BICYCLE)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import shapely

from harness.dynamics.lqr import N_STATE, NUM_POSES, PDM_DT_S, StateIndex
from harness.errors import ConfigError
from harness.world.state import ActorKind, LightState
from teachers.rollout import navsim_rollout, rollout_candidates
from teachers.scoring import HARNESS, NAVSIM, Metric, get_profile, score_states
from teachers.scoring.aggregate import human_filter
from teachers.scoring.comfort import (
    navsim_comfort_signals,
    navsim_extended_comfort,
    navsim_history,
)
from teachers.scoring.compliance import longest_run
from teachers.scoring.progress import ego_progress
from tests.oracles.lqr_navsim_numpy import navsim_rollout_numpy
from tests.test_scoring_scenes import make_scene, straight_town

TOWN = straight_town()
T = np.arange(NUM_POSES)  # step index 0..40
D_REAR = 1.32  # rear axle to box centre [m]
HALF_W = 2.1282 / 2  # ego half width [m]
AGENT_W = 2.1  # make_scene's vehicle width [m]


def states(x, y=1.75, yaw=0.0, speed=None, accel=0.0, yaw_rate=0.0):
    """(1, 41, N_STATE) states from per-step values (scalars broadcast); speed defaults to the
    x displacement per step / 0.1 s."""
    s = np.zeros((1, NUM_POSES, N_STATE))
    s[0, :, StateIndex.X] = x
    s[0, :, StateIndex.Y] = y
    s[0, :, StateIndex.YAW] = yaw
    if speed is None:
        speed = np.gradient(np.broadcast_to(np.asarray(x, float), (NUM_POSES,)), PDM_DT_S)
    s[0, :, StateIndex.SPEED] = speed
    s[0, :, StateIndex.ACCEL] = accel
    s[0, :, StateIndex.YAW_RATE] = yaw_rate
    return s


def with_agent(scene, x, y, yaw=0.0, speed=10.0, valid=None, kind=ActorKind.VEHICLE):
    """``scene`` with one 4.9 x 2.1 m agent whose centre follows x, y (per step or scalar)."""
    boxes = np.zeros((1, NUM_POSES, 5))
    boxes[0, :, 0], boxes[0, :, 1], boxes[0, :, 2] = x, y, yaw
    boxes[0, :, 3], boxes[0, :, 4] = 4.9, AGENT_W
    v = np.ones((1, NUM_POSES), bool) if valid is None else np.asarray(valid, bool)[None]
    return replace(
        scene,
        agent_boxes=boxes,
        agent_kind=np.array([int(kind)]),
        agent_valid=v,
        agent_speed_mps=np.broadcast_to(np.asarray(speed, float), (1, NUM_POSES)).copy(),
    )


def score(scene, st, profile=NAVSIM):
    return score_states(scene, TOWN, st, profile=profile)


# --- profiles ---------------------------------------------------------------------------------


def test_navsim_is_the_default_profile_and_names_resolve() -> None:
    assert get_profile(None) is NAVSIM
    assert get_profile("navsim") is NAVSIM and get_profile("harness") is HARNESS
    with pytest.raises(ConfigError, match="navsim"):
        get_profile("nuplan")


# --- rollout: NAVSIM's LQR + kinematic bicycle ----------------------------------------------


def test_rollout_kernel_matches_the_least_squares_oracle() -> None:
    # the kernel solves the speed fit with a fixed smoothing matrix and the curvature fit with a
    # tridiagonal solve; the oracle poses both as NAVSIM does (pseudo-inverse of the normal
    # equations in the original unknowns): the same minimisers, so equal to rounding
    rng = np.random.default_rng(4)
    t = T * PDM_DT_S
    v0, acc = rng.uniform(0, 15, (24, 1)), rng.uniform(-3, 2, (24, 1))
    curv = rng.uniform(-0.08, 0.08, (24, 1))
    s = np.maximum(v0 * t + 0.5 * acc * t * t, 0.0)
    yaw = curv * s
    ds = np.gradient(s, axis=1)
    plan = np.stack([np.cumsum(np.cos(yaw) * ds, 1), np.cumsum(np.sin(yaw) * ds, 1), yaw], -1)
    plan[:, 0] = 0.0
    fast = navsim_rollout(plan, 6.0, 0.4, 0.05, 2.85, D_REAR)
    ref = navsim_rollout_numpy(plan, 6.0, 0.4, 0.05, 2.85, D_REAR)
    np.testing.assert_allclose(fast, ref, atol=1e-9)


def test_rollout_tracks_a_constant_speed_line_exactly() -> None:
    # plan x = 10 t: every displacement speed is 10, the smoother keeps a constant (its second
    # difference is 0), so v_ref = 10 = v, accel command 0, errors 0: the states are the plan
    plan = np.stack([10.0 * T * PDM_DT_S, np.zeros(NUM_POSES), np.zeros(NUM_POSES)], -1)[None]
    out = navsim_rollout(plan, 10.0, 0.0, 0.0, 2.85, D_REAR)
    np.testing.assert_allclose(out[0, :, StateIndex.X], plan[0, :, 0], atol=1e-9)
    np.testing.assert_allclose(out[0, :, StateIndex.SPEED], 10.0, atol=1e-9)
    np.testing.assert_allclose(out[0, :, StateIndex.Y], 0.0, atol=1e-12)


def test_rollout_longitudinal_lqr_and_accel_lag_first_step() -> None:
    # plan at 12 m/s, ego at 10: one-step LQR over B = 10 x 0.1 = 1 s, Q = 10, R = 1:
    # a_cmd = -B Q (v - v_ref) / (B Q B + R) = -10 (10 - 12) / 11 = 20/11; the lag
    # dt / (dt + 0.2) = 1/3 gives a_1 = 20/33; Euler: v_1 = 10 + 0.1 a_1, x_1 = 10 x 0.1
    plan = np.stack([12.0 * T * PDM_DT_S, np.zeros(NUM_POSES), np.zeros(NUM_POSES)], -1)[None]
    out = navsim_rollout(plan, 10.0, 0.0, 0.0, 2.85, D_REAR)[0]
    assert out[1, StateIndex.ACCEL] == pytest.approx(20.0 / 33.0, abs=1e-12)
    assert out[1, StateIndex.SPEED] == pytest.approx(10.0 + 2.0 / 33.0, abs=1e-12)
    assert out[1, StateIndex.X] == pytest.approx(1.0, abs=1e-12)


def test_rollout_stopping_controller_below_0_2_mps() -> None:
    # plan standing still, ego at 0.1 m/s (both <= 0.2 m/s): P-controller a_cmd = -0.5 (0.1 - 0)
    # = -0.05, lagged a_1 = -0.05 / 3, v_1 = 0.1 + 0.1 a_1; steer rate 0
    plan = np.zeros((1, NUM_POSES, 3))
    out = navsim_rollout(plan, 0.1, 0.0, 0.0, 2.85, D_REAR)[0]
    assert out[1, StateIndex.ACCEL] == pytest.approx(-0.05 / 3.0, abs=1e-12)
    assert out[1, StateIndex.SPEED] == pytest.approx(0.1 - 0.005 / 3.0, abs=1e-12)
    assert out[1, StateIndex.STEER] == 0.0


def test_candidates_use_the_navsim_rollout_by_default() -> None:
    scene = make_scene(speed_mps=10.0)
    plan = np.stack([12.0 * T[1:] * PDM_DT_S, np.full(40, 1.75), np.zeros(40)], -1)[None]
    st = rollout_candidates(scene, plan)
    assert st[0, 1, StateIndex.ACCEL] == pytest.approx(20.0 / 33.0, abs=1e-12)


# --- NC: the stopped-agent rule -----------------------------------------------------------------


def _sideswipe(first_speed: float):
    # ego 10 m/s along y = 1.75 (one lane, on the road); an agent 4.85 m behind-left keeps pace
    # and drifts right: its lower edge y - 1.05 meets the ego's upper edge 1.75 + 1.0641 when
    # y < 3.8641, first at step 5 (y = 3.75). Its centre is 3.53 m behind the rear axle and
    # 2.0 m to the side: bearing 180 - atan(2 / 3.53) = 150.5 deg > 150: a rear hit
    x = T * 1.0
    y = np.maximum(3.75, 5.0 - 0.25 * T)
    speed = np.full(NUM_POSES, 10.0)
    speed[0] = first_speed
    scene = with_agent(make_scene(), x - 4.85, y, speed=speed)
    return scene, states(x)


def test_nc_rear_hit_by_a_moving_agent_is_not_at_fault() -> None:
    scene, st = _sideswipe(first_speed=10.0)
    assert score(scene, st)[Metric.NC][0] == 1.0


def test_nc_agent_stopped_where_first_seen_puts_the_ego_at_fault() -> None:
    # nuPlan classifies by the agent as first observed: 0 m/s at step 0 <= 0.05 -> "stopped
    # track" -> at fault with a vehicle -> NC 0, although it moves at 10 m/s when it hits;
    # the harness profile reads the speed at the contact (10 m/s) and finds a rear hit
    scene, st = _sideswipe(first_speed=0.0)
    assert score(scene, st)[Metric.NC][0] == 0.0
    assert score(scene, st, HARNESS)[Metric.NC][0] == 1.0


def test_nc_lateral_hit_inside_one_of_two_overlapping_lanes_is_not_at_fault() -> None:
    # a variant of the road where lane 4's polygon also covers lane 0 (x -60..200, y 0..3.5):
    # the ego at y = 1.75 has all four corners in lanes 0 and 4. NAVSIM: two lanes touched but
    # one (either) holds all four corners -> not "in several lanes". A car alongside (centre 1 m
    # behind the ego's, bearing from the rear axle atan2(2, 0.32) = 81 deg: not behind; the
    # front bumper at x + 2.45 is past its front at x + 1.45) drifts into the ego's side: a
    # lateral hit, at fault only when in several lanes / off road -> NC 1; the harness rule
    # counts corners in overlapping lanes as several lanes -> at fault -> 0
    base = straight_town()
    polys = list(base.area.lane_polygons)
    polys[4] = shapely.box(-60.0, 0.0, 200.0, 3.5)
    area = replace(base.area, lane_polygons=polys, drivable=shapely.union_all(polys))
    town = replace(base, area=area)
    x = T * 1.0
    scene = with_agent(make_scene(), x - 1.0, np.maximum(3.75, 5.0 - 0.25 * T), speed=10.0)
    st = states(x)
    assert score_states(scene, town, st)[Metric.NC][0] == 1.0
    assert score_states(scene, town, st, profile=HARNESS)[Metric.NC][0] == 0.0
    # straddling the line between lanes 0 and 1 (y = 0) is "several lanes" under both rules:
    # the same lateral hit is at fault
    scene = with_agent(make_scene(), x - 1.0, np.maximum(2.0, 3.25 - 0.25 * T), speed=10.0)
    assert score_states(scene, town, states(x, y=0.0))[Metric.NC][0] == 0.0


def test_nc_overlap_at_t0_is_ignored() -> None:
    # an agent overlapping the ego at t = 0 is dropped for the whole horizon (NAVSIM v1's
    # collided tokens), even though the ego then drives through it
    scene = with_agent(make_scene(), 2.0, 1.75, speed=0.0)
    assert score(scene, states(T * 1.0))[Metric.NC][0] == 1.0


# --- TTC ------------------------------------------------------------------------------------------


def test_ttc_only_steps_0_to_31_are_evaluated() -> None:
    # ego stands (speed 0 < 0.005: skipped) until step 31, then drives at 10 m/s towards a car
    # parked at x = 12: from step 32 (x = 1) the 0.9 s projection (x = 10) overlaps it, ahead.
    # NAVSIM stops at step 40 - 9 = 31 -> TTC 1; the harness profile tests steps up to 40
    x = np.maximum(T - 31, 0) * 1.0
    speed = np.where(T > 31, 10.0, 0.0)
    scene = with_agent(make_scene(), 12.0, 1.75, speed=0.0)
    assert score(scene, states(x, speed=speed))[Metric.TTC][0] == 1.0
    assert score(scene, states(x, speed=speed), HARNESS)[Metric.TTC][0] == 0.0


def test_ttc_agent_hit_behind_stays_exempt() -> None:
    # the sideswipe: first overlap at step 5 (k = 0) with the agent behind (150.5 deg); not in
    # several lanes / off road / junction -> does not count, the agent becomes exempt. It then
    # overtakes at +5 m/s relative: at step 25 its centre is 2.65 m ahead of the ego centre
    # (bearing from the rear axle atan(2 / 3.97) = 26.7 deg: ahead) and still overlapping.
    # NAVSIM: exempt -> TTC 1; harness: counts -> 0
    x = T * 1.0
    y = np.maximum(3.75, 5.0 - 0.25 * T)
    ax = x - 4.85 + 0.5 * np.maximum(T - 10, 0)
    scene = with_agent(make_scene(), ax, y, speed=10.0)
    assert score(scene, states(x))[Metric.TTC][0] == 1.0
    assert score(scene, states(x), HARNESS)[Metric.TTC][0] == 0.0


def test_ttc_ahead_is_judged_from_the_current_rear_axle() -> None:
    # a car present only at step 9, centre (10, 3.75): 1 m ahead of the ego's step-9 centre,
    # 2 m to the left, overlapping it by 0.11 m laterally. NAVSIM first meets it at t = 0,
    # k = 9: from the current rear axle (-1.32, 1.75) the bearing is atan(2 / 11.32) = 10 deg
    # < 30: ahead -> TTC 0. Every projection onto step 9 is the same box (constant speed), and
    # from its own rear axle (7.68) the bearing is atan(2 / 2.32) = 40.8 deg: harness TTC 1
    valid = T == 9
    scene = with_agent(make_scene(), 10.0, 3.75, valid=valid)
    assert score(scene, states(T * 1.0))[Metric.TTC][0] == 0.0
    assert score(scene, states(T * 1.0), HARNESS)[Metric.TTC][0] == 1.0


@pytest.mark.parametrize(("speed", "ttc"), [(0.005, 0.0), (0.0049, 1.0)])
def test_ttc_ego_stopped_threshold_is_strictly_below_0_005(speed: float, ttc: float) -> None:
    # a car comes head-on at 5 m/s from x = 10 in the ego lane (ahead): NAVSIM skips a step
    # only when the ego speed is < 0.005 m/s, so at exactly 0.005 it is scored (TTC 0); the
    # harness profile treats <= 0.05 as stopped (TTC 1 for both)
    scene = with_agent(make_scene(), 10.0 - 0.5 * T, 1.75, yaw=np.pi, speed=5.0)
    st = states(speed * PDM_DT_S * T, speed=speed)
    assert score(scene, st)[Metric.TTC][0] == ttc
    assert score(scene, st, HARNESS)[Metric.TTC][0] == 1.0


# --- DDC ------------------------------------------------------------------------------------------


def test_ddc_window_holds_eleven_displacements() -> None:
    # the whole horizon in the oncoming lane (y = -1.75, not on route, no junction), 0.19 m per
    # step: NAVSIM sums steps t-10 .. t (11 displacements) = 2.09 m >= 2 -> DDC 0.5; the harness
    # profile's 10 displacements make 1.9 m < 2 -> 1
    st = states(0.19 * T, y=-1.75)
    assert score(make_scene(), st)[Metric.DDC][0] == 0.5
    assert score(make_scene(), st, HARNESS)[Metric.DDC][0] == 1.0


def test_ddc_exactly_two_metres_is_not_compliant() -> None:
    # standing in the oncoming lane except for n moves of 0.25 m (exact in binary) at steps
    # 11 .. 10 + n, all inside one 11-step window: 8 moves = 2.0 m; the rule is "< 2 m -> 1", so
    # exactly 2 m -> 0.5; one move less (1.75 m) -> 1
    for n_moves, ddc in ((8, 0.5), (7, 1.0)):
        x = 0.25 * np.clip(T - 10, 0, n_moves)
        st = states(x, y=-1.75)
        assert score(make_scene(), st)[Metric.DDC][0] == ddc


def test_ddc_counts_a_centre_off_every_lane() -> None:
    # centre at y = 6 (off the drivable area, in no on-route lane) moving 1 m per step: NAVSIM's
    # oncoming test is "centre in no on-route lane" -> 11 m per window -> DDC 0; the harness
    # profile requires a drivable cell -> 1
    st = states(T * 1.0, y=6.0)
    assert score(make_scene(), st)[Metric.DDC][0] == 0.0
    assert score(make_scene(), st, HARNESS)[Metric.DDC][0] == 1.0


# --- TLC ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("front_m", "tlc"), [(49.8, 1.0), (50.3, 0.0)])
def test_tlc_stop_just_short_of_a_red_connector(front_m: float, tlc: float) -> None:
    # red light on connector lane 2 (x >= 50): the ego brakes from 5 m/s to stand with its front
    # bumper at ``front_m``; 0.2 m short never touches the connector -> 1, 0.3 m in -> 0
    stop = front_m - 4.9016 / 2
    x = stop - np.maximum(0.0, 2.0 - T * PDM_DT_S) ** 2 * 1.25  # 5 m/s, -2.5 m/s2 to rest at 2 s
    scene = make_scene(ego_xy=(x[0], 1.75), speed_mps=5.0, light=LightState.RED)
    assert score(scene, states(x))[Metric.TLC][0] == tlc


def test_tlc_counts_step_zero() -> None:
    # the box already 0.5 m into the red connector at t = 0 and standing: NAVSIM tests every
    # step from 0 -> TLC 0; the harness profile exempts a connector touched at t = 0 -> 1
    x0 = 50.5 - 4.9016 / 2
    scene = make_scene(ego_xy=(x0, 1.75), speed_mps=0.0, light=LightState.RED)
    st = states(np.full(NUM_POSES, x0), speed=0.0)
    assert score(scene, st)[Metric.TLC][0] == 0.0
    assert score(scene, st, HARNESS)[Metric.TLC][0] == 1.0


# --- LK -------------------------------------------------------------------------------------------


def test_lk_measures_to_the_route_not_the_nearest_lane() -> None:
    # 4 s in the neighbour lane (y = -1.75, on its centreline): 3.5 m from the route's
    # centreline > 0.5 for 41 steps -> LK 0 (EPDMS capped at 14/16 = 0.875); the harness profile
    # measured 0 m to the nearest centreline -> 1
    st = states(T * 1.0, y=-1.75)
    assert score(make_scene(), st)[Metric.LK][0] == 0.0
    assert score(make_scene(), st, HARNESS)[Metric.LK][0] == 1.0


@pytest.mark.parametrize(("last_off", "lk"), [(28, 1.0), (29, 0.0)])
def test_lk_junction_steps_are_skipped_without_resetting(last_off: int, lk: float) -> None:
    # 0.6 m left of the route: steps 0..14 before the junction (15 steps), 15..24 inside it
    # (skipped), 25..last_off after it: 15 + 5 = 20 counted steps (>= 2 s / 0.1 s = 20) when
    # last_off = 29 -> LK 0; 19 steps at 28 -> 1. The harness profile's junction resets the run
    # (longest 15) -> 1 in both
    x = np.where(T < 15, 35.0 + T, np.where(T < 25, 52.0 + 1.5 * (T - 15), 72.0 + (T - 25)))
    y = np.where(last_off >= T, 2.35, 1.75)
    st = states(x, y=y, speed=10.0)
    assert score(make_scene(), st)[Metric.LK][0] == lk
    assert score(make_scene(), st, HARNESS)[Metric.LK][0] == 1.0


def test_lk_exactly_half_a_metre_off_is_kept() -> None:
    # 0.5 m from the route all the way: the rule is "> 0.5 m", so LK 1
    st = states(T * 1.0, y=2.25)
    assert score(make_scene(), st)[Metric.LK][0] == 1.0


def test_longest_run_skip_semantics() -> None:
    flags = np.array([[1, 1, 0, 1, 1, 1, 0]], bool)
    skip = np.array([[0, 0, 1, 0, 0, 0, 0]], bool)
    # the skipped step neither breaks nor extends: 2 + 3 = 5
    assert longest_run(flags, skip)[0] == 5
    assert longest_run(flags)[0] == 3


# --- EP ---------------------------------------------------------------------------------------


def test_ep_normaliser_is_progress_times_gate_product() -> None:
    # progress 30 m with NC 0.5 (counts 15), 10 m clean (10), 40 m failed (0): the max of the
    # masked progress is 15 -> EP = clip(p / 15) = [1, 2/3, 1]; the plain max (harness) is 40
    p = np.array([30.0, 10.0, 40.0])
    gates = np.array([0.5, 1.0, 0.0])
    np.testing.assert_allclose(ego_progress(p, None, gates), [1.0, 2.0 / 3.0, 1.0])
    np.testing.assert_allclose(ego_progress(p), [0.75, 0.25, 1.0])


def test_ep_boundary_five_metres_and_negative_progress() -> None:
    # a masked maximum of exactly 5 m is not > 5 -> EP 1 for all; raw progress is clipped at 0
    # before normalising, so a reversing candidate gets EP 0 (not negative)
    assert ego_progress(np.array([5.0, 1.0]), None, np.ones(2)).tolist() == [1.0, 1.0]
    np.testing.assert_allclose(ego_progress(np.array([20.0, -3.0]), None, np.ones(2)), [1.0, 0.0])


# --- comfort (C, HC, EC) ------------------------------------------------------------------------


def test_c_longitudinal_acceleration_is_the_box_centres() -> None:
    # constant rear-axle accel a and yaw rate w = 0.3 (yaw = 0.3 t): the centre's longitudinal
    # accel is a + d (w^2 + yaw accel) = a + 1.32 x 0.09 = a + 0.1188, constant, so the
    # smoothed signal is that value. With a = 2.4 - 0.1188 the signal is exactly 2.40 after
    # NAVSIM's 8-decimal rounding; the bound is strict (< 2.40) -> C 0; 0.01 less -> C 1
    scene = make_scene()
    yaw = 0.3 * T * PDM_DT_S
    for a, c in ((2.4 - D_REAR * 0.09, 0.0), (2.39 - D_REAR * 0.09, 1.0)):
        st = states(T * 1.0, yaw=yaw, accel=a, yaw_rate=0.3, speed=10.0)
        sig = navsim_comfort_signals(st, D_REAR)
        assert sig.lon_accel[0, 20] == pytest.approx(a + D_REAR * 0.09, abs=1e-9)
        assert np.all(sig.lat_accel == 0.0)  # simulated states: NAVSIM's bicycle leaves it 0
        assert score(scene, st)[Metric.C][0] == c


def test_c_yaw_acceleration_is_one_second_derivative_of_heading() -> None:
    # heading = c t^3: a cubic, so the order-3 Savitzky-Golay second derivative (window 5) is
    # exact everywhere: 6 c t
    c = 0.01
    t = T * PDM_DT_S
    sig = navsim_comfort_signals(states(T * 1.0, yaw=c * t**3, speed=10.0), D_REAR)
    np.testing.assert_allclose(sig.yaw_accel[0], 6.0 * c * t, atol=1e-7)


def test_c_jerk_is_the_derivative_of_the_acceleration_magnitude() -> None:
    # braking accel a = -3 + 0.5 t (negative throughout): the longitudinal jerk is +0.5, the
    # jerk NAVSIM bounds is that of |a| = 3 - 0.5 t: -0.5. Away from the ends (steps 11..29) both
    # filters see only the line and are exact; near the ends the even smoothing window (8),
    # which scipy centres half a sample off, bends them (NAVSIM inherits that)
    t = T * PDM_DT_S
    sig = navsim_comfort_signals(states(T * 1.0, accel=-3.0 + 0.5 * t, speed=10.0), 0.0)
    np.testing.assert_allclose(sig.lon_jerk[0, 11:30], 0.5, atol=1e-7)
    np.testing.assert_allclose(sig.jerk[0, 11:30], -0.5, atol=1e-7)


def test_hc_history_is_14_states_interpolated_from_2hz() -> None:
    # past speed v(t) = t^2 at t = -1.5 .. 0 (0.1 s); NAVSIM keeps the 2 Hz samples
    # (-1.5, -1.0, -0.5, 0) and interpolates t = -1.5 .. -0.2: at -1.3 s between 2.25 (-1.5 s)
    # and 1.0 (-1.0 s): 2.25 - 0.4 x 1.25 = 1.75 (the true value is 1.69); -0.2 s: 0.25 x 0.4
    tp = np.arange(16) * PDM_DT_S - 1.5
    past = np.zeros((16, N_STATE))
    past[:, StateIndex.SPEED] = tp**2
    hist, lat = navsim_history(past)
    assert hist.shape == (14, N_STATE)
    assert hist[2, StateIndex.SPEED] == pytest.approx(1.75)
    assert hist[13, StateIndex.SPEED] == pytest.approx(0.1)
    assert np.all(lat == 0.0)


def test_ec_compares_the_overlap_only() -> None:
    # previous plan: constant speed; current: the same motion for its first 36 steps, then a
    # 4 m/s2 surge in the last 5. NAVSIM filters the 36-step overlaps as separate signals, so
    # the surge is never seen: every RMS difference 0 -> EC 1
    cur = states(T * 1.0, speed=10.0, accel=np.where(T >= 36, 4.0, 0.0))
    prev = states(T * 1.0, speed=10.0)[0]
    assert navsim_extended_comfort(cur, prev, D_REAR)[0] == 1.0


@pytest.mark.parametrize(("accel", "ec"), [(0.65, 1.0), (0.75, 0.0)])
def test_ec_acceleration_rms_limit(accel: float, ec: float) -> None:
    # constant |accel| difference over the overlap: RMS = accel; limit 0.7 m/s2 (<=)
    cur = states(T * 1.0, speed=10.0, accel=accel)
    prev = states(T * 1.0, speed=10.0)[0]
    assert navsim_extended_comfort(cur, prev, D_REAR)[0] == ec


# --- human filter -------------------------------------------------------------------------------


def test_human_filter_covers_gates_and_ep_never_ec() -> None:
    # the human row (0) scores 0 on NC, EP, EC and 0.5 on DDC: NAVSIM sets a column to 1 for
    # every trajectory where the human's value is exactly 0 -> NC and EP become 1, DDC (0.5) and
    # EC (two-frame, computed after the filter) stay; the harness profile filtered TTC, LK, HC,
    # EC below 1 and no gate
    v = np.ones((len(Metric), 2))
    v[Metric.NC] = [0.0, 0.0]
    v[Metric.EP] = [0.0, 0.3]
    v[Metric.EC] = [0.0, 0.0]
    v[Metric.DDC] = [0.5, 0.0]
    out = human_filter(v, 0)
    assert out[Metric.NC].tolist() == [1.0, 1.0] and out[Metric.EP].tolist() == [1.0, 1.0]
    assert out[Metric.EC].tolist() == [0.0, 0.0] and out[Metric.DDC].tolist() == [0.5, 0.0]
    # aggregates follow the filtered rows: EPDMS of row 1 = 1 x 1 x 0 (DDC) x ... = 0
    assert out[Metric.EPDMS, 1] == 0.0
    old = human_filter(v, 0, "harness")
    assert old[Metric.NC].tolist() == [0.0, 0.0] and old[Metric.EC].tolist() == [1.0, 1.0]
