"""Routes generated on a town's lane graph (for towns or jobs without a route file): a seeded
random drive along lane successors, written as keypoints so it plans like any route file's."""

from __future__ import annotations

import numpy as np

from harness.errors import ConfigError
from harness.maps.town import Town
from harness.routes.model import RouteConfig

KEYPOINT_SPACING_M = 30.0  # [m] keypoints along a generated route
MIN_START_LANE_M = 20.0  # [m] routes start on a lane at least this long, outside junctions


def random_lane_walk(town: Town, rng: np.random.Generator, length_m: float) -> list[int]:
    """Lane indices of a seeded random walk along follow edges covering at least length_m;
    restarts elsewhere when it reaches a dead end too early."""
    lanes = town.lanes
    length = np.asarray(lanes.length_m)
    ok = np.flatnonzero((np.asarray(lanes.junction_id) < 0) & (length >= MIN_START_LANE_M))
    if ok.size == 0:
        raise ConfigError(f"town {town.name} has no lane long enough to start a route on")
    best: list[int] = []
    for _ in range(20):
        walk = [int(rng.choice(ok))]
        total = float(length[walk[0]])
        while total < length_m:
            nxt = [v for v in town.graph.successors(walk[-1]) if v not in walk]
            if not nxt:
                break
            walk.append(int(nxt[int(rng.integers(len(nxt)))]))
            total += float(length[walk[-1]])
        if total >= length_m:
            return walk
        if sum(length[best]) < total:
            best = walk
    return best


def generate_routes(
    town: Town, count: int, length_m: float = 400.0, seed: int = 0
) -> list[RouteConfig]:
    """count routes of about length_m on the town, as RouteConfig keypoints (deterministic)."""
    rng = np.random.default_rng(seed)
    routes: list[RouteConfig] = []
    for k in range(count):
        walk = random_lane_walk(town, rng, length_m)
        lane_len = town.lanes.length_m[walk]
        total = min(float(lane_len.sum()), length_m)
        offsets = np.concatenate([[0.0], np.cumsum(lane_len)[:-1]])
        d = np.append(np.arange(0.0, total, KEYPOINT_SPACING_M), total - 0.5)
        which = np.clip(np.searchsorted(offsets, d, side="right") - 1, 0, len(walk) - 1)
        s = np.minimum(d - offsets[which], lane_len[which] - 0.05)
        xy, _ = town.lanes.position(np.asarray(walk)[which], s)
        kp = np.column_stack([np.asarray(xy).reshape(-1, 2), np.zeros(len(d))])
        routes.append(RouteConfig(id=str(k), town=town.name, keypoints=kp))
    return routes
