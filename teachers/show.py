"""`harness teachers show`: one scene of a teacher dataset as a PNG.

Left, the scene zoomed to what matters (the ego, its real future, the teachers and the agents
near them): lanes, the agents (box at t=0, track over 4 s), the lights' stop areas coloured by
their state at t=0, the ego's past and the expert's real future. Right, the same teachers in the
ego frame with the lateral axis stretched (top) and their speed over time (bottom), so teachers
that overlap on the map stay apart. Each teacher has its own colour, line style and marker, and
the legend gives its rank, source, manoeuvre mode, EPDMS and PDMS. Axes in metres (CARLA frame, +y south down).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.wkt
from numpy.typing import NDArray

from harness.boxes import box_corners
from harness.errors import ConfigError
from harness.geometry import wrap_angle
from harness.io import atomic_output
from harness.maps import load_town
from harness.maps.area import polygon_exteriors
from teachers.dataset import PAST_STEPS, load_dataset, poses_array

MIN_VIEW_M = 40.0  # [m] smallest side of the zoomed map window
VIEW_MARGIN_M = 12.0  # [m] around the ego, its future and the teachers
AGENT_RADIUS_M = 80.0  # [m] agents farther from the ego than this are not drawn
LIGHT_COLOURS = {"red": "tab:red", "yellow": "gold", "green": "tab:green", "off": "grey"}
KIND_COLOURS = {"vehicle": "tab:blue", "pedestrian": "tab:orange", "bicycle": "tab:purple",
                "static": "dimgrey"}  # fmt: skip
TEACHER_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
                   "#9a6324", "#808000", "#000075", "#469990", "#bfef45")  # fmt: skip
TEACHER_STYLES = ("-", "--", "-.", ":")
TEACHER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
POSE_DT_S = 0.1  # [s] spacing of the stored teacher poses
MARK_EVERY = 10  # a marker every 10 poses (1 s)
FIGURE_SIZE_IN = (15.0, 8.0)  # [inch]
DPI = 110


def _view(ex: float, ey: float, paths: list[NDArray[np.float64]]) -> tuple[float, float, float]:
    """Centre x, y and side [m] of a square window holding the ego and every path."""
    pts = np.concatenate([np.array([[ex, ey]]), *[p[:, :2] for p in paths if len(p)]])
    lo, hi = pts.min(axis=0) - VIEW_MARGIN_M, pts.max(axis=0) + VIEW_MARGIN_M
    side = max(MIN_VIEW_M, float(max(hi - lo)))
    cx, cy = 0.5 * (lo + hi)
    return float(cx), float(cy), side


def _ego_frame(
    poses: NDArray[np.float64], ex: float, ey: float, eyaw: float
) -> NDArray[np.float64]:
    """(T, 2) poses in the ego frame: forward [m], left [m] (CARLA's +y is to the right)."""
    d = poses[:, :2] - np.array([ex, ey])
    c, s = np.cos(eyaw), np.sin(eyaw)
    fwd = d[:, 0] * c + d[:, 1] * s
    right = -d[:, 0] * s + d[:, 1] * c
    return np.stack([fwd, -right], axis=1)


def _speed(poses: NDArray[np.float64], ex: float, ey: float) -> NDArray[np.float64]:
    """(T,) speed [m/s] along the poses (the first step measured from the ego)."""
    xy = np.concatenate([np.array([[ex, ey]]), poses[:, :2]])
    return np.asarray(np.linalg.norm(np.diff(xy, axis=0), axis=1) / POSE_DT_S)


def _teacher_style(k: int) -> dict[str, Any]:
    return {
        "color": TEACHER_COLOURS[k % len(TEACHER_COLOURS)],
        "ls": TEACHER_STYLES[k % len(TEACHER_STYLES)],
        "marker": TEACHER_MARKERS[k % len(TEACHER_MARKERS)],
        "lw": 2.6 - 1.4 * min(k, 8) / 8,  # earlier ranks drawn wider, so overlaps stay visible
        "markevery": MARK_EVERY,
        "ms": 5,
    }


def draw_scene(dataset: str | os.PathLike[str], scene_id: str, out: str | os.PathLike[str]) -> Path:
    """Render ``scene_id`` of the dataset at ``dataset`` to the PNG ``out`` (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    ds = load_dataset(dataset)
    rows = ds.scenes[ds.scenes.scene_id == scene_id]
    if rows.empty:
        some = ", ".join(ds.scenes.scene_id.head(5))
        raise ConfigError(f"scene {scene_id!r} is not in {dataset}; some scene ids: {some}")
    sc = rows.iloc[0]
    town = load_town(str(sc.town))
    ex, ey, eyaw = float(sc.ego_x), float(sc.ego_y), float(sc.ego_yaw)
    past = np.asarray(sc.past_poses, dtype=np.float64).reshape(PAST_STEPS, 3)
    fut = np.asarray(sc.expert_future, dtype=np.float64).reshape(-1, 3)
    teach = ds.teachers[ds.teachers.scene_id == scene_id].sort_values("rank")
    poses = list(poses_array(teach.poses)) if len(teach) else []
    cx, cy, side = _view(ex, ey, [past, fut, *poses])
    half = 0.5 * side
    window = shapely.box(cx - half, cy - half, cx + half, cy + half)

    fig = plt.figure(figsize=FIGURE_SIZE_IN)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.0, 1.05), wspace=0.22, hspace=0.32)
    ax = fig.add_subplot(grid[:, 0])
    polys = [ring for p in town.area.lane_polygons
             if p is not None and not p.is_empty and p.intersects(window)
             for ring in polygon_exteriors(p)]  # fmt: skip
    ax.add_collection(
        PolyCollection(polys, facecolors="0.9", edgecolors="0.72", linewidths=0.4, zorder=0)
    )

    lights = ds.lights[(ds.lights.scene_id == scene_id) & (ds.lights.t_index == 0)]
    for _, lr in lights.iterrows():
        geom = shapely.wkt.loads(lr.stop_area)
        for g in getattr(geom, "geoms", [geom]):
            if not g.is_empty:
                x, y = g.exterior.xy
                ax.fill(x, y, color=LIGHT_COLOURS.get(lr.state, "grey"), alpha=0.5, zorder=2)

    agents = ds.agents[ds.agents.scene_id == scene_id]
    seen_kinds: set[str] = set()
    for _, g in agents.groupby("agent_id"):
        g = g.sort_values("t_index")
        first = g.iloc[0]
        if np.hypot(first.x - ex, first.y - ey) > AGENT_RADIUS_M:
            continue
        kind = str(first.kind)
        colour = KIND_COLOURS.get(kind, "black")
        ax.plot(g.x, g.y, color=colour, lw=0.9, alpha=0.5, zorder=3)
        c = box_corners(first.x, first.y, first.yaw, first.length, first.width)
        ax.fill(c[:, 0], c[:, 1], color=colour, alpha=0.8, zorder=4,
                label=kind if kind not in seen_kinds else None)  # fmt: skip
        seen_kinds.add(kind)

    from harness.dynamics.vehicle import LINCOLN_MKZ_2017

    c = box_corners(ex, ey, eyaw, LINCOLN_MKZ_2017.length_m, LINCOLN_MKZ_2017.width_m)
    ax.fill(c[:, 0], c[:, 1], color="black", zorder=6, label="ego (t=0)")
    ax.plot(past[:, 0], past[:, 1], color="black", lw=1.0, ls=":", zorder=6, label="ego past")
    ax.plot(fut[:, 0], fut[:, 1], color="black", lw=1.4, ls="--", zorder=9, label="expert (real)")

    ax_lat = fig.add_subplot(grid[0, 1])
    ax_v = fig.add_subplot(grid[1, 1])
    fut_e = _ego_frame(fut, ex, ey, eyaw)
    t_fut = POSE_DT_S * np.arange(1, len(fut) + 1)
    ax_lat.plot(fut_e[:, 0], fut_e[:, 1], color="black", lw=1.4, ls="--", label="expert (real)")
    ax_v.plot(t_fut, _speed(fut, ex, ey), color="black", lw=1.4, ls="--")
    for k, ((_, tr), p) in enumerate(zip(teach.iterrows(), poses, strict=True)):
        st = _teacher_style(k)
        label = (f"#{int(tr['rank'])} {tr.source} {tr.lane_mode}/{tr.speed_mode}: "
                 f"EPDMS {float(tr.epdms):.3f}, PDMS {float(tr.pdms):.3f}")  # fmt: skip
        ax.plot(p[:, 0], p[:, 1], zorder=7 + 0.01 * k, alpha=0.9, **st)
        pe = _ego_frame(p, ex, ey, eyaw)
        ax_lat.plot(pe[:, 0], pe[:, 1], alpha=0.9, label=label, **st)
        ax_v.plot(POSE_DT_S * np.arange(1, len(p) + 1), _speed(p, ex, ey), alpha=0.9, **st)

    ax.set_xlim(cx - half, cx + half)
    ax.set_ylim(cy + half, cy - half)  # CARLA: +y points south (down)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m] (CARLA, +y south)")
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.85)
    heading = float(np.degrees(wrap_angle(eyaw)))
    scenario = (f"\n{sc.scenario_type} ({'triggered' if sc.scenario_triggered else 'not yet'}), "
                f"{int(sc.n_scenario_agents)} scenario agents") if sc.scenario_type else ""
    ax.set_title(f"scene {scene_id} ({sc.town}, command {sc.command_name}, "
                 f"ego {float(sc.ego_speed):.1f} m/s, yaw {heading:.0f} deg){scenario}",
                 fontsize=10)  # fmt: skip
    ax_lat.set_xlabel("forward of the ego at t=0 [m]")
    ax_lat.set_ylabel("left [m] (stretched)")
    ax_lat.grid(alpha=0.3)
    ax_lat.set_title(f"{len(teach)} teachers in the ego frame (markers every 1 s)", fontsize=10)
    ax_lat.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, framealpha=0.9)
    ax_v.set_xlabel("time [s]")
    ax_v.set_ylabel("speed [m/s]")
    ax_v.grid(alpha=0.3)
    ax_v.set_title("speed along each trajectory", fontsize=10)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return target
