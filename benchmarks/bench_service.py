"""Load test of `harness serve` on loopback: concurrent clients POST /v1/teachers for the default
scene (teachers.service.app.EXAMPLE_SCENE on Harness01); reports throughput, p50 / p99 latency,
errors and the server's resident memory before and after, and the service overhead (HTTP + JSON)
against calling the same engine in process, sequentially, for the same scene.

    python benchmarks/bench_service.py [--requests 10000] [--clients 4] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

log = logging.getLogger("bench_service")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def in_process(body: dict, n: int) -> float:
    """Mean seconds per call of Engine.teachers on the validated request (no HTTP, no JSON)."""
    from teachers.service.engine import Engine, EngineConfig
    from teachers.service.schemas import TeachersRequest

    engine = Engine(EngineConfig(vocabulary=None, preload=("Harness01",)))  # lattice only
    req = TeachersRequest.model_validate(body)
    engine.teachers(req)  # warm caches
    t0 = time.perf_counter()
    for _ in range(n):
        engine.teachers(req)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2, help="server scoring threads")
    ap.add_argument("--overhead-calls", type=int, default=50)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from teachers.service.app import EXAMPLE_SCENE

    body = {"scene": EXAMPLE_SCENE, "k": 8}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from harness.cli.main import main; main()", "serve", "--port", str(port), "--town",
         "Harness01", "--concurrency", str(args.concurrency), "--queue", str(4 * args.clients)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=60) as c:  # warm-up (town rasters, caches)
            for _ in range(3):
                c.post("/v1/teachers", json=body).raise_for_status()
        # overhead: sequential, one client, same scene
        n = args.overhead_calls
        with httpx.Client(base_url=url, timeout=60) as c:
            t0 = time.perf_counter()
            for _ in range(n):
                c.post("/v1/teachers", json=body).raise_for_status()
            http_s = (time.perf_counter() - t0) / n
        direct_s = in_process(body, n)
        rss_before = _rss_mib(proc.pid)
        lat: list[float] = []
        errors: dict[int, int] = {}
        lock = threading.Lock()
        per_client = [args.requests // args.clients + (i < args.requests % args.clients)
                      for i in range(args.clients)]  # fmt: skip

        def client(count: int) -> None:
            payload = json.dumps(body)
            with httpx.Client(base_url=url, timeout=120) as c:
                for _ in range(count):
                    t = time.perf_counter()
                    r = c.post("/v1/teachers", content=payload,
                               headers={"content-type": "application/json"})  # fmt: skip
                    dt = time.perf_counter() - t
                    with lock:
                        if r.status_code == 200:
                            lat.append(dt)
                        else:
                            errors[r.status_code] = errors.get(r.status_code, 0) + 1

        threads = [threading.Thread(target=client, args=(k,)) for k in per_client]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss_after = _rss_mib(proc.pid)
        report = {
            "requests": args.requests, "clients": args.clients,
            "server_threads": args.concurrency, "cpus": os.cpu_count(),
            "throughput_rps": round(len(lat) / wall, 2), "wall_s": round(wall, 1),
            "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
            "p99_ms": round(1000 * _percentile(lat, 0.99), 1) if lat else None,
            "errors": errors, "rss_before_mib": round(rss_before, 1),
            "rss_after_mib": round(rss_after, 1),
            "sequential_http_ms": round(1000 * http_s, 2),
            "in_process_ms": round(1000 * direct_s, 2),
            "overhead_pct": round(100 * (http_s - direct_s) / direct_s, 1),
        }  # fmt: skip
        print(json.dumps(report, indent=2))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
