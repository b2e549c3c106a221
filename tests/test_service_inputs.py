"""Service input discipline over real HTTP: geometry that used to reach GEOS or the scorer
unchecked (a stop area with inf, a route pointing backwards), loose JSON types, bodies that are
not UTF-8 or nested too deep, the route's one-of rule in the OpenAPI schema, metrics labels
under random paths, the API key checked before the body, half-open connections closed, and the
client reporting the server's status after a 500."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest

from teachers.client import ServiceError, TeacherClient
from teachers.service.app import EXAMPLE_SCENE, EXAMPLE_TRAJECTORY, AppConfig
from teachers.service.engine import EngineConfig
from teachers.service.limits import LimitConfig
from teachers.service.server import HeaderTimeoutH11
from tests.test_service_http import LiveServer, with_value

GOOD = {"scene": EXAMPLE_SCENE, "k": 2}
KEY = "s3cret"


class QuickHeaderTimeout(HeaderTimeoutH11):
    header_timeout_s: ClassVar[float] = 0.5


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    cfg = AppConfig(engine=EngineConfig(vocabulary=None, preload=("Harness01",)),
                    limits=LimitConfig(concurrency=1, queue=4, body_timeout_s=5.0))  # fmt: skip
    with LiveServer(cfg, http=QuickHeaderTimeout) as server:
        yield server


@pytest.fixture(scope="module")
def keyed() -> Iterator[LiveServer]:
    cfg = AppConfig(engine=EngineConfig(vocabulary=None), api_key=KEY,
                    limits=LimitConfig(body_timeout_s=5.0))
    with LiveServer(cfg) as server:
        yield server


def _post(url: str, body: Any, path: str = "/v1/teachers") -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


def _locs(r: httpx.Response) -> list[list[Any]]:
    return [d["loc"] for d in r.json()["detail"]]


@pytest.mark.parametrize(
    "area",
    ["POLYGON((0 0, inf 0, 1 1, 0 0))", "POLYGON((0 0, nan 0, 1 1, 0 0))",
     "POLYGON((0 0, 1e300 0, 1 1, 0 0))", "POLYGON((0 0, 1 1, 2 2, 0 0))", "LINESTRING(0 0, 1 1)"],
)  # fmt: skip
def test_bad_stop_area_is_422_at_the_field(live: LiveServer, area: str) -> None:
    body = with_value(GOOD, ("scene", "lights"), [{"stop_area": area, "state": "red"}])
    r = _post(live.url, body)
    assert r.status_code == 422, r.text[:300]
    assert any(loc[-1] == "stop_area" and "lights" in loc for loc in _locs(r)), r.text


def test_backwards_route_is_answered(live: LiveServer) -> None:
    """A route polyline against the ego's heading leaves no candidate: no teachers, not a 500."""
    body = with_value(GOOD, ("scene", "route", "polyline"), [[1.75, -295.0], [1.75, -235.0]])
    r = _post(live.url, body)
    assert r.status_code == 200, r.text[:300]
    got = r.json()
    assert got["teachers"] == [] and got["counts"]["teachers"] == 0
    r = _post(live.url, {"scene": body["scene"], "trajectories": [EXAMPLE_TRAJECTORY]}, "/v1/score")
    assert r.status_code == 200, r.text[:300]


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("k",), True, "k"),
        (("k",), 2.0, "k"),
        (("k",), "2", "k"),
        (("options",), {"use_vocabulary": "yes"}, "use_vocabulary"),
        (("options",), {"threshold": "0.9"}, "threshold"),
        (("scene", "ego", "speed"), "8", "speed"),
        (("scene", "ego", "x"), True, "x"),
        (("scene", "agents"), [{"length": 4.0, "width": 2.0, "id": True,
                                "state": {"x": 1.75, "y": -265.0, "yaw": 0.0}}], "id"),
    ],
)  # fmt: skip
def test_loose_json_types_are_422(live: LiveServer, path: tuple[Any, ...], value: Any,
                                  field: str) -> None:  # fmt: skip
    r = _post(live.url, with_value(GOOD, path, value))
    assert r.status_code == 422, r.text[:300]
    assert any(field in map(str, loc) for loc in _locs(r)), r.text


