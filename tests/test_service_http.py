"""`harness serve` over real HTTP (uvicorn on a free loopback port): teachers for scenes exported
from a dataset equal the dataset's, every rejection path answers 4xx with a useful message,
saturation answers 503 + Retry-After and recovers, the API key and the towns / metrics / OpenAPI
endpoints. The dataset is generated once on the built-in Harness01 town (a few seconds)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from typer.testing import CliRunner

from harness.cli.main import _register
from harness.cli.main import app as cli_app
from teachers.dataset import load_dataset, poses_array
from teachers.generate import GenerateConfig, generate
from teachers.selection import SelectionConfig
from teachers.service.app import EXAMPLE_SCENE, AppConfig, create_app
from teachers.service.engine import EngineConfig
from teachers.service.export import export_scene
from teachers.service.limits import LimitConfig
from teachers.service.server import server_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A uvicorn server in a thread with the service's uvicorn settings (``server_config``;
    ``uvicorn_options`` override them); ``url`` and the app (for controlled engines)."""

    def __init__(self, config: AppConfig, **uvicorn_options: Any) -> None:
        self.app = create_app(config)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = server_config(self.app, "127.0.0.1", self.port, **uvicorn_options)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny gen-teachers dataset on Harness01 (one 120 m route, 4 scenes, 32-entry vocab)."""
    out = tmp_path_factory.mktemp("service_teachers")
    cfg = GenerateConfig(
        town="Harness01", out=out, max_scenes=4, max_routes=1, every_s=1.5, vocabulary_size=32, vocabulary_id=None,
        agent="route_follower", generated_route_m=120.0, selection=SelectionConfig(k=4),
        command_line=("test",),
    )  # fmt: skip
    generate(cfg)
    return out


@pytest.fixture(scope="session")
def server(dataset_dir: Path) -> Iterator[LiveServer]:
    """The service with the dataset's vocabulary and small limits."""
    config = AppConfig(
        engine=EngineConfig(vocabulary=dataset_dir / "vocabulary.npz", preload=("Harness01",)),
        limits=LimitConfig(concurrency=2, queue=4, timeout_s=20.0, max_body_bytes=2_000_000),
    )
    with LiveServer(config) as live:
        yield live


def post(url: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)


def test_exported_scenes_reproduce_the_dataset(server: LiveServer, dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    assert (ds.scenes.n_teachers > 0).any()
    for sc in ds.scenes.itertuples():
        body = json.loads(json.dumps(export_scene(dataset_dir, sc.scene_id)))
        r = post(server.url, "/v1/teachers", body)
        assert r.status_code == 200, r.text
        got = r.json()
        want = ds.teachers[ds.teachers.scene_id == sc.scene_id].sort_values("rank")
        assert got["counts"]["candidates"] == sc.n_candidates
        assert got["counts"]["passed"] == sc.n_passed
        assert got["counts"]["teachers"] == sc.n_teachers == len(got["teachers"])
        assert got["coverage"] == sc.coverage and got["max_gap_m"] == sc.max_gap_m
        assert got["pool"] == [int(v) for v in sc.vocab_pool]
        assert got["vocabulary"]["sha256"] == ds.manifest["vocabulary"]["sha256"]
        poses = np.asarray([t["poses"] for t in got["teachers"]]).reshape(-1, 40, 3)
        assert np.array_equal(poses, poses_array(want.poses))
        assert [t["source"] for t in got["teachers"]] == list(want.source)
        for t, w in zip(got["teachers"], want.itertuples(), strict=True):
            for name in ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "c", "hc", "ec", "epdms"):
                assert t["scores"][name] == getattr(w, name)


def test_score_matches_teacher_scores(server: LiveServer, dataset_dir: Path) -> None:
    """A dataset teacher's (already simulated) poses scored as given with /v1/score keep the
    gates NC, DAC, DDC and TLC; re-simulating them would track them a second time."""
    ds = load_dataset(dataset_dir)
    sid = ds.scenes[ds.scenes.n_teachers > 0].scene_id.iloc[0]
    body = export_scene(dataset_dir, sid)
    traj = poses_array(ds.teachers[ds.teachers.scene_id == sid].poses).tolist()
    r = post(server.url, "/v1/score", {"scene": body["scene"], "trajectories": traj, "simulate": False})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["index"] for x in res] == list(range(len(traj)))
    for x in res:
        s = x["scores"]
        assert len(x["poses"]) == 40 and 0.0 <= s["epdms"] <= 1.0
        assert s["nc"] == s["dac"] == s["ddc"] == s["tlc"] == 1.0


