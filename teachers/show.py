"""`harness teachers show`: one scene of a teacher dataset as a PNG - the town's lanes around the
ego, the agents (box at t=0, track over 4 s), the lights' stop areas coloured by their state at
t=0, the expert's real future and the K teachers coloured by EPDMS."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import shapely
import shapely.wkt

from harness.boxes import box_corners
from harness.errors import ConfigError
from harness.io import atomic_output
from harness.maps import load_town
from teachers.dataset import PAST_STEPS, load_dataset, poses_array

VIEW_RADIUS_M = 60.0  # half-size of the drawn window around the ego [m]
LIGHT_COLOURS = {"red": "tab:red", "yellow": "gold", "green": "tab:green", "off": "grey"}
KIND_COLOURS = {"vehicle": "tab:blue", "pedestrian": "tab:orange", "bicycle": "tab:purple",
                "static": "dimgrey"}  # fmt: skip
FIGURE_SIZE_IN = 8.0  # [inch]
DPI = 120


def draw_scene(dataset: str | os.PathLike[str], scene_id: str, out: str | os.PathLike[str]) -> Path:
    """Render ``scene_id`` of the dataset at ``dataset`` to the PNG ``out`` (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    ds = load_dataset(dataset)
    rows = ds.scenes[ds.scenes.scene_id == scene_id]
    if rows.empty:
        some = ", ".join(ds.scenes.scene_id.head(5))
        raise ConfigError(f"scene {scene_id!r} is not in {dataset}; some scene ids: {some}")
    sc = rows.iloc[0]
    town = load_town(str(sc.town))
    ex, ey, eyaw = float(sc.ego_x), float(sc.ego_y), float(sc.ego_yaw)
    box = shapely.box(
        ex - VIEW_RADIUS_M, ey - VIEW_RADIUS_M, ex + VIEW_RADIUS_M, ey + VIEW_RADIUS_M
    )

    fig, ax = plt.subplots(figsize=(FIGURE_SIZE_IN, FIGURE_SIZE_IN))
    for poly in town.area.lane_polygons:
        if poly is not None and poly.intersects(box):
            x, y = poly.exterior.xy
            ax.fill(x, y, color="0.88", lw=0.3, ec="0.7", zorder=0)
    lanes = town.lanes
    near = np.hypot(lanes.xy[:, 0] - ex, lanes.xy[:, 1] - ey) < VIEW_RADIUS_M * 1.5
    ax.scatter(lanes.xy[near, 0], lanes.xy[near, 1], s=0.3, c="0.6", zorder=1)

    lights = ds.lights[(ds.lights.scene_id == scene_id) & (ds.lights.t_index == 0)]
    for _, lr in lights.iterrows():
        geom = shapely.wkt.loads(lr.stop_area)
        for g in getattr(geom, "geoms", [geom]):
            if not g.is_empty:
                x, y = g.exterior.xy
                ax.fill(x, y, color=LIGHT_COLOURS.get(lr.state, "grey"), alpha=0.5, zorder=2)

    agents = ds.agents[ds.agents.scene_id == scene_id]
    for _, g in agents.groupby("agent_id"):
        g = g.sort_values("t_index")
        colour = KIND_COLOURS.get(str(g.kind.iloc[0]), "black")
        ax.plot(g.x, g.y, color=colour, lw=0.8, alpha=0.5, zorder=3)
        first = g.iloc[0]
        c = box_corners(first.x, first.y, first.yaw, first.length, first.width)
        ax.fill(c[:, 0], c[:, 1], color=colour, alpha=0.8, zorder=4)

    from harness.dynamics.vehicle import LINCOLN_MKZ_2017

    c = box_corners(ex, ey, eyaw, LINCOLN_MKZ_2017.length_m, LINCOLN_MKZ_2017.width_m)
    ax.fill(c[:, 0], c[:, 1], color="black", zorder=6)
    past = np.asarray(sc.past_poses, dtype=np.float64).reshape(PAST_STEPS, 3)
    ax.plot(past[:, 0], past[:, 1], color="black", lw=1.0, ls=":", zorder=6)
    fut = np.asarray(sc.expert_future, dtype=np.float64).reshape(-1, 3)
    ax.plot(fut[:, 0], fut[:, 1], color="black", lw=1.2, ls="--", zorder=6, label="expert (real)")

    teach = ds.teachers[ds.teachers.scene_id == scene_id].sort_values("rank")
    norm = colors.Normalize(vmin=float(ds.manifest.get("threshold", 0.9)), vmax=1.0)
    cmap = matplotlib.colormaps["viridis"]
    for (_, tr), poses in zip(teach.iterrows(), poses_array(teach.poses), strict=True):
        ax.plot(poses[:, 0], poses[:, 1], color=cmap(norm(tr.epdms)), lw=2.0, zorder=7)
        ax.scatter(poses[-1, 0], poses[-1, 1], color=cmap(norm(tr.epdms)), s=10, zorder=7)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.7, label="teacher EPDMS")
    ax.set_xlim(ex - VIEW_RADIUS_M, ex + VIEW_RADIUS_M)
    ax.set_ylim(ey + VIEW_RADIUS_M, ey - VIEW_RADIUS_M)  # CARLA: +y points south (down)
    ax.set_aspect("equal")
    ax.set_title(f"{scene_id}  {len(teach)} teachers  ({sc.command_name})")
    ax.legend(loc="upper right", fontsize=7)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return target
