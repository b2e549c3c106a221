"""The checks behind ``harness doctor``: the carla client, a CARLA server (reachable, version,
towns), the Traffic Manager port, $CARLA_ROOT, the GPU and which ``leaderboard`` / ``srunner`` /
``agents`` packages an agent file would import. Each check returns a :class:`Check` saying what
it found and, when something is wrong or could not be checked, what to do; none of them raises
or imports agent code."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness.sim.carla_server import LAUNCHER, port_is_free

EXPECTED_CARLA = "0.9.16"  # the client and server version this project targets
TCP_TIMEOUT_S = 2.0  # [s] to open a connection to the server
GPU_QUERY_TIMEOUT_S = 10.0  # [s] nvidia-smi
COMPAT_PACKAGES = ("leaderboard", "srunner", "agents")  # what leaderboard agent files import


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but look at it
    FAIL = "fail"  # this part cannot work as it is
    SKIP = "skip"  # could not be checked here


@dataclass(frozen=True)
class Check:
    """One finding: ``name`` what was checked, ``detail`` what was found, ``fix`` what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def client_version() -> Check:
    """The installed carla wheel."""
    try:
        version = importlib.metadata.version("carla")
    except importlib.metadata.PackageNotFoundError:
        return Check("carla client", Status.FAIL, "the carla package is not installed",
                     f"pip install carla=={EXPECTED_CARLA}")  # fmt: skip
    if version != EXPECTED_CARLA:
        return Check("carla client", Status.WARN, f"carla {version}",
                     f"this project targets {EXPECTED_CARLA}: pip install carla=={EXPECTED_CARLA}")  # fmt: skip
    return Check("carla client", Status.OK, f"carla {version}")


