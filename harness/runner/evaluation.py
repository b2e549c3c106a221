"""All routes of a route file (or a subset), each ``repetitions`` times: run them in this process,
in a pool of worker processes (``workers``) or on Ray actors (``ray_address``), commit
``OUT/results.json`` (leaderboard format, atomic) in record-index order, and resume an
interrupted run from that file. Every selected route must load and plan before the first one
runs; a resume must match the fingerprint in ``harness/run.json`` (see ``RunConfig.identity``;
the number of workers and Ray are not part of it: results are the same whatever runs them).

Records are committed in index order: a route that finishes before a lower-indexed one still
running is kept in memory until the gap closes, so results.json always holds records 0 .. k-1
and ``progress[0] = k``, as the leaderboard writes it, and a resume (the leaderboard's rule:
restart at ``progress[0]``) re-runs only what was not committed. A route that ends "Failed -
Agent crashed", "Failed - Simulation crashed" or "Failed - Agent couldn't be set up", or whose
worker process / Ray actor is lost, runs once more; a second loss records it as "Failed -
Simulation crashed" and the run goes on.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.errors import ConfigError, MapLoadError, RouteFileError, UnknownTownError
from harness.fingerprint import fingerprint_diff
from harness.io import atomic_write_json
from harness.leaderboard.agent import is_privileged
from harness.leaderboard.bench2drive import Bench2DriveMetrics, run_stamp, sensor_icons
from harness.leaderboard.loader import load_agent
from harness.leaderboard.outcome import (
    FAILURE_AGENT_INIT,
    FAILURE_AGENT_RUNTIME,
    FAILURE_SIMULATION,
    failed_status,
)
from harness.leaderboard.results import (
    ResultsFile,
    RouteRecord,
    resume_plan,
)
from harness.maps import load_town
from harness.routes.interpolate import plan_route
from harness.routes.model import RouteConfig
from harness.routes.xml_io import read_route_file
from harness.runner.backends import ServerGuard, backend_session, prepare_for_workers
from harness.runner.config import RunConfig
from harness.runner.pool import Done, InlinePool, Pool, ProcessPool, WorkerSpec
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

MAX_ATTEMPTS = (
    2  # a route whose agent / simulator crashed, or whose worker was lost, runs again once
)
RETRIED_STATUSES = frozenset(
    failed_status(r) for r in (FAILURE_AGENT_RUNTIME, FAILURE_SIMULATION, FAILURE_AGENT_INIT)
)
"""Record statuses that count as a crash (the route is run once more)."""
PROGRESS_REFRESH_S = 0.25  # [s] how often the progress bar redraws while routes run


@dataclass(frozen=True)
class EvaluationResult:
    """The state of a run when :func:`run_evaluation` returns: every record so far (resumed ones
    included), the results file, and which record indices ran in this call."""

    results_path: Path
    results: dict[str, Any]  # the results.json content
    records: tuple[RouteRecord, ...]
    routes: tuple[RouteConfig, ...]  # the route of every record index (repetitions repeat it)
    ran: tuple[int, ...]
    privileged: bool
    bench2drive: Bench2DriveMetrics | None = None

    @property
    def global_record(self) -> dict[str, Any]:
        gr: dict[str, Any] = self.results["_checkpoint"]["global_record"]
        return gr


class RouteWorker:
    """Runs routes of one evaluation in one process (this one, a pool worker or a Ray actor):
    loads the agent class by name or path once and keeps one :class:`RouteRunner`."""

    def __init__(self, config: RunConfig) -> None:
        agent_cls, _ = load_agent(config.agent)
        self.runner = RouteRunner(config, agent_cls)

    def run(self, job: RouteJob) -> RouteResult:
        return self.runner.run(job)


def route_jobs(
    config: RunConfig, chosen: list[RouteConfig], selection: tuple[int, ...]
) -> list[RouteJob]:
    """The run's jobs in record-index order: each selected route, ``config.repetitions`` times in
    a row (the leaderboard's route indexer order), each repetition with its own seed."""
    reps = config.repetitions
    return [
        RouteJob(
            k * reps + rep, selection[k], route, route_seed(config.seed, selection[k], rep), rep
        )
        for k, route in enumerate(chosen)
        for rep in range(reps)
    ]


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


def make_pool(config: RunConfig, jobs: int) -> Pool:
    """Where the routes run: Ray actors with ``config.ray_address``; else ``config.workers``
    forked processes (at most one per job) when more than one; else this process."""
    spec = WorkerSpec(RouteWorker, (config,))
    if config.ray_address is not None:
        from harness.runner.ray_pool import RayPool

        prepare_for_workers(config.backend)  # the kernels are in numba's cache for the actors
        return RayPool(spec, config.workers, config.ray_address)
    size = min(config.workers or 1, jobs)
    if size > 1:
        prepare_for_workers(config.backend)
        return ProcessPool(spec, size)
    return InlinePool(spec)


class EvalProgress:
    """The live progress bar on stderr: routes done / total, the running mean DS of the finished
    routes, elapsed time, ETA and the routes in flight. With ``threaded`` False it is redrawn
    only by :meth:`update` from the scheduling loop: no refresh thread runs while the process
    pool forks workers (at its start and to replace a lost one)."""

    def __init__(self, enabled: bool, total: int, done: int, threaded: bool = True) -> None:
        self.bar = Progress(
            TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("DS {task.fields[ds]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), TextColumn("{task.description}"),
            console=Console(stderr=True), disable=not enabled, transient=False,
            auto_refresh=threaded,
        )  # fmt: skip
        self.total = total
        self.task: TaskID = self.bar.add_task("", total=total, completed=done, ds="-")

    def update(self, done: int, scores: list[float], running: list[str]) -> None:
        """Show ``done`` routes finished, the mean of ``scores`` (DS) and ``running`` routes."""
        ds = f"{sum(scores) / len(scores):.2f}" if scores else "-"
        shown = ", ".join(running[:3]) + (f" +{len(running) - 3}" if len(running) > 3 else "")
        self.bar.update(self.task, completed=done, ds=ds, description=shown)
        self.bar.refresh()


def _is_crash(result: RouteResult) -> bool:
    return result.record.status in RETRIED_STATUSES


def run_evaluation(
    config: RunConfig,
    *,
    progress: bool = False,
    on_route: RouteCallback | None = None,
) -> EvaluationResult:
    """Run (or resume) the evaluation described by ``config``.

    Bad input (route file, subset, agent path, a results.json of another run, invalid agent
    sensors) raises a HarnessError; route-level failures become route statuses. ``on_route`` is
    called after each route is committed (in record-index order); ``progress`` shows the live
    progress bar on stderr.
    """
    routes, selection = select_routes(config)
    check_routes_runnable(routes, selection)
    agent_cls, _ = load_agent(config.agent)
    chosen = [routes[i] for i in selection]
    jobs = route_jobs(config, chosen, selection)
    with backend_session(config.backend) as (live, guard):  # a launched server lives as long
        return _evaluate(replace(config, backend=live), guard, agent_cls, routes, jobs, progress,
                         on_route)  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: a context may swallow)


def _evaluate(
    config: RunConfig,
    guard: ServerGuard,
    agent_cls: type,
    routes: list[RouteConfig],
    jobs: list[RouteJob],
    progress: bool,
    on_route: RouteCallback | None,
) -> EvaluationResult:
    """The run proper, with the backend ready (see :func:`run_evaluation`)."""
    privileged = is_privileged(agent_cls)
    results, todo = open_results(config, [j.save_name for j in jobs])
    stamp = (_stored_stamp(config) if results.records else None) or run_stamp()
    jobs = [replace(j, stamp=stamp) for j in jobs]
    _write_run_file(config, privileged, stamp)
    results.privileged = privileged
    fresh: dict[int, list[InfractionRow]] = {}
    ran: list[int] = []
    forks = config.ray_address is None and min(config.workers or 1, len(todo)) > 1
    bar = EvalProgress(progress, len(jobs), len(jobs) - len(todo), threaded=not forks)

    def commit(result: RouteResult) -> None:
        job = jobs[result.record.index]
        if result.sensors and not results.sensors:
            results.sensors = sensor_icons(result.sensors)
        fresh[job.index] = outcome_infraction_rows(
            job.index, job.route.id, result.record.route_id, result.outcome
        )
        results.commit(result.record)
        ran.append(job.index)
        log.info(
            "route %s: %s, DS %.2f", job.save_name, result.record.status,
            result.record.scores.score_composed,
        )  # fmt: skip
        if on_route is not None:
            on_route(job.route, result)

    try:
        with bar.bar:
            if todo:
                _schedule(config, [jobs[i] for i in todo], RouteRunner(config, agent_cls),
                          commit, bar, results, guard)  # fmt: skip
    except KeyboardInterrupt:
        log.warning(
            "interrupted: %s holds %d finished routes; run again with --resume to continue",
            results.path, len(results.records),
        )  # fmt: skip
        raise
    finally:
        metrics = write_run_tables(
            config.out_dir, routes, [j.route for j in jobs], results.records, fresh
        )
    return EvaluationResult(
        results.path, results.to_json(), tuple(results.records), tuple(j.route for j in jobs),
        tuple(ran), privileged, metrics,
    )  # fmt: skip


def _schedule(
    config: RunConfig,
    todo: list[RouteJob],
    runner: RouteRunner,
    commit: Callable[[RouteResult], None],
    bar: EvalProgress,
    results: ResultsFile,
    guard: ServerGuard | None = None,
) -> None:
    """Run ``todo`` (in index order) on the pool, retry crashes once, and ``commit`` results in
    index order as the gaps close. Before each route ``guard`` makes sure a supervised CARLA
    server is healthy (restarted after it died or hung: the crashed route runs again on it)."""
    queue = list(todo)  # next to submit, in index order (retries go to the front)
    order = [j.index for j in todo]  # commit order
    finished: dict[int, RouteResult] = {}  # done but waiting for a lower index
    attempts = dict.fromkeys(order, 0)
    running: dict[int, RouteJob] = {}
    pool = make_pool(config, len(todo))
    try:
        while order:
            while queue and len(running) < pool.capacity:
                job = queue.pop(0)
                if guard is not None and guard.ensure():
                    log.warning("route %s runs on a restarted CARLA server", job.save_name)
                attempts[job.index] += 1
                running[job.index] = job
                pool.submit(job.index, job)
            for done in pool.wait(PROGRESS_REFRESH_S):
                job = running.pop(int(done.key))  # type: ignore[call-overload]
                result = _settle(done, job, runner, attempts[job.index])
                if result is None:
                    queue.insert(0, job)
                    continue
                finished[job.index] = result
            while order and order[0] in finished:
                commit(finished.pop(order.pop(0)))
            scores = [r.scores.score_composed for r in results.records]
            scores += [r.record.scores.score_composed for r in finished.values()]
            bar.update(
                bar.total - len(order) + len(finished), scores,
                [running[i].save_name for i in sorted(running)],
            )  # fmt: skip
    finally:
        pool.close()


def _settle(done: Done, job: RouteJob, runner: RouteRunner, attempt: int) -> RouteResult | None:
    """The result to keep for a finished attempt, or None to run the route again."""
    if done.lost:
        if attempt < MAX_ATTEMPTS:
            log.warning("route %s: its worker was lost; running it again", job.save_name)
            return None
        log.warning("route %s: its worker was lost twice -> %s", job.save_name,
                    failed_status(FAILURE_SIMULATION))  # fmt: skip
        return runner.failed(job, FAILURE_SIMULATION)
    result: RouteResult = done.value
    if _is_crash(result) and attempt < MAX_ATTEMPTS:
        log.warning("route %s: %s; running it again", job.save_name, result.record.status)
        return None
    return result
