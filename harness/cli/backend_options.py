"""The ``--backend`` options ``harness eval`` and ``harness gen-teachers`` share, and the
BackendSpec they build (checked before any work starts)."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli.checks import number
from harness.errors import ConfigError
from harness.runner.backends import BACKENDS, DEFAULT_EGO_BLUEPRINT, BackendSpec

BACKEND = typer.Option("embedded", "--backend", help=f"Simulator backend: {' or '.join(BACKENDS)}.")
CARLA_HOST = typer.Option("localhost", "--carla-host", help="CARLA server host.")
CARLA_PORT = typer.Option(
    2000, "--carla-port", min=0, max=65535, help="CARLA RPC port (0 with --carla-launch: a free one)."
)
CARLA_TM_PORT = typer.Option(8000, "--carla-tm-port", min=1, max=65535, help="Traffic Manager port.")
CARLA_TIMEOUT = typer.Option(60.0, "--carla-timeout", help="CARLA client timeout [s].")
CARLA_LAUNCH = typer.Option(
    False, "--carla-launch", help="Start CarlaUE4.sh for the run (restarted when it dies or hangs)."
)
CARLA_ROOT = typer.Option(
    None, "--carla-root", help="CARLA folder with CarlaUE4.sh for --carla-launch (default $CARLA_ROOT)."
)
CARLA_GPU = typer.Option(None, "--carla-gpu", min=0, help="GPU index of a launched server.")
EGO_BLUEPRINT = typer.Option(DEFAULT_EGO_BLUEPRINT, "--ego-blueprint", help="CARLA ego blueprint.")


def backend_spec(
    name: str,
    host: str = "localhost",
    port: int = 2000,
    tm_port: int = 8000,
    timeout_s: float = 60.0,
    launch: bool = False,
    carla_root: Path | None = None,
    gpu: int | None = None,
    ego_blueprint: str = DEFAULT_EGO_BLUEPRINT,
) -> BackendSpec:
    """The spec of the command line's backend options (ConfigError on inconsistent ones)."""
    number(timeout_s, "--carla-timeout", low=0.0, low_open=True)
    if port == 0 and not launch:
        raise ConfigError("--carla-port 0 (a free port) needs --carla-launch")
    if carla_root is not None and not (carla_root / "CarlaUE4.sh").is_file():
        raise ConfigError(f"--carla-root {carla_root} has no CarlaUE4.sh: pass a CARLA 0.9.16 folder")
    if name != "carla" and (launch or gpu is not None):
        raise ConfigError("--carla-launch / --carla-gpu need --backend carla")
    return BackendSpec(
        name, host=host, port=port, tm_port=tm_port, timeout_s=timeout_s, launch=launch,
        carla_root=str(carla_root) if carla_root is not None else "", gpu=gpu,
        ego_blueprint=ego_blueprint,
    )  # fmt: skip
