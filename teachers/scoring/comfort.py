"""Comfort metrics: C (NAVSIM v1), HC (history comfort) and EC (extended, two-frame comfort).

Signals of states (B, T, N_STATE) sampled every 0.1 s, Savitzky-Golay filtered as NAVSIM's
pdm_comfort_metrics (polynomial order 2): accelerations smoothed with window ACCEL_WINDOW (8);
jerks are the filter's first derivative (window JERK_WINDOW, 15) of the smoothed accelerations;
the yaw rate is the first derivative (window YAW_WINDOW, 5) of the unwrapped heading and the yaw
acceleration the same derivative of that yaw rate. Bounds are strict (open intervals); they and
the EC limits live in :mod:`harness.world.comfort`, shared with the expert's proposal scorer.

These are the ``harness`` profile's signals: the lateral acceleration is speed x yaw rate of
the rolled-out bicycle, no rounding, EC slices the filtered full signals. The ``navsim`` profile
(the default) uses NAVSIM's own (:func:`navsim_comfort_signals`, :func:`navsim_history_comfort`,
:func:`navsim_extended_comfort`): the box centre's longitudinal acceleration, lateral
acceleration 0 for simulated states, jerk of |acceleration|, yaw acceleration as one
second-derivative filter, 8-decimal rounding, HC on NAVSIM's 14 interpolated history states,
EC filtered on the 36-step overlap only. Without a previous plan EC = 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import savgol_filter

from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.jit import njit
from harness.world.comfort import (
    EC_ACCEL_RMS_MPS2,
    EC_JERK_RMS_MPS3,
    EC_YAW_ACCEL_RMS_RADPS2,
    EC_YAW_RATE_RMS_RADPS,
    MAX_ABS_JERK_MPS3,
    MAX_ABS_LAT_ACCEL_MPS2,
    MAX_ABS_LON_JERK_MPS3,
    MAX_ABS_YAW_ACCEL_RADPS2,
    MAX_ABS_YAW_RATE_RADPS,
    MAX_LON_ACCEL_MPS2,
    MIN_LON_ACCEL_MPS2,
)

SAVGOL_ORDER = 2  # polynomial order of every filter
ACCEL_WINDOW = 8  # samples: acceleration smoothing
JERK_WINDOW = 15  # samples: derivative of the smoothed accelerations
YAW_WINDOW = 5  # samples: derivative of heading and of yaw rate
NAVSIM_DECIMALS = 8  # NAVSIM rounds every comfort signal to this many decimals

EC_LIMITS = (  # signal of ComfortSignals, EC's limit on the RMS difference
    ("accel", EC_ACCEL_RMS_MPS2),
    ("jerk", EC_JERK_RMS_MPS3),
    ("yaw_rate", EC_YAW_RATE_RMS_RADPS),
    ("yaw_accel", EC_YAW_ACCEL_RMS_RADPS2),
)

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


@functools.lru_cache(maxsize=32)
def savgol_matrix(n: int, window: int, deriv: int, dt_s: float, order: int = SAVGOL_ORDER) -> Float:
    """(n, n) matrix M with ``savgol_filter(y, ...) == y @ M.T`` along the last axis (the filter
    with mode 'interp' is linear), so filtering B signals is one matrix product."""
    w = min(window, n)
    eye = np.eye(n)
    m = savgol_filter(eye, w, order, deriv=deriv, delta=dt_s, axis=0)
    return np.ascontiguousarray(np.asarray(m).T)


@functools.lru_cache(maxsize=32)
def savgol_band(
    n: int, window: int, deriv: int, dt_s: float, order: int = SAVGOL_ORDER
) -> tuple[NDArray[np.int64], Float]:
    """:func:`savgol_matrix` as a band: output sample i = sum over m of
    ``y[start[i] + m] * taps[i, m]`` with ``start`` (n,) and ``taps`` (n, w), w = min(window, n)
    (the filter with mode 'interp' reads w consecutive samples for every output)."""
    m = savgol_matrix(n, window, deriv, dt_s, order)
    w = min(window, n)
    nonzero = m.T != 0.0  # (output, input)
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), 0)
    start = np.minimum(first, n - w).astype(np.int64)
    cols = start[:, None] + np.arange(w)
    taps = np.ascontiguousarray(m.T[np.arange(n)[:, None], cols])
    if not np.allclose(np.abs(m).sum(axis=0), np.abs(taps).sum(axis=1), rtol=1e-12, atol=0.0):
        raise AssertionError(f"Savitzky-Golay window {window} is not banded as expected")
    return start, taps


def _smooth(y: Float, window: int, decimals: int = 0) -> Float:
    return _apply_band(y, *savgol_band(y.shape[-1], window, 0, 1.0), decimals=decimals)


def _derivative(
    y: Float, window: int, dt_s: float, decimals: int = 0, deriv: int = 1, order: int = SAVGOL_ORDER
) -> Float:
    band = savgol_band(y.shape[-1], window, deriv, dt_s, order)
    return _apply_band(y, *band, decimals=decimals)


def _apply_band(y: Float, start: NDArray[np.int64], taps: Float, decimals: int = 0) -> Float:
    """The banded filter (:func:`savgol_band`) along the last axis of ``y`` (..., n). Runs on a
    time-major (n, R) copy (a free view when ``y`` is itself a transposed time-major result, as
    the chained filters of :func:`comfort_signals` are) and returns a (..., n) view of the
    time-major output."""
    n = y.shape[-1]
    time_major = np.ascontiguousarray(np.reshape(y, (-1, n)).T, dtype=np.float64)
    out = np.empty(time_major.shape)
    _band_kernel(time_major, start, taps, float(10**decimals) if decimals else 0.0, out)
    return np.reshape(out.T, y.shape)


@njit
def _band_kernel(y: Float, start: NDArray[np.int64], taps: Float, scale: float, out: Float) -> None:
    """out[i, r] = sum over m (ascending) of y[start[i] + m, r] * taps[i, m] for time-major
    signals y (n, R); the inner loop runs over the R signals (contiguous, vectorised). With
    ``scale`` = 10^d > 0 each output is rounded to d decimals as ``np.round`` does it
    (rint(x * 10^d) / 10^d, the same bits)."""
    n, rows = y.shape
    for i in range(n):
        s0 = start[i]
        for r in range(rows):
            out[i, r] = y[s0, r] * taps[i, 0]
        for m in range(1, taps.shape[1]):
            c = taps[i, m]
            for r in range(rows):
                out[i, r] += y[s0 + m, r] * c
        if scale > 0.0:
            for r in range(rows):
                out[i, r] = np.rint(out[i, r] * scale) / scale


@dataclass(frozen=True)
class ComfortSignals:
    """Filtered signals (B, T): ``lon_accel``, ``lat_accel``, ``accel`` (magnitude) [m/s2],
    ``lon_jerk``, ``jerk`` (magnitude) [m/s3], ``yaw_rate`` [rad/s], ``yaw_accel`` [rad/s2]."""

    lon_accel: Float
    lat_accel: Float
    accel: Float
    lon_jerk: Float
    jerk: Float
    yaw_rate: Float
    yaw_accel: Float


def unwrap_time(yaw: Float) -> Float:
    """Headings (B, T) [rad] made continuous along time: the first sample plus the cumulative
    wrapped steps (``np.unwrap`` up to rounding, without its generic-axis overhead); numba kernel
    :func:`_unwrap_kernel`. Returns a (B, T) view of a
    time-major (T, B) buffer (what the banded filters read without a copy)."""
    yaw = np.ascontiguousarray(yaw, dtype=np.float64)
    out = np.empty(yaw.shape[::-1])
    _unwrap_kernel(yaw, out)
    return out.T


@njit
def _unwrap_kernel(yaw: Float, out: Float) -> None:
    """out (T, B) = the unwrapped headings of yaw (B, T): per candidate, the first sample plus
    the running sum of the wrapped steps (the NumPy oracle's operation order)."""
    two_pi = 2.0 * np.pi
    for b in range(yaw.shape[0]):
        y0 = yaw[b, 0]
        out[0, b] = y0
        acc = 0.0
        for t in range(1, yaw.shape[1]):
            # harness.geometry.wrap_angle's formula written out: in this loop the plain modulo
            # runs faster than wrap_angle_scalar's skip-the-modulo branch (~0.9 vs ~1.3 ms for
            # 4,096 x 41 headings); both give the same bits
            acc += (yaw[b, t] - yaw[b, t - 1] + np.pi) % two_pi - np.pi
            out[t, b] = acc + y0


def comfort_signals(states: Float, dt_s: float = PDM_DT_S) -> ComfortSignals:
    """:class:`ComfortSignals` of states (B, T, N_STATE) sampled every ``dt_s`` (the harness
    profile's rules; :func:`navsim_comfort_signals` are NAVSIM's)."""
    lon_raw = states[..., StateIndex.ACCEL]
    lat_raw = states[..., StateIndex.SPEED] * states[..., StateIndex.YAW_RATE]
    lon = _smooth(lon_raw, ACCEL_WINDOW)
    mag = _smooth(np.hypot(lon_raw, lat_raw), ACCEL_WINDOW)
    yaw_rate = _derivative(unwrap_time(states[..., StateIndex.YAW]), YAW_WINDOW, dt_s)
    return ComfortSignals(
        lon_accel=lon,
        lat_accel=_smooth(lat_raw, ACCEL_WINDOW),
        accel=mag,
        lon_jerk=_derivative(lon, JERK_WINDOW, dt_s),
        jerk=_derivative(mag, JERK_WINDOW, dt_s),
        yaw_rate=yaw_rate,
        yaw_accel=_derivative(yaw_rate, YAW_WINDOW, dt_s),
    )


def navsim_comfort_signals(
    states: Float,
    rear_axle_to_center_m: float,
    dt_s: float = PDM_DT_S,
    lat_accel_mps2: Float | None = None,
    yaw_accel_order: int = 3,
) -> ComfortSignals:
    """NAVSIM's comfort signals of states (B, T, N_STATE): longitudinal acceleration of the box
    centre = rear-axle acceleration + d (yaw rate^2 + yaw acceleration), d the rear-axle-to-centre
    distance, yaw acceleration the step difference of the state yaw rate (as NAVSIM's bicycle
    records it; 0 at t = 0); lateral acceleration ``lat_accel_mps2`` (NAVSIM's bicycle leaves it
    0 for simulated states); all smoothed with window ACCEL_WINDOW. Jerk = derivative (window
    JERK_WINDOW) of the smoothed |rear-axle acceleration|, longitudinal jerk the same of the
    centre's; yaw rate = first derivative (window YAW_WINDOW, order 2) of the unwrapped heading,
    yaw acceleration its second derivative (window YAW_WINDOW, ``yaw_accel_order``: 3 for C/HC,
    2 for EC). Every signal rounded to 8 decimals as NAVSIM does."""
    acc = states[..., StateIndex.ACCEL]
    om = states[..., StateIndex.YAW_RATE]
    alpha = np.zeros_like(om)
    alpha[..., 1:] = (om[..., 1:] - om[..., :-1]) / dt_s
    lon_raw = acc + rear_axle_to_center_m * (om * om + alpha)
    lon = _smooth(lon_raw, ACCEL_WINDOW, NAVSIM_DECIMALS)
    if lat_accel_mps2 is None:  # simulated states: lateral acceleration 0, |a| its magnitude
        lat = np.zeros_like(lon)
        mag = _smooth(np.abs(acc), ACCEL_WINDOW, NAVSIM_DECIMALS)
    else:
        lat = _smooth(lat_accel_mps2, ACCEL_WINDOW, NAVSIM_DECIMALS)
        mag = _smooth(np.hypot(acc, lat_accel_mps2), ACCEL_WINDOW, NAVSIM_DECIMALS)
    heading = unwrap_time(states[..., StateIndex.YAW])
    dec = NAVSIM_DECIMALS
    return ComfortSignals(
        lon_accel=lon,
        lat_accel=lat,
        accel=mag,
        lon_jerk=_derivative(lon, JERK_WINDOW, dt_s, dec),
        jerk=_derivative(mag, JERK_WINDOW, dt_s, dec),
        yaw_rate=_derivative(heading, YAW_WINDOW, dt_s, dec),
        yaw_accel=_derivative(heading, YAW_WINDOW, dt_s, dec, deriv=2, order=yaw_accel_order),
    )


def within_bounds(s: ComfortSignals) -> Bool:
    """Whether every bound holds at every step, (B,)."""
    ok = (s.lon_accel > MIN_LON_ACCEL_MPS2) & (s.lon_accel < MAX_LON_ACCEL_MPS2)
    ok &= np.abs(s.lat_accel) < MAX_ABS_LAT_ACCEL_MPS2
    ok &= np.abs(s.jerk) < MAX_ABS_JERK_MPS3
    ok &= np.abs(s.lon_jerk) < MAX_ABS_LON_JERK_MPS3
    ok &= np.abs(s.yaw_rate) < MAX_ABS_YAW_RATE_RADPS
    ok &= np.abs(s.yaw_accel) < MAX_ABS_YAW_ACCEL_RADPS2
    return np.asarray(ok.all(axis=-1))


def comfort(states: Float) -> Float:
    """C (B,) in {0, 1} of simulated states (B, 41, N_STATE)."""
    return within_bounds(comfort_signals(states)).astype(np.float64)


def history_comfort(states: Float, past: Float) -> Float:
    """HC (B,) in {0, 1}: C on the past states (16, N_STATE) (t-1.5 s .. t, the last = now)
    followed by the simulated states (B, 41, N_STATE) from t + 0.1 s."""
    n_past = past.shape[0] - 1
    # column-major (N_STATE, B, T) buffer: each state column of the joined states is contiguous
    joined = np.empty((states.shape[2], states.shape[0], n_past + states.shape[1]))
    joined[:, :, :n_past] = past[:-1].T[:, None, :]
    joined[:, :, n_past:] = states.transpose(2, 0, 1)
    return comfort(joined.transpose(1, 2, 0))


def extended_comfort(
    states: Float,
    previous: Float | None,
    offset_steps: int = 5,
    signals: ComfortSignals | None = None,
) -> Float:
    """EC (B,) in {0, 1} of simulated states (B, 41, N_STATE) against the previous plan's
    simulated states (T', N_STATE) that started ``offset_steps`` earlier; ``signals`` are the
    states' :func:`comfort_signals` when the caller already has them (C uses the same)."""
    if previous is None:
        return np.ones(states.shape[0])
    n = min(states.shape[1], previous.shape[0] - offset_steps)
    if n <= 0:
        return np.ones(states.shape[0])
    cur = signals if signals is not None else comfort_signals(states)
    prev = comfort_signals(previous[None])
    ok = np.ones(states.shape[0], dtype=bool)
    for name, limit in EC_LIMITS:
        diff = getattr(cur, name)[:, :n] - getattr(prev, name)[:, offset_steps : offset_steps + n]
        ok &= np.sqrt(np.mean(diff * diff, axis=1)) <= limit
    return ok.astype(np.float64)


NAVSIM_HISTORY_LOG_STEPS = 5  # the past is logged at 2 Hz: every 5th 0.1 s sample
NAVSIM_HISTORY_STATES = 14  # interpolated history states NAVSIM prefixes: t-1.5 .. t-0.2 s


def navsim_history(past: Float, dt_s: float = PDM_DT_S) -> tuple[Float, Float]:
    """NAVSIM's HC prefix from our past states (16, N_STATE) at 0.1 s (t-1.5 .. t): NAVSIM keeps
    the 2 Hz log samples (t-1.5, -1.0, -0.5, 0 s), interpolates them linearly every 0.1 s from
    the first up to but excluding the last, and drops the final interpolated sample, leaving
    the 14 states t-1.5 .. t-0.2 s. Returns those states (14, N_STATE) and their lateral
    acceleration (14,) [m/s2] (speed x yaw rate: the logged motion's, which NAVSIM reads from
    the log)."""
    logged = past[::NAVSIM_HISTORY_LOG_STEPS]
    t_log = np.arange(logged.shape[0]) * NAVSIM_HISTORY_LOG_STEPS * dt_s
    t_new = np.arange(NAVSIM_HISTORY_STATES) * dt_s
    out = np.empty((NAVSIM_HISTORY_STATES, past.shape[1]))
    for col in range(past.shape[1]):
        y = logged[:, col]
        if col == StateIndex.YAW:
            y = np.unwrap(y)
        out[:, col] = np.interp(t_new, t_log, y)
    lat = out[:, StateIndex.SPEED] * out[:, StateIndex.YAW_RATE]
    return out, lat


def navsim_comfort(states: Float, rear_axle_to_center_m: float) -> Float:
    """C (B,) in {0, 1} of simulated states (B, T, N_STATE) under NAVSIM's signal rules."""
    return within_bounds(navsim_comfort_signals(states, rear_axle_to_center_m)).astype(np.float64)


def navsim_history_comfort(states: Float, past: Float, rear_axle_to_center_m: float) -> Float:
    """HC (B,) in {0, 1}: NAVSIM's C on its 14 interpolated history states (:func:`navsim_history`)
    followed by the 41 simulated states, all taken as 0.1 s apart as NAVSIM does."""
    hist, hist_lat = navsim_history(past)
    bsz, n_sim = states.shape[:2]
    joined = np.empty((states.shape[2], bsz, hist.shape[0] + n_sim))
    joined[:, :, : hist.shape[0]] = hist.T[:, None, :]
    joined[:, :, hist.shape[0] :] = states.transpose(2, 0, 1)
    lat = np.zeros((bsz, hist.shape[0] + n_sim))
    lat[:, : hist.shape[0]] = hist_lat
    sig = navsim_comfort_signals(
        joined.transpose(1, 2, 0), rear_axle_to_center_m, lat_accel_mps2=lat
    )
    return within_bounds(sig).astype(np.float64)


def navsim_extended_comfort(
    states: Float, previous: Float | None, rear_axle_to_center_m: float, offset_steps: int = 5
) -> Float:
    """EC (B,) in {0, 1}, NAVSIM v2's two-frame rule: the current states' first T - offset steps
    and the previous plan's states from ``offset_steps`` on (the overlap) are filtered as
    separate signals (yaw acceleration with order 2); the RMS differences of |acceleration|,
    jerk, yaw rate and yaw acceleration must each be <= their EC limit. 1 without a previous
    plan. Never set by a human filter."""
    if previous is None or previous.shape[0] <= offset_steps:
        return np.ones(states.shape[0])
    n = min(states.shape[1] - offset_steps, previous.shape[0] - offset_steps)
    cur = navsim_comfort_signals(states[:, :n], rear_axle_to_center_m, yaw_accel_order=2)
    prev = navsim_comfort_signals(
        previous[None, offset_steps : offset_steps + n], rear_axle_to_center_m, yaw_accel_order=2
    )
    ok = np.ones(states.shape[0], dtype=bool)
    for name, limit in EC_LIMITS:
        diff = getattr(cur, name) - getattr(prev, name)
        ok &= np.sqrt(np.mean(diff * diff, axis=1)) <= limit
    return ok.astype(np.float64)
