"""Pedestrians: stay on sidewalks, walk at their speed, deterministic; crossing on a hand-built
crosswalk only when no vehicle is near."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box

from harness.maps import load_town
from harness.sim.embedded.pedestrians import WALK_SPEED_MPS, PedestrianModel

DT = 0.05  # [s]


def _run(seed: int, ticks: int) -> tuple[PedestrianModel, float]:
    town = load_town("Town01")
    peds = PedestrianModel(town, np.random.default_rng(seed))
    peds.spawn(30, near_xy=np.array([[150.0, 150.0]]), radius_m=150.0)
    far = 0.0
    for _ in range(ticks):
        u0 = peds.u.copy()
        peds.step(DT)
        progress = np.abs(peds.u - u0)
        progress = np.minimum(progress, peds.paths.length_m[peds.ring] - progress)  # ring wrap
        np.testing.assert_allclose(progress, peds.speed * DT, atol=1e-9)
        dist = shapely.distance(town.area.sidewalks, shapely.points(np.stack([peds.x, peds.y], -1)))
        far = max(far, float(dist.max()))
    return peds, far


def test_walkers_stay_on_sidewalks_and_walk_at_their_speed(shared_maps: Path) -> None:
    peds, far = _run(0, 400)
    assert peds.n == 30
    assert far <= 1.0
    assert np.all((peds.speed >= WALK_SPEED_MPS[0]) & (peds.speed <= WALK_SPEED_MPS[1]))
    assert peds.boxes.shape == (30, 5)
    assert np.all(peds.height > 1.7)


def test_deterministic(shared_maps: Path) -> None:
    a, _ = _run(7, 100)
    b, _ = _run(7, 100)
    for name in ("ids", "x", "y", "yaw", "speed"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _strip_town() -> SimpleNamespace:
    """Two 40 m sidewalks (y in [-8, -5] and [5, 8]) either side of a road, one crosswalk at x = 0."""
    walks = MultiPolygon([box(-20, -8, 20, -5), box(-20, 5, 20, 8)])
    return SimpleNamespace(name="strip", area=SimpleNamespace(sidewalks=walks), cmap=None)


def test_crossing_only_when_no_vehicle_near() -> None:
    cw = np.array([[[0.0, -5.6], [0.0, 5.6]]])
    blocked = PedestrianModel(_strip_town(), np.random.default_rng(1), crosswalks=cw)
    free = PedestrianModel(_strip_town(), np.random.default_rng(1), crosswalks=cw)
    for m in (blocked, free):
        m.spawn(6, near_xy=np.array([[0.0, -5.6]]), radius_m=4.0)
    car = np.array([[3.0, 0.0, 0.0, 4.5, 2.0]])
    crossed = np.zeros(free.n, dtype=bool)
    for _ in range(int(300 / DT)):
        blocked.step(DT, car)
        free.step(DT, np.array([[100.0, 0.0, 0.0, 4.5, 2.0]]))
        assert not blocked.crossing.any()
        assert np.all(np.abs(blocked.y) > 4.9)
        crossed |= free.y > 4.9
    assert crossed.any()  # somebody walked over to the other sidewalk


def test_recycle_replaces_far_walkers_around_the_ego() -> None:
    town = _strip_town()
    peds = PedestrianModel(town, np.random.default_rng(2), crosswalks=np.zeros((0, 2, 2)))
    peds.spawn(4, near_xy=np.array([[-15.0, -6.5]]), radius_m=3.0)
    old_ids = peds.ids.copy()
    peds.x[0] = 500.0  # pretend walker 0 wandered far away
    ego = np.array([18.0, 0.0])  # near the east end of the strip
    rows = peds.recycle(ego, despawn_radius_m=100.0, min_dist_m=20.0)
    np.testing.assert_array_equal(rows, [0])
    assert peds.ids[0] not in old_ids and np.array_equal(peds.ids[1:], old_ids[1:])
    d = np.hypot(peds.x[0] - ego[0], peds.y[0] - ego[1])
    assert 20.0 <= d <= 100.0  # out of the ego's immediate view, inside the recycling radius
    assert peds.x[0] < 18.0 - np.sqrt(20.0**2 - 8.0**2) + 1e-9  # so on the strip's west part


def test_town04_walkers_cross_at_crosswalks_and_return_to_sidewalks(shared_maps: Path) -> None:
    town = load_town("Town04")
    peds = PedestrianModel(town, np.random.default_rng(5), cross_rate_per_s=2.0)
    assert peds.crosswalks.shape[0] > 0  # Town04's OpenDRIVE has crosswalks
    peds.spawn(12, near_xy=peds.crosswalks.reshape(-1, 2), radius_m=2.5)
    crossed = np.zeros(peds.n, dtype=bool)
    for _ in range(int(40 / DT)):
        peds.step(DT)
        crossed |= peds.crossing
        walking = ~peds.crossing
        pts = shapely.points(np.stack([peds.x[walking], peds.y[walking]], -1))
        assert shapely.distance(town.area.sidewalks, pts).max(initial=0.0) <= 1.0
    assert crossed.any()
