"""The angle-wrapping helper and its compiled scalar form agree bit for bit."""

from __future__ import annotations

import math

import numpy as np

from harness.geometry import wrap_angle, wrap_angle_scalar


def test_wrap_angle_range_and_identity() -> None:
    x = np.linspace(-20.0, 20.0, 4001)
    w = wrap_angle(x)
    assert np.all((w >= -math.pi) & (w < math.pi))
    np.testing.assert_allclose(np.cos(w), np.cos(x), atol=1e-12)
    np.testing.assert_allclose(np.sin(w), np.sin(x), atol=1e-12)
    assert wrap_angle(math.pi) == -math.pi


def test_scalar_wrap_equals_array_wrap_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, math.pi, -math.pi, 2 * math.pi, -2 * math.pi, 3 * math.pi, 1e-300]
    edges += [np.nextafter(math.pi, 0.0), np.nextafter(-math.pi, 0.0), -1e-300]
    x = np.concatenate([rng.uniform(-50.0, 50.0, 5000), edges])
    ref = wrap_angle(x)
    got = np.array([wrap_angle_scalar(float(v)) for v in x])
    np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))
    assert math.isnan(wrap_angle_scalar(math.nan))
