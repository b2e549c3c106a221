"""Camera renderer: BGRA layout, pinhole geometry against hand-computed projections, horizon,
ground texture placement in world coordinates, traffic-light colours."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import shapely

from harness.sim.sensors import camera as cam_mod
from harness.sim.sensors.camera import CameraRenderer
from harness.sim.sensors.raster import GroundClass, TownRaster
from harness.sim.sensors.spec import SensorSpec
from harness.world.state import ActorArrays, ActorKind, LightState, WorldState

W, H, FOV = 200, 100, 90.0  # focal = W / (2 tan 45 deg) = 100 px


def make_state(rows: list[dict[str, float]], lights: tuple[int, ...] = ()) -> WorldState:
    """Ego (row 0) plus actors from dicts of ActorArrays fields."""
    a = ActorArrays.empty(len(rows))
    for i, row in enumerate(rows):
        a.valid[i] = True
        a.actor_id[i] = i
        for k, v in {"length": 4.0, "width": 2.0, "height": 1.5, **row}.items():
            getattr(a, k)[i] = v
    return WorldState(
        frame=7, time_s=0.35, actors=a,
        light_state=np.array(lights, dtype=np.int8), light_elapsed_s=np.zeros(len(lights)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def grass() -> TownRaster:
    """A 1 km terrain square with a thin road strip far away (the raster needs some road)."""
    return TownRaster.build(shapely.box(-500, 490, 500, 500), shapely.box(-500, -500, 500, 500))


def camera(raster: TownRaster, **mount: float) -> CameraRenderer:
    spec = SensorSpec(type="sensor.camera.rgb", id="cam", width=W, height=H, fov=FOV, **mount)
    return CameraRenderer(raster, spec)


def is_sky(idx: np.ndarray) -> np.ndarray:
    return (idx >= cam_mod.SKY_BASE) & (idx < cam_mod.SKY_BASE + cam_mod.SKY_LEVELS)


def test_output_is_bgra_uint8_with_opaque_alpha(grass: TownRaster) -> None:
    img = camera(grass, z=1.7).render(make_state([{}]))
    assert img.shape == (H, W, 4) and img.dtype == np.uint8
    assert (img[..., 3] == 255).all()
    # the bottom row sees sidewalk (the second geometry): RGB (150, 146, 140) stored as B, G, R
    assert tuple(img[-1, W // 2, :3]) == cam_mod.GROUND_RGB[GroundClass.SIDEWALK][::-1]


def test_level_camera_horizon_is_at_half_height(grass: TownRaster) -> None:
    idx = camera(grass, z=1.7).render_indices(make_state([{}]))
    assert is_sky(idx[: H // 2]).all()
    assert not is_sky(idx[H // 2 :]).any()


def test_pitched_down_camera_moves_horizon_up(grass: TownRaster) -> None:
    pitch = -10.0  # CARLA: negative pitch looks down
    idx = camera(grass, z=1.7, pitch=pitch).render_indices(make_state([{}]))
    horizon_v = H / 2 - 100.0 * np.tan(np.radians(-pitch))  # f = 100 px
    first_ground_row = int(np.ceil(horizon_v - 0.5))
    column = is_sky(idx[:, W // 2])
    assert column[: first_ground_row - 1].all()
    assert not column[first_ground_row + 1 :].any()


def _expected_bbox(corners_cam: np.ndarray) -> tuple[float, float, float, float]:
    """Pinhole projection by hand: u = W/2 + f y / x, v = H/2 - f z / x with f = 100 px."""
    u = W / 2 + 100.0 * corners_cam[:, 1] / corners_cam[:, 0]
    v = H / 2 - 100.0 * corners_cam[:, 2] / corners_cam[:, 0]
    return u.min(), u.max(), v.min(), v.max()


@pytest.mark.parametrize(("ego_yaw", "lateral"), [(0.0, 0.0), (0.0, 3.0), (1.1, -2.0)])
def test_tall_box_projects_where_the_pinhole_model_says(
    grass: TownRaster, ego_yaw: float, lateral: float
) -> None:
    ego_xy = np.array([12.0, -7.0])
    fwd = np.array([np.cos(ego_yaw), np.sin(ego_yaw)])
    right = np.array([-np.sin(ego_yaw), np.cos(ego_yaw)])
    box_xy = ego_xy + 20.0 * fwd + lateral * right  # 20 m ahead, `lateral` m to the right
    rows = [
        {"x": ego_xy[0], "y": ego_xy[1], "yaw": ego_yaw},
        {"x": box_xy[0], "y": box_xy[1], "yaw": ego_yaw, "length": 1.0, "width": 1.0, "height": 3.0,
         "kind": ActorKind.STATIC},
    ]  # fmt: skip
    idx = camera(grass, z=1.5).render_indices(make_state(rows))
    mask = idx >= cam_mod.MATERIAL_BASE
    # camera frame corners: depth 19.5..20.5, right lateral-0.5..lateral+0.5, up -1.5..1.5
    corners = np.array(
        [
            [x, y, z]
            for x in (19.5, 20.5)
            for y in (lateral - 0.5, lateral + 0.5)
            for z in (-1.5, 1.5)
        ]
    )
    umin, umax, vmin, vmax = _expected_bbox(corners)
    cols = np.flatnonzero(mask.any(axis=0))
    rws = np.flatnonzero(mask.any(axis=1))
    # a pixel is painted when its centre (index + 0.5) lies inside the projected silhouette
    assert abs(cols[0] + 0.5 - umin) <= 1.0 and abs(cols[-1] + 0.5 - umax) <= 1.0
    assert abs(rws[0] + 0.5 - vmin) <= 1.0 and abs(rws[-1] + 0.5 - vmax) <= 1.0
    centre_u = W / 2 + 100.0 * lateral / 20.0
    assert abs(0.5 * (cols[0] + cols[-1] + 1) - centre_u) <= 1.0


def test_box_behind_the_camera_is_not_drawn(grass: TownRaster) -> None:
    rows = [{"x": 0.0, "y": 0.0}, {"x": -15.0, "y": 0.0, "height": 3.0}]
    idx = camera(grass, z=1.5).render_indices(make_state(rows))
    assert not (idx >= cam_mod.MATERIAL_BASE).any()


def test_box_straddling_the_camera_plane_is_clipped_not_lost(grass: TownRaster) -> None:
    rows = [{"x": 0.0, "y": 0.0}, {"x": 0.5, "y": 2.0, "length": 5.0, "height": 2.5}]
    idx = camera(grass, z=1.5).render_indices(make_state(rows))
    right_half = idx[:, W // 2 :] >= cam_mod.MATERIAL_BASE
    assert right_half.mean() > 0.2
    assert not (idx[:, : W // 2 - 5] >= cam_mod.MATERIAL_BASE).any()


def test_downward_camera_shows_road_exactly_where_the_polygon_is() -> None:
    # road strip in world: x in [30, 40] (any y); ego at (50, 30) heading +y (south), so its right
    # is -x (west): the strip lies 10..20 m to the ego's right; the camera at 20 m sees 40 m x 40 m
    raster = TownRaster.build(shapely.box(30, -200, 40, 200), resolution_m=0.1)
    spec = SensorSpec(
        type="sensor.camera.rgb", id="down", z=20.0, pitch=-90.0, width=W, height=W, fov=FOV
    )
    img = CameraRenderer(raster, spec).render(
        make_state([{"x": 50.0, "y": 30.0, "yaw": np.pi / 2}])
    )
    road = img[..., :3] == np.array(cam_mod.GROUND_RGB[GroundClass.ROAD][::-1], dtype=np.uint8)
    road = road.all(-1)
    # looking down, image right = ego right, image up = ego forward; u = W/2 + f * y_ego / 20 with f = 100
    u = np.arange(W) + 0.5
    y_ego = (u - W / 2) * 20.0 / 100.0
    expected = (y_ego > 10.0) & (y_ego < 20.0)
    inner = expected & (np.abs(y_ego - 15.0) < 4.5)  # stay a pixel clear of the edges
    outer = ~expected & (np.minimum(np.abs(y_ego - 20.0), np.abs(y_ego - 10.0)) > 0.5)
    assert road[:, inner].all()
    assert not road[:, outer].any()


def test_traffic_light_head_takes_the_state_colour(grass: TownRaster) -> None:
    signals = SimpleNamespace(
        light_xy=np.array([[15.0, 0.0]]), light_yaw=np.array([np.pi]),
        stop_a=np.zeros((0, 2)), stop_b=np.zeros((0, 2)), stop_owner=np.zeros(0, dtype=np.int64),
    )  # fmt: skip
    spec = SensorSpec(type="sensor.camera.rgb", id="cam", z=1.5, width=W, height=H, fov=FOV)
    renderer = CameraRenderer(grass, spec, signals)
    for state in (LightState.RED, LightState.GREEN):
        idx = renderer.render_indices(make_state([{}], lights=(int(state),)))
        head = cam_mod.MATERIAL_BASE + cam_mod.FACE_SHADES * (cam_mod.MAT_LIGHT0 + int(state))
        lit = (idx >= head) & (idx < head + cam_mod.FACE_SHADES)
        rws = np.flatnonzero(lit.any(axis=1))
        assert len(rws) > 0
        # the head spans 3.0..4.1 m above ground, i.e. 1.5..2.6 m above the camera, at ~15 m
        assert rws[-1] + 0.5 <= H / 2 - 100.0 * 1.5 / 15.5 + 1.0
        other = LightState.GREEN if state == LightState.RED else LightState.RED
        other_head = cam_mod.MATERIAL_BASE + cam_mod.FACE_SHADES * (cam_mod.MAT_LIGHT0 + int(other))
        assert not ((idx >= other_head) & (idx < other_head + cam_mod.FACE_SHADES)).any()


def test_real_town_camera_on_a_lane_sees_road_ahead(shared_maps: object) -> None:
    from harness.maps import load_town
    from harness.sim.sensors import town_raster

    town = load_town("Town01")
    lanes = town.lanes
    start = int(lanes.start[0]) + int(lanes.count[0]) // 2
    x, y = lanes.xy[start]
    yaw = float(lanes.yaw_rad[start])
    spec = SensorSpec(
        type="sensor.camera.rgb", id="front", x=1.3, z=2.3, width=256, height=128, fov=100.0
    )
    img = CameraRenderer(town_raster(town), spec, town.signals).render(
        make_state([{"x": x, "y": y, "yaw": yaw}])
    )
    road_bgr = np.array(cam_mod.GROUND_RGB[GroundClass.ROAD][::-1], dtype=np.uint8)
    assert (img[-5:, 120:136, :3] == road_bgr).all(-1).mean() > 0.5
