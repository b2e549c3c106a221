"""`harness teachers show` helpers: the ego frame, speeds and the zoom window, hand-computed."""

from __future__ import annotations

import numpy as np

from teachers.show import MIN_VIEW_M, VIEW_MARGIN_M, _ego_frame, _speed, _teacher_style, _view


def test_ego_frame_forward_and_left_in_carla_frame() -> None:
    # ego at (10, 5) heading +y (south on the map); CARLA is left-handed, so seen from above
    # with +y down the driver's right is west (-x)
    poses = np.array([[10.0, 8.0, 0.0], [7.0, 5.0, 0.0], [13.0, 5.0, 0.0]])
    got = _ego_frame(poses, 10.0, 5.0, np.pi / 2)
    np.testing.assert_allclose(got, [[3.0, 0.0], [0.0, -3.0], [0.0, 3.0]], atol=1e-12)


def test_speed_from_pose_steps() -> None:
    poses = np.array([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 1.5, 0.0]])
    np.testing.assert_allclose(_speed(poses, 0.0, 0.0), [10.0, 20.0, 15.0])  # 0.1 s apart


def test_view_holds_everything_with_a_margin_and_a_minimum() -> None:
    cx, cy, side = _view(0.0, 0.0, [np.array([[100.0, 0.0, 0.0]])])
    assert (cx, cy, side) == (50.0, 0.0, 100.0 + 2 * VIEW_MARGIN_M)
    assert _view(5.0, 5.0, [])[2] == MIN_VIEW_M


def test_teachers_get_distinct_styles() -> None:
    styles = [_teacher_style(k) for k in range(8)]
    assert len({(s["color"], s["ls"], s["marker"]) for s in styles}) == 8
    assert len({s["color"] for s in styles}) == 8
