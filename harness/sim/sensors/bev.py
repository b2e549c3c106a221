"""Privileged bird's-eye-view raster for teachers and debugging: ego-centred, ego heading up,
one binary channel per semantic class (road, markings, sidewalks, actors by kind, light states
painted on their stop lines, stop signs, route, ego), plus an RGB rendering of the channels."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from harness.sim.sensors.raster import GroundClass, SignalsLike, TownRaster
from harness.world.state import EGO_INDEX, ActorKind, LightState, WorldState

STOP_LINE_WIDTH_M = 0.6  # [m] drawn width of stop lines in the light / stop channels
ROUTE_WIDTH_M = 1.0  # [m] drawn width of the route polyline
STOP_KIND_LIGHT = 0  # SignalSet.stop_kind of a line owned by a traffic light
STOP_KIND_SIGN = 1  # SignalSet.stop_kind of a line owned by a stop sign


class BevChannel(IntEnum):
    """Channel order of :meth:`BevRenderer.render`."""

    ROAD = 0  # drivable surface, markings and stop lines included
    MARKINGS = 1  # white and yellow lane markings
    SIDEWALK = 2
    VEHICLES = 3  # vehicles, bicycles and emergency vehicles (ego excluded)
    PEDESTRIANS = 4
    STATICS = 5
    LIGHT_RED = 6  # stop lines of red lights
    LIGHT_YELLOW = 7
    LIGHT_GREEN = 8
    STOP_SIGNS = 9  # stop lines of stop signs
    ROUTE = 10
    EGO = 11


# RGB of each channel, painted in channel order (later over earlier) by to_rgb.
BEV_BACKGROUND_RGB = (40, 40, 40)
BEV_RGB: dict[BevChannel, tuple[int, int, int]] = {
    BevChannel.ROAD: (110, 110, 110),
    BevChannel.MARKINGS: (240, 240, 240),
    BevChannel.SIDEWALK: (170, 160, 140),
    BevChannel.VEHICLES: (40, 90, 230),
    BevChannel.PEDESTRIANS: (230, 60, 200),
    BevChannel.STATICS: (240, 140, 20),
    BevChannel.LIGHT_RED: (230, 20, 20),
    BevChannel.LIGHT_YELLOW: (240, 210, 20),
    BevChannel.LIGHT_GREEN: (30, 210, 60),
    BevChannel.STOP_SIGNS: (180, 0, 90),
    BevChannel.ROUTE: (60, 200, 200),
    BevChannel.EGO: (255, 255, 255),
}
_KIND_CHANNEL = {
    ActorKind.VEHICLE: BevChannel.VEHICLES,
    ActorKind.BICYCLE: BevChannel.VEHICLES,
    ActorKind.EMERGENCY: BevChannel.VEHICLES,
    ActorKind.PEDESTRIAN: BevChannel.PEDESTRIANS,
    ActorKind.STATIC: BevChannel.STATICS,
}
_LIGHT_CHANNEL_BY_STATE: dict[int, BevChannel] = {
    int(LightState.RED): BevChannel.LIGHT_RED,
    int(LightState.YELLOW): BevChannel.LIGHT_YELLOW,
    int(LightState.GREEN): BevChannel.LIGHT_GREEN,
}
_BOX_UNIT = np.array([[1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=np.float64)  # (x fwd, y right)


class BevRenderer:
    """Ego-centred BEV of size (height, width) px at ``resolution_m`` [m/px]: image up is the ego's
    heading, image right the ego's right; the ego's box centre is at pixel coordinate (W/2, H/2)."""

    def __init__(
        self,
        raster: TownRaster,
        signals: SignalsLike | None = None,
        height: int = 256,
        width: int = 256,
        resolution_m: float = 0.25,
    ):
        self.raster, self.signals = raster, signals
        self.height, self.width, self.resolution_m = height, width, resolution_m
        rows, cols = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
        self._grid_x = (
            ((height / 2.0 - rows) * resolution_m).ravel().astype(np.float32)
        )  # ego x fwd
        self._grid_y = (
            ((cols - width / 2.0) * resolution_m).ravel().astype(np.float32)
        )  # ego y right
        self._reach_m = 0.5 * np.hypot(height, width) * resolution_m  # [m] centre to corner

    def ego_to_pixel(self, xy_ego: NDArray[np.floating]) -> NDArray[np.float64]:
        """(..., 2) ego-frame points [m] -> (..., 2) continuous (col, row), pixel centres at +0.5."""
        p = np.asarray(xy_ego, dtype=np.float64)
        res = self.resolution_m
        return np.stack(
            [self.width / 2.0 + p[..., 1] / res, self.height / 2.0 - p[..., 0] / res], -1
        )

    def _to_pixel(
        self, xy: NDArray[np.floating], ex: float, ey: float, eyaw: float
    ) -> NDArray[np.float64]:
        p = np.asarray(xy, dtype=np.float64) - (ex, ey)
        c, s = np.cos(eyaw), np.sin(eyaw)
        local = np.stack([c * p[..., 0] + s * p[..., 1], -s * p[..., 0] + c * p[..., 1]], -1)
        return self.ego_to_pixel(local)

    def _ground(self, ex: float, ey: float, eyaw: float) -> NDArray[np.uint8]:
        r = self.raster
        res = r.resolution_m
        c, s = np.float32(np.cos(eyaw) / res), np.float32(np.sin(eyaw) / res)
        col = (c * self._grid_x - s * self._grid_y + np.float32((ex - r.x0) / res)).astype(np.int32)
        row = (s * self._grid_x + c * self._grid_y + np.float32((ey - r.y0) / res)).astype(np.int32)
        h, w = r.shape
        np.minimum(np.maximum(col, 0, out=col), w - 1, out=col)
        np.minimum(np.maximum(row, 0, out=row), h - 1, out=row)
        return r.classes.ravel().take(row * w + col).reshape(self.height, self.width)

    def render(
        self, state: WorldState, route_xy: NDArray[np.float64] | None = None
    ) -> NDArray[np.uint8]:
        """(C, H, W) uint8 masks (0 or 1), channels as :class:`BevChannel`."""
        a = state.actors
        ex, ey, eyaw = float(a.x[EGO_INDEX]), float(a.y[EGO_INDEX]), float(a.yaw[EGO_INDEX])
        out = np.zeros((len(BevChannel), self.height, self.width), dtype=np.uint8)
        ground = self._ground(ex, ey, eyaw)
        out[BevChannel.ROAD] = ground >= GroundClass.ROAD
        out[BevChannel.MARKINGS] = (ground == GroundClass.WHITE_MARKING) | (
            ground == GroundClass.YELLOW_MARKING
        )
        out[BevChannel.SIDEWALK] = ground == GroundClass.SIDEWALK
        size = (self.width, self.height)
        layers: dict[BevChannel, Image.Image] = {}
        draws: dict[BevChannel, ImageDraw.ImageDraw] = {}

        def layer(ch: BevChannel) -> ImageDraw.ImageDraw:
            if ch not in draws:
                layers[ch] = Image.new("L", size, 0)
                draws[ch] = ImageDraw.Draw(layers[ch])
            return draws[ch]

        near = a.valid & (
            np.hypot(a.x - ex, a.y - ey) < self._reach_m + 0.5 * np.hypot(a.length, a.width)
        )
        rows = np.flatnonzero(near)
        if len(rows):
            half = np.stack([0.5 * a.length[rows], 0.5 * a.width[rows]], -1)[:, None, :] * _BOX_UNIT
            c, s = np.cos(a.yaw[rows])[:, None], np.sin(a.yaw[rows])[:, None]
            corners = np.stack([a.x[rows][:, None] + c * half[..., 0] - s * half[..., 1],
                                a.y[rows][:, None] + s * half[..., 0] + c * half[..., 1]], -1)  # fmt: skip
            polys = (self._to_pixel(corners, ex, ey, eyaw) - 0.5).reshape(len(rows), 8).tolist()
            for k, row in enumerate(rows.tolist()):
                kind = ActorKind(int(a.kind[row]))
                ch = BevChannel.EGO if row == EGO_INDEX else _KIND_CHANNEL[kind]
                layer(ch).polygon(polys[k], fill=1)
        sig = self.signals
        if sig is not None and len(sig.stop_a):
            mid = 0.5 * (np.asarray(sig.stop_a) + np.asarray(sig.stop_b))
            close = np.flatnonzero(np.hypot(mid[:, 0] - ex, mid[:, 1] - ey) < self._reach_m + 10.0)
            a_px = self._to_pixel(np.asarray(sig.stop_a)[close], ex, ey, eyaw) - 0.5
            b_px = self._to_pixel(np.asarray(sig.stop_b)[close], ex, ey, eyaw) - 0.5
            kinds = np.asarray(getattr(sig, "stop_kind", np.zeros(len(sig.stop_a))))[close]
            owners = np.asarray(sig.stop_owner)[close]
            width = max(1, round(STOP_LINE_WIDTH_M / self.resolution_m))
            for k in range(len(close)):
                owner = int(owners[k])
                line_ch: BevChannel | None = BevChannel.STOP_SIGNS
                if kinds[k] != STOP_KIND_SIGN:
                    lit = 0 <= owner < len(state.light_state)
                    line_ch = (
                        _LIGHT_CHANNEL_BY_STATE.get(int(state.light_state[owner])) if lit else None
                    )
                if line_ch is not None:
                    layer(line_ch).line([tuple(a_px[k]), tuple(b_px[k])], fill=1, width=width)
        if route_xy is not None and len(route_xy) >= 2:
            pts = self._to_pixel(np.asarray(route_xy, dtype=np.float64)[:, :2], ex, ey, eyaw) - 0.5
            width = max(1, round(ROUTE_WIDTH_M / self.resolution_m))
            layer(BevChannel.ROUTE).line(pts.ravel().tolist(), fill=1, width=width, joint="curve")
        for ch, img in layers.items():
            out[ch] = np.asarray(img)
        return out


def bev_to_rgb(channels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(C, H, W) BEV masks -> (H, W, 3) uint8 RGB, channels painted in order over a dark background."""
    rgb = np.empty((*channels.shape[1:], 3), dtype=np.uint8)
    rgb[:] = BEV_BACKGROUND_RGB
    for ch in BevChannel:
        rgb[channels[ch] > 0] = BEV_RGB[ch]
    return rgb
