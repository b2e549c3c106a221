"""The expert's route context and bookkeeping on the built-in town Harness01 (no map files):
a route lane change is blended instead of jumped, stop lines of lanes the route leaves before
their end are not route stops, the yield-patience timer counts real time per plan, and the
comfort check bounds |lateral acceleration| for turns either way."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.maps import load_town
from harness.planning import ExpertPlanner
from harness.planning.expert import ExpertConfig
from harness.planning.paths import PathKind, PathSet, blend_lane_changes, build_route_context
from harness.planning.proposals import Proposals
from harness.planning.scoring import _comfort
from harness.routes.interpolate import plan_route
from harness.routes.xml_io import read_route_file
from harness.sim.embedded.simulator import EmbeddedSimulator
from harness.world.backend import EpisodeSpec, TrafficConfig
from harness.world.comfort import MAX_ABS_LAT_ACCEL_MPS2
from harness.world.timing import SIM_DT_S

ROUTES = Path(__file__).resolve().parents[1] / "scenarios" / "routes" / "harness01_routes.xml"
LANE_WIDTH_M = 3.5  # [m] Harness01's lanes


@pytest.fixture(scope="module")
def route0():  # type: ignore[no-untyped-def]
    """Harness01 route 0: a lane change to the right at (261.75, -160.7) on the way to a
    light-controlled junction at y = -212.5."""
    town = load_town("Harness01")
    route = read_route_file(ROUTES)[0]
    return town, plan_route(town, route.keypoints, route.id)


def _lateral_steps(xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """|lateral| [m] of each step between consecutive points, across the heading there."""
    d = np.diff(xy, axis=0)
    return np.abs(-np.sin(yaw[:-1]) * d[:, 0] + np.cos(yaw[:-1]) * d[:, 1])


def test_route_lane_change_is_blended_over_the_old_lane(route0) -> None:  # type: ignore[no-untyped-def]
    town, planned = route0
    raw = _lateral_steps(planned.xy, planned.yaw_rad)
    assert raw.max() > 0.8 * LANE_WIDTH_M  # the planned route jumps one lane width at once
    blended = blend_lane_changes(town, planned)
    steps = _lateral_steps(blended, planned.yaw_rad)
    # a smoothstep over 20 m has a peak slope of 1.5 x 3.5 / 20 = 0.26 m per metre
    assert steps.max() < 0.35
    ctx = build_route_context(town, planned)
    assert _lateral_steps(ctx.xy, ctx.yaw)[: int(planned.s_m[-1])].max() < 0.35
    # the lane change ends where the planned one switched lanes: on the new lane's centre
    k = int(np.argmax(raw))
    assert np.hypot(*(blended[k] - planned.xy[k + 1])) < 1.5
    # points more than 20 m before the switch are untouched
    far = planned.s_m < planned.s_m[k] - 20.5
    np.testing.assert_array_equal(blended[far], planned.xy[far])


def test_stop_line_of_a_lane_left_before_its_end_is_no_route_stop(route0) -> None:  # type: ignore[no-untyped-def]
    town, planned = route0
    ctx = build_route_context(town, planned)
    sig = town.signals
    for station, owner in zip(ctx.stop_station, ctx.stop_owner, strict=True):
        lines = np.flatnonzero(sig.stop_owner == owner)
        mids = 0.5 * (sig.stop_a[lines] + sig.stop_b[lines])
        centre = planned.xy[int(np.argmin(np.abs(planned.s_m - station)))]
        # every route stop lies on one of its light's stop lines (within half a lane)
        assert np.hypot(*(mids - centre).T).min() < 0.5 * LANE_WIDTH_M + 1.0
    # the light at the junction (stop line y = -212.5) is met once, on the lane the route takes
    # into the junction, not where the route leaves the left lane (y = -160.7)
    ys = ctx.xy[np.rint(ctx.stop_station).astype(int), 1]
    assert np.sum(np.abs(ys + 212.0) < 1.5) == 1
    assert not np.any(np.abs(ys + 160.5) < 5.0)


@pytest.mark.parametrize("every", [1, 2])
def test_yield_patience_counts_real_time_per_plan(route0, every: int) -> None:  # type: ignore[no-untyped-def]
    town, planned = route0
    sim = EmbeddedSimulator()
    state = sim.reset(
        EpisodeSpec(town="Harness01", ego_start=planned.start_pose, route_xy=planned.xy,
                    traffic=TrafficConfig(0, 0, seed=0), seed=0)
    )  # fmt: skip
    expert = ExpertPlanner(town, planned, replace(ExpertConfig(), plan_every_ticks=every))
    for _ in range(4):
        expert.plan(state)  # the ego stands still at its start
    assert expert.waited_s == pytest.approx(4 * every * SIM_DT_S)


def _one_proposal(curvature: float, speed_mps: float) -> tuple[Proposals, PathSet]:
    k, t = 40, 9
    xy = np.zeros((1, k, 2))
    paths = PathSet(0, xy, np.zeros((1, k)), np.zeros((1, k)),
                    np.array([int(PathKind.CENTER)]), np.full((1, k), curvature))  # fmt: skip
    station = np.linspace(0.0, 0.5 * speed_mps * 0.9, t)[None]
    props = Proposals(
        np.array([0]), np.array([1.0]), station, np.full((1, t), speed_mps), np.zeros((1, t)),
        np.zeros((1, t, 3)), np.zeros((1, t)),
    )  # fmt: skip
    return props, paths


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_comfort_bounds_lateral_acceleration_of_turns_either_way(sign: float) -> None:
    # 10 m/s on a 20 m radius: 5 m/s2 lateral, over the PDMS bound (4.89 m/s2)
    props, paths = _one_proposal(sign / 20.0, 10.0)
    assert MAX_ABS_LAT_ACCEL_MPS2 < 10.0**2 / 20.0
    assert _comfort(props, paths)[0] == 0.0
    # 5 m/s on the same curve: 1.25 m/s2 lateral, 0.25 rad/s yaw rate: comfortable
    props, paths = _one_proposal(sign / 20.0, 5.0)
    assert _comfort(props, paths)[0] == 1.0


def test_stop_line_ahead_of_the_route_end_on_its_last_lane_is_kept() -> None:
    town = load_town("Harness01")
    # along the right lane (x = 265.24, heading -y) ending at y = -200, 12.5 m before the stop
    # line of the junction's light (y = -212.5)
    kp = np.array([[265.24, -170.0, 0.0], [265.24, -185.0, 0.0], [265.24, -200.0, 0.0]])
    planned = plan_route(town, kp, "end-before-light")
    ctx = build_route_context(town, planned)
    ahead = ctx.stop_station - planned.s_m[-1]
    assert ahead.size == 1
    assert ahead[0] == pytest.approx(12.5, abs=0.3)
