"""A small client of ``harness serve``: teachers and scores for a scene over HTTP (httpx).

    client = TeacherClient("http://127.0.0.1:8000")
    answer = client.teachers(request_body)   # the /v1/teachers JSON, e.g. from export-scene

Errors the service reports (4xx/5xx) raise :class:`ServiceError` with the status and the
service's message; 503 answers are retried after their Retry-After, up to ``retries`` times.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

import httpx

from harness.errors import HarnessError

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 60.0  # client-side limit per request [s]
DEFAULT_RETRIES = 3  # 503 answers retried this many times
MAX_RETRY_WAIT_S = 10.0  # never sleep longer than this on a Retry-After [s]


class ServiceError(HarnessError):
    """The service answered with an error status; ``status`` and ``detail`` say why."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"service answered {status}: {detail}")
        self.status = status
        self.detail = detail


class TeacherClient:
    """Synchronous client; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout_s)
        self.retries = retries

    def __enter__(self) -> TeacherClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, method: str, path: str, body: Any) -> httpx.Response:
        """One request; a kept-alive connection the server closed meanwhile is retried once on
        a fresh one (every endpoint is free of side effects). Status 0 means no answer."""
        url = self._http.base_url
        for fresh in (False, True):
            try:
                return self._http.request(method, path, json=body)
            except httpx.RemoteProtocolError as exc:
                if fresh:
                    raise ServiceError(0, f"{url} closed the connection: {exc}") from exc
                log.info("connection to %s closed by the server; retrying once", url)
            except httpx.ConnectError as exc:
                raise ServiceError(0, f"cannot reach {url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ServiceError(0, f"no answer from {url}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable: the loop returns or raises")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in range(self.retries + 1):
            r = self._send(method, path, body)
            if r.status_code == 503 and attempt < self.retries:
                wait = min(float(r.headers.get("Retry-After", "1") or 1), MAX_RETRY_WAIT_S)
                log.info("service busy, retrying in %.1f s", wait)
                time.sleep(wait)
                continue
            if r.status_code >= 400:
                try:
                    answer = r.json()
                    detail = answer.get("detail", r.text) if isinstance(answer, dict) else answer
                except ValueError:
                    detail = r.text
                raise ServiceError(r.status_code, detail)
            return r.json()
        raise AssertionError("unreachable: the loop returns or raises")

    def teachers(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/teachers: ``{"scene": ..., "k": ..., "options": ...}`` -> teachers."""
        out: dict[str, Any] = self._call("POST", "/v1/teachers", request)
        return out

    def score(self, scene: dict[str, Any], trajectories: list[Any]) -> dict[str, Any]:
        """POST /v1/score: sub-scores of trajectories (N x 40 x [x, y, yaw]) in a scene."""
        out: dict[str, Any] = self._call(
            "POST", "/v1/score", {"scene": scene, "trajectories": trajectories}
        )
        return out

    def towns(self) -> list[dict[str, Any]]:
        """GET /v1/towns."""
        out: list[dict[str, Any]] = self._call("GET", "/v1/towns")["towns"]
        return out

    def health(self) -> dict[str, Any]:
        """GET /healthz."""
        out: dict[str, Any] = self._call("GET", "/healthz")
        return out
