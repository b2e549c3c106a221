"""The FastAPI app of ``harness serve`` (see docs/SERVICE.md): POST /v1/teachers, POST /v1/score,
GET /v1/towns, /healthz, /metrics. Parsing and validation happen on the event loop; scene
conversion and scoring run in the bounded thread pool of :mod:`teachers.service.limits`.

Status codes: 422 bad input (schema errors field by field; scene errors from the town geometry as
``harness.errors`` messages), 401 missing / wrong API key, 408 / 413 slow / oversized body, 503 +
Retry-After when saturated, 504 over the time limit, 500 only for a bug (logged with its trace).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

import harness
from harness.errors import HarnessError, UnknownTownError
from teachers.service import schemas
from teachers.service.engine import Engine, EngineConfig
from teachers.service.limits import Admission, BodyLimit, LimitConfig, Saturated, TimedOut
from teachers.service.metrics import Metrics

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
OPEN_PATHS = frozenset({"/healthz"})  # answered without the API key
EXAMPLE_SCENE: dict[str, Any] = {
    "town": "Harness01",
    "scene_id": "example",
    "ego": {"x": 1.75, "y": -235.0, "yaw": -1.5708, "speed": 8.0},
    "agents": [
        {"id": 7, "kind": "vehicle", "length": 4.5, "width": 2.0,
         "state": {"x": 1.75, "y": -265.0, "yaw": -1.5708, "speed": 6.0}},
    ],
    "route": {"polyline": [[1.75, -235.0], [1.75, -295.0]]},
}  # fmt: skip
EXAMPLE_TRAJECTORY = [[1.75, -235.0 - 0.8 * (i + 1), -1.5708] for i in range(40)]


@dataclass(frozen=True)
class AppConfig:
    """Engine (vocabulary, towns), limits, and the API key (None: no key required)."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    limits: LimitConfig = field(default_factory=LimitConfig)
    api_key: str | None = None


def _detail(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


def create_app(config: AppConfig) -> FastAPI:
    """Build the app; the engine loads its vocabulary and preloaded towns now."""
    engine = Engine(config.engine)
    admission = Admission(config.limits)
    metrics = Metrics(lambda: admission.waiting, lambda: admission.active)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        admission.close()

    app = FastAPI(
        lifespan=lifespan,
        title="harness trajectory-generation service",
        version=harness.__version__,
        description="PDMS / EPDMS teachers and scores for one scene; same code path as "
        "`harness gen-teachers` (docs/SERVICE.md).",
    )
    app.state.engine = engine
    app.state.admission = admission
    app.state.metrics = metrics

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        path = request.url.path
        if config.api_key is not None and path not in OPEN_PATHS:
            given = request.headers.get(API_KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), config.api_key.encode()):
                metrics.error(path, "auth")
                response: Response = JSONResponse(
                    {"detail": f"missing or wrong {API_KEY_HEADER} header"}, status_code=401
                )
                metrics.observe(path, request.method, 401, time.perf_counter() - t0)
                return response
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        metrics.observe(endpoint, request.method, response.status_code, time.perf_counter() - t0)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.error(request.url.path, "validation")
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HarnessError)
    async def _scene_error(request: Request, exc: HarnessError) -> JSONResponse:
        metrics.error(request.url.path, "scene")
        loc: list[str | int] = ["body", "scene"]
        if isinstance(exc, UnknownTownError):
            loc.append("town")
        return JSONResponse(_detail(loc, str(exc), "scene_error"), status_code=422)

    @app.exception_handler(Saturated)
    async def _saturated(request: Request, exc: Saturated) -> JSONResponse:
        metrics.error(request.url.path, "saturated")
        return JSONResponse(
            {"detail": "server busy: every scoring thread and queue slot is taken; retry"},
            status_code=503,
            headers={"Retry-After": str(config.limits.retry_after_s)},
        )

    @app.exception_handler(TimedOut)
    async def _timed_out(request: Request, exc: TimedOut) -> JSONResponse:
        metrics.error(request.url.path, "timeout")
        return JSONResponse({"detail": f"request time limit exceeded: {exc}"}, status_code=504)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        metrics.error(request.url.path, "internal")
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, 500)

    @app.post("/v1/teachers", response_model=schemas.TeachersResponse)
    async def teachers(
        req: schemas.TeachersRequest,
    ) -> schemas.TeachersResponse:
        """K teachers (every sub-score) for one scene, with the candidate counts."""
        return await admission.run(engine.teachers, req)

    @app.post("/v1/score", response_model=schemas.ScoreResponse)
    async def score(req: schemas.ScoreRequest) -> schemas.ScoreResponse:
        """PDMS / EPDMS sub-scores of the caller's trajectories in one scene."""
        return await admission.run(engine.score, req)

    @app.get("/v1/towns", response_model=schemas.TownsResponse)
    async def towns() -> schemas.TownsResponse:
        """Towns this service can score on (loaded ones are cached in memory)."""
        return schemas.TownsResponse(
            towns=[
                schemas.TownInfo(name=n, origin=o, loaded=engine.loaded(n))
                for n, o in sorted(engine.town_names().items())
            ]
        )

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz() -> schemas.Health:
        """Liveness and load."""
        return schemas.Health(
            status="ok", active=admission.active, queued=admission.waiting,
            capacity=admission.capacity,
        )  # fmt: skip

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Prometheus text: requests, latency histogram, errors, queue depth."""
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    app.add_middleware(
        BodyLimit, max_bytes=config.limits.max_body_bytes, timeout_s=config.limits.body_timeout_s
    )
    _add_examples(app)
    return app


def _add_examples(app: FastAPI) -> None:
    """Put request examples into the OpenAPI schema (/openapi.json, /docs)."""
    examples = {
        "/v1/teachers": {"scene": EXAMPLE_SCENE, "k": 4},
        "/v1/score": {"scene": EXAMPLE_SCENE, "trajectories": [EXAMPLE_TRAJECTORY]},
    }
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        for path, example in examples.items():
            body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            body["example"] = example
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
