"""The route runner and leaderboard-style evaluation (``harness eval``).

Modules: ``config`` (RunConfig, Mode, penalty choices), ``subset`` (``--routes-subset``
parsing), ``steps`` (per-step metrics Parquet), ``route_runner`` (RouteRunner: one route end to
end), ``evaluation`` (run_evaluation: all routes, results.json in record-index order, resume,
retries), ``pool`` / ``ray_pool`` (where routes run: this process, forked workers, Ray actors),
``town_routes`` (routes generated for ``--town``).
"""

from harness.runner.config import PENALTY_TABLES, Mode, RunConfig
from harness.runner.evaluation import EvaluationResult, run_evaluation, select_routes
from harness.runner.route_runner import RouteJob, RouteResult, RouteRunner, route_seed
from harness.runner.steps import StepLog
from harness.runner.subset import parse_subset

__all__ = [
    "PENALTY_TABLES", "EvaluationResult", "Mode", "RouteJob", "RouteResult", "RouteRunner",
    "RunConfig", "StepLog", "parse_subset", "route_seed", "run_evaluation", "select_routes",
]  # fmt: skip
