"""All routes of a route file (or a subset): load the agent once, run the routes in file order,
commit ``OUT/results.json`` (leaderboard format, atomic) after every route, and resume an
interrupted run from that file. Every selected route must load and plan before the first one
runs; a resume must match the fingerprint in ``harness/run.json`` (see ``RunConfig.identity``).

Outputs in ``OUT``: ``results.json`` (the only JSON file at the top, so Bench2Drive's
``merge_route_json.py -f OUT`` reads it alone); ``harness/run.json`` (the run's settings and its
save_name time stamp, taken once per run and kept on resume; a resumed run must match them);
``metric_info/<save_name>/metric_info.json`` per route (Bench2Drive's efficiency / smoothness
tool input); ``routes.parquet``, ``infractions.parquet`` and ``harness/bench2drive.json``
(:mod:`harness.runner.tables`, written at the end of the run and on Ctrl-C);
``steps/<route>.parquet`` per-step metrics of every route; with ``record``,
``recordings/<route>.parquet`` full episode recordings. Ctrl-C between or during routes leaves a
valid results.json holding the finished routes; running again with resume continues after them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import ConfigError, MapLoadError, RouteFileError, UnknownTownError
from harness.fingerprint import fingerprint_diff
from harness.io import atomic_write_json
from harness.leaderboard.agent import is_privileged
from harness.leaderboard.bench2drive import Bench2DriveMetrics, run_stamp, sensor_icons
from harness.leaderboard.loader import load_agent
from harness.leaderboard.results import (
    ResultsFile,
    RouteRecord,
    leaderboard_route_id,
    resume_plan,
)
from harness.maps import load_town
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.config import RunConfig
from harness.runner.route_runner import (
    RouteJob,
    RouteResult,
    RouteRunner,
    route_seed,
)
from harness.runner.subset import parse_subset
from harness.runner.tables import (
    HARNESS_DIR,
    InfractionRow,
    outcome_infraction_rows,
    write_run_tables,
)

log = logging.getLogger(__name__)

RUN_FILE = f"{HARNESS_DIR}/run.json"  # OUT/harness/run.json: the run's settings (checked on resume)
LEGACY_RUN_FILE = "run.json"  # where runs before the harness/ folder kept it (read on resume)

RouteCallback = Callable[[RouteConfig, RouteResult], None]


@dataclass(frozen=True)
class EvaluationResult:
    """The state of a run when :func:`run_evaluation` returns: every record so far (resumed ones
    included), the results file, and which record indices ran in this call."""

    results_path: Path
    results: dict[str, Any]  # the results.json content
    records: tuple[RouteRecord, ...]
    routes: tuple[RouteConfig, ...]  # the selected routes, in record-index order
    ran: tuple[int, ...]
    privileged: bool
    bench2drive: Bench2DriveMetrics | None = None

    @property
    def global_record(self) -> dict[str, Any]:
        gr: dict[str, Any] = self.results["_checkpoint"]["global_record"]
        return gr


def select_routes(config: RunConfig) -> tuple[list[RouteConfig], tuple[int, ...]]:
    """The route file's routes and the file indices the subset selects."""
    routes = read_route_file(config.routes_file)
    if not routes:
        raise RouteFileError(
            f"{config.routes_file} holds no routes; give a file with <route> elements"
        )
    return routes, parse_subset(config.subset, len(routes))


def check_routes_runnable(routes: list[RouteConfig], selection: tuple[int, ...]) -> None:
    """Every selected route's town loads and its keypoints connect on the lane graph; else the
    HarnessError (unknown town, bad map, unplannable route) naming the route, before any route
    runs (a run of routes that can only crash is bad input, not a result)."""
    for i in selection:
        route = routes[i]
        try:
            plan_route(load_town(route.town), route.keypoints, route.id)
        except (UnknownTownError, MapLoadError) as exc:
            raise type(exc)(f"route {route.id} (file index {i}): {exc}") from exc


def _check_run_file(config: RunConfig, results: ResultsFile) -> None:
    """A resumed run must have the fingerprint of the run that wrote OUT/run.json; without
    run.json only a results.json holding no record may be resumed."""
    path = config.out_dir / RUN_FILE
    if not path.is_file() and (config.out_dir / LEGACY_RUN_FILE).is_file():
        path = config.out_dir / LEGACY_RUN_FILE
    if not path.is_file():
        if results.records:
            raise ConfigError(
                f"{config.results_path} holds {len(results.records)} route records but {path} "
                "(the settings they were made with) is missing, so resuming could mix runs; "
                "pass --no-resume to start over or pick another --out"
            )
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); move it away or use --no-resume") from exc
    diff = fingerprint_diff(stored, config.identity())
    if diff:
        raise ConfigError(
            f"{config.out_dir} holds a run with other settings ({'; '.join(diff)}); resume "
            "with the same settings, pick another --out, or pass --no-resume"
        )


