"""Where units of work run: in this process, in a pool of forked worker processes, or (see
:mod:`harness.runner.ray_pool`) on Ray actors, behind one small interface, so the route
evaluation and the teacher generator schedule work the same way whatever runs it.

A pool is built from a :class:`WorkerSpec` (a class and its constructor arguments, all
picklable); each worker builds one instance and calls its ``run(item)`` for every item it is
given, one at a time. ``submit(key, item)`` hands an item to a free worker; ``wait(timeout_s)``
returns what finished: the value, or ``lost`` when the worker died under it (killed, segfault,
out of memory, a Ray node gone) - the pool then replaces that worker, so a loss costs only the
item it held. An exception raised by ``run`` is no loss: it is re-raised in the caller.

Start method of the process pool: ``fork``. The parent has loaded the towns, compiled (or loaded)
the numba kernels and imported the agent before it forks, so every worker starts with them and
none compiles at the same time as another (which can leave numba's on-disk cache index and data
out of step); ``spawn`` would pay the imports, kernel loads and town loads again per worker. The
parent runs no thread of its own while it forks (the progress bar refreshes from the scheduling
loop, not from a thread), and workers die with their parent (``PR_SET_PDEATHSIG`` on Linux), so
a killed run leaves no orphan writing files.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Hashable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # linux/prctl.h: signal sent to this process when its parent dies


class Worker(Protocol):
    """What a pool runs: one instance per worker process / actor, ``run`` once per item."""

    def run(self, item: Any) -> Any: ...


@dataclass(frozen=True)
class WorkerSpec:
    """How each worker builds its :class:`Worker`: ``cls(*args)`` (picklable)."""

    cls: type
    args: tuple[Any, ...] = ()

    def build(self) -> Worker:
        worker: Worker = self.cls(*self.args)
        return worker


@dataclass(frozen=True)
class Done:
    """A finished item: ``value`` is what ``run`` returned; ``lost`` says the worker died before
    returning (``value`` is then None)."""

    key: Hashable
    item: Any
    value: Any
    lost: bool = False


class Pool(Protocol):
    """The scheduling interface every pool offers."""

    @property
    def capacity(self) -> int:
        """How many items may be in flight at once."""
        ...

    def submit(self, key: Hashable, item: Any) -> None:
        """Start ``item`` on a free worker (at most ``capacity`` in flight)."""
        ...

    def wait(self, timeout_s: float) -> list[Done]:
        """What finished within ``timeout_s`` [s] (possibly nothing)."""
        ...

    def close(self) -> None:
        """Stop every worker (items in flight are abandoned)."""
        ...


class InlinePool:
    """One worker in this process: ``wait`` runs the submitted item (no start-up cost, the
    default for ``--workers 1``; a crash of native code here ends the run as it always did)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self._worker = spec.build()
        self._queued: tuple[Hashable, Any] | None = None

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, key: Hashable, item: Any) -> None:
        if self._queued is not None:
            raise RuntimeError("InlinePool runs one item at a time")
        self._queued = (key, item)

    def wait(self, timeout_s: float) -> list[Done]:
        if self._queued is None:
            return []
        key, item = self._queued
        self._queued = None
        return [Done(key, item, self._worker.run(item))]

    def close(self) -> None:
        self._queued = None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _worker_main(conn: Connection, spec: WorkerSpec, parent_pid: int) -> None:
    """A worker process: build the worker, then run items from ``conn`` until it closes.
    Ctrl-C is the parent's to handle (it stops the pool), so the worker ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    worker = spec.build()
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:  # the pool is closing
            return
        try:
            reply: tuple[str, Any] = ("ok", worker.run(item))
        except Exception as exc:  # noqa: BLE001  (shipped to the parent, which re-raises it)
            reply = ("error", exc)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Slot:
    """One worker process, its end of the pipe and the item it runs (None: idle)."""

    process: BaseProcess
    conn: Connection
    busy: tuple[Hashable, Any] | None = None


class ProcessPool:
    """``size`` forked worker processes, one item each at a time; a worker that dies is
    replaced and its item reported ``lost``."""

    def __init__(self, spec: WorkerSpec, size: int) -> None:
        if size < 1:
            raise ValueError(f"a process pool needs size >= 1, got {size}")
        self._spec = spec
        self._ctx = multiprocessing.get_context("fork")
        self._slots = [self._start() for _ in range(size)]

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main, args=(child, self._spec, os.getpid()), daemon=True
        )
        proc.start()
        child.close()
        return _Slot(proc, parent)

    @property
    def capacity(self) -> int:
        return len(self._slots)

    @property
    def pids(self) -> tuple[int | None, ...]:
        """Process ids of the workers (for tests and diagnostics)."""
        return tuple(s.process.pid for s in self._slots)

    def submit(self, key: Hashable, item: Any) -> None:
        if item is None:
            raise ValueError("None is the pool's stop signal, not an item")
        slot = next((s for s in self._slots if s.busy is None), None)
        if slot is None:
            raise RuntimeError("every worker is busy; wait for one to finish first")
        if not slot.process.is_alive():  # died while idle: no item of its own is lost
            self._replace(slot)
        slot.busy = (key, item)
        with contextlib.suppress(OSError):  # the worker is gone: wait() reports the item lost
            slot.conn.send(item)

    def wait(self, timeout_s: float) -> list[Done]:
        busy = [s for s in self._slots if s.busy is not None]
        if not busy:
            return []
        handles: list[Any] = [s.conn for s in busy] + [s.process.sentinel for s in busy]
        ready = set(multiprocessing.connection.wait(handles, timeout_s))
        done: list[Done] = []
        for slot in busy:
            if slot.conn not in ready and slot.process.sentinel not in ready:
                continue
            assert slot.busy is not None
            key, item = slot.busy
            reply = self._receive(slot)
            slot.busy = None
            if reply is None:
                log.warning(
                    "worker process %s died (exit code %s) while running %s; starting another",
                    slot.process.pid, slot.process.exitcode, key,
                )  # fmt: skip
                self._replace(slot)
                done.append(Done(key, item, None, lost=True))
                continue
            kind, value = reply
            if kind == "error":
                raise value
            done.append(Done(key, item, value))
        return done

    def _receive(self, slot: _Slot) -> tuple[str, Any] | None:
        """The worker's reply, or None when it died without one."""
        try:
            if slot.conn.poll():
                reply: tuple[str, Any] = slot.conn.recv()
                return reply
        except (EOFError, OSError):
            pass
        return None

    def _replace(self, slot: _Slot) -> None:
        slot.process.join(timeout=5.0)
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn = fresh.process, fresh.conn

    def close(self) -> None:
        for slot in self._slots:
            if slot.busy is not None and slot.process.is_alive():
                slot.process.kill()  # abandoned work (an interrupt or an error in the caller)
            else:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)  # idle: asked to stop (siblings hold copies of the pipe)
        for slot in self._slots:
            slot.process.join(timeout=5.0)
            with contextlib.suppress(OSError):
                slot.conn.close()
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=2.0)
