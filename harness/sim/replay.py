"""Top-down replay of a recorded episode as a GIF, an MP4 or a folder of PNG frames.

The static map (drivable area, sidewalks, lane outlines, markings) is drawn once with PIL into a
palette image covering the recorded region; every output frame is a crop of it (centred on the
ego when following) with the dynamic layer drawn on top: the route (the part still to drive
bright, the part driven dim) and its goal (an arrow at the border when out of view), stop lines
coloured by light state, actors as oriented boxes coloured by kind, scenario actors outlined
apart from background traffic, the ego highlighted, infractions marked where they happened and
recent events. Below the map a panel holds the time, the ego speed, the running RC / IP / DS
with every infraction so far (from the recording's route track, schema 2) and a legend.
Image axes: x east to the right, CARLA's +y (south) downward, so no flip is needed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from harness.boxes import box_corners
from harness.errors import ConfigError
from harness.io import atomic_output, publish
from harness.world.recording import Recording, RouteTrack
from harness.world.state import EGO_INDEX, ActorKind, ActorRole, LightState

log = logging.getLogger(__name__)

VIEW_M = 60.0  # [m] side of the square window around the ego when following it
MAX_STATIC_PX = 16000  # [px] longest side of the precomputed map image
EVENT_SHOW_S = 3.0  # [s] how long an event stays annotated after it happened
DASH_M = 3.0  # [m] dash and gap length of broken markings
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")
LEGEND_ROWS = 3  # panel rows kept for the legend
ROUTE_WIDTH_M = 1.4  # [m] width of the drawn route band
PANEL_INFRACTIONS = 4  # infractions listed in the panel (the latest ones)

# palette (index -> RGB); frames are palette images so GIFs need no quantisation
_COLORS: dict[str, tuple[int, int, int]] = {
    "background": (28, 30, 34),
    "sidewalk": (78, 80, 86),
    "road": (52, 54, 60),
    "lane_line": (92, 94, 102),
    "marking_white": (215, 215, 215),
    "marking_yellow": (225, 190, 60),
    "light_red": (235, 50, 50),
    "light_yellow": (245, 200, 40),
    "light_green": (60, 210, 90),
    "light_off": (120, 120, 120),
    "stop_sign": (250, 250, 250),
    "vehicle": (70, 130, 230),
    "pedestrian": (245, 140, 40),
    "bicycle": (170, 100, 230),
    "static": (160, 150, 140),
    "emergency": (235, 70, 200),
    "ego": (40, 225, 130),
    "outline": (255, 255, 255),
    "text": (240, 240, 240),
    "event": (255, 90, 90),
    "shadow": (0, 0, 0),
    "route_left": (70, 200, 235),
    "route_done": (60, 95, 110),
    "goal": (255, 215, 0),
    "scenario": (255, 240, 60),
    "panel": (14, 15, 18),
    "text_dim": (165, 165, 170),
}
_IDX = {name: i for i, name in enumerate(_COLORS)}
_PALETTE = [c for rgb in _COLORS.values() for c in rgb]
_KIND_COLOR = {
    ActorKind.VEHICLE: _IDX["vehicle"],
    ActorKind.PEDESTRIAN: _IDX["pedestrian"],
    ActorKind.BICYCLE: _IDX["bicycle"],
    ActorKind.STATIC: _IDX["static"],
    ActorKind.EMERGENCY: _IDX["emergency"],
}
_LIGHT_COLOR = {
    LightState.RED: _IDX["light_red"],
    LightState.YELLOW: _IDX["light_yellow"],
    LightState.GREEN: _IDX["light_green"],
    LightState.OFF: _IDX["light_off"],
}


@dataclass(frozen=True)
class _MapLayer:
    """The static map drawn once: ``image`` (palette) whose pixel (0, 0) is world ``origin``
    [m] at ``px_per_m`` pixels per metre."""

    image: Image.Image
    origin: NDArray[np.float64]  # (2,) world x, y [m] of the top-left pixel corner
    px_per_m: float

    def to_px(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        """World points (..., 2) [m] to map-image pixels (..., 2)."""
        return (np.asarray(xy) - self.origin) * self.px_per_m


def _polygons(geom: Any) -> Iterator[shapely.Polygon]:
    """The polygons of any shapely geometry (Polygon, Multi*, collections)."""
    for g in shapely.get_parts(geom):
        if isinstance(g, shapely.Polygon):
            yield g
        elif hasattr(g, "geoms"):
            yield from _polygons(g)


def _fill(draw: ImageDraw.ImageDraw, geom: Any, layer: _MapLayer, color: int, hole: int) -> None:
    for poly in _polygons(geom):
        if poly.is_empty:
            continue
        draw.polygon(
            [tuple(p) for p in layer.to_px(np.asarray(poly.exterior.coords)[:, :2])], fill=color
        )
        for ring in poly.interiors:
            draw.polygon([tuple(p) for p in layer.to_px(np.asarray(ring.coords)[:, :2])], fill=hole)


def _dashes(xy: NDArray[np.float64]) -> NDArray[np.bool_]:
    """(N-1,) which segments of a polyline are painted for a broken marking."""
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    s_mid = np.concatenate([[0.0], np.cumsum(seg)[:-1]]) + 0.5 * seg
    painted: NDArray[np.bool_] = (np.floor(s_mid / DASH_M) % 2) == 0
    return painted


def _draw_map(town: Any, bounds: NDArray[np.float64], px_per_m: float) -> _MapLayer:
    """Rasterise the town's static layer over ``bounds`` [[xmin, ymin], [xmax, ymax]] [m]."""
    size = np.ceil((bounds[1] - bounds[0]) * px_per_m).astype(int) + 1
    if size.max() > MAX_STATIC_PX:
        raise ConfigError(
            f"the replayed region needs a {size[0]}x{size[1]} px map image (max {MAX_STATIC_PX}); "
            "lower --size or replay a shorter episode"
        )
    img = Image.new("P", (int(size[0]), int(size[1])), _IDX["background"])
    img.putpalette(_PALETTE)
    layer = _MapLayer(img, bounds[0].astype(np.float64), px_per_m)
    draw = ImageDraw.Draw(img)
    area = town.area
    window = shapely.box(*bounds[0], *bounds[1])
    _fill(
        draw,
        shapely.intersection(area.sidewalks, window),
        layer,
        _IDX["sidewalk"],
        _IDX["background"],
    )
    _fill(
        draw, shapely.intersection(area.drivable, window), layer, _IDX["road"], _IDX["background"]
    )
    for poly in area.lane_polygons:
        if poly is not None and not poly.is_empty and poly.intersects(window):
            for part in _polygons(poly):
                draw.line(
                    [tuple(p) for p in layer.to_px(np.asarray(part.exterior.coords)[:, :2])],
                    fill=_IDX["lane_line"],
                    width=1,
                )
    line_w = max(1, round(0.15 * px_per_m))
    for mk in area.markings:
        xy = np.asarray(mk.xy, dtype=np.float64)
        if xy.shape[0] < 2 or not np.any(np.all((xy >= bounds[0]) & (xy <= bounds[1]), axis=1)):
            continue
        color = _IDX["marking_yellow"] if mk.color == "yellow" else _IDX["marking_white"]
        px = layer.to_px(xy)
        if "broken" in mk.kind and "solid" not in mk.kind:
            for k in np.flatnonzero(_dashes(xy)):
                draw.line([tuple(px[k]), tuple(px[k + 1])], fill=color, width=line_w)
        else:
            draw.line([tuple(p) for p in px], fill=color, width=line_w)
    return layer