def test_score_simulate_must_be_a_boolean(live: LiveServer) -> None:
    body = {"scene": EXAMPLE_SCENE, "trajectories": [EXAMPLE_TRAJECTORY], "simulate": "yes"}
    r = _post(live.url, body, "/v1/score")
    assert r.status_code == 422 and any("simulate" in loc for loc in _locs(r)), r.text
    body["simulate"] = False
    assert _post(live.url, body, "/v1/score").status_code == 200


@pytest.mark.parametrize(
    "content", [b'{"scene": "\xff\xfe"}', b"[" * 50_000 + b"]" * 50_000], ids=["utf8", "deep"]
)
def test_unparseable_bodies_are_422(live: LiveServer, content: bytes) -> None:
    r = httpx.post(live.url + "/v1/teachers", content=content, timeout=30,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["type"] == "json_invalid"


def test_openapi_states_the_one_of_rules(live: LiveServer) -> None:
    spec = httpx.get(live.url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for model, pair in (("Route", ("polyline", "global_plan")), ("Agent", ("state", "future")),
                        ("Light", ("state", "states"))):  # fmt: skip
        one_of = schemas[model]["oneOf"]
        assert [b["required"] for b in one_of] == [[pair[0]], [pair[1]]], schemas[model]


def test_metrics_label_by_route_template(keyed: LiveServer) -> None:
    for i in range(12):
        assert httpx.get(f"{keyed.url}/random/{i}").status_code == 401
        assert httpx.post(f"{keyed.url}/x{i}", content=b"{}").status_code == 401
    assert httpx.get(keyed.url + "/v1/towns").status_code == 401
    text = httpx.get(keyed.url + "/metrics", headers={"X-API-Key": KEY}).text
    assert "/random/" not in text and '"/x' not in text
    assert 'endpoint="unmatched"' in text and 'endpoint="/v1/towns"' in text
    endpoints = {line.split('endpoint="')[1].split('"')[0]
                 for line in text.splitlines() if 'endpoint="' in line}  # fmt: skip
    assert endpoints <= {"unmatched", "/v1/towns", "/metrics", "/healthz", "/v1/teachers",
                         "/v1/score"}  # fmt: skip


def _raw(url: str, data: bytes, wait_s: float) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes or answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            chunks.append(b"<timeout>")
        return b"".join(chunks)


def test_api_key_checked_before_the_body(keyed: LiveServer) -> None:
    """Headers announce 1 MB and no byte of it follows: the 401 comes at once, not after the
    body timeout (5 s here)."""
    head = (b"POST /v1/teachers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n")  # fmt: skip
    t0 = time.monotonic()
    answer = _raw(keyed.url, head, wait_s=3.0)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
    assert time.monotonic() - t0 < 2.0


def test_half_open_connection_is_closed(live: LiveServer) -> None:
    """A request line without the end of its headers: the connection is closed after the
    header deadline (0.5 s here) instead of staying open."""
    t0 = time.monotonic()
    answer = _raw(live.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait_s=5.0)
    assert answer == b"", answer[:80]
    assert time.monotonic() - t0 < 3.0
    with httpx.Client(base_url=live.url) as client:  # whole requests still work, kept alive
        assert [client.get("/healthz").status_code for _ in range(3)] == [200] * 3


def test_client_reports_status_after_a_500(live: LiveServer) -> None:
    engine = live.app.state.engine
    real = engine.teachers

    def flaky(req: Any) -> Any:
        if req.k == 3:
            raise RuntimeError("bug")
        return real(req)

    engine.teachers = flaky
    try:
        statuses = []
        with TeacherClient(live.url) as client:
            for k in (3, 2, 3, 2, 3, 2):
                try:
                    client.teachers({"scene": EXAMPLE_SCENE, "k": k})
                    statuses.append(200)
                except ServiceError as exc:
                    statuses.append(exc.status)
                    assert "internal error" in str(exc.detail)
        assert statuses == [500, 200] * 3
    finally:
        engine.teachers = real


def test_client_retries_a_connection_closed_under_it() -> None:
    """A kept-alive connection the server dropped is retried once on a fresh one, so the caller
    sees the server's status and message, not 'cannot reach'."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(500, json={"detail": "internal error (ValueError)"})

    client = TeacherClient("http://service.test")
    client._http = httpx.Client(base_url="http://service.test",
                                transport=httpx.MockTransport(handler))  # fmt: skip
    with client, pytest.raises(ServiceError) as err:
        client.teachers(GOOD)
    assert err.value.status == 500 and "internal error (ValueError)" in str(err.value)
    assert len(calls) == 2
