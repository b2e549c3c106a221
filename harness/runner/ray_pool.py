"""The :class:`~harness.runner.pool.Pool` interface on a Ray cluster (the optional extra
``harness[ray]``): one actor per worker, one item each at a time, built from the same
:class:`~harness.runner.pool.WorkerSpec` as the process pool, so evaluation and teacher
generation run the same code on one machine or many. An actor that dies (its process killed, its
node gone) is replaced and its item reported ``lost``; an exception raised by ``run`` is
re-raised here.

``address="auto"`` starts a local cluster in this process (shut down on close); any other value
is handed to ``ray.init(address=...)`` to join a running cluster (``ray start --head``). The
actors import this package: on a local cluster they are given this checkout on PYTHONPATH and
$HARNESS_MAPS; on other nodes harness (and the maps) must be installed alike. Each node compiles
or loads the numba kernels once per actor process. Ray 2.60 (the version tested) enables token auth by
default: a process joining a cluster needs the cluster's token (Ray's RAY_AUTH_TOKEN / token
file), or RAY_AUTH_MODE=disabled on both sides (checked: a cluster started that way, joined by
address, gives the records of a one-process run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.runner.pool import Done, WorkerSpec

log = logging.getLogger(__name__)

LOCAL = "auto"  # --ray value that starts a local cluster
INSTALL_HINT = "pip install 'harness[ray]'"
FORWARDED_ENV = ("HARNESS_MAPS", "CARLA_ROOT", "NUMBA_CACHE_DIR")  # passed to the actors


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed; run: {INSTALL_HINT}") from None
    return ray


def _runtime_env() -> dict[str, Any]:
    """Environment of the actors: this checkout first on PYTHONPATH (so they import the code
    the driver runs), and the map / cache variables the driver has."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path}
    env.update({k: os.environ[k] for k in FORWARDED_ENV if k in os.environ})
    return {"env_vars": env}


class RayPool:
    """``size`` actors of ``spec.cls`` (None: one per CPU of the cluster) on the cluster at
    ``address`` (:data:`LOCAL` starts one here)."""

    def __init__(self, spec: WorkerSpec, size: int | None, address: str) -> None:
        ray = import_ray()
        self._ray = ray
        self._spec = spec
        local = address == LOCAL
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {
                "runtime_env": _runtime_env(), "include_dashboard": False,
                "log_to_driver": False, "logging_level": logging.WARNING,
            }  # fmt: skip
            if local:  # room for every actor even when asked for more than there are cores
                kwargs["num_cpus"] = max(size or 1, os.cpu_count() or 1)
            else:
                kwargs["address"] = address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"could not reach the Ray cluster at {address!r} ({exc}); check the address and "
                    f"Ray's auth token, start one with 'ray start --head', or pass --ray {LOCAL}"
                ) from exc
        if size is None:
            size = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._actor_cls = ray.remote(num_cpus=1, max_restarts=0)(spec.cls)
        self._actors = [self._new_actor() for _ in range(size)]
        self._busy: dict[Any, tuple[int, Hashable, Any]] = {}  # ObjectRef -> (actor, key, item)

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(*self._spec.args)

    @property
    def capacity(self) -> int:
        return len(self._actors)

    def submit(self, key: Hashable, item: Any) -> None:
        used = {slot for slot, _, _ in self._busy.values()}
        free = next((i for i in range(len(self._actors)) if i not in used), None)
        if free is None:
            raise RuntimeError("every actor is busy; wait for one to finish first")
        ref = self._actors[free].run.remote(item)
        self._busy[ref] = (free, key, item)

    def wait(self, timeout_s: float) -> list[Done]:
        if not self._busy:
            return []
        refs = list(self._busy)
        ready, rest = self._ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:  # whatever else is finished too, without waiting
            ready += self._ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        exceptions = self._ray.exceptions
        lost_errors = (
            exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.ObjectLostError,
        )  # fmt: skip
        done: list[Done] = []
        for ref in ready:
            slot, key, item = self._busy.pop(ref)
            try:
                value = self._ray.get(ref)
            except exceptions.RayTaskError as exc:  # run() raised: the caller's error
                cause = getattr(exc, "cause", None)
                raise cause if isinstance(cause, BaseException) else exc from None
            except lost_errors as exc:
                log.warning("Ray actor lost while running %s (%s); starting another", key, exc)
                self._ray.kill(self._actors[slot], no_restart=True)
                self._actors[slot] = self._new_actor()
                done.append(Done(key, item, None, lost=True))
                continue
            done.append(Done(key, item, value))
        return done

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001  (best effort: the cluster may be gone already)
                log.debug("could not kill a Ray actor", exc_info=True)
        self._actors = []
        self._busy.clear()
        if self._started:
            self._ray.shutdown()