def check_output(out_path: str | os.PathLike[str]) -> str:
    """What ``out_path`` asks for: 'folder' (no suffix or a trailing '/'), 'gif' or 'video';
    ConfigError for anything else, or for video without imageio-ffmpeg installed."""
    text = os.fspath(out_path)
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.suffix == "":
        return "folder"
    suffix = out.suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"cannot write replay to {out}: use a .gif or .mp4 file, or a folder path "
            "(no suffix) for PNG frames"
        )
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ConfigError(
            f"writing {suffix} needs ffmpeg: `pip install imageio-ffmpeg`, or write a .gif instead"
        )
    return "video"


class _Writer:
    """Collects frames and writes them atomically as GIF, video or PNG folder."""

    def __init__(self, out_path: str, fps: float) -> None:
        out = Path(out_path)
        self.out, self.fps = out, fps
        kind = check_output(out_path)
        self.folder = kind == "folder"
        suffix = out.suffix.lower()
        self.frames: list[Image.Image] = []
        self.count = 0
        (out if self.folder else out.parent).mkdir(parents=True, exist_ok=True)
        self._video: Any = None
        self._tmp: str | None = None
        if kind == "video":
            import imageio.v2 as iio

            fd, self._tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=suffix, dir=out.parent)
            os.close(fd)
            self._video = iio.get_writer(
                self._tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2
            )

    def add(self, frame: Image.Image) -> None:
        if self.folder:
            with atomic_output(self.out / f"frame_{self.count:05d}.png") as tmp:
                frame.convert("RGB").save(tmp, format="PNG")
        elif self._video is not None:
            self._video.append_data(np.asarray(frame.convert("RGB")))
        else:
            self.frames.append(frame)
        self.count += 1

    def close(self) -> None:
        if self._video is not None and self._tmp is not None:
            self._video.close()
            publish(self._tmp, self.out)
        elif not self.folder and self.frames:
            with atomic_output(self.out) as tmp:
                self.frames[0].save(
                    tmp, format="GIF", save_all=True, append_images=self.frames[1:],
                    duration=round(1000.0 / self.fps), loop=0, optimize=False,
                )  # fmt: skip

    def abort(self) -> None:
        if self._video is not None and self._tmp is not None:
            self._video.close()
            Path(self._tmp).unlink(missing_ok=True)


