"""The FastAPI app of ``harness serve`` (see docs/SERVICE.md): POST /v1/teachers, POST /v1/score,
GET /v1/towns, /healthz, /metrics. Parsing and validation happen on the event loop; scene
conversion and scoring run in the bounded thread pool of :mod:`teachers.service.limits`.

Status codes: 422 bad input (schema errors field by field, a body that is not UTF-8 JSON or is
nested too deep; scene errors from the town geometry with the field they are about), 401
missing / wrong API key (checked before the body is read), 408 / 413 slow / oversized body, 503 +
Retry-After when saturated, 504 over the time limit, 500 only for a bug (logged with its trace;
the connection stays usable). Metrics are labelled by route template ("unmatched" for any other
path), so random paths cannot create new series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

import harness
from harness.errors import HarnessError, UnknownTownError
from teachers.service import schemas
from teachers.service.auth import API_KEY_HEADER, ApiKeyGuard
from teachers.service.convert import SceneFieldError
from teachers.service.engine import Engine, EngineConfig
from teachers.service.limits import Admission, BodyLimit, LimitConfig, Saturated, TimedOut
from teachers.service.metrics import Metrics

log = logging.getLogger(__name__)

__all__ = ["API_KEY_HEADER", "AppConfig", "create_app"]
UNMATCHED = "unmatched"  # the metrics label of every path that is no route of the app
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


class InternalError(Exception):
    """A bug while serving a request: answered 500 by its own handler (an exception reaching
    Starlette's outermost layer is re-raised to uvicorn, which then drops the connection)."""


def route_template(app: FastAPI, scope: MutableMapping[str, Any]) -> str:
    """The path template of the app route ``scope`` is for (e.g. "/v1/teachers"), or UNMATCHED:
    the only metrics labels a request can create."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", UNMATCHED))
    for r in app.router.routes:
        match, _ = r.matches(scope)
        if match is not Match.NONE:
            return str(getattr(r, "path", UNMATCHED))
    return UNMATCHED


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

    def endpoint(request: Request) -> str:
        return route_template(app, request.scope)

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        metrics.observe(
            endpoint(request), request.method, response.status_code, time.perf_counter() - t0
        )
        return response

    def rejected(scope: dict[str, Any], seconds: float) -> None:
        label = route_template(app, scope)
        metrics.error(label, "auth")
        metrics.observe(label, str(scope.get("method", "")), 401, seconds)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.error(endpoint(request), "validation")
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        cause = exc.__cause__
        if exc.status_code == 400 and isinstance(cause, ValueError | RecursionError):
            # FastAPI's "error parsing the body": invalid UTF-8 or JSON nested too deep
            metrics.error(endpoint(request), "validation")
            why = "nested too deep" if isinstance(cause, RecursionError) else f"invalid: {cause}"
            return JSONResponse(
                _detail(["body"], f"JSON body {why}", "json_invalid"), status_code=422
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(HarnessError)
    async def _scene_error(request: Request, exc: HarnessError) -> JSONResponse:
        metrics.error(endpoint(request), "scene")
        loc: list[str | int] = ["body", "scene"]
        if isinstance(exc, SceneFieldError):
            loc = ["body", *exc.loc]
        elif isinstance(exc, UnknownTownError):
            loc.append("town")
        return JSONResponse(_detail(loc, str(exc), "scene_error"), status_code=422)

    @app.exception_handler(InternalError)
    async def _internal(request: Request, exc: InternalError) -> JSONResponse:
        log.error("internal error on %s", request.url.path, exc_info=exc.__cause__)
        metrics.error(endpoint(request), "internal")
        return JSONResponse({"detail": f"internal error ({exc})"}, 500)

    @app.exception_handler(Saturated)
    async def _saturated(request: Request, exc: Saturated) -> JSONResponse:
        metrics.error(endpoint(request), "saturated")
        return JSONResponse(
            {"detail": "server busy: every scoring thread and queue slot is taken; retry"},
            status_code=503,
            headers={"Retry-After": str(config.limits.retry_after_s)},
        )

    @app.exception_handler(TimedOut)
    async def _timed_out(request: Request, exc: TimedOut) -> JSONResponse:
        metrics.error(endpoint(request), "timeout")
        return JSONResponse({"detail": f"request time limit exceeded: {exc}"}, status_code=504)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        metrics.error(endpoint(request), "internal")
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, 500)

    async def work(fn: Callable[[Any], Any], req: Any) -> Any:
        """``fn(req)`` in a scoring thread; a bug in it becomes an InternalError (500)."""
        try:
            return await admission.run(fn, req)
        except (HarnessError, Saturated, TimedOut):
            raise
        except Exception as exc:
            raise InternalError(type(exc).__name__) from exc

    @app.post("/v1/teachers", response_model=schemas.TeachersResponse)
    async def teachers(
        req: schemas.TeachersRequest,
    ) -> schemas.TeachersResponse:
        """K teachers (every sub-score) for one scene, with the candidate counts; a scene
        where no candidate can be built answers no teachers (counts all 0)."""
        out: schemas.TeachersResponse = await work(engine.teachers, req)
        return out

    @app.post("/v1/score", response_model=schemas.ScoreResponse)
    async def score(req: schemas.ScoreRequest) -> schemas.ScoreResponse:
        """PDMS / EPDMS sub-scores of the caller's trajectories in one scene."""
        out: schemas.ScoreResponse = await work(engine.score, req)
        return out

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
    if config.api_key is not None:  # added last: the outermost layer, before the body is read
        app.add_middleware(ApiKeyGuard, api_key=config.api_key, on_reject=rejected)
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
