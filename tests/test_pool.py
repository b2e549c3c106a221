"""The worker pools behind `harness eval --workers` and `gen-teachers`: values come back keyed,
a worker that dies (a real SIGKILL) is replaced and only its item is reported lost, an exception
raised by the worker's ``run`` is re-raised in the caller, and the in-process pool runs the same
contract."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from harness.runner.pool import Done, InlinePool, Pool, ProcessPool, WorkerSpec


class Square:
    """Squares numbers; 'boom' raises, 'die' SIGKILLs its own process, 'pid' returns its pid."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def run(self, item: Any) -> Any:
        if item == "boom":
            raise ValueError("boom")
        if item == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if item == "pid":
            return os.getpid()
        return item * item + self.offset


def _drain(pool: Pool, expected: int) -> list[Done]:
    out: list[Done] = []
    for _ in range(400):
        out += pool.wait(0.05)
        if len(out) >= expected:
            return out
    raise AssertionError(f"only {len(out)} of {expected} items came back")


def test_process_pool_returns_keyed_values() -> None:
    pool = ProcessPool(WorkerSpec(Square, (1,)), 2)
    try:
        assert pool.capacity == 2
        pool.submit("a", 3)
        pool.submit("b", 4)
        with pytest.raises(RuntimeError, match="busy"):
            pool.submit("c", 5)
        done = _drain(pool, 2)
        assert {(d.key, d.value, d.lost) for d in done} == {("a", 10, False), ("b", 17, False)}
    finally:
        pool.close()


def test_a_killed_worker_costs_only_its_item() -> None:
    pool = ProcessPool(WorkerSpec(Square, (0,)), 2)
    try:
        before = set(pool.pids)
        pool.submit("x", "die")
        pool.submit("y", 5)
        done = {d.key: d for d in _drain(pool, 2)}
        assert done["x"].lost and done["x"].value is None and done["x"].item == "die"
        assert not done["y"].lost and done["y"].value == 25
        after = set(pool.pids)
        assert len(after - before) == 1 and len(after) == 2  # one worker replaced
        pool.submit("p", "pid")
        pool.submit("q", "pid")
        pids = {d.value for d in _drain(pool, 2)}
        assert pids == after  # both workers (the new one too) take work
    finally:
        pool.close()


@pytest.mark.parametrize("kind", ["inline", "process"])
def test_errors_of_run_reach_the_caller(kind: str) -> None:
    spec = WorkerSpec(Square, (0,))
    pool: Pool = InlinePool(spec) if kind == "inline" else ProcessPool(spec, 1)
    try:
        pool.submit("k", 6)
        assert [(d.key, d.value) for d in _drain(pool, 1)] == [("k", 36)]
        pool.submit("e", "boom")
        with pytest.raises(ValueError, match="boom"):
            _drain(pool, 1)
    finally:
        pool.close()


def test_close_stops_the_workers() -> None:
    pool = ProcessPool(WorkerSpec(Square, (0,)), 2)
    pids = [p for p in pool.pids if p is not None]
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
