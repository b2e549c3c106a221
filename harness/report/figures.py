"""The report's plots (matplotlib, Agg), each returned as an inline ``data:image/png;base64`` URI
so the page needs no file beside it. Map axes are metres in CARLA's world frame, drawn with +y
downward (CARLA's y points south) so the picture matches the top-down replay."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from harness.leaderboard.bench2drive import ABILITIES
from harness.maps.area import polygon_exteriors
from harness.report.inputs import RouteData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from harness.maps.town import Town

DPI = 80
MAP_MARGIN_M = 25.0  # [m] around the route and the driven path
MIN_SPAN_FRACTION = 0.45  # [-] the map's short side is at least this fraction of its long side
PLANS_PER_ROUTE = 25  # about this many of the agent's plans drawn per route
INFRACTION_STYLE: dict[str, tuple[str, str]] = {
    "collisions_vehicle": ("X", "tab:red"),
    "collisions_pedestrian": ("X", "magenta"),
    "collisions_layout": ("X", "saddlebrown"),
    "red_light": ("s", "red"),
    "stop_infraction": ("8", "darkorange"),
    "outside_route_lanes": ("D", "gold"),
    "route_dev": ("P", "purple"),
    "vehicle_blocked": ("v", "black"),
    "route_timeout": ("v", "dimgrey"),
    "scenario_timeouts": ("h", "teal"),
    "yield_emergency_vehicle_infractions": ("*", "deeppink"),
    "min_speed_infractions": ("v", "grey"),
}
"""Infraction key -> (marker, colour) on the maps and timelines."""
RUN_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
               "tab:pink", "tab:olive")  # fmt: skip


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_data_uri(fig: Figure, tight: bool = True) -> str:
    """The figure as a base64 PNG data URI (the figure is closed). ``tight`` trims the margins
    (an extra draw pass: the per-route figures set their margins instead)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _draw_lanes(ax: Axes, town: Town, lo: NDArray[np.float64], hi: NDArray[np.float64]) -> None:
    from matplotlib.collections import PolyCollection

    polys = []
    for poly in town.area.lane_polygons:
        if poly is None or poly.is_empty:
            continue
        b = poly.bounds
        if b[2] < lo[0] or b[0] > hi[0] or b[3] < lo[1] or b[1] > hi[1]:
            continue
        polys.extend(polygon_exteriors(poly))
    ax.add_collection(PolyCollection(polys, facecolors="0.9", edgecolors="0.75", linewidths=0.3,
                                     zorder=0))  # fmt: skip


def _map(
    ax: Axes, route: RouteData, town: Town | None, planned_xy: NDArray[np.float64] | None
) -> None:
    """Lanes, the planned route, the agent's plans, the driven path, start, goal, infractions."""
    pts = [p for p in (planned_xy, _driven(route)) if p is not None and len(p)]
    if not pts:
        ax.text(0.5, 0.5, "no route geometry", ha="center", transform=ax.transAxes)
        return
    allxy = np.concatenate(pts)
    lo, hi = allxy.min(axis=0) - MAP_MARGIN_M, allxy.max(axis=0) + MAP_MARGIN_M
    if town is not None:
        _draw_lanes(ax, town, lo, hi)
    if planned_xy is not None:
        ax.plot(planned_xy[:, 0], planned_xy[:, 1], color="0.55", lw=5, alpha=0.6,
                solid_capstyle="round", label="route", zorder=1)  # fmt: skip
        ax.plot(*planned_xy[-1], marker="*", ms=16, color="gold", mec="black", zorder=6,
                ls="none", label="goal")  # fmt: skip
    steps = route.steps
    if steps is not None and len(steps):
        plan_rows = [i for i, p in enumerate(steps.plans) if p is not None and len(p)]
        every = max(1, len(plan_rows) // PLANS_PER_ROUTE)
        for n, i in enumerate(plan_rows[::every]):
            p = steps.plans[i]
            assert p is not None
            ax.plot(p[:, 0], p[:, 1], color="tab:orange", lw=1.0, alpha=0.8, zorder=3,
                    label=f"agent plan (every {every})" if n == 0 else None)  # fmt: skip
        ax.plot(steps.x_m, steps.y_m, color="tab:blue", lw=1.6, zorder=2, label="driven")
        ax.plot(steps.x_m[0], steps.y_m[0], marker="o", ms=8, color="tab:green", mec="black",
                ls="none", zorder=6, label="start")  # fmt: skip
    seen: set[str] = set()
    for m in route.marks:
        if not np.isfinite(m.x_m):
            continue
        marker, colour = INFRACTION_STYLE.get(m.key, ("o", "red"))
        ax.plot(m.x_m, m.y_m, marker=marker, ms=11, color=colour, mec="black", ls="none",
                zorder=7, label=m.key if m.key not in seen else None)  # fmt: skip
        seen.add(m.key)
    span = np.maximum(hi - lo, MIN_SPAN_FRACTION * float(max(hi - lo)))
    mid = 0.5 * (lo + hi)
    ax.set_xlim(mid[0] - span[0] / 2, mid[0] + span[0] / 2)
    ax.set_ylim(mid[1] + span[1] / 2, mid[1] - span[1] / 2)  # +y (south) down
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m] (CARLA, +y south)")
    ax.legend(loc="best", fontsize=7, framealpha=0.85)