def server_checks(host: str, port: int, timeout_s: float) -> list[Check]:
    """Reachability, version (against the client's), towns and the loaded map of host:port."""
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, TCP_TIMEOUT_S)):
            pass
    except OSError as exc:
        fix = (f"start CarlaUE4.sh -RenderOffScreen -nosound -carla-rpc-port={port} (or use "
               "--carla-launch), or point --carla-host / --carla-port at a running one")  # fmt: skip
        skipped = [Check(n, Status.SKIP, "no server to ask") for n in ("server version", "server towns")]
        return [Check("server reachable", Status.FAIL, f"nothing listens at {where} ({exc})", fix), *skipped]
    import carla

    client = carla.Client(host, port)
    client.set_timeout(timeout_s)
    try:
        server_version = client.get_server_version()
    except RuntimeError as exc:
        return [
            Check("server reachable", Status.FAIL, f"{where} accepts connections but does not answer "
                  f"the CARLA RPC within {timeout_s:g} s ({exc})",
                  "is it a CARLA server (and not hung)? restart it, or raise --timeout"),  # fmt: skip
            Check("server version", Status.SKIP, "no answer"),
            Check("server towns", Status.SKIP, "no answer"),
        ]
    out = [Check("server reachable", Status.OK, where)]
    client_v = client.get_client_version()
    if server_version != client_v:
        out.append(Check("server version", Status.FAIL, f"server {server_version}, client {client_v}",
                         f"use the same version on both sides: pip install carla=={server_version}"))  # fmt: skip
    else:
        out.append(Check("server version", Status.OK, str(server_version)))
    try:
        towns = sorted(m.split("/")[-1] for m in client.get_available_maps())
        current = client.get_world().get_map().name.split("/")[-1]
    except RuntimeError as exc:
        out.append(Check("server towns", Status.WARN, f"could not list them ({exc})"))
        return out
    missing = [t for t in ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06") if t not in towns]
    detail = f"{len(towns)} towns ({', '.join(towns)}); loaded: {current}"
    if missing:
        out.append(Check("server towns", Status.WARN, detail,
                         f"the Bench2Drive routes need {', '.join(missing)}: install CARLA's additional maps"))  # fmt: skip
    else:
        out.append(Check("server towns", Status.OK, detail))
    return out


def traffic_manager_check(tm_port: int) -> Check:
    """The Traffic Manager listens on ``tm_port`` of this machine (the first client that asks
    for it starts it); a port in use belongs to another client's Traffic Manager or program."""
    if port_is_free("0.0.0.0", tm_port):
        return Check("traffic manager port", Status.OK, f"{tm_port} is free for this run's Traffic Manager")
    return Check("traffic manager port", Status.WARN,
                 f"{tm_port} is in use (another client's Traffic Manager, which this run would share, "
                 "or another program)", "pick a free one with --carla-tm-port")  # fmt: skip


def carla_root_check() -> Check:
    """$CARLA_ROOT and its launcher (needed by --carla-launch and for the towns' OpenDRIVE)."""
    root = os.environ.get("CARLA_ROOT", "")
    if not root:
        return Check("CARLA_ROOT", Status.SKIP, "not set",
                     "set $CARLA_ROOT to a CARLA 0.9.16 folder to use --carla-launch")  # fmt: skip
    if not (Path(root) / LAUNCHER).is_file():
        return Check("CARLA_ROOT", Status.FAIL, f"{root} has no {LAUNCHER}",
                     "point $CARLA_ROOT at the folder that holds CarlaUE4.sh")  # fmt: skip
    return Check("CARLA_ROOT", Status.OK, str(Path(root) / LAUNCHER))


def gpu_check() -> Check:
    """The GPUs nvidia-smi lists (a CARLA server renders on one)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Check("GPU", Status.SKIP, "nvidia-smi not found",
                     "a local CARLA server needs an NVIDIA GPU and driver; the embedded backend needs none")  # fmt: skip
    try:
        proc = subprocess.run(  # noqa: S603  (fixed argv)
            [smi, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=GPU_QUERY_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("GPU", Status.WARN, f"nvidia-smi did not answer ({exc})", "check the NVIDIA driver")
    gpus = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not gpus:
        return Check("GPU", Status.WARN, f"nvidia-smi: {proc.stderr.strip() or 'no GPU listed'}",
                     "check the NVIDIA driver")  # fmt: skip
    return Check("GPU", Status.OK, "; ".join(gpus))


def _origin(name: str) -> str | None:
    """Where the top-level package ``name`` would be imported from (None: nowhere). Only the
    import system's finders run; no package code is executed."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin not in (None, "namespace"):
        return str(spec.origin)
    locations = list(spec.submodule_search_locations or [])
    return f"namespace package {', '.join(locations)}" if locations else name


SHIPPED_PACKAGES = ("leaderboard", "srunner")  # shipped with the project, bound before agents load


def compat_checks(project_root: Path) -> list[Check]:
    """Which ``leaderboard``, ``srunner`` and ``agents`` an agent file would import: the
    project's compatibility layer (under ``project_root``), a real checkout, or none."""
    out = []
    for name in COMPAT_PACKAGES:
        origin = _origin(name)
        shipped = project_root / name / "__init__.py"
        if name in SHIPPED_PACKAGES and shipped.is_file():
            # harness binds its own leaderboard / srunner before it loads an agent file
            # (harness.leaderboard.compat): they win over any checkout on the path
            detail = f"this project's compatibility layer: {shipped}"
            if origin is not None and not origin.startswith(str(project_root)):
                detail += f" (shadows {origin} in harness runs)"
            out.append(Check(f"import {name}", Status.OK, detail))
            continue
        if origin is None:
            fix = ("agent files that import it fail: put CARLA's PythonAPI/carla on PYTHONPATH"
                   if name == "agents" else
                   "agent files that import it fail: install the project (pip install -e .) for its "
                   "compatibility layer, or put a leaderboard / scenario_runner checkout on PYTHONPATH")  # fmt: skip
            status = Status.WARN
            out.append(Check(f"import {name}", status, "not importable", fix))
            continue
        if origin.startswith("namespace package"):  # a bare folder of that name (e.g. the cwd's)
            out.append(Check(f"import {name}", Status.WARN, f"no package, only a folder: {origin}",
                             f"agent files that import {name} need the real package on PYTHONPATH"))  # fmt: skip
            continue
        ours = str(project_root) in origin
        which = "this project's compatibility layer" if ours else "an external checkout"
        out.append(Check(f"import {name}", Status.OK, f"{which}: {origin}"))
    return out


def run_checks(host: str, port: int, tm_port: int, timeout_s: float, project_root: Path) -> list[Check]:
    """Every check, in the order ``harness doctor`` prints them."""
    return [
        client_version(),
        *server_checks(host, port, timeout_s),
        traffic_manager_check(tm_port),
        carla_root_check(),
        gpu_check(),
        *compat_checks(project_root),
    ]
