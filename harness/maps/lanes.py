"""Driving lanes of a town as flat, sampled-centerline arrays with a vectorised Frenet API.

A lane is one CARLA topology segment: a driving lane of one OpenDRIVE lane section, keyed by
(road_id, section_id, lane_id). Centerlines are sampled at about 1 m through
`carla.Map.get_waypoint_xodr` between the section's exact ends, so both ends are included.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from harness.geometry import wrap_angle

log = logging.getLogger(__name__)

SAMPLE_SPACING_M = 1.0  # [m] target centerline sample spacing
SECTION_END_EPS_M = 1e-5  # [m] keep end samples inside their lane section (boundaries are shared)
K_CANDIDATES = 12  # nearest centerline segments (by midpoint) examined per projected point
MARKING_STRIDE = 5  # read lane markings / lane-change flags every this many samples (~5 m)
OPPOSITE_HEADING_PENALTY_M = (
    1000.0  # [m] cost added to a candidate lane whose heading is > 90 deg off
)
HEADING_TIE_BREAK_M_PER_RAD = 1e-3  # [m/rad] separates lanes that overlap exactly (junction forks)

# carla.LaneMarkingType / carla.LaneMarkingColor integer values -> names used in LaneMarking
MARKING_TYPE_NAMES: dict[int, str] = {
    0: "other",
    1: "broken",
    2: "solid",
    3: "solid_solid",
    4: "solid_broken",
    5: "broken_solid",
    6: "broken_broken",
    7: "botts_dots",
    8: "grass",
    9: "curb",
    10: "none",
}
MARKING_NONE = 10  # carla.LaneMarkingType.NONE
MARKING_COLOR_NAMES: dict[int, str] = {
    0: "white",
    1: "blue",
    2: "green",
    3: "red",
    4: "yellow",
    5: "other",
}
LANE_CHANGE_RIGHT = 1  # carla.LaneChange.Right bit
LANE_CHANGE_LEFT = 2  # carla.LaneChange.Left bit

_ROAD_OR_SECTION = re.compile(r"<(road|laneSection)\b([^>]*)>")
_ATTR = re.compile(r'\b(id|length|s)\s*=\s*"([^"]*)"')


def lane_sections(xodr_text: str) -> dict[int, NDArray[np.float64]]:
    """Section boundaries per road: road_id -> sorted (n_sections + 1,) s values [m], last = road length.

    Only the <road length id> and <laneSection s> attributes are read; CARLA's section_id is the
    index of the section in s order, so this gives each lane's exact [s_start, s_end].
    """
    out: dict[int, NDArray[np.float64]] = {}
    road: int | None = None
    length = 0.0
    starts: list[float] = []

    def flush() -> None:
        if road is not None:
            out[road] = np.array(sorted(starts) + [length], dtype=np.float64)

    for match in _ROAD_OR_SECTION.finditer(xodr_text):
        attrs = dict(_ATTR.findall(match.group(2)))
        if match.group(1) == "road":
            flush()
            try:
                road, length, starts = int(attrs["id"]), float(attrs["length"]), []
            except (KeyError, ValueError):  # non-integer road ids are not loadable by CARLA either
                road, starts = None, []
        elif road is not None and "s" in attrs:
            starts.append(float(attrs["s"]))
    flush()
    return out


def section_samples_s(s0: float, s1: float, lane_id: int, spacing_m: float) -> list[float]:
    """OpenDRIVE s values [m] sampling section [s0, s1] at <= spacing_m, ends included, in driving
    direction (lane ids < 0 run along +s, > 0 along -s); ends are nudged inside the section."""
    n = max(2, math.ceil((s1 - s0) / spacing_m - 1e-9) + 1)
    eps = min(SECTION_END_EPS_M, 0.25 * (s1 - s0))
    lo, step = s0 + eps, (s1 - s0 - 2.0 * eps) / (n - 1)
    s = [lo + i * step for i in range(n)]
    return s[::-1] if lane_id > 0 else s


def sample_section(
    cmap: Any, road_id: int, lane_id: int, s0: float, s1: float, spacing_m: float
) -> list[Any]:
    """carla.Waypoints along lane `lane_id` of the road section [s0, s1], in driving direction."""
    wps = [
        cmap.get_waypoint_xodr(road_id, lane_id, si)
        for si in section_samples_s(s0, s1, lane_id, spacing_m)
    ]
    return [w for w in wps if w is not None]


def encode_keys(road_id: ArrayLike, section_id: ArrayLike, lane_id: ArrayLike) -> NDArray[np.int64]:
    """One int64 per (road, section, lane) key, for vectorised look-ups."""
    r = np.asarray(road_id, dtype=np.int64)
    s = np.asarray(section_id, dtype=np.int64)
    lane = np.asarray(lane_id, dtype=np.int64)
    return (r << 24) | (s << 8) | (lane + 128)


@dataclass(frozen=True)
class LaneProjection:
    """Nearest-lane projection of points (...,): lane index, arc length `s_m` [m] from the lane
    start, signed `lateral_m` [m] (positive on the heading's +90 deg side = right-hand side in
    CARLA's left-handed frame; |lateral_m| == distance_m), `heading_error_rad` (query yaw minus lane
    yaw, wrapped; NaN when no yaw was given) and `distance_m` [m] to the centerline."""

    lane: NDArray[np.int64]
    s_m: NDArray[np.float64]
    lateral_m: NDArray[np.float64]
    heading_error_rad: NDArray[np.float64]
    distance_m: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class LaneSet:
    """L driving lanes with P centerline samples in CARLA world frame; lane index = row everywhere.

    Per lane (L,): road_id, section_id, lane_id, junction_id (-1 outside junctions) int64,
    length_m [m], start/count offsets into the point arrays. Per point (P,): xy (P, 2) [m],
    z_m [m], yaw_rad (driving direction), s_m [m] arc length from the lane start, width_m [m],
    lane_of_point, lane_change (carla.LaneChange bits: 1 right, 2 left), marking_type and
    marking_color (P, 2) [left, right] with carla.LaneMarkingType / LaneMarkingColor values.
    """

    road_id: NDArray[np.int64]
    section_id: NDArray[np.int64]
    lane_id: NDArray[np.int64]
    junction_id: NDArray[np.int64]
    length_m: NDArray[np.float64]
    start: NDArray[np.int64]
    count: NDArray[np.int64]
    xy: NDArray[np.float64]
    z_m: NDArray[np.float64]
    yaw_rad: NDArray[np.float64]
    s_m: NDArray[np.float64]
    width_m: NDArray[np.float64]
    lane_of_point: NDArray[np.int64]
    lane_change: NDArray[np.int8]
    marking_type: NDArray[np.int8]
    marking_color: NDArray[np.int8]
    _seg_point: NDArray[np.int64] = field(init=False, repr=False)
    _seg_table: NDArray[np.float64] = field(
        init=False, repr=False
    )  # ax ay dx dy len2 yaw0 dyaw s0 ds
    _seg_tree: cKDTree = field(init=False, repr=False)
    _keys_sorted: NDArray[np.int64] = field(init=False, repr=False)
    _keys_order: NDArray[np.int64] = field(init=False, repr=False)
    _global_s: NDArray[np.float64] = field(init=False, repr=False)
    _lane_offset: NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n_lanes, n_points = self.road_id.shape[0], self.xy.shape[0]
        for name in ("section_id", "lane_id", "junction_id", "length_m", "start", "count"):
            if getattr(self, name).shape != (n_lanes,):
                raise ValueError(f"LaneSet.{name} must have shape ({n_lanes},)")
        for name in ("z_m", "yaw_rad", "s_m", "width_m", "lane_of_point", "lane_change"):
            if getattr(self, name).shape != (n_points,):
                raise ValueError(f"LaneSet.{name} must have shape ({n_points},)")
        if self.xy.shape != (n_points, 2) or self.marking_type.shape != (n_points, 2):
            raise ValueError("LaneSet.xy and marking arrays must have shape (P, 2)")
        if n_lanes and (self.count.min() < 2 or int(self.count.sum()) != n_points):
            raise ValueError("every lane needs >= 2 samples and counts must cover all points")
        keys = encode_keys(self.road_id, self.section_id, self.lane_id)
        order = np.argsort(keys, kind="stable")
        # a strictly increasing global coordinate: lane offset + s, for vectorised searchsorted
        lane_offset = np.concatenate([[0.0], np.cumsum(self.length_m + 1.0)[:-1]])
        seg_point = np.flatnonzero(self.lane_of_point[1:] == self.lane_of_point[:-1]).astype(
            np.int64
        )
        a, b = self.xy[seg_point], self.xy[seg_point + 1]
        d = b - a
        y0 = self.yaw_rad[seg_point]
        table = np.column_stack(
            [
                a,
                d,
                (d * d).sum(axis=1),
                y0,
                wrap_angle(self.yaw_rad[seg_point + 1] - y0),
                self.s_m[seg_point],
                self.s_m[seg_point + 1] - self.s_m[seg_point],
            ]
        )
        object.__setattr__(self, "_seg_point", seg_point)
        object.__setattr__(self, "_seg_table", np.ascontiguousarray(table.T))  # (9, S) rows
        object.__setattr__(self, "_seg_tree", cKDTree(0.5 * (a + b)))
        object.__setattr__(self, "_keys_sorted", keys[order])
        object.__setattr__(self, "_keys_order", order)
        object.__setattr__(self, "_lane_offset", lane_offset)
        object.__setattr__(self, "_global_s", self.s_m + lane_offset[self.lane_of_point])

    @property
    def n_lanes(self) -> int:
        """Number of lanes L."""
        return int(self.road_id.shape[0])

    def lane_points(self, lane: int) -> slice:
        """Slice of the point arrays holding one lane's samples."""
        return slice(int(self.start[lane]), int(self.start[lane] + self.count[lane]))

    def lookup(
        self, road_id: ArrayLike, section_id: ArrayLike, lane_id: ArrayLike
    ) -> NDArray[np.int64]:
        """Vectorised lane indices for (road, section, lane) keys; -1 where no driving lane has it."""
        keys = encode_keys(road_id, section_id, lane_id)
        pos = np.clip(np.searchsorted(self._keys_sorted, keys), 0, max(self.n_lanes - 1, 0))
        found = self._keys_sorted[pos] == keys if self.n_lanes else np.zeros(keys.shape, bool)
        return np.where(found, self._keys_order[pos], -1).astype(np.int64)

    def index(self, road_id: int, section_id: int, lane_id: int) -> int:
        """Lane index of one (road, section, lane) key; KeyError when it is not a driving lane."""
        idx = int(self.lookup(road_id, section_id, lane_id))
        if idx < 0:
            raise KeyError(
                f"no driving lane with road {road_id}, section {section_id}, lane {lane_id}"
            )
        return idx

    def _segment_at(
        self, lane: NDArray[np.int64], s: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Index of the segment start point holding arc length s on each lane, and the fraction t."""
        s = np.clip(s, 0.0, self.length_m[lane])
        i = np.searchsorted(self._global_s, self._lane_offset[lane] + s, side="right") - 1
        i = np.clip(i, self.start[lane], self.start[lane] + self.count[lane] - 2)
        ds = self.s_m[i + 1] - self.s_m[i]
        t = np.where(ds > 0.0, (s - self.s_m[i]) / np.where(ds > 0.0, ds, 1.0), 0.0)
        return i, np.clip(t, 0.0, 1.0)

    def position(
        self, lane: ArrayLike, s_m: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World xy (..., 2) [m] and yaw (...) [rad] at arc length s (clamped to the lane) on lanes (...)."""
        lane_a, s_a = np.broadcast_arrays(
            np.asarray(lane, dtype=np.int64), np.asarray(s_m, dtype=np.float64)
        )
        i, t = self._segment_at(lane_a, s_a)
        xy = self.xy[i] + t[..., None] * (self.xy[i + 1] - self.xy[i])
        yaw0 = self.yaw_rad[i]
        yaw = wrap_angle(yaw0 + t * wrap_angle(self.yaw_rad[i + 1] - yaw0))
        return xy, yaw

    def project(self, xy: ArrayLike, yaw_rad: ArrayLike | None = None) -> LaneProjection:
        """Project world points (..., 2) onto their nearest lane centerline (vectorised).

        Candidates are the K_CANDIDATES segments with the nearest midpoints (cKDTree), then exact
        point-to-segment projection. With `yaw_rad` (...), lanes whose heading differs by more than
        90 deg cost OPPOSITE_HEADING_PENALTY_M extra, so overlapping opposite lanes in junctions
        resolve to the one the vehicle drives along.
        """
        q = np.asarray(xy, dtype=np.float64)
        batch = q.shape[:-1]
        q = q.reshape(-1, 2)
        n, k = q.shape[0], min(K_CANDIDATES, self._seg_point.shape[0])
        _, cand = self._seg_tree.query(q, k=k, workers=-1)
        cand = np.asarray(cand, dtype=np.int64).reshape(n, k)
        ax, ay, dx, dy, len2 = self._seg_table[:5, cand]  # (n, k) each
        rx, ry = q[:, 0:1] - ax, q[:, 1:2] - ay
        t = np.clip((rx * dx + ry * dy) / np.maximum(len2, 1e-12), 0.0, 1.0)
        ox, oy = rx - t * dx, ry - t * dy
        dist = np.hypot(ox, oy)
        cost = dist
        yq = np.zeros(n)
        if yaw_rad is not None:
            yq = np.broadcast_to(np.asarray(yaw_rad, dtype=np.float64), batch).reshape(-1)
            yaw0, dyaw = self._seg_table[5:7, cand]
            err = np.abs(wrap_angle(yq[:, None] - yaw0 - t * dyaw))
            cost = (
                dist
                + np.where(err > np.pi / 2, OPPOSITE_HEADING_PENALTY_M, 0.0)
                + HEADING_TIE_BREAK_M_PER_RAD * err
            )
        best = np.argmin(cost, axis=1)[:, None]

        def pick(a: NDArray[Any]) -> NDArray[Any]:
            return np.take_along_axis(a, best, axis=1)[:, 0]

        seg = pick(cand)
        bx, by, tb, db = pick(ox), pick(oy), pick(t), pick(dist)
        _, _, bdx, bdy, blen2, byaw0, bdyaw, bs0, bds = self._seg_table[:, seg]
        # side from the segment's +90 deg normal (-dy, dx); the lane yaw where the segment is degenerate
        degenerate = blen2 < 1e-12
        ndx = np.where(degenerate, np.cos(byaw0), bdx)
        ndy = np.where(degenerate, np.sin(byaw0), bdy)
        side = np.where(by * ndx - bx * ndy < 0.0, -1.0, 1.0)
        heading = wrap_angle(yq - byaw0 - tb * bdyaw) if yaw_rad is not None else np.full(n, np.nan)
        return LaneProjection(
            lane=self.lane_of_point[self._seg_point[seg]].reshape(batch),
            s_m=(bs0 + tb * bds).reshape(batch),
            lateral_m=(side * db).reshape(batch),
            heading_error_rad=heading.reshape(batch),
            distance_m=db.reshape(batch),
        )


def build_lanes(cmap: Any, xodr_text: str) -> LaneSet:
    """Sample every driving topology segment of `cmap` (deduplicated by lane key) into a LaneSet."""
    sections = lane_sections(xodr_text)
    seen: set[tuple[int, int, int]] = set()
    per_lane: list[tuple[int, int, int, int]] = []  # road, section, lane, junction
    geom: list[tuple[float, float, float, float, float]] = []
    marks: list[tuple[int, int, int, int, int, int]] = []  # point index, lane change, markings
    counts: list[int] = []
    for entry, _exit in cmap.get_topology():
        key = (entry.road_id, entry.section_id, entry.lane_id)
        if key in seen or key[0] not in sections or key[1] + 1 >= len(sections[key[0]]):
            continue
        bounds = sections[key[0]]
        wps = sample_section(
            cmap, key[0], key[2], float(bounds[key[1]]), float(bounds[key[1] + 1]), SAMPLE_SPACING_M
        )
        if len(wps) < 2:
            wps = [entry, entry]
        seen.add(key)
        per_lane.append((*key, entry.junction_id if entry.is_junction else -1))
        counts.append(len(wps))
        base = len(geom)
        for w in wps:
            tr = w.transform
            loc = tr.location
            geom.append((loc.x, loc.y, loc.z, tr.rotation.yaw, w.lane_width))
        # markings and lane-change permissions change slowly: read them every MARKING_STRIDE samples
        for i in [*range(0, len(wps) - 1, MARKING_STRIDE), len(wps) - 1]:
            w = wps[i]
            lm, rm = w.left_lane_marking, w.right_lane_marking
            marks.append(
                (
                    base + i,
                    int(w.lane_change),
                    int(lm.type),
                    int(lm.color),
                    int(rm.type),
                    int(rm.color),
                )
            )
    data = np.array(geom, dtype=np.float64).reshape(-1, 5)
    mark = np.array(marks, dtype=np.int64).reshape(-1, 6)
    # each point takes the values read at the nearest sampled point at or before it
    filled = mark[np.searchsorted(mark[:, 0], np.arange(len(data)), side="right") - 1, 1:]
    lanes = np.array(per_lane, dtype=np.int64).reshape(-1, 4)
    count = np.array(counts, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    lane_of_point = np.repeat(np.arange(len(count), dtype=np.int64), count)
    xy = data[:, :2].copy()
    step = np.concatenate([[0.0], np.hypot(*np.diff(xy, axis=0).T)])
    step[start] = 0.0
    cum = np.cumsum(step)
    s_m = cum - cum[start][lane_of_point]
    return LaneSet(
        road_id=lanes[:, 0].copy(),
        section_id=lanes[:, 1].copy(),
        lane_id=lanes[:, 2].copy(),
        junction_id=lanes[:, 3].copy(),
        length_m=s_m[start + count - 1] if len(count) else np.zeros(0),
        start=start,
        count=count,
        xy=xy,
        z_m=data[:, 2].copy(),
        yaw_rad=wrap_angle(np.deg2rad(data[:, 3])),
        s_m=s_m,
        width_m=data[:, 4].copy(),
        lane_of_point=lane_of_point,
        lane_change=filled[:, 0].astype(np.int8),
        marking_type=filled[:, [1, 3]].astype(np.int8),
        marking_color=filled[:, [2, 4]].astype(np.int8),
    )