def open_results(config: RunConfig, route_ids: list[str]) -> tuple[ResultsFile, list[int]]:
    """The results file of this run and the record indices still to run: resumed from
    OUT/results.json when it exists and ``config.resume``, else a fresh file (written at once
    so a valid results.json exists from the start)."""
    path = config.results_path
    if config.resume and path.is_file():
        results = ResultsFile.load(path)
        _check_run_file(config, results)
        todo = resume_plan(results, route_ids, rerun_crashed=config.rerun_crashed)
        log.info("resuming %s: %d of %d routes to run", path, len(todo), len(route_ids))
        return results, todo
    results = ResultsFile(path, len(route_ids))
    results.write()
    return results, list(range(len(route_ids)))


def _stored_stamp(config: RunConfig) -> str | None:
    """The save_name time stamp of the run in OUT (None when there is none)."""
    for name in (RUN_FILE, LEGACY_RUN_FILE):
        try:
            stamp = json.loads((config.out_dir / name).read_text(encoding="utf-8")).get("stamp")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(stamp, str):
            return stamp
    return None


def _write_run_file(config: RunConfig, privileged: bool, stamp: str) -> None:
    atomic_write_json(
        config.out_dir / RUN_FILE,
        {"config": config.identity(), "privileged": privileged, "stamp": stamp}, indent=2,
    )  # fmt: skip
    (config.out_dir / LEGACY_RUN_FILE).unlink(missing_ok=True)  # keep results.json the only JSON


def run_evaluation(
    config: RunConfig,
    *,
    progress: bool = False,
    on_route: RouteCallback | None = None,
) -> EvaluationResult:
    """Run (or resume) the evaluation described by ``config``.

    Bad input (route file, subset, agent path, a results.json of another run, invalid agent
    sensors) raises a HarnessError; route-level failures become route statuses. ``on_route`` is
    called after each route is committed; ``progress`` shows a rich progress bar on stderr.
    """
    routes, selection = select_routes(config)
    check_routes_runnable(routes, selection)
    agent_cls, _ = load_agent(config.agent)
    privileged = is_privileged(agent_cls)
    chosen = [routes[i] for i in selection]
    route_ids = [leaderboard_route_id(r.id) for r in chosen]
    results, todo = open_results(config, route_ids)
    stamp = (_stored_stamp(config) if results.records else None) or run_stamp()
    _write_run_file(config, privileged, stamp)
    results.privileged = privileged
    fresh: dict[int, list[InfractionRow]] = {}
    runner = RouteRunner(config, agent_cls)
    ran: list[int] = []
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.description}"), console=console, disable=not progress, transient=False,
    )  # fmt: skip
    try:
        with bar:
            task = bar.add_task("", total=len(todo))
            for index in todo:
                route = chosen[index]
                bar.update(task, description=f"route {route.id} ({route.town})")
                job = RouteJob(
                    index, selection[index], route, route_seed(config.seed, selection[index]),
                    stamp,
                )
                result = runner.run(job)
                if result.sensors and not results.sensors:
                    results.sensors = sensor_icons(result.sensors)
                fresh[index] = outcome_infraction_rows(
                    index, route.id, result.record.route_id, result.outcome
                )
                results.commit(result.record)
                ran.append(index)
                log.info(
                    "route %s: %s, DS %.2f", route.id, result.record.status,
                    result.record.scores.score_composed,
                )  # fmt: skip
                if on_route is not None:
                    on_route(route, result)
                bar.advance(task)
    except KeyboardInterrupt:
        log.warning(
            "interrupted: %s holds %d finished routes; run again with --resume to continue",
            results.path, len(results.records),
        )  # fmt: skip
        raise
    finally:
        metrics = write_run_tables(config.out_dir, routes, chosen, results.records, fresh)
    return EvaluationResult(
        results.path, results.to_json(), tuple(results.records), tuple(chosen), tuple(ran),
        privileged, metrics,
    )  # fmt: skip
