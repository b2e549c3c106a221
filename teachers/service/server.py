"""The uvicorn settings of ``harness serve``: HTTP/1.1 through h11 with a header deadline (a
connection that does not finish a request's headers in time is closed, so idle half-open
connections cannot pile up), a short keep-alive and a cap on the header size."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0  # a request's headers must be complete this long after it may start [s]
KEEP_ALIVE_S = 5  # idle keep-alive connections are closed after this [s]
MAX_HEADER_BYTES = 16 * 1024  # h11's cap on an incomplete request head [bytes]


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline: armed when the connection opens and after
    every response, cleared once a request's headers are complete; on expiry the connection
    is closed. uvicorn's own keep-alive timer stops as soon as any byte arrives, so without
    this a client that sends half a request line keeps its connection for ever."""

    header_timeout_s: ClassVar[float] = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a request's headers are complete
            self._clear_header_timer()
        elif self._header_timer is None:  # e.g. the next request after an early answer
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request's headers are due

    def connection_lost(self, exc: Exception | None) -> None:
        self._clear_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._clear_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _clear_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_settings() -> dict[str, Any]:
    """uvicorn options of the service (for ``uvicorn.run`` or ``uvicorn.Config``)."""
    return {
        "http": HeaderTimeoutH11,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_level": "warning",
    }


def server_config(app: Any, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn Config of the service (``kwargs`` override or add options)."""
    return uvicorn.Config(app, host=host, port=port, **{**server_settings(), **kwargs})