def _ego_track(recording: Recording) -> NDArray[np.float64]:
    """(F, 2) ego centre per frame [m], the last valid position carried over invalid frames."""
    a = recording.actors
    xy = np.stack([a.x[:, EGO_INDEX], a.y[:, EGO_INDEX]], axis=1)
    valid = a.valid[:, EGO_INDEX]
    if not valid.any():
        return xy
    idx = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    idx[idx < 0] = int(np.argmax(valid))
    return xy[idx]


def render_topdown(
    recording: Recording,
    town: Any,
    out_path: str | os.PathLike[str],
    fps: float = 10.0,
    every: int = 2,
    size_px: int = 512,
    follow_ego: bool = True,
    view_m: float = VIEW_M,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render every ``every``-th recorded tick top-down to ``out_path`` (.gif, .mp4 or a folder of
    PNGs: a path without suffix or ending in '/'); returns the written path. Frames are
    ``size_px`` wide, ``size_px`` + :func:`panel_height` high. ``progress(done, total)`` is
    called after each frame."""
    if every < 1 or fps <= 0 or size_px < 16 or view_m <= 0:
        raise ConfigError(
            f"replay needs every >= 1, fps > 0, size >= 16 px and view > 0 m (got {every}, {fps}, {size_px}, {view_m})"
        )
    if check_output(out_path) == "video" and size_px % 2:
        raise ConfigError(
            f"video needs an even --size (H.264 halves the colour planes), got {size_px}"
        )
    name = getattr(town, "name", recording.town)
    if name != recording.town:
        log.warning("recording is of %s but rendering on %s", recording.town, name)
    track = _ego_track(recording)
    if follow_ego:
        px_per_m = size_px / view_m
        half = 0.5 * view_m + 2.0
        bounds = np.stack([track.min(axis=0) - half, track.max(axis=0) + half])
    else:
        lo, hi = np.array(town.area.drivable.bounds[:2]), np.array(town.area.drivable.bounds[2:])
        side = float(max(hi - lo)) + 10.0
        centre = 0.5 * (lo + hi)
        bounds = np.stack([centre - 0.5 * side, centre + 0.5 * side])
        px_per_m = size_px / side
    layer = _draw_map(town, bounds, px_per_m)
    font_px = max(10, size_px // 40)
    font = ImageFont.load_default(size=font_px)
    panel_px = panel_height(font_px)
    writer = _Writer(os.fspath(out_path), fps)
    picks = np.arange(0, len(recording), every)
    try:
        for n, i in enumerate(picks):
            centre_px = layer.to_px(track[i]) if follow_ego else np.array(layer.image.size) / 2.0
            left, top = np.round(centre_px - size_px / 2).astype(int)
            crop = layer.image.crop((int(left), int(top), int(left) + size_px, int(top) + size_px))
            crop.putpalette(_PALETTE)
            _draw_dynamic(
                crop, recording, int(i), town, layer, np.array([left, top], dtype=np.float64), font
            )
            frame = Image.new("P", (size_px, size_px + panel_px), _IDX["panel"])
            frame.putpalette(_PALETTE)
            frame.paste(crop, (0, 0))
            _draw_panel(frame, recording, int(i), size_px, font)
            writer.add(frame)
            if progress is not None:
                progress(n + 1, len(picks))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    log.info("replayed %d frames of %s to %s", writer.count, recording.town, writer.out)
    return writer.out


def _draw_dynamic(
    frame: Image.Image, recording: Recording, i: int, town: Any, layer: _MapLayer,
    offset: NDArray[np.float64], font: Any,
) -> None:  # fmt: skip
    """Stop lines, actors, events and the time stamp of recorded tick ``i`` onto a crop."""
    draw = ImageDraw.Draw(frame)
    size = np.array(frame.size, dtype=np.float64)

    def px(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return layer.to_px(xy) - offset

    if recording.route is not None:
        _draw_route(draw, recording.route, int(recording.frames[i]), px, layer.px_per_m, size)
    sig = town.signals
    a_px, b_px = px(np.asarray(sig.stop_a)), px(np.asarray(sig.stop_b))
    seen = np.all((np.minimum(a_px, b_px) < size) & (np.maximum(a_px, b_px) > 0), axis=1)
    line_w = max(2, round(0.4 * layer.px_per_m))
    states = recording.light_state[i]
    for s in np.flatnonzero(seen):
        owner = int(sig.stop_owner[s])
        if int(sig.stop_kind[s]) == 0:
            color = (
                _LIGHT_COLOR[LightState(int(states[owner]))]
                if owner < states.shape[0]
                else _IDX["light_off"]
            )
        else:
            color = _IDX["stop_sign"]
        draw.line([tuple(a_px[s]), tuple(b_px[s])], fill=color, width=line_w)

    a = recording.actors
    rows = np.flatnonzero(a.valid[i])
    corners = px(
        box_corners(a.x[i, rows], a.y[i, rows], a.yaw[i, rows], a.length[i, rows], a.width[i, rows])
    )
    inside = np.all(corners.min(axis=1) < size, axis=1) & np.all(corners.max(axis=1) > 0, axis=1)
    ego_rows = np.flatnonzero((rows == EGO_INDEX) & inside)
    if ego_rows.size:  # ego filled first so actors it hits stay visible, outlined last
        draw.polygon([tuple(p) for p in corners[ego_rows[0]]], fill=_IDX["ego"])
    for r, c in zip(rows[inside], corners[inside], strict=True):
        if r == EGO_INDEX:
            continue
        kind = (
            ActorKind(int(a.kind[i, r]))
            if int(a.kind[i, r]) in ActorKind._value2member_map_
            else ActorKind.STATIC
        )
        scripted = int(a.role[i, r]) == ActorRole.SCENARIO
        draw.polygon(
            [tuple(p) for p in c], fill=_KIND_COLOR[kind],
            outline=_IDX["scenario"] if scripted else _IDX["shadow"], width=2 if scripted else 1,
        )  # fmt: skip
        draw.line([tuple(0.5 * (c[0] + c[1])), tuple(c.mean(axis=0))], fill=_IDX["shadow"], width=1)
    if ego_rows.size:
        c = corners[ego_rows[0]]
        draw.polygon([tuple(p) for p in c], outline=_IDX["outline"], width=2)
        draw.line([tuple(0.5 * (c[0] + c[1])), tuple(c.mean(axis=0))], fill=_IDX["shadow"], width=2)

    if recording.route is not None:
        r_x = max(3.0, 1.0 * layer.px_per_m)
        for inf in recording.route.infractions:
            if inf.frame > recording.frames[i] or not np.isfinite(inf.x_m):
                continue
            p = px(np.array([inf.x_m, inf.y_m]))
            for d in ((1, 1), (1, -1)):
                draw.line(
                    [(p[0] - d[0] * r_x, p[1] - d[1] * r_x), (p[0] + d[0] * r_x, p[1] + d[1] * r_x)],
                    fill=_IDX["event"], width=3,
                )  # fmt: skip
    t = float(recording.time_s[i])
    lines: list[tuple[str, int]] = []
    ev_t = np.array([e.time_s for e in recording.events], dtype=np.float64)
    recent = (
        (recording.event_state_frames <= recording.frames[i])
        & (ev_t > t - EVENT_SHOW_S)
        & (ev_t <= t)
    )
    r_mark = max(3.0, 1.5 * layer.px_per_m)
    for k in np.flatnonzero(recent):
        e = recording.events[k]
        p = px(np.array([e.x, e.y]))
        draw.ellipse(
            [p[0] - r_mark, p[1] - r_mark, p[0] + r_mark, p[1] + r_mark],
            outline=_IDX["event"],
            width=2,
        )
        lines.append((f"{e.time_s:6.2f} s {e.kind.name}: {e.detail}", _IDX["event"]))
    y = 4.0
    for text, color in lines:
        draw.text((5.0, y + 1.0), text, fill=_IDX["shadow"], font=font)
        draw.text((4.0, y), text, fill=color, font=font)
        y += font.size + 3 if hasattr(font, "size") else 12


def panel_height(font_px: int) -> int:
    """Height [px] of the info panel below the map (even, as H.264 needs)."""
    rows = 2 + PANEL_INFRACTIONS + LEGEND_ROWS
    h = rows * (font_px + 3) + 10
    return h + h % 2


def _draw_route(
    draw: ImageDraw.ImageDraw, route: RouteTrack, frame: int,
    px: Callable[[NDArray[np.float64]], NDArray[np.float64]], px_per_m: float,
    size: NDArray[np.float64],
) -> None:  # fmt: skip
    """The route band (driven part dim, the rest bright) and the goal (an arrow at the border
    pointing to it when it is out of view)."""
    xy = route.route_xy
    if len(xy) < 2:
        return
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    rc, _, _ = route.scores_at(frame)
    k = int(np.clip(np.searchsorted(s, rc / 100.0 * s[-1]), 0, len(xy) - 1))
    w = max(2, round(ROUTE_WIDTH_M * px_per_m))
    pts = px(xy)
    if k > 0:
        draw.line([tuple(p) for p in pts[: k + 1]], fill=_IDX["route_done"], width=w, joint="curve")
    if k < len(xy) - 1:
        draw.line([tuple(p) for p in pts[k:]], fill=_IDX["route_left"], width=w, joint="curve")
    goal = pts[-1]
    r = max(5.0, 1.8 * px_per_m)
    if np.all((goal >= 0) & (goal < size)):
        draw.ellipse([goal[0] - r, goal[1] - r, goal[0] + r, goal[1] + r], fill=_IDX["goal"],
                     outline=_IDX["shadow"], width=2)  # fmt: skip
        return
    centre = size / 2.0
    d = goal - centre
    edge = centre + d * float(np.min((centre - 8.0) / np.maximum(np.abs(d), 1e-9)))
    u = d / max(float(np.linalg.norm(d)), 1e-9)
    n = np.array([-u[1], u[0]])
    tri = [edge + 8.0 * u, edge - 6.0 * u + 6.0 * n, edge - 6.0 * u - 6.0 * n]
    draw.polygon([tuple(p) for p in tri], fill=_IDX["goal"], outline=_IDX["shadow"])


_LEGEND: tuple[tuple[str, str, str], ...] = (
    ("ego", "ego", "box"), ("vehicle", "vehicle", "box"), ("pedestrian", "pedestrian", "box"),
    ("bicycle", "bicycle", "box"), ("static", "static", "box"),
    ("scenario actor", "scenario", "outline"), ("route to go", "route_left", "bar"),
    ("route driven", "route_done", "bar"), ("goal", "goal", "dot"),
    ("infraction", "event", "cross"), ("red light", "light_red", "bar"),
    ("stop sign", "stop_sign", "bar"),
)  # fmt: skip
"""Legend entries: label, palette colour, swatch shape."""


def _draw_panel(frame: Image.Image, recording: Recording, i: int, top: int, font: Any) -> None:
    """Time, speed, running RC / IP / DS, the latest infractions and the legend below the map."""
    draw = ImageDraw.Draw(frame)
    width = frame.size[0]
    fs = int(getattr(font, "size", 10))
    line_h = fs + 3
    y = top + 4.0

    def text(x: float, s: str, color: str) -> float:
        draw.text((x, y), s, fill=_IDX[color], font=font)
        return float(draw.textlength(s, font=font))

    def fit(s: str, room: float) -> str:
        while s and draw.textlength(s, font=font) > room:
            s = s[:-2] + "…" if len(s) > 2 else ""
        return s

    t = float(recording.time_s[i])
    speed = float(recording.actors.speed[i, EGO_INDEX])
    text(6, f"t {t:7.2f} s   ego {speed:5.1f} m/s ({3.6 * speed:4.0f} km/h)", "text")
    y += line_h
    route = recording.route
    if route is None:
        text(6, "no route track in this recording (recorded before schema 2)", "text_dim")
        y += line_h * (1 + PANEL_INFRACTIONS)
    else:
        frame_no = int(recording.frames[i])
        rc, ip, ds = route.scores_at(frame_no)
        so_far = [inf for inf in route.infractions if inf.frame <= frame_no]
        text(6, f"RC {rc:5.1f} %   IP {ip:5.3f}   DS {ds:5.1f}   infractions {len(so_far)}", "text")
        y += line_h
        for inf in so_far[-PANEL_INFRACTIONS:]:
            fresh = t - inf.time_s <= EVENT_SHOW_S
            line = f"{inf.time_s:6.1f} s  {inf.key} (x{inf.factor:.2f}): {inf.text}"
            text(6, fit(line, width - 12.0), "event" if fresh else "text_dim")
            y += line_h
        y += line_h * (PANEL_INFRACTIONS - len(so_far[-PANEL_INFRACTIONS:]))
    x = 6.0
    sw = float(fs)
    for label, color, shape in _LEGEND:
        need = sw + 4 + float(draw.textlength(label, font=font)) + 12
        if x + need > width:
            x, y = 6.0, y + line_h
        box = [x, y + 2, x + sw, y + sw]
        if shape == "box":
            draw.rectangle(box, fill=_IDX[color], outline=_IDX["shadow"])
        elif shape == "outline":
            draw.rectangle(box, fill=_IDX["vehicle"], outline=_IDX[color], width=2)
        elif shape == "bar":
            draw.rectangle([x, y + sw / 2 - 1, x + sw, y + sw / 2 + 3], fill=_IDX[color])
        elif shape == "dot":
            draw.ellipse(box, fill=_IDX[color], outline=_IDX["shadow"])
        else:
            draw.line([box[0], box[1], box[2], box[3]], fill=_IDX[color], width=2)
            draw.line([box[0], box[3], box[2], box[1]], fill=_IDX[color], width=2)
        draw.text((x + sw + 4, y), label, fill=_IDX["text"], font=font)
        x += need
