"""Property-based fuzz of the request schema over real HTTP: structurally plausible requests with
random (in- and out-of-range) values, and a valid request with one field replaced by arbitrary
JSON, never get a 5xx, and the server keeps answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teachers.service.app import EXAMPLE_SCENE, AppConfig
from teachers.service.engine import EngineConfig
from teachers.service.limits import LimitConfig
from tests.test_service_http import LiveServer

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LANE_X = 1.75  # a straight Harness01 lane at x = 1.75 m heading -y (see EXAMPLE_SCENE)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
near = st.floats(-40.0, 40.0, allow_nan=False)
anywhere = st.floats(allow_nan=True, allow_infinity=True) | near


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    cfg = AppConfig(
        engine=EngineConfig(vocabulary=None, preload=("Harness01",)),
        limits=LimitConfig(concurrency=1, queue=4, timeout_s=30.0),
    )
    with LiveServer(cfg) as server:
        yield server


@st.composite
def scenes(draw: st.DrawFn) -> dict[str, Any]:
    """Scenes around the Harness01 lane: random ego, agents (state or future), lights, route."""
    y0 = -235.0 + draw(near)
    ego = {"x": LANE_X + draw(st.floats(-3, 3)), "y": y0, "yaw": -1.5708 + draw(st.floats(-1, 1)),
           "speed": draw(st.floats(-5, 40))}  # fmt: skip
    agents = []
    for _ in range(draw(st.integers(0, 3))):
        x, y = LANE_X + draw(near), y0 + draw(near)
        if draw(st.booleans()):
            motion: dict[str, Any] = {
                "state": {"x": x, "y": y, "yaw": draw(near), "speed": draw(near)}
            }
        else:
            motion = {"future": [[x, y - 0.5 * i, -1.5708, 5.0] for i in range(41)],
                      "valid": draw(st.lists(st.booleans(), min_size=41, max_size=41))}  # fmt: skip
        agents.append({"kind": draw(st.sampled_from(["vehicle", "pedestrian", "static"])),
                       "length": draw(st.floats(0.1, 12)), "width": draw(st.floats(0.1, 4)),
                       **motion})  # fmt: skip
    lights = [{"light_id": draw(st.sampled_from(["18", "19", "20", "x"])),
               "state": draw(st.sampled_from(["red", "green", "yellow", "off"]))}
              for _ in range(draw(st.integers(0, 2)))]  # fmt: skip
    n = draw(st.integers(2, 6))
    points = [[LANE_X + draw(st.floats(-1, 1)), y0 + 15 - 20 * i] for i in range(n)]
    route = {"polyline": points} if draw(st.booleans()) else {"global_plan": points[:: n - 1]}
    return {"town": draw(st.sampled_from(["Harness01", "Harness01", "Town99"])), "ego": ego,
            "agents": agents, "lights": lights, "route": route}  # fmt: skip


@FUZZ
@given(scene=scenes(), k=st.integers(-2, 70), use_vocabulary=st.booleans())
def test_fuzzed_teacher_requests_never_5xx(
    live: LiveServer, scene: dict[str, Any], k: int, use_vocabulary: bool
) -> None:
    body = {"scene": scene, "k": k, "options": {"use_vocabulary": use_vocabulary}}
    r = httpx.post(live.url + "/v1/teachers", json=body, timeout=60)
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 422), r.text


@FUZZ
@given(scene=scenes(), offsets=st.lists(st.tuples(anywhere, anywhere), min_size=1, max_size=3))
def test_fuzzed_score_requests_never_5xx(
    live: LiveServer, scene: dict[str, Any], offsets: list[tuple[float, float]]
) -> None:
    y0 = scene["ego"]["y"]
    trajectories = [[[LANE_X + dx, y0 - (i + 1) * 0.5 + dy, -1.5708] for i in range(40)]
                    for dx, dy in offsets]  # fmt: skip
    text = json.dumps({"scene": scene, "trajectories": trajectories})  # NaN / Infinity included
    r = httpx.post(live.url + "/v1/score", content=text, timeout=60,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code < 500, r.text


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


BASE = {"scene": EXAMPLE_SCENE, "k": 2}
BASE_PATHS = _paths(BASE)


@FUZZ
@given(path=st.sampled_from(BASE_PATHS), value=json_values)
def test_one_field_replaced_never_5xx(live: LiveServer, path: tuple[Any, ...], value: Any) -> None:
    body = json.loads(json.dumps(BASE))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    text = json.dumps(body)
    r = httpx.post(live.url + "/v1/teachers", content=text, timeout=60,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code < 500, r.text
    assert httpx.get(live.url + "/healthz").status_code == 200
