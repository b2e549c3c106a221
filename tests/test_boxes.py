"""Oriented-box geometry against hand-built cases and shapely."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from harness.boxes import Corner, box_corners, boxes_overlap, make_boxes, point_in_box

MKZ_L, MKZ_W = 4.9016, 2.1282


def box(x: float, y: float, yaw: float, length: float, width: float) -> np.ndarray:
    return np.array([x, y, yaw, length, width])


def test_corners_hand_computed_at_90_deg() -> None:
    # yaw 90 deg heads +y (south in CARLA); the vehicle's right is then -x (west).
    c = box_corners(1.0, 2.0, math.pi / 2, 4.0, 2.0)
    assert c.shape == (4, 2)
    np.testing.assert_allclose(c[Corner.FRONT_RIGHT], [0.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(c[Corner.FRONT_LEFT], [2.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(c[Corner.REAR_LEFT], [2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(c[Corner.REAR_RIGHT], [0.0, 0.0], atol=1e-12)


def test_corners_broadcast_shape() -> None:
    c = box_corners(np.zeros((2, 1)), 0.0, np.zeros(3), 4.0, 2.0)
    assert c.shape == (2, 3, 4, 2)


def test_axis_aligned_touching_and_apart() -> None:
    a = box(0.0, 0.0, 0.0, 2.0, 2.0)
    assert boxes_overlap(a, box(2.0, 0.0, 0.0, 2.0, 2.0))  # edges touch: closed boxes overlap
    assert not boxes_overlap(a, box(2.01, 0.0, 0.0, 2.0, 2.0))
    assert boxes_overlap(a, box(0.0, 1.99, 0.0, 2.0, 2.0))
    assert not boxes_overlap(a, box(0.0, -2.01, 0.0, 2.0, 2.0))


def test_rotated_near_miss_that_aabb_calls_a_hit() -> None:
    diamond = box(0.0, 0.0, math.pi / 4, 2.0, 2.0)  # |x| + |y| <= sqrt(2)
    square = box(2.2, 2.2, 0.0, 2.0, 2.0)  # nearest corner (1.2, 1.2): |x|+|y| = 2.4 > 1.414
    half = math.sqrt(2.0)
    aabb_hit = (half > 2.2 - 1.0) and (half > 2.2 - 1.0)
    assert aabb_hit
    assert not boxes_overlap(diamond, square)
    # moved to (1.6, 0.9): corner (0.6, -0.1) has |x|+|y| = 0.7 < 1.414 -> real hit
    assert boxes_overlap(diamond, box(1.6, 0.9, 0.0, 2.0, 2.0))


def test_head_on() -> None:
    a = box(0.0, 0.0, 0.0, MKZ_L, MKZ_W)
    assert boxes_overlap(a, box(4.5, 0.0, math.pi, MKZ_L, MKZ_W))  # 4.5 < 4.9016
    assert not boxes_overlap(a, box(5.0, 0.0, math.pi, MKZ_L, MKZ_W))


def test_side_swipe_with_slight_yaw() -> None:
    a = box(0.0, 0.0, 0.0, MKZ_L, MKZ_W)
    # b at lateral 2.3 m, yawed 0.1 rad: its rear-left corner lands at (-2.3323, 0.9965), inside a.
    b = box(0.0, 2.3, 0.1, MKZ_L, MKZ_W)
    np.testing.assert_allclose(box_corners(*b)[Corner.REAR_LEFT], [-2.3323, 0.9965], atol=2e-4)
    assert boxes_overlap(a, b)
    # at lateral 2.4 m every corner of b has y > 1.0641 and no corner of a lies in b
    assert not boxes_overlap(a, box(0.0, 2.4, 0.1, MKZ_L, MKZ_W))
    assert boxes_overlap(a, box(1.0, 2.0, 0.0, MKZ_L, MKZ_W))  # parallel, 2.0 < 2.1282
    assert not boxes_overlap(a, box(1.0, 2.2, 0.0, MKZ_L, MKZ_W))


def test_identical_and_symmetric() -> None:
    a = box(3.0, -1.0, 0.7, MKZ_L, MKZ_W)
    assert boxes_overlap(a, a)
    rng = np.random.default_rng(0)
    p = np.column_stack(
        [rng.uniform(-6, 6, (50, 2)), rng.uniform(-4, 4, 50), rng.uniform(0.3, 5, (50, 2))]
    )
    q = np.column_stack(
        [rng.uniform(-6, 6, (50, 2)), rng.uniform(-4, 4, 50), rng.uniform(0.3, 5, (50, 2))]
    )
    np.testing.assert_array_equal(boxes_overlap(p, q), boxes_overlap(q, p))


@pytest.mark.parametrize(("shape_a", "shape_b", "expected"), [((), (), ()), ((2, 1), (3,), (2, 3))])
def test_batch_shapes(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    a = make_boxes(np.zeros(shape_a), 0.0, 0.0, 2.0, 2.0)
    b = make_boxes(
        np.linspace(1.0, 5.0, 3)[: (shape_b[0] if shape_b else 1)].reshape(shape_b or ()),
        0.0,
        0.0,
        2.0,
        2.0,
    )
    out = boxes_overlap(a, b)
    assert out.shape == expected
    assert out.dtype == bool
    if expected == (2, 3):
        np.testing.assert_array_equal(out, [[True, False, False]] * 2)  # x = 1, 3, 5


def test_agrees_with_shapely_on_random_pairs() -> None:
    rng = np.random.default_rng(42)
    n = 400
    a = make_boxes(
        *rng.uniform(-4, 4, (2, n)), rng.uniform(-np.pi, np.pi, n), *rng.uniform(0.5, 5, (2, n))
    )
    b = make_boxes(
        *rng.uniform(-4, 4, (2, n)), rng.uniform(-np.pi, np.pi, n), *rng.uniform(0.5, 5, (2, n))
    )
    pa = shapely.polygons(box_corners(*np.moveaxis(a, -1, 0)))
    pb = shapely.polygons(box_corners(*np.moveaxis(b, -1, 0)))
    expected = shapely.intersects(pa, pb)
    assert 0.2 < expected.mean() < 0.8
    np.testing.assert_array_equal(boxes_overlap(a, b), expected)


def test_point_in_box() -> None:
    b = box(10.0, 5.0, math.pi / 2, 4.0, 2.0)  # spans x 9..11, y 3..7
    pts = np.array([[10.0, 5.0], [10.9, 6.9], [11.1, 5.0], [10.0, 7.1], [9.0, 3.0]])
    np.testing.assert_array_equal(point_in_box(pts, b), [True, True, False, False, True])
    assert point_in_box(np.zeros((2, 1, 2)), make_boxes(0.0, 0.0, np.zeros(3), 1.0, 1.0)).shape == (
        2,
        3,
    )


def test_candidates_x_time_x_agents_broadcast() -> None:
    ego = make_boxes(np.arange(3.0)[:, None, None], 0.0, 0.0, MKZ_L, MKZ_W)  # (3, 1, 1, 5)
    agents = make_boxes(
        np.array([[[0.0, 10.0, 20.0, 30.0, 40.0]]]) + np.arange(4.0)[None, :, None],
        0.0,
        0.0,
        MKZ_L,
        MKZ_W,
    )
    out = boxes_overlap(ego, agents)  # (3, 4, 5): only the agent starting at x = 0 is ever hit
    assert out.shape == (3, 4, 5)
    assert out[..., 0].all() and not out[..., 1:].any()
