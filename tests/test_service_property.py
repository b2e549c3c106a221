"""Property test of the service's scoring path: VALID scenes (perturbations of the documented
example on the straight Harness01 lane: ego state, agents by state or by future, lights by id,
route as polyline (now and then pointing backwards) or global plan, past, reference, k and
options) reach the scorer; every answer is 200 or 422 (never a 5xx) and most are 200. Bounded:
a few seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.maps import load_town
from teachers.service.app import AppConfig
from teachers.service.engine import EngineConfig
from teachers.service.limits import LimitConfig
from tests.test_service_http import LiveServer

LANE_X = 1.75  # [m] a straight Harness01 lane heading -y, on lane for y in [-320, -160]
LANE_YAW = -1.5708  # [rad]
EGO_Y = -240.0  # [m] the example's ego, shifted along the lane by the strategies
EXAMPLES = 40
MIN_OK_SHARE = 0.6  # at least this share of valid scenes gets teachers / scores (200)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    cfg = AppConfig(engine=EngineConfig(vocabulary=None, preload=("Harness01",)),
                    limits=LimitConfig(concurrency=1, queue=8, timeout_s=30.0))  # fmt: skip
    with LiveServer(cfg) as server:
        yield server


def small(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _line(x: float, y: float, speed: float, n: int, dt: float, start: int) -> list[list[float]]:
    """Poses (or rows with speed) along the lane from (x, y) at ``speed``, ``n`` steps."""
    return [[x, y - speed * dt * (i + start), LANE_YAW] for i in range(n)]


@st.composite
def agents(draw: st.DrawFn, ego_y: float) -> dict[str, Any]:
    x, y = LANE_X + draw(small(-4.0, 4.0)), ego_y + draw(small(-40.0, 40.0))
    speed = draw(small(0.0, 12.0))
    box = {"kind": draw(st.sampled_from(["vehicle", "pedestrian", "bicycle", "static"])),
           "length": draw(small(0.5, 6.0)), "width": draw(small(0.5, 2.5))}  # fmt: skip
    if draw(st.booleans()):
        yaw = LANE_YAW + draw(small(-0.5, 0.5))
        return {**box, "state": {"x": x, "y": y, "yaw": yaw, "speed": speed}}
    future = [[*p, speed] for p in _line(x, y, speed, 41, 0.1, 0)]
    valid = draw(st.lists(st.booleans(), min_size=41, max_size=41).filter(any))
    return {**box, "future": future, "valid": valid}


@st.composite
def scenes(draw: st.DrawFn, light_ids: list[str]) -> dict[str, Any]:
    y = EGO_Y + draw(small(-20.0, 20.0))
    speed = draw(small(0.0, 15.0))
    ego = {"x": LANE_X + draw(small(-0.8, 0.8)), "y": y, "yaw": LANE_YAW + draw(small(-0.2, 0.2)),
           "speed": speed, "accel": draw(small(-3.0, 3.0)),
           "yaw_rate": draw(small(-0.3, 0.3))}  # fmt: skip
    if draw(st.booleans()):
        points = [[LANE_X, y + 10.0 - 10.0 * i] for i in range(draw(st.integers(3, 8)))]
        if draw(st.integers(0, 2)) == 0:  # now and then ending at the ego, against its heading
            points = [[LANE_X, y - 60.0], [LANE_X, y]]
        route: dict[str, Any] = {"polyline": points}
    else:
        route = {"global_plan": [[LANE_X, y + 10.0], [LANE_X, y - 60.0]]}
    scene: dict[str, Any] = {
        "town": "Harness01", "scene_id": "prop", "ego": ego, "route": route,
        "agents": [draw(agents(y)) for _ in range(draw(st.integers(0, 4)))],
        "lights": [{"light_id": i, "state": draw(st.sampled_from(["red", "yellow", "green"]))}
                   for i in draw(st.lists(st.sampled_from(light_ids), max_size=2, unique=True))],
    }  # fmt: skip
    if draw(st.booleans()):
        scene["past"] = [[*p, speed, 0.0, 0.0]
                         for p in _line(LANE_X, y, speed, 16, 0.1, -15)]  # fmt: skip
    if draw(st.booleans()):
        scene["reference"] = {"future": _line(ego["x"], y, speed, 40, 0.1, 1)}
    return scene


@pytest.fixture(scope="module")
def light_ids() -> list[str]:
    return [str(v) for v in load_town("Harness01").signals.light_id]


PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])  # fmt: skip


def test_valid_scenes_get_200_or_422_mostly_200(live: LiveServer, light_ids: list[str]) -> None:
    seen: list[tuple[int, str]] = []

    @PROPERTY
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        scene = data.draw(scenes(light_ids))
        if data.draw(st.booleans()):
            k = data.draw(st.integers(1, 8))
            threshold = data.draw(small(0.5, 1.0))
            body = {"scene": scene, "k": k, "options": {"threshold": threshold}}
            r = httpx.post(live.url + "/v1/teachers", json=body, timeout=60)
        else:
            speed = scene["ego"]["speed"]
            trajectories = [_line(scene["ego"]["x"] + dx, scene["ego"]["y"], speed + dv, 40,
                                  0.1, 1)
                            for dx, dv in data.draw(st.lists(st.tuples(small(-1, 1), small(-2, 2)),
                                                             min_size=1, max_size=4))]  # fmt: skip
            body = {"scene": scene, "trajectories": trajectories,
                    "simulate": data.draw(st.booleans())}  # fmt: skip
            r = httpx.post(live.url + "/v1/score", json=body, timeout=60)
        assert r.status_code in (200, 422), r.text[:500]
        seen.append((r.status_code, r.text[:200]))

    check()
    ok = sum(1 for status, _ in seen if status == 200)
    assert ok >= MIN_OK_SHARE * len(seen), [t for s, t in seen if s != 200][:5]
