"""The API-key check of ``harness serve`` as the outermost ASGI layer: a request without the
right ``X-API-Key`` header is answered 401 from its headers alone, before any of its body is
read (so an unauthenticated client cannot make the server buffer megabytes)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from teachers.service.limits import ASGIApp, Receive, Scope, Send, reply

API_KEY_HEADER = "X-API-Key"
OPEN_PATHS = frozenset({"/healthz"})  # answered without the API key

Rejected = Callable[[Scope, float], None]  # (scope, seconds spent) of each 401, for the metrics


class ApiKeyGuard:
    """ASGI middleware: HTTP requests to any path but OPEN_PATHS need ``api_key`` in the
    X-API-Key header; others get 401 at once and ``on_reject`` is told."""

    def __init__(self, app: ASGIApp, api_key: str, on_reject: Rejected) -> None:
        self.app = app
        self.key = api_key.encode()
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        name = API_KEY_HEADER.lower().encode()
        given = next((v for k, v in scope.get("headers") or [] if k == name), b"")
        if hmac.compare_digest(given, self.key):
            await self.app(scope, receive, send)
            return
        await reply(send, 401, f"missing or wrong {API_KEY_HEADER} header")
        self.on_reject(scope, time.perf_counter() - t0)