def test_constant_velocity_scene_without_reference(server: LiveServer) -> None:
    r = post(server.url, "/v1/teachers", {"scene": EXAMPLE_SCENE, "k": 3})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["counts"]["expert"] == 0 and got["counts"]["lattice"] > 0
    assert got["counts"]["vocabulary"] > 0 and len(got["teachers"]) <= 3
    assert all(t["scores"]["nc"] == 1.0 for t in got["teachers"])


def with_value(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of the JSON body ``base`` with the field at ``path`` set to ``value``."""
    body = json.loads(json.dumps(base))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


GOOD = {"scene": EXAMPLE_SCENE, "k": 2}
FAR_AGENT = {"id": 1, "length": 4.0, "width": 2.0,
             "state": {"x": 5000.0, "y": 0.0, "yaw": 0.0, "speed": 1.0}}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        (with_value(GOOD, ("k",), 0), "k", "greater than or equal"),
        (with_value(GOOD, ("k",), 65), "k", "less than or equal"),
        (with_value(GOOD, ("scene", "town"), "Nowhere"), "town", "unknown town"),
        (with_value(GOOD, ("scene", "town"), "../../etc/passwd"), "town", "pattern"),
        (with_value(GOOD, ("scene", "route", "polyline"), []), "polyline", "at least 2"),
        (
            with_value(GOOD, ("scene", "route", "polyline"), [[500.0, 500.0], [520.0, 500.0]]),
            "scene",
            "leaves the lanes",
        ),
        (with_value(GOOD, ("scene", "route"), {}), "route", "exactly one"),
        (with_value(GOOD, ("scene", "ego", "speed"), 1e9), "speed", "less than or equal"),
        (with_value(GOOD, ("scene", "ego", "x"), 300.0), "scene", "from its route"),
        (with_value(GOOD, ("scene", "agents"), [FAR_AGENT]), "scene", "within 500 m"),
        (with_value(GOOD, ("scene", "agents"), [FAR_AGENT] * 257), "agents", "at most 256"),
        (with_value(GOOD, ("scene", "agents"), [{"length": 4, "width": 2}]), "agents", "exactly one"),
        (
            with_value(GOOD, ("scene", "lights"), [{"light_id": "nope", "state": "red"}]),
            "scene",
            "not a light",
        ),
        (
            with_value(
                GOOD,
                ("scene", "lights"),
                [{"stop_area": [[500, 500], [501, 500], [501, 501]], "state": "red"}],
            ),
            "scene",
            "within 500 m",
        ),
        (
            with_value(GOOD, ("scene", "lights"), [{"stop_area": "POLYGON((", "state": "red"}]),
            "scene",
            "not a valid polygon",
        ),
        (with_value(GOOD, ("scene", "lights"), [{"light_id": "18", "state": "blue"}]), "state", "red"),
        (with_value(GOOD, ("scene", "surprise"), 1), "surprise", "Extra inputs"),
        (with_value(GOOD, ("scene", "past"), [[0, 0, 0, 0, 0, 0]] * 15), "past", "at least 16"),
    ],
)
def test_teacher_rejections(server: LiveServer, body: Any, where: str, words: str) -> None:
    r = post(server.url, "/v1/teachers", body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(where in [str(x) for x in d["loc"]] and words in d["msg"] for d in detail), detail


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_rejected(server: LiveServer, bad: str) -> None:
    text = json.dumps(GOOD).replace('"speed": 8.0', f'"speed": {bad}')
    r = httpx.post(server.url + "/v1/teachers", content=text,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422
    assert any(d["loc"][-1] == "speed" and "finite" in d["msg"] for d in r.json()["detail"])


def test_score_rejections(server: LiveServer) -> None:
    short = [[1.75, -235.0 - i, -1.5708] for i in range(39)]
    r = post(server.url, "/v1/score", {"scene": EXAMPLE_SCENE, "trajectories": [short]})
    assert r.status_code == 422 and "at least 40" in r.text
    r = post(server.url, "/v1/score", {"scene": EXAMPLE_SCENE, "trajectories": []})
    assert r.status_code == 422 and "at least 1" in r.text
    far = [[1.75, -235.0 - 100 * i, -1.5708] for i in range(40)]
    r = post(server.url, "/v1/score", {"scene": EXAMPLE_SCENE, "trajectories": [far]})
    assert r.status_code == 422 and "a trajectory reaches" in r.text


def test_body_limits_and_bad_json(server: LiveServer) -> None:
    big = b'{"scene": ' + b" " * 2_100_000 + b"}"
    r = httpx.post(server.url + "/v1/teachers", content=big,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no content-length: counted while reading
        for _ in range(30):
            yield b" " * 100_000

    r = httpx.post(server.url + "/v1/teachers", content=chunks(),
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413
    r = httpx.post(server.url + "/v1/teachers", content=b"{not json",
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"


def test_towns_health_metrics_openapi(server: LiveServer) -> None:
    towns = {t["name"]: t for t in httpx.get(server.url + "/v1/towns").json()["towns"]}
    assert towns["Harness01"]["loaded"] and towns["Harness01"]["origin"] == "builtin"
    assert httpx.get(server.url + "/healthz").json()["capacity"] == 6
    post(server.url, "/v1/teachers", with_value(GOOD, ("k",), 0))
    text = httpx.get(server.url + "/metrics").text
    assert (
        'harness_serve_requests_total{endpoint="/v1/teachers",method="POST",status="422"}' in text
    )
    assert (
        'harness_serve_request_duration_seconds_bucket{endpoint="/v1/teachers",le="+Inf"}' in text
    )
    assert "harness_serve_queue_depth 0" in text and "harness_serve_errors_total{" in text
    spec = httpx.get(server.url + "/openapi.json").json()
    body = spec["paths"]["/v1/teachers"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"]["scene"]["town"] == "Harness01"
    assert "/v1/score" in spec["paths"]


def test_saturation_503_and_recovery(dataset_dir: Path) -> None:
    """One thread, no queue: while a (held) request runs, others get 503 + Retry-After; after it
    is released the service answers again. A request over the time limit gets 504."""
    config = AppConfig(
        engine=EngineConfig(vocabulary=None),
        limits=LimitConfig(concurrency=1, queue=0, timeout_s=2.0),
    )
    with LiveServer(config) as live:
        engine = live.app.state.engine
        real = engine.teachers
        gate = threading.Event()

        def held(req: Any) -> Any:
            gate.wait(10)
            return real(req)

        engine.teachers = held
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(post(live.url, "/v1/teachers", GOOD).status_code)
        )
        first.start()
        deadline = time.monotonic() + 5
        while httpx.get(live.url + "/healthz").json()["active"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        busy = [post(live.url, "/v1/teachers", GOOD) for _ in range(3)]
        assert all(r.status_code == 503 for r in busy)
        assert all(r.headers["Retry-After"] == "1" for r in busy)
        gate.set()
        first.join(20)
        assert results == [200]
        engine.teachers = real
        assert post(live.url, "/v1/teachers", GOOD).status_code == 200

        def slow(req: Any) -> Any:
            time.sleep(3.0)
            return real(req)

        engine.teachers = slow
        r = post(live.url, "/v1/teachers", GOOD)
        assert r.status_code == 504 and "time limit" in r.json()["detail"]
        engine.teachers = real
        time.sleep(1.5)  # the timed-out call still holds the thread until it ends
        assert post(live.url, "/v1/teachers", GOOD).status_code == 200
        assert "harness_serve_errors_total" in httpx.get(live.url + "/metrics").text


def test_api_key_required_when_configured() -> None:
    with LiveServer(AppConfig(engine=EngineConfig(vocabulary=None), api_key="s3cret")) as live:
        assert httpx.get(live.url + "/v1/towns").status_code == 401
        assert httpx.get(live.url + "/v1/towns", headers={"X-API-Key": "wrong"}).status_code == 401
        assert httpx.get(live.url + "/v1/towns", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert httpx.get(live.url + "/healthz").status_code == 200


def test_cli_refuses_public_bind_without_key_and_round_trips(
    server: LiveServer, dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.errors import ConfigError

    _register()
    monkeypatch.delenv("HARNESS_API_KEY", raising=False)
    runner = CliRunner()
    res = runner.invoke(cli_app, ["serve", "--host", "0.0.0.0"])
    assert isinstance(res.exception, ConfigError) and "api-key" in str(res.exception)
    sid = load_dataset(dataset_dir).scenes.scene_id.iloc[0]
    req = tmp_path / "scene.json"
    res = runner.invoke(
        cli_app, ["teachers", "export-scene", str(dataset_dir), "--scene", sid, "--out", str(req)]
    )
    assert res.exit_code == 0, res.output
    ans = tmp_path / "answer.json"
    res = runner.invoke(
        cli_app, ["teachers", "request", str(req), "--url", server.url, "--out", str(ans)]
    )
    assert res.exit_code == 0, res.output
    got = json.loads(ans.read_text())
    assert got["scene_id"] == sid and got["counts"]["candidates"] > 0
