"""`harness serve` (the teacher service, docs/SERVICE.md), and `harness teachers request` /
`harness teachers export-scene` (its client, and a dataset scene as a request to compare)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from harness.cli.checks import number, writable_file
from harness.cli.main import app
from harness.cli.teachers_cmd import teachers_app
from harness.errors import ConfigError

log = logging.getLogger(__name__)

API_KEY_ENV = "HARNESS_API_KEY"  # where `harness serve` and the client read the key from
CONFIG_ENV = "HARNESS_SERVE_CONFIG"  # the app config handed to uvicorn worker processes


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_from_env() -> Any:
    """uvicorn factory for ``--workers N``: the app config travels as JSON in CONFIG_ENV."""
    from teachers.candidates import CandidateConfig
    from teachers.per_scene import TeacherConfig
    from teachers.service.app import AppConfig, create_app
    from teachers.service.engine import EngineConfig
    from teachers.service.limits import LimitConfig

    raw = json.loads(os.environ[CONFIG_ENV])
    eng = raw["engine"]
    engine = EngineConfig(
        vocabulary=eng["vocabulary"],
        preload=tuple(eng["preload"]),
        teachers=TeacherConfig(candidates=CandidateConfig()),
    )
    return create_app(
        AppConfig(engine=engine, limits=LimitConfig(**raw["limits"]), api_key=raw["api_key"])
    )


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind; non-loopback needs an API key."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes."),
    concurrency: int = typer.Option(2, min=1, max=64, help="Scoring threads per process."),
    queue: int = typer.Option(8, min=0, max=10_000, help="Requests that may wait per process."),
    timeout: float = typer.Option(30.0, min=0.1, help="Per-request time limit [s]."),
    max_body_mb: float = typer.Option(8.0, min=0.01, max=256.0, help="Request body limit [MiB]."),
    vocabulary: str = typer.Option(
        "carla-8192-v1",
        help="Default vocabulary: a registered id, a vocabulary .npz, or 'none' (lattice only).",
    ),
    town: list[str] = typer.Option([], "--town", help="Town to load at start-up (repeatable)."),
    api_key: str | None = typer.Option(
        None, envvar=API_KEY_ENV, help=f"Required X-API-Key value (or ${API_KEY_ENV})."
    ),
) -> None:
    """Serve teachers and PDMS / EPDMS scores over HTTP (POST /v1/teachers, /v1/score)."""
    import uvicorn

    from teachers.service.app import AppConfig, create_app
    from teachers.service.engine import EngineConfig
    from teachers.service.limits import LimitConfig
    from teachers.service.server import server_settings

    number(timeout, "--timeout", low=0.1)
    number(max_body_mb, "--max-body-mb", low=0.01, high=256.0)
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"binding {host} exposes the service beyond this machine; set --api-key or "
            f"${API_KEY_ENV} (clients then send it as X-API-Key)"
        )
    from teachers.vocabulary import resolve_vocabulary

    vocab: str | None = None if vocabulary == "none" else vocabulary
    if vocab is not None:
        resolve_vocabulary(vocab)  # an unknown id or a bad file: one line before binding
    limits = LimitConfig(
        concurrency=concurrency, queue=queue, timeout_s=timeout,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
    )  # fmt: skip
    engine = EngineConfig(vocabulary=vocab, preload=tuple(town))
    log.warning("harness serve on http://%s:%d (%d worker(s))", host, port, workers)
    if workers == 1:
        uvicorn.run(
            create_app(AppConfig(engine=engine, limits=limits, api_key=api_key)),
            host=host, port=port, **server_settings(),
        )  # fmt: skip
        return
    os.environ[CONFIG_ENV] = json.dumps({
        "engine": {"vocabulary": vocab, "preload": list(town)},
        "limits": asdict(limits), "api_key": api_key,
    })  # fmt: skip
    uvicorn.run(
        "harness.cli.serve_cmd:app_from_env", factory=True, host=host, port=port,
        workers=workers, **server_settings(),
    )  # fmt: skip


@teachers_app.command("request")
def request(
    scene: Path = typer.Argument(..., help="Request JSON (e.g. from export-scene)."),
    url: str = typer.Option("http://127.0.0.1:8000", help="Service URL."),
    out: Path | None = typer.Option(None, help="Write the answer here instead of stdout."),
    api_key: str | None = typer.Option(None, envvar=API_KEY_ENV, help="X-API-Key value."),
) -> None:
    """Ask a running `harness serve` for a scene's teachers."""
    from teachers.client import TeacherClient

    if out is not None:
        writable_file(out, "--out")
    try:
        body = json.loads(scene.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{scene} is not a readable JSON file: {exc}") from exc
    if isinstance(body, dict) and "scene" not in body and "town" in body:
        body = {"scene": body}  # a bare scene: default k and options
    with TeacherClient(url, api_key=api_key) as client:
        answer = client.teachers(body)
    text = json.dumps(answer, indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")


@teachers_app.command("export-scene")
def export_scene_cmd(
    dataset: Path = typer.Argument(..., help="Dataset directory written by gen-teachers."),
    scene: str = typer.Option(..., "--scene", help="scene_id to export."),
    out: Path | None = typer.Option(None, help="Write the request JSON here (default stdout)."),
) -> None:
    """A dataset scene as a /v1/teachers request carrying the generator's settings."""
    from teachers.service.export import export_scene

    if out is not None:
        writable_file(out, "--out")
    text = json.dumps(export_scene(dataset, scene))
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