def _driven(route: RouteData) -> NDArray[np.float64] | None:
    s = route.steps
    return None if s is None or not len(s) else np.stack([s.x_m, s.y_m], axis=1)


def _time_origin(route: RouteData) -> float:
    """The route's first step time [s] (the timelines' zero), else its first scored step's."""
    if route.steps is not None and len(route.steps):
        return float(route.steps.time_s[0])
    cl = route.closed_loop
    return float(cl.time_s[0]) if cl is not None and len(cl.time_s) else 0.0


def _timelines(ax_rc: Axes, ax_cl: Axes, ax_v: Axes, route: RouteData) -> None:
    """Route progress and infractions over time; closed-loop PDMS / EPDMS; ego speed below."""
    t0 = _time_origin(route)
    s = route.steps
    if s is None or not len(s):
        ax_rc.text(0.5, 0.5, "no step log", ha="center", transform=ax_rc.transAxes)
        ax_v.text(0.5, 0.5, "no step log", ha="center", transform=ax_v.transAxes)
    else:
        t = s.time_s - t0
        ax_rc.plot(t, s.progress_pct, color="tab:blue", lw=1.5, label="route completion")
        jumps = np.flatnonzero(np.diff(s.infractions, prepend=0) > 0)
        for n, i in enumerate(jumps):
            ax_rc.axvline(t[i], color="tab:red", lw=1.0, ls="--",
                          label="infraction" if n == 0 else None)  # fmt: skip
        ax2 = ax_rc.twinx()
        ax2.step(t, s.infractions, where="post", color="tab:red", lw=1.0)
        ax2.set_ylabel("infractions", color="tab:red")
        ax2.set_ylim(bottom=0, top=max(1, int(s.infractions.max())) + 0.5)
        ax_v.plot(t, s.speed_mps, color="0.3", lw=1.0)
    seen: set[str] = set()
    for m in route.marks:  # infractions with a known time (infractions.parquet)
        if not np.isfinite(m.time_s):
            continue
        marker, colour = INFRACTION_STYLE.get(m.key, ("o", "red"))
        ax_rc.plot(m.time_s - t0, 101.0, marker=marker, ms=8, color=colour, mec="black",
                   ls="none", clip_on=False, zorder=5,
                   label=m.key if m.key not in seen else None)  # fmt: skip
        seen.add(m.key)
    ax_rc.set_ylim(-2, 104)
    ax_rc.set_ylabel("RC [%]")
    if ax_rc.get_legend_handles_labels()[0]:
        ax_rc.legend(loc="upper left", fontsize=7, framealpha=0.85)
    ax_rc.grid(alpha=0.3)
    cl = route.closed_loop
    if cl is None:
        ax_cl.text(0.5, 0.5, "no closed-loop scores", ha="center", transform=ax_cl.transAxes)
    else:
        t = cl.time_s - t0
        ax_cl.plot(t, cl.pdms, color="tab:purple", lw=1.3, marker=".", ms=3,
                   label=f"PDMS (mean {cl.means['pdms']:.3f})")  # fmt: skip
        ax_cl.plot(t, cl.epdms, color="tab:green", lw=1.3, marker=".", ms=3,
                   label=f"EPDMS (mean {cl.means['epdms']:.3f})")  # fmt: skip
        ax_cl.legend(loc="lower left", fontsize=7, framealpha=0.85)
    ax_cl.set_ylim(-0.05, 1.05)
    ax_cl.set_ylabel("closed-loop score")
    ax_cl.grid(alpha=0.3)
    ax_v.set_ylabel("speed [m/s]")
    ax_v.set_xlabel("time since start [s]")
    ax_v.grid(alpha=0.3)


