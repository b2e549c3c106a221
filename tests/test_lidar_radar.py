"""The embedded lidar and radar against hand-computed hits: the ground at the range a channel's
elevation gives, a box face at a known distance (in front, to the right, with the ego rotated
in the world), the scan's start angle, the radar's relative velocity, azimuth and column order."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.runner import run_evaluation
from harness.sim.sensors.lidar import LEADERBOARD_LIDAR, NO_DROPOFF, Lidar, LidarConfig
from harness.sim.sensors.radar import Radar, detections_to_input_data
from harness.sim.sensors.raycast import GROUND_HIT, NO_HIT, cast_rays, ego_frame_boxes
from harness.sim.sensors.spec import parse_sensor
from harness.world.state import ActorArrays, WorldState

EXACT = LidarConfig(**NO_DROPOFF)  # every hit kept


def scene(rows: list[dict[str, float]], frame: int = 0) -> WorldState:
    """Actors on flat ground (row 0 the ego); boxes 4 x 2 x 1.5 m unless given."""
    a = ActorArrays.empty(len(rows))
    for i, row in enumerate(rows):
        a.valid[i] = True
        a.actor_id[i] = i
        for k, v in {"length": 4.0, "width": 2.0, "height": 1.5, **row}.items():
            getattr(a, k)[i] = v
    return WorldState(
        frame=frame, time_s=0.05 * frame, actors=a,
        light_state=np.zeros(0, dtype=np.int8), light_elapsed_s=np.zeros(0),
    )  # fmt: skip


def lidar(z: float = 2.5, **kw: float) -> Lidar:
    spec = parse_sensor({"type": "sensor.lidar.ray_cast", "id": "L", "x": 0.0, "y": 0.0, "z": z})
    return Lidar(spec, LidarConfig(**{**NO_DROPOFF, **kw}))


def test_leaderboard_pattern_counts() -> None:
    cfg = LEADERBOARD_LIDAR
    assert cfg.points_per_channel == 469  # round(600000 * 0.05 / 64)
    assert cfg.tick_angle_deg == 180.0  # 10 Hz rotation at 20 Hz
    angles = cfg.channel_angles_deg
    assert angles[0] == 10.0 and angles[-1] == -30.0 and len(angles) == 64


def test_ground_only_channels_that_reach_it_within_range() -> None:
    # elevation e hits the ground at 2.5 / sin(-e) m; within 85 m needs e <= -asin(2.5/85)
    # = -1.686 deg: channels i with 10 - 40 i / 63 <= -1.686, i >= 18.41, i.e. 45 channels
    pts = lidar().read(scene([{}]), None)
    assert len(pts) == 45 * 469
    np.testing.assert_allclose(pts[:, 2], -2.5, atol=1e-5)  # every point on the ground
    d = np.linalg.norm(pts[:, :3], axis=1)
    np.testing.assert_allclose(pts[:, 3], np.exp(-0.004 * d), rtol=1e-6)
    assert d.max() <= 85.0 + 1e-4


def test_lowest_channel_meets_the_ground_at_five_metres() -> None:
    # -30 deg from 2.5 m: 2.5 / sin 30 = 5 m along the ray, 4.330 m ahead; first point at 0 deg
    pts = lidar().read(scene([{}]), None)
    first_of_last_channel = pts[-469]
    np.testing.assert_allclose(first_of_last_channel[:3], [5 * math.cos(math.radians(30)), 0, -2.5], atol=1e-5)
    np.testing.assert_allclose(first_of_last_channel[3], math.exp(-0.004 * 5.0), rtol=1e-6)


@pytest.mark.parametrize(
    ("ego", "other"),
    [
        ({}, {"x": 10.0}),  # 10 m ahead
        ({"x": 100.0, "y": 50.0, "yaw": math.pi / 2}, {"x": 100.0, "y": 60.0, "yaw": math.pi / 2}),
    ],
)
def test_box_ahead_face_at_eight_metres(ego: dict[str, float], other: dict[str, float]) -> None:
    # a 4 x 1.5 m box centred 10 m ahead: its rear face is 8 m ahead, its roof 1 m below the
    # sensor; straight-ahead rays with tan(e) in [-2.5/8, -1/8] (e in [-17.35, -7.13] deg) end
    # on the face, those with tan(e) in (-1/8, -1/12] (e down to -4.76 deg) on the roof
    pts = lidar().read(scene([ego, other]), None)
    ahead = pts[(np.abs(pts[:, 1]) < 1e-4) & (pts[:, 0] > 0)]
    on_box = ahead[ahead[:, 2] > -2.5 + 1e-4]
    channels = LEADERBOARD_LIDAR.channel_angles_deg
    face = on_box[np.abs(on_box[:, 0] - 8.0) < 1e-4]
    roof = on_box[np.abs(on_box[:, 2] + 1.0) < 1e-4]
    face_e = [e for e in channels if -17.354 <= e <= -7.125]
    roof_e = [e for e in channels if -7.125 < e <= -4.764]
    assert (len(face), len(roof), len(on_box)) == (len(face_e), len(roof_e), 20) == (17, 3, 20)
    np.testing.assert_allclose(
        np.sort(np.degrees(np.arctan2(face[:, 2], face[:, 0]))), np.sort(face_e), atol=1e-4
    )
    np.testing.assert_allclose(np.sort(roof[:, 0]), np.sort(-1.0 / np.tan(np.radians(roof_e))), rtol=1e-5)


def test_box_to_the_right_lands_at_positive_y() -> None:
    # world y is the ego's right (CARLA axes); a 2 m wide box centred 10 m to the right has
    # its near side at y = 9; the first frame scans azimuths 0..180 deg, so 90 deg is in it
    pts = lidar().read(scene([{}, {"y": 10.0}]), None)
    side = pts[(pts[:, 2] > -2.5 + 1e-4) & (pts[:, 2] < -1.0 - 1e-4)]  # below the roof
    assert len(side) > 0
    np.testing.assert_allclose(side[:, 1], 9.0, atol=1e-4)
    assert np.all(np.abs(side[:, 0]) <= 2.0 + 1e-4)


def test_scan_continues_where_the_last_frame_ended() -> None:
    lid = lidar()
    assert lid.start_angle_deg(0) == 0.0 and lid.start_angle_deg(1) == 180.0
    assert lid.start_angle_deg(2) == 0.0
    # frame 1 sweeps 180..360 deg: the box to the right (azimuth 90) is not seen, one to the
    # left (azimuth 270) is
    right = lid.read(scene([{}, {"y": 10.0}], frame=1), None)
    left = lid.read(scene([{}, {"y": -10.0}], frame=1), None)
    assert (right[:, 2] > -2.5 + 1e-4).sum() == 0
    assert (left[:, 2] > -2.5 + 1e-4).sum() > 0
    side = left[(left[:, 2] > -2.5 + 1e-4) & (left[:, 2] < -1.0 - 1e-4)]  # below the roof
    np.testing.assert_allclose(side[:, 1], -9.0, atol=1e-4)


def test_dropoff_is_seeded_and_spares_strong_returns() -> None:
    spec = parse_sensor({"type": "sensor.lidar.ray_cast", "id": "L", "z": 2.5})
    lid = Lidar(spec)
    a = lid.read(scene([{}]), np.random.default_rng(3))
    b = lid.read(scene([{}]), np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    # every ground return here is within 55.8 m (intensity > 0.8) except the farthest channels:
    # only the general 45 % drop applies to those, so about 55 % of the 21,105 hits survive
    near = 21105 * 0.55
    assert abs(len(a) - near) < 0.05 * near


def test_cast_ignores_a_box_around_the_origin() -> None:
    boxes = ego_frame_boxes(scene([{}, {"x": 0.0, "length": 10.0, "height": 5.0}]))
    dist, hit = cast_rays(np.array([0.0, 0.0, 2.5]), np.array([[1.0, 0.0, 0.0]]), 50.0, boxes)
    assert hit[0] == NO_HIT and dist[0] == 50.0
    down = np.array([[0.0, 0.0, -1.0]])
    dist, hit = cast_rays(np.array([20.0, 0.0, 2.5]), down, 50.0, boxes)
    assert hit[0] == GROUND_HIT and dist[0] == pytest.approx(2.5)


def radar(**kw: float) -> Radar:
    return Radar(parse_sensor({"type": "sensor.other.radar", "id": "R", "x": 0.0, "z": 1.0,
                               "horizontal_fov": 30.0, "vertical_fov": 10.0, **kw}))  # fmt: skip


def test_radar_straight_ahead_depth_velocity_and_angles() -> None:
    r = radar()
    d = r.ray_directions(np.array([0.0]), np.array([0.0]))  # centre of the ellipse
    np.testing.assert_allclose(d, [[1.0, 0.0, 0.0]])
    # ego at 5 m/s, a box 10 m ahead (rear face at 8 m) driving away at 2 m/s: closing at 3 m/s
    det = r.detect(scene([{"speed": 5.0}, {"x": 10.0, "speed": 2.0}]), d)
    np.testing.assert_allclose(det, [[-3.0, 0.0, 0.0, 8.0]], atol=1e-5)
    # an oncoming box at 4 m/s, ego standing: -4 m/s (negative when closing in, as CARLA)
    det = r.detect(scene([{}, {"x": 10.0, "yaw": math.pi, "speed": 4.0}]), d)
    np.testing.assert_allclose(det[0, 0], -4.0, atol=1e-5)


def test_radar_ray_at_the_edge_of_its_horizontal_fov() -> None:
    # r = 1, a = 0 ends at (100, 100 tan 15 deg, 0): azimuth 15 deg (to the right)
    r = radar()
    d = r.ray_directions(np.array([1.0]), np.array([0.0]))
    big = scene([{}, {"x": 30.0, "y": 0.0, "width": 40.0, "length": 2.0, "height": 3.0}])
    det = r.detect(big, d)
    assert len(det) == 1
    assert det[0, 1] == pytest.approx(math.radians(15.0), abs=1e-6)
    assert det[0, 2] == pytest.approx(0.0, abs=1e-6)
    assert det[0, 3] == pytest.approx(29.0 / math.cos(math.radians(15.0)), rel=1e-5)
    # radius 1, a = pi/2: the top of the vertical fov, altitude 5 deg
    up = r.ray_directions(np.array([1.0]), np.array([math.pi / 2]))
    assert float(np.degrees(np.arctan2(up[0, 2], up[0, 0]))) == pytest.approx(5.0)


def test_radar_input_data_reverses_the_columns() -> None:
    raw = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    np.testing.assert_array_equal(detections_to_input_data(raw), [[4.0, 3.0, 2.0, 1.0]])
    out = radar().read(scene([{}, {"x": 10.0, "width": 30.0, "height": 4.0}]), np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == (75, 4)  # 1500 points/s x 0.05 s, all hit
    assert np.all(out[:, 0] >= 8.0 - 1e-4)  # depth first


def test_an_agent_with_the_dummy_agents_sensors_runs_on_the_embedded_backend(tmp_path: Path) -> None:
    # the leaderboard's dummy agent declares a camera, a lidar and a radar; the route runs and
    # the agent sees lidar points and radar detections every tick
    from tests.test_runner import _agent_file, _config, _results

    agent = _agent_file(
        tmp_path, "sensor_agent",
        """
