"""Load limits of the service: a bounded number of scoring threads with a bounded queue in front
(503 + Retry-After beyond it), a per-request time limit (504), and a request body size limit (413)
enforced before anything is parsed.

A thread cannot be killed, so a request that runs out of time keeps its scoring slot until its
computation ends; the schema caps (agents, trajectories, k, array lengths) bound that time, and
the slot accounting keeps the server honest about its capacity meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_CONCURRENCY = 2  # scoring threads per process
DEFAULT_QUEUE = 8  # requests allowed to wait for a thread
DEFAULT_TIMEOUT_S = 30.0  # per request, queueing included [s]
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # request body limit [bytes]
DEFAULT_BODY_TIMEOUT_S = 10.0  # time allowed to receive a body [s]
RETRY_AFTER_S = 1  # advertised in 503 answers [s]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class LimitConfig:
    """Concurrency (threads), queue length, per-request time limit [s], body size [bytes]."""

    concurrency: int = DEFAULT_CONCURRENCY
    queue: int = DEFAULT_QUEUE
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    retry_after_s: int = RETRY_AFTER_S


class Saturated(Exception):
    """Every thread is busy and the queue is full (-> 503 with Retry-After)."""


class TimedOut(Exception):
    """The request did not finish within the time limit (-> 504)."""


class Admission:
    """Runs blocking calls in a fixed thread pool; admits at most concurrency + queue requests,
    the rest are refused at once. Counters are touched only on the event loop thread."""

    def __init__(self, config: LimitConfig) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="harness-serve")
        self._slots: asyncio.Semaphore | None = None
        self.active = 0
        self.waiting = 0

    @property
    def capacity(self) -> int:
        """Requests admitted at once (running + queued)."""
        return self.config.concurrency + self.config.queue

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a scoring thread, within the time limit."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.concurrency)
        if self.active + self.waiting >= self.capacity:
            raise Saturated()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_s
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.config.timeout_s)
        except TimeoutError as exc:
            raise TimedOut("waited in the queue for the whole time limit") from exc
        finally:
            self.waiting -= 1
        self.active += 1
        slots = self._slots
        fut = loop.run_in_executor(self.executor, fn, *args)

        def release(_: object) -> None:
            self.active -= 1
            slots.release()

        fut.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(deadline - loop.time(), 0.0))
        except TimeoutError as exc:
            raise TimedOut(f"took longer than {self.config.timeout_s:g} s") from exc

    def close(self) -> None:
        """Stop the threads (running calls finish first)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


async def reply(send: Send, status: int, message: str) -> None:
    """Answer with ``{"detail": message}`` and ``status`` (from an ASGI middleware)."""
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: reads the whole body first (at most ``max_bytes``, within
    ``timeout_s``) and answers 413 / 408 itself, so oversized or slow bodies never reach parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.max_bytes} bytes; send a smaller scene"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await reply(send, 413, too_big)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout_s)
        except TimeoutError:
            await reply(send, 408, f"request body not received within {self.timeout_s:g} s")
            return
        if body is None:
            await reply(send, 413, too_big)
            return
        done = False

        async def replay() -> Message:
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return b"".join(chunks)
            part = msg.get("body", b"")
            size += len(part)
            if size > self.max_bytes:
                return None
            chunks.append(part)
            if not msg.get("more_body", False):
                return b"".join(chunks)
