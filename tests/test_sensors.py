"""Sensor specs (leaderboard rules), GNSS / IMU / speedometer / OpenDRIVE readings, the BEV raster,
the town raster and the suite's input_data form."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import shapely

from harness.errors import SensorConfigError
from harness.maps.geo import EARTH_RADIUS_EQUA_M, GeoReference
from harness.sim.sensors import (
    BevChannel,
    BevRenderer,
    GroundClass,
    SensorSuite,
    TownRaster,
    bev_to_rgb,
    compass_rad,
    gnss_reading,
    imu_reading,
    opendrive_reading,
    speedometer_reading,
    validate_sensors,
)
from harness.sim.sensors.spec import SensorSpec, rotation_matrix
from harness.world.state import ActorArrays, ActorKind, LightState, WorldState


def make_state(
    rows: list[dict[str, float]], lights: tuple[int, ...] = (), frame: int = 3
) -> WorldState:
    a = ActorArrays.empty(len(rows))
    for i, row in enumerate(rows):
        a.valid[i] = True
        a.actor_id[i] = i
        for k, v in {"length": 4.0, "width": 2.0, "height": 1.5, **row}.items():
            getattr(a, k)[i] = v
    return WorldState(
        frame=frame, time_s=0.15, actors=a,
        light_state=np.array(lights, dtype=np.int8), light_elapsed_s=np.zeros(len(lights)),
    )  # fmt: skip


def cam(i: int, **kw: Any) -> dict[str, Any]:
    return {"type": "sensor.camera.rgb", "id": f"cam{i}", "x": 1.3, "y": 0.0, "z": 2.3, "roll": 0.0,
            "pitch": 0.0, "yaw": 0.0, "width": 256, "height": 128, "fov": 100, **kw}  # fmt: skip


# --- specs -----------------------------------------------------------------------------------


def test_valid_leaderboard_list_parses() -> None:
    specs = validate_sensors([
        cam(0), {"type": "sensor.other.gnss", "id": "gps", "x": 0.0, "y": 0.0, "z": 0.0},
        {"type": "sensor.other.imu", "id": "imu", "x": 0, "y": 0, "z": 0, "roll": 0, "pitch": 0, "yaw": 0},
        {"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20},
        {"type": "sensor.opendrive_map", "id": "map", "reading_frequency": 1e-6},
        {"type": "sensor.lidar.ray_cast", "id": "lidar", "x": 1.3, "y": 0.0, "z": 2.5},
    ])  # fmt: skip
    assert [s.id for s in specs] == ["cam0", "gps", "imu", "speed", "map", "lidar"]
    assert specs[0].width == 256 and specs[0].height == 128 and specs[0].fov == 100.0
    assert specs[0].z == 2.3


def test_too_many_cameras() -> None:
    with pytest.raises(SensorConfigError, match="too many sensor.camera.rgb.*9.*8"):
        validate_sensors([cam(i) for i in range(9)])


def test_unknown_type_names_the_sensor_and_the_allowed_types() -> None:
    with pytest.raises(SensorConfigError, match="'sem'.*sensor.camera.semantic.*sensor.camera.rgb"):
        validate_sensors([{"type": "sensor.camera.semantic_segmentation", "id": "sem"}])


def test_mount_radius_includes_z() -> None:
    validate_sensors([cam(0, x=2.0, y=0.0, z=2.2)])  # radius 2.97 m
    with pytest.raises(SensorConfigError, match="'cam0'.*3.01 m"):
        validate_sensors([cam(0, x=1.0, y=1.0, z=2.66)])  # sqrt(1 + 1 + 7.0756) = 3.01


def test_duplicate_id() -> None:
    with pytest.raises(SensorConfigError, match="duplicate sensor id 'cam0'"):
        validate_sensors([cam(0), cam(0, x=0.0)])


@pytest.mark.parametrize("bad", [{"width": 0}, {"height": 12.5}, {"fov": 180}, {"fov": "wide"}])
def test_camera_intrinsics_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(SensorConfigError, match="cam0"):
        validate_sensors([cam(0, **bad)])


def test_camera_without_fov() -> None:
    entry = cam(0)
    del entry["fov"]
    with pytest.raises(SensorConfigError, match="'cam0'.*'fov'"):
        validate_sensors([entry])


def test_bev_is_privileged() -> None:
    bev = {"type": "harness.bev", "id": "bev", "width": 64, "height": 64, "resolution_m": 0.5}
    with pytest.raises(SensorConfigError, match="privileged"):
        validate_sensors([bev])
    (spec,) = validate_sensors([bev], privileged=True)
    assert (spec.width, spec.height, spec.resolution_m) == (64, 64, 0.5)


@pytest.mark.parametrize("rpy", [(10.0, 20.0, 30.0), (-5.0, -15.0, 100.0), (0.0, -90.0, 0.0)])
def test_rotation_matches_carla_transform(rpy: tuple[float, float, float]) -> None:
    carla = pytest.importorskip("carla")
    r, p, y = rpy
    ref = np.array(
        carla.Transform(carla.Location(), carla.Rotation(pitch=p, yaw=y, roll=r)).get_matrix()
    )
    np.testing.assert_allclose(rotation_matrix(r, p, y), ref[:3, :3], atol=1e-6)


# --- GNSS / IMU / speedometer / map -------------------------------------------------------------


def test_gnss_at_origin_and_with_a_rotated_mount_offset() -> None:
    geo = GeoReference(lat0_deg=42.0, lon0_deg=2.0)
    spec = SensorSpec(type="sensor.other.gnss", id="gps", x=1.0, z=2.0)
    at_origin = gnss_reading(make_state([{"yaw": -np.pi / 2, "x": 0.0, "y": 1.0}]), spec, geo)
    # heading north (-y) with the sensor 1 m ahead: sensor at world (0, 0, 2)
    assert at_origin.shape == (3,) and at_origin.dtype == np.float64
    np.testing.assert_allclose(at_origin, [42.0, 2.0, 2.0], atol=1e-9)
    east = gnss_reading(
        make_state([{"yaw": 0.0, "x": 999.0, "y": 0.0}]), spec, geo
    )  # sensor at x = 1000
    expected_lon = 2.0 + 1000.0 * 180.0 / (np.pi * EARTH_RADIUS_EQUA_M * np.cos(np.radians(42.0)))
    assert east[1] == pytest.approx(expected_lon, abs=1e-10)
    assert east[0] == pytest.approx(42.0, abs=1e-10)


@pytest.mark.parametrize(
    ("yaw", "expected"),
    [(-np.pi / 2, 0.0), (0.0, np.pi / 2), (np.pi / 2, np.pi), (np.pi, 1.5 * np.pi)],
)
def test_compass_north_east_south_west(yaw: float, expected: float) -> None:
    assert float(compass_rad(yaw)) == pytest.approx(expected, abs=1e-12)


def test_compass_is_in_zero_to_two_pi() -> None:
    c = compass_rad(np.linspace(-10, 10, 101))
    assert (c >= 0).all() and (c < 2 * np.pi).all()


def test_imu_turning_right_while_accelerating() -> None:
    state = make_state([{"yaw": 0.0, "speed": 10.0, "accel": 1.5, "yaw_rate": 0.2}])
    imu = imu_reading(state, SensorSpec(type="sensor.other.imu", id="imu"))
    assert imu.shape == (7,) and imu.dtype == np.float64
    # centripetal v * omega = 2 m/s2 to the right (+y), gravity +9.81 on z, gyro z = yaw rate, facing east
    np.testing.assert_allclose(imu, [1.5, 2.0, 9.81, 0.0, 0.0, 0.2, np.pi / 2], atol=1e-12)


def test_imu_mounted_facing_right() -> None:
    state = make_state([{"yaw": -np.pi / 2, "speed": 10.0, "accel": 1.5, "yaw_rate": 0.2}])
    imu = imu_reading(state, SensorSpec(type="sensor.other.imu", id="imu", yaw=90.0))
    # sensor x = ego right (sees +2.0), sensor y = ego backward (sees -1.5); ego faces north, sensor east
    np.testing.assert_allclose(imu[[0, 1, 2, 5, 6]], [2.0, -1.5, 9.81, 0.2, np.pi / 2], atol=1e-12)


def test_speedometer_and_opendrive() -> None:
    assert speedometer_reading(make_state([{"speed": -1.25}])) == {"speed": -1.25}
    assert opendrive_reading("<OpenDRIVE/>") == {"opendrive": "<OpenDRIVE/>"}


# --- raster and BEV -------------------------------------------------------------------------


def test_raster_paints_layers_and_holes() -> None:
    road = shapely.box(0, 0, 40, 40).difference(shapely.box(15, 15, 25, 25))  # a ring with a hole
    walk = shapely.box(-5, -5, 45, 45).difference(shapely.box(0, 0, 40, 40))
    mark = SimpleNamespace(xy=np.array([[0.0, 5.125], [40.0, 5.125]]), kind="solid", color="yellow")
    r = TownRaster.build(road, walk, [mark], resolution_m=0.25)
    got = r.lookup(
        np.array(
            [[10.0, 10.0], [20.0, 20.0], [-2.0, 20.0], [20.0, 5.125], [-30.0, 0.0], [1e4, 0.0]]
        )
    )
    assert got.tolist() == [GroundClass.ROAD, GroundClass.TERRAIN, GroundClass.SIDEWALK,
                            GroundClass.YELLOW_MARKING, GroundClass.TERRAIN, GroundClass.TERRAIN]  # fmt: skip
    np.testing.assert_allclose(
        r.pixel_to_world(r.world_to_pixel(np.array([3.3, -4.4]))), [3.3, -4.4]
    )


def test_broken_marking_has_gaps() -> None:
    mark = SimpleNamespace(xy=np.array([[0.0, 0.05], [90.0, 0.05]]), kind="broken", color="white")
    r = TownRaster.build(shapely.box(0, -5, 90, 5), markings=[mark], resolution_m=0.1)
    s = np.arange(0.05, 90.0, 0.1)
    # PIL centres 1-2 px wide lines to within a pixel: look one pixel either side of the line
    near = [r.lookup(np.stack([s, np.full_like(s, 0.05 + dy)], -1)) for dy in (-0.1, 0.0, 0.1)]
    painted = np.any([n == GroundClass.WHITE_MARKING for n in near], axis=0)
    assert painted.mean() == pytest.approx(3.0 / 9.0, abs=0.03)  # 3 m dash every 9 m
    assert painted[(s > 0.5) & (s < 2.5)].all() and not painted[(s > 3.5) & (s < 8.5)].any()


@pytest.fixture(scope="module")
def plaza() -> TownRaster:
    return TownRaster.build(shapely.box(0, 0, 200, 200), resolution_m=0.2)


def test_bev_vehicle_ahead_and_to_the_right(plaza: TownRaster) -> None:
    res, size = 0.25, 256
    yaw = 0.7
    ego = np.array([100.0, 100.0])
    fwd, right = np.array([np.cos(yaw), np.sin(yaw)]), np.array([-np.sin(yaw), np.cos(yaw)])
    ahead, side = ego + 10.0 * fwd, ego + 5.0 * right
    rows = [
        {"x": ego[0], "y": ego[1], "yaw": yaw},
        {"x": ahead[0], "y": ahead[1], "yaw": yaw, "kind": ActorKind.VEHICLE},
        {
            "x": side[0],
            "y": side[1],
            "yaw": yaw,
            "kind": ActorKind.PEDESTRIAN,
            "length": 0.6,
            "width": 0.6,
        },
    ]
    bev = BevRenderer(plaza, None, size, size, res).render(make_state(rows))
    assert bev.shape == (len(BevChannel), size, size) and bev.dtype == np.uint8

    def centre(ch: BevChannel) -> tuple[float, float]:
        r, c = np.nonzero(bev[ch])
        return float(r.mean()) + 0.5, float(c.mean()) + 0.5

    assert centre(BevChannel.EGO) == pytest.approx((size / 2, size / 2), abs=0.5)
    assert centre(BevChannel.VEHICLES) == pytest.approx((size / 2 - 10.0 / res, size / 2), abs=0.5)
    assert centre(BevChannel.PEDESTRIANS) == pytest.approx(
        (size / 2, size / 2 + 5.0 / res), abs=0.5
    )
    # the vehicle is aligned with the ego: 4 m x 2 m = 16 x 8 px, long side vertical
    r, c = np.nonzero(bev[BevChannel.VEHICLES])
    assert r.max() - r.min() + 1 == pytest.approx(
        16, abs=1
    ) and c.max() - c.min() + 1 == pytest.approx(8, abs=1)
    assert bev[BevChannel.ROAD].all()  # the 200 m plaza covers the whole 64 m view
    rgb = bev_to_rgb(bev)
    assert rgb.shape == (size, size, 3) and rgb.dtype == np.uint8


def test_bev_stop_lines_take_light_state_and_route_is_drawn(plaza: TownRaster) -> None:
    signals = SimpleNamespace(
        light_xy=np.array([[120.0, 95.0], [80.0, 95.0]]), light_yaw=np.zeros(2),
        stop_a=np.array([[110.0, 98.0], [90.0, 98.0], [100.0, 120.0]]),
        stop_b=np.array([[110.0, 102.0], [90.0, 102.0], [104.0, 120.0]]),
        stop_owner=np.array([0, 1, 0]), stop_kind=np.array([0, 0, 1]),
    )  # fmt: skip
    route = np.array([[100.0, 100.0], [130.0, 100.0]])
    state = make_state(
        [{"x": 100.0, "y": 100.0, "yaw": 0.0}], lights=(int(LightState.RED), int(LightState.GREEN))
    )
    bev = BevRenderer(plaza, signals, 128, 128, 0.5).render(state, route)
    # heading east: x = 110 is 10 m ahead (row 64 - 20), x = 90 is 10 m behind (row 64 + 20)
    r, _ = np.nonzero(bev[BevChannel.LIGHT_RED])
    assert r.mean() + 0.5 == pytest.approx(64 - 20, abs=1.0)
    r, _ = np.nonzero(bev[BevChannel.LIGHT_GREEN])
    assert r.mean() + 0.5 == pytest.approx(64 + 20, abs=1.0)
    assert not bev[BevChannel.LIGHT_YELLOW].any()
    r, c = np.nonzero(bev[BevChannel.STOP_SIGNS])
    assert c.mean() + 0.5 == pytest.approx(64 + 40, abs=1.0)  # y = 120 is 20 m to the right
    r, c = np.nonzero(bev[BevChannel.ROUTE])
    # straight up from the centre to 30 m ahead (row 64 - 60)
    assert (
        abs(r.min() + 0.5 - 4) <= 1.5
        and abs(r.max() + 0.5 - 64) <= 1.5
        and abs(c.mean() + 0.5 - 64) <= 1.0
    )


# --- suite ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_town() -> SimpleNamespace:
    area = SimpleNamespace(
        drivable=shapely.box(-50, -5, 50, 5), sidewalks=shapely.box(-50, 5, 50, 8), markings=[]
    )
    signals = SimpleNamespace(
        light_xy=np.zeros((0, 2)), light_yaw=np.zeros(0), stop_a=np.zeros((0, 2)), stop_b=np.zeros((0, 2)),
        stop_owner=np.zeros(0, dtype=np.int64), stop_kind=np.zeros(0, dtype=np.int64),
    )  # fmt: skip
    return SimpleNamespace(name="Fake", sha256="fake-1", xodr="<OpenDRIVE/>", area=area, signals=signals,
                           geo=GeoReference())  # fmt: skip


def test_suite_returns_leaderboard_input_data(fake_town: SimpleNamespace) -> None:
    sensors = [
        cam(0), cam(1, width=64, height=32, yaw=180.0),
        {"type": "sensor.other.gnss", "id": "gps", "x": 0.0, "y": 0.0, "z": 0.0},
        {"type": "sensor.other.imu", "id": "imu", "x": 0.0, "y": 0.0, "z": 0.0},
        {"type": "sensor.speedometer", "id": "speed", "reading_frequency": 20},
        {"type": "sensor.opendrive_map", "id": "map", "reading_frequency": 1e-6},
    ]  # fmt: skip
    suite = SensorSuite.from_sensor_dicts(fake_town, sensors)
    data = suite.read(make_state([{"speed": 3.0}], frame=42))
    assert set(data) == {"cam0", "cam1", "gps", "imu", "speed", "map"}
    assert all(frame == 42 for frame, _ in data.values())
    assert data["cam0"][1].shape == (128, 256, 4) and data["cam1"][1].shape == (32, 64, 4)
    assert data["gps"][1].shape == (3,) and data["imu"][1].shape == (7,)
    assert data["speed"][1] == {"speed": 3.0} and data["map"][1] == {"opendrive": "<OpenDRIVE/>"}


def test_suite_delivers_lidar_and_radar_in_the_leaderboard_formats(
    fake_town: SimpleNamespace,
) -> None:
    sensors = [
        cam(0),
        {"type": "sensor.lidar.ray_cast", "id": "LIDAR", "x": 1.3, "y": 0.0, "z": 2.5},
        {"type": "sensor.other.radar", "id": "RADAR", "x": 2.0, "y": 0.0, "z": 1.0,
         "horizontal_fov": 30, "vertical_fov": 10},
    ]  # fmt: skip
    data = SensorSuite.from_sensor_dicts(fake_town, sensors).read(
        make_state([{"speed": 3.0}, {"x": 12.0}])
    )
    lidar, radar = data["LIDAR"][1], data["RADAR"][1]
    assert lidar.dtype == np.float32 and lidar.ndim == 2 and lidar.shape[1] == 4
    assert radar.dtype == np.float32 and radar.ndim == 2 and radar.shape[1] == 4
    assert len(lidar) > 0 and len(radar) > 0


def test_radar_needs_its_fovs() -> None:
    with pytest.raises(SensorConfigError, match="horizontal_fov"):
        validate_sensors([{"type": "sensor.other.radar", "id": "r", "vertical_fov": 10}])


def test_suite_noise_is_seeded_and_off_by_default(fake_town: SimpleNamespace) -> None:
    from harness.sim.sensors import LEADERBOARD_NOISE

    sensors = [
        {"type": "sensor.other.gnss", "id": "gps"},
        {"type": "sensor.other.imu", "id": "imu"},
    ]
    state = make_state([{"speed": 3.0}])
    clean = SensorSuite.from_sensor_dicts(fake_town, sensors).read(state)
    np.testing.assert_allclose(clean["imu"][1][:3], [0.0, 0.0, 9.81])
    a = SensorSuite.from_sensor_dicts(fake_town, sensors, noise=LEADERBOARD_NOISE, seed=5).read(
        state
    )
    b = SensorSuite.from_sensor_dicts(fake_town, sensors, noise=LEADERBOARD_NOISE, seed=5).read(
        state
    )
    np.testing.assert_array_equal(a["imu"][1], b["imu"][1])
    assert not np.array_equal(a["imu"][1], clean["imu"][1])
    assert np.abs(a["imu"][1] - clean["imu"][1]).max() < 0.1
