"""Prometheus text exposition (format 0.0.4) of the service's counters: requests by endpoint and
status, a latency histogram per endpoint, errors by kind, and gauges for queue depth and running
requests. Per process: with ``--workers N`` each worker reports its own (scrape each or sum)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PREFIX = "harness_serve"


def _labels(**kv: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in kv.items()
    )
    return "{" + inner + "}"


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    total: int = 0
    sum_s: float = 0.0


class Metrics:
    """Thread-safe counters; ``queue_depth`` and ``in_flight`` are read when rendering."""

    def __init__(self, queue_depth: Callable[[], int], in_flight: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._queue_depth = queue_depth
        self._in_flight = in_flight

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency [s]."""
        with self._lock:
            key = (endpoint, method, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._latency.setdefault(endpoint, _Histogram())
            for i, edge in enumerate(LATENCY_BUCKETS_S):
                if seconds <= edge:
                    h.counts[i] += 1
            h.total += 1
            h.sum_s += seconds

    def error(self, endpoint: str, kind: str) -> None:
        """Count one error (kind: validation, scene, saturated, timeout, body, internal, auth)."""
        with self._lock:
            self._errors[(endpoint, kind)] = self._errors.get((endpoint, kind), 0) + 1

    def render(self) -> str:
        """The exposition text."""
        p = PREFIX
        out = [f"# HELP {p}_requests_total HTTP requests by endpoint, method and status.",
               f"# TYPE {p}_requests_total counter"]  # fmt: skip
        with self._lock:
            for (ep, method, status), n in sorted(self._requests.items()):
                out.append(
                    f"{p}_requests_total{_labels(endpoint=ep, method=method, status=status)} {n}"
                )
            out += [f"# HELP {p}_request_duration_seconds Request latency.",
                    f"# TYPE {p}_request_duration_seconds histogram"]  # fmt: skip
            for ep, h in sorted(self._latency.items()):
                for edge, n in zip(LATENCY_BUCKETS_S, h.counts, strict=True):
                    lab = _labels(endpoint=ep, le=f"{edge:g}")
                    out.append(f"{p}_request_duration_seconds_bucket{lab} {n}")
                lab = _labels(endpoint=ep, le="+Inf")
                out.append(f"{p}_request_duration_seconds_bucket{lab} {h.total}")
                out.append(f"{p}_request_duration_seconds_sum{_labels(endpoint=ep)} {h.sum_s:.6f}")
                out.append(f"{p}_request_duration_seconds_count{_labels(endpoint=ep)} {h.total}")
            out += [f"# HELP {p}_errors_total Failed requests by endpoint and kind.",
                    f"# TYPE {p}_errors_total counter"]  # fmt: skip
            for (ep, kind), n in sorted(self._errors.items()):
                out.append(f"{p}_errors_total{_labels(endpoint=ep, kind=kind)} {n}")
        out += [f"# HELP {p}_queue_depth Requests waiting for a scoring thread.",
                f"# TYPE {p}_queue_depth gauge", f"{p}_queue_depth {self._queue_depth()}",
                f"# HELP {p}_in_flight Requests being scored.",
                f"# TYPE {p}_in_flight gauge", f"{p}_in_flight {self._in_flight()}"]  # fmt: skip
        return "\n".join(out) + "\n"