def route_figure(
    route: RouteData, town: Town | None, planned_xy: NDArray[np.float64] | None
) -> str:
    """One route: its map (left) and its timelines (right), as a data URI."""
    plt = _plt()
    fig = plt.figure(figsize=(13.0, 7.5))
    grid = fig.add_gridspec(3, 2, width_ratios=(1.1, 1.0), hspace=0.32, wspace=0.3, left=0.07,
                            right=0.94, bottom=0.07, top=0.93)  # fmt: skip
    _map(fig.add_subplot(grid[:, 0]), route, town, planned_xy)
    ax_rc = fig.add_subplot(grid[0, 1])
    _timelines(ax_rc, fig.add_subplot(grid[1, 1], sharex=ax_rc),
               fig.add_subplot(grid[2, 1], sharex=ax_rc), route)  # fmt: skip
    rec = route.record
    fig.suptitle(
        f"{route.stem}  {rec.get('town_name') or ''}  {rec['status']}  "
        f"DS {float(rec['scores']['score_composed']):.1f}", fontsize=11,
    )  # fmt: skip
    return to_data_uri(fig, tight=False)


def _grouped_bars(
    ax: Axes, labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str
) -> None:
    """One group of bars per label, one bar per series; NaN values are drawn as 'n/a'."""
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(labels))
    for k, (name, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=np.float64)
        pos = x + (k - (n - 1) / 2) * width
        bars = ax.bar(pos, np.nan_to_num(v), width, label=name,
                      color=RUN_COLOURS[k % len(RUN_COLOURS)])  # fmt: skip
        ax.bar_label(bars, labels=["n/a" if np.isnan(b) else f"{b:.3g}" for b in v],
                     fontsize=7, padding=1)  # fmt: skip
    rotate = len(labels) > 6
    ax.set_xticks(x, labels, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                  fontsize=8)  # fmt: skip
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if n > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def ability_figure(runs: Mapping[str, Mapping[str, float | None]]) -> str:
    """Success rate [%] per ability (run -> ability -> rate [0, 1]), one bar per run ('n/a'
    where no route tests it)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.0, 3.6))
    labels = list(ABILITIES)
    series = {
        name: [np.nan if (v := rates.get(a)) is None else 100.0 * v for a in labels]
        for name, rates in runs.items()
    }
    _grouped_bars(ax, labels, series, "success rate [%]")
    ax.set_ylim(0, 110)
    ax.set_title("Bench2Drive abilities")
    return to_data_uri(fig)


def bars_figure(labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str,
                title: str) -> str:  # fmt: skip
    """Grouped bars: one group per label, one bar per series (run)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(labels) * max(1, len(series)) + 2), 3.8))
    _grouped_bars(ax, labels, series, ylabel)
    ax.set_title(title)
    return to_data_uri(fig)


ROUTE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def per_route_figure(routes: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str,
                     title: str, ylim: tuple[float, float] | None = None) -> str:  # fmt: skip
    """One column per route, one marker per run (NaN: the run has no such route); ``ylim``
    fixes the value axis (scores in [0, 1])."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.26 * len(routes) + 2.5)), 4.2))
    x = np.arange(len(routes))
    for k, (name, values) in enumerate(series.items()):
        ax.plot(x, np.asarray(values, dtype=np.float64), ls="none", ms=6, alpha=0.85,
                marker=ROUTE_MARKERS[k % len(ROUTE_MARKERS)],
                color=RUN_COLOURS[k % len(RUN_COLOURS)], label=name)  # fmt: skip
    ax.set_xticks(x, routes, rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(routes) - 0.3)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return to_data_uri(fig)