def sensors(self):
    return [
        {"type": "sensor.camera.rgb", "x": 0.7, "y": -0.4, "z": 1.60, "roll": 0.0, "pitch": 0.0,
         "yaw": -45.0, "width": 80, "height": 60, "fov": 100, "id": "Left"},
        {"type": "sensor.lidar.ray_cast", "x": 0.7, "y": -0.4, "z": 1.60, "roll": 0.0,
         "pitch": 0.0, "yaw": -45.0, "id": "LIDAR"},
        {"type": "sensor.other.radar", "x": 0.7, "y": -0.4, "z": 1.60, "roll": 0.0, "pitch": 0.0,
         "yaw": -45.0, "horizontal_fov": 30, "vertical_fov": 30, "id": "RADAR"},
    ]

def on_step(self, input_data, timestamp):
    lidar = input_data["LIDAR"][1]
    assert lidar.dtype.name == "float32" and lidar.shape[1] == 4 and len(lidar) > 1000, lidar.shape
    assert input_data["RADAR"][1].shape[1] == 4
""",
    )  # fmt: skip
    result = run_evaluation(_config(tmp_path / "out", agent, "0"))
    assert result.records[0].status == "Failed - Agent got blocked"  # it brakes; no crash
    assert _results(tmp_path / "out")["sensors"] == ["carla_camera", "carla_lidar", "carla_radar"]
