"""The HTML pages: ``report.html`` of one eval folder and the side-by-side comparison of several.
Self-contained: inline CSS, every picture an inline PNG data URI, no script, no link out."""

from __future__ import annotations

import html
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import HarnessError
from harness.io import atomic_write_text
from harness.leaderboard.bench2drive import ABILITIES, Bench2DriveMetrics
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.leaderboard.results import UNIMPLEMENTED_KEY
from harness.leaderboard.statistics import (
    bench2drive_summary,
    global_record,
    is_bench2drive_success,
)
from harness.maps import load_town
from harness.maps.town import Town
from harness.report.figures import ability_figure, bars_figure, per_route_figure, route_figure
from harness.report.inputs import RouteData, RunData, load_run
from harness.routes.interpolate import PlannedRoute, plan_route
from harness.runner.closed_loop import SCORE_COLUMNS, ClosedLoopSummary

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"  # OUT/report.html
CLOSED_LOOP_HEADERS = tuple((c.upper(), c) for c in SCORE_COLUMNS)
"""(column head, score column) of the closed-loop tables, as `harness eval` prints them."""
SCORE_AXIS = (-0.02, 1.02)  # [-] value axis of the per-route closed-loop score plots
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
img{max-width:100%;border:1px solid #ddd;margin:6px 0}
.note{color:#666;font-size:12px}
"""


@dataclass(frozen=True)
class Summary:
    """The headline numbers of one run: the leaderboard's global record (means over the run's
    ``total_routes``, missing routes count 0) and Bench2Drive's success rate over them, as
    `harness eval` prints its global record; statuses and infractions counted over the records;
    every Bench2Drive metric over the route file (None without the route file) and the
    closed-loop means."""

    routes_done: int
    total_routes: int
    ds: float
    rc: float
    ip: float
    success_rate_pct: float
    statuses: dict[str, int]
    infractions: dict[str, int]
    bench2drive: Bench2DriveMetrics | None
    closed_loop: ClosedLoopSummary
    unimplemented: dict[str, list[str]]  # scenario type -> routes that ran without it

    @property
    def ability_rates(self) -> dict[str, float | None]:
        """Ability -> success rate [0, 1] (None: no route tests it, or no Bench2Drive metrics)."""
        if self.bench2drive is None:
            return dict.fromkeys(ABILITIES)
        return self.bench2drive.abilities.rates


@dataclass(frozen=True)
class _Geometry:
    town: Town | None
    planned: PlannedRoute | None


def _geometry(route: RouteData) -> _Geometry:
    """The route's town and planned route (None where the town or route cannot be had)."""
    town_name = route.route.town if route.route is not None else route.record.get("town_name")
    if not town_name:
        return _Geometry(None, None)
    try:
        town = load_town(str(town_name))
    except HarnessError as exc:
        log.warning("report: no map for %s (%s)", town_name, exc)
        return _Geometry(None, None)
    if route.route is None:
        return _Geometry(town, None)
    try:
        return _Geometry(town, plan_route(town, route.route.keypoints, route.route.id))
    except HarnessError as exc:
        log.warning("report: route %s does not plan (%s)", route.route.id, exc)
        return _Geometry(town, None)


def summarise(run: RunData) -> Summary:
    """The run's headline numbers."""
    records = run.records
    glob = global_record(records, run.total_routes)["scores_mean"]
    b2d = bench2drive_summary(records, run.total_routes)
    statuses = Counter(str(r["status"]) for r in records)
    infr = {
        k: sum(len(r.get("infractions", {}).get(k, [])) for r in records) for k in INFRACTION_KEYS
    }
    unimplemented: dict[str, list[str]] = {}
    for r in run.routes:
        for t in r.record.get("meta", {}).get(UNIMPLEMENTED_KEY, ()):
            unimplemented.setdefault(str(t), []).append(r.stem)
    return Summary(
        routes_done=len(records), total_routes=run.total_routes,
        ds=float(glob["score_composed"]), rc=float(glob["score_route"]),
        ip=float(glob["score_penalty"]), success_rate_pct=b2d.success_rate_pct,
        statuses=dict(statuses), infractions=infr, bench2drive=run.bench2drive,
        closed_loop=run.closed_loop, unimplemented=dict(sorted(unimplemented.items())),
    )  # fmt: skip


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns left-aligned. Cells are escaped unless they
    are already markup (``_Raw``)."""

    def cell(tag: str, j: int, v: Any) -> str:
        cls = ' class="l"' if j < left else ""
        text = v.html if isinstance(v, _Raw) else _e(v)
        return f"<{tag}{cls}>{text}</{tag}>"

    out = ["<table><tr>" + "".join(cell("th", j, h) for j, h in enumerate(head)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", j, v) for j, v in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


@dataclass(frozen=True)
class _Raw:
    html: str


def _status(record: dict[str, Any]) -> _Raw:
    cls = "ok" if is_bench2drive_success(record) else "bad"
    return _Raw(f'<span class="{cls}">{_e(record["status"])}</span>')


def _pct(value: float | None, scale: float = 100.0) -> str:
    """A fraction (or with ``scale`` 1 a percentage) as `harness eval` prints it; '-' for None."""
    return "-" if value is None else f"{value * scale:.2f}"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, fmt)


B2D_HEAD = ("routes", "DS", "SR %", "efficiency %", "comfortness %",
            *(a.replace("_", " ") for a in ABILITIES), "ability mean %")  # fmt: skip
"""The columns of `harness eval`'s Bench2Drive table."""


def bench2drive_row(m: Bench2DriveMetrics) -> list[str]:
    """The cells of `harness eval`'s Bench2Drive table for ``m`` (the same text)."""
    rates = m.abilities.rates
    return [
        f"{m.num_records}/{m.total_routes}", f"{m.driving_score:.2f}", _pct(m.success_rate),
        _pct(m.efficiency_pct, 1.0), _pct(m.smoothness), *(_pct(rates[a]) for a in ABILITIES),
        _pct(m.abilities.mean),
    ]  # fmt: skip


def closed_loop_row(means: dict[str, float]) -> list[str]:
    """Every closed-loop score's mean (3 decimals, as `harness eval` prints them)."""
    return [_num(means.get(key)) for _, key in CLOSED_LOOP_HEADERS]


def _bench2drive_html(run: RunData, s: Summary) -> str:
    m = s.bench2drive
    if m is None:
        return ('<p class="note">No Bench2Drive metrics: the folder holds no harness/'
                "bench2drive.json and its route file is gone (they are counted over the route "
                "file). Run the evaluation again to get them.</p>")  # fmt: skip
    parts = [
        f'<p class="note">Over all {m.total_routes} routes of the route file (routes without a '
        f"record count 0 in DS and SR), {_e(run.bench2drive_source)}: the numbers "
        "`harness eval` prints. Efficiency: mean min-speed percentage over the routes that have "
        "one; comfortness: share of comfortable 2 s windows (Bench2Drive's smoothness).</p>",
        _table(B2D_HEAD, [bench2drive_row(m)], left=0),
        "<h3>Abilities</h3>",
        _table(
            ["ability", "successes", "routes", "success rate %"],
            [
                [a, n_ok, n, _pct(m.abilities.rates[a])]
                for a, (n_ok, n) in m.abilities.counts.items()
            ],
        ),  # fmt: skip
    ]
    if m.scenario_types:
        parts += [
            "<h3>Scenario types</h3>",
            _table(
                ["scenario type", "routes", "with a record", "DS", "SR %"],
                [
                    [k, t.routes, t.records, f"{t.driving_score:.2f}", _pct(t.success_rate)]
                    for k, t in m.scenario_types.items()
                ],
            ),
        ]
    if m.abilities.missing:
        ids = ", ".join(rid for _, rid in m.abilities.missing[:12])
        more = len(m.abilities.missing) - 12
        parts.append(
            f'<p class="note">{len(m.abilities.missing)} routes of the route file have no '
            f"record and are left out of the abilities: {_e(ids)}"
            + (f" and {more} more" if more > 0 else "") + "</p>"
        )  # fmt: skip
    parts.append(f'<img alt="abilities" src="{ability_figure({"run": s.ability_rates})}">')
    return "\n".join(parts)


def _closed_loop_html(run: RunData) -> str:
    c = run.closed_loop
    if not c.routes:
        return ('<p class="note">No closed-loop scores (run without --no-closed-loop; routes '
                "shorter than the 4 s horizon get none).</p>")  # fmt: skip
    head = ["routes", "steps", *(h for h, _ in CLOSED_LOOP_HEADERS), "agent plan share"]
    parts = [
        '<p class="note">PDMS / EPDMS of the agent\'s plans every 0.5 s, scored in hindsight '
        "(means over the routes with scored steps, each route weighing the same).</p>",
        _table(
            head,
            [
                [
                    c.routes,
                    c.steps,
                    *closed_loop_row(c.means),
                    _num(c.means.get("agent_plan_share"), ".2f"),
                ]
            ],
            left=0,
        ),  # fmt: skip
        "<h3>Per route</h3>",
    ]
    rows = []
    for r in run.routes:
        cl = r.closed_loop
        if cl is None:
            rows.append([r.stem, "-", *("-" for _ in CLOSED_LOOP_HEADERS), "-"])
            continue
        rows.append([r.stem, str(int(cl.means["steps"])), *closed_loop_row(cl.means),
                     _num(cl.means["agent_plan_share"], ".2f")])  # fmt: skip
    parts.append(_table(["route", "steps", *head[2:]], rows))
    return "\n".join(parts)


def _summary_html(s: Summary) -> str:
    parts = [_table(
        ["routes", "DS", "RC [%]", "IP", "success rate [%]"],
        [[f"{s.routes_done}/{s.total_routes}", f"{s.ds:.3f}", f"{s.rc:.3f}", f"{s.ip:.3f}",
          f"{s.success_rate_pct:.2f}"]],
        left=0,
    )]  # fmt: skip
    parts.append(
        '<p class="note">Leaderboard global record: means over the run\'s routes (routes '
        "without a record count 0).</p>"
    )
    parts.append("<h3>Statuses</h3>")
    parts.append(_table(["status", "routes"], sorted(s.statuses.items())))
    parts.append("<h3>Infractions by kind</h3>")
    parts.append(_table(["kind", "count"], [[k, n] for k, n in s.infractions.items()]))
    if s.unimplemented:
        parts.append("<h3>Scenario types not implemented</h3>")
        parts.append(
            '<p class="note">These routes name scenario types that have no implementation: they '
            "ran without those scenarios, so their scores do not test them.</p>"
        )
        rows = [[t, len(ids), ", ".join(ids)] for t, ids in s.unimplemented.items()]
        parts.append(_table(["type", "scenarios", "routes"], rows))
    return "\n".join(parts)


def _infraction_text(record: dict[str, Any]) -> str:
    parts = [f"{k} x{len(v)}" for k, v in record.get("infractions", {}).items() if v]
    return ", ".join(parts) or "-"


def _routes_table(run: RunData) -> str:
    rows = []
    for r in run.routes:
        rec, sc = r.record, r.record["scores"]
        cl = r.closed_loop.means if r.closed_loop is not None else {}
        rows.append([
            rec["index"], r.stem, rec.get("town_name") or "-", rec.get("scenario_name") or "-",
            _status(rec), f"{float(sc['score_route']):.2f}", f"{float(sc['score_penalty']):.3f}",
            f"{float(sc['score_composed']):.2f}", _pct(r.efficiency_pct, 1.0),
            _pct(r.smoothness), _num(cl.get("pdms")), _num(cl.get("epdms")),
            _infraction_text(rec),
            str(r.video.relative_to(run.out_dir)) if r.video is not None else "-",
        ])  # fmt: skip
    head = ["#", "route", "town", "scenario", "status", "RC [%]", "IP", "DS", "efficiency %",
            "comfortness %", "PDMS", "EPDMS", "infractions", "video"]  # fmt: skip
    return _table(head, rows, left=2)


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def render_report(run: RunData) -> str:
    """The report page of one run."""
    geos = [_geometry(r) for r in run.routes]
    s = summarise(run)
    body = [f"<h1>Evaluation report: {_e(run.out_dir)}</h1>"]
    cfg = run.run.get("config", {})
    if cfg:
        body.append(
            f'<p class="note">agent {_e(cfg.get("agent", "?"))}; routes '
            f"{_e(cfg.get('routes_file', '?'))} (subset {_e(cfg.get('subset') or 'all')}); "
            f"mode {_e(cfg.get('mode', '?'))}; seed {_e(cfg.get('seed', '?'))}"
            + ("; privileged agent: not leaderboard-eligible" if run.privileged else "")
            + "</p>"
        )
    body += ["<h2>Summary</h2>", _summary_html(s)]
    body += ["<h2>Bench2Drive</h2>", _bench2drive_html(run, s)]
    body += ["<h2>Closed-loop PDMS / EPDMS</h2>", _closed_loop_html(run)]
    body += ["<h2>Routes</h2>", _routes_table(run)]
    body.append("<h2>Per route</h2>")
    body.append(
        '<p class="note">Map: grey band the planned route, blue the driven path, orange the '
        "agent's plans, star the goal, markers the infractions at their places. Right: route "
        "completion with each infraction (dashed), the closed-loop PDMS / EPDMS of the plans "
        "made at each time, and the ego speed.</p>"
    )
    for r, g in zip(run.routes, geos, strict=True):
        planned_xy = g.planned.xy if g.planned is not None else None
        body.append(f"<h3>{_e(r.stem)}</h3>")
        body.append(f'<img alt="{_e(r.stem)}" src="{route_figure(r, g.town, planned_xy)}">')
    return _page(f"report {run.name}", body)


def write_report(out_dir: str | Path, target: str | Path | None = None) -> Path:
    """(Re)write ``OUT/report.html`` (or ``target``) from what ``out_dir`` holds (atomic)."""
    run = load_run(out_dir)
    path = Path(target) if target is not None else run.out_dir / REPORT_FILE
    return atomic_write_text(path, render_report(run))


def _per_route(
    runs: Sequence[RunData], names: Sequence[str], value: Callable[[RouteData], float | None]
) -> tuple[list[str], dict[str, NDArray[np.float64]]]:
    """Route ids over all runs (first-seen order) and each run's ``value`` per route (NaN:
    absent or None)."""
    ids: list[str] = []
    for run in runs:
        for r in run.routes:
            if r.stem not in ids:
                ids.append(r.stem)
    table = {}
    for name, run in zip(names, runs, strict=True):
        by = {r.stem: value(r) for r in run.routes}
        table[name] = np.array([np.nan if by.get(i) is None else by[i] for i in ids], np.float64)
    return ids, table


def _route_ds(r: RouteData) -> float:
    return float(r.record["scores"]["score_composed"])


def _route_score(key: str) -> Callable[[RouteData], float | None]:
    def get(r: RouteData) -> float | None:
        return None if r.closed_loop is None else r.closed_loop.means[key]

    return get


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """A distinct column label per run: the shortest trailing part of the folder paths that
    tells them apart ('a', or 'ex_before/a' and 'new/a'), '#k' appended if nothing does."""
    paths = [run.out_dir.resolve().parts for run in runs]
    for depth in range(1, max((len(p) for p in paths), default=1) + 1):
        labels = ["/".join(p[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{run.name} #{k + 1}" for k, run in enumerate(runs)]


def _b2d_cell(k: int) -> Callable[[Summary], str]:
    def get(s: Summary) -> str:
        return "-" if s.bench2drive is None else bench2drive_row(s.bench2drive)[k]

    return get


def _closed_cell(key: str) -> Callable[[Summary], str]:
    def get(s: Summary) -> str:
        return _num(s.closed_loop.means.get(key)) if s.closed_loop.routes else "-"

    return get


def _per_route_section(
    runs: Sequence[RunData], names: Sequence[str], title: str, ylabel: str,
    value: Callable[[RouteData], float | None], fmt: str, ylim: tuple[float, float],
) -> list[str]:  # fmt: skip
    ids, table = _per_route(runs, names, value)
    if not ids or all(np.isnan(v).all() for v in table.values()):
        return []
    out = [f"<h2>{_e(title)}</h2>", _table(["route", *names], [
        [rid, *("-" if np.isnan(table[n][i]) else format(table[n][i], fmt) for n in names)]
        for i, rid in enumerate(ids)
    ])]  # fmt: skip
    out.append(f'<img alt="{_e(title)}" src="' + per_route_figure(
        [i.removeprefix("RouteScenario_") for i in ids], {n: v.tolist() for n, v in table.items()},
        ylabel, title, ylim,
    ) + '">')  # fmt: skip
    return out


def render_comparison(runs: Sequence[RunData]) -> str:
    """Runs side by side: headline numbers, every Bench2Drive metric and ability, the
    closed-loop means, infractions by kind, DS and PDMS / EPDMS per route."""
    names = run_labels(runs)
    sums = {n: summarise(run) for n, run in zip(names, runs, strict=True)}
    body = ["<h1>Comparison of " + ", ".join(_e(n) for n in names) + "</h1>"]
    body.append(
        _table(["run", "folder"], [[n, run.out_dir] for n, run in zip(names, runs, strict=True)])
    )
    metrics: list[tuple[str, Callable[[Summary], str]]] = [
        ("routes", lambda s: f"{s.routes_done}/{s.total_routes}"),
        ("DS", lambda s: f"{s.ds:.3f}"), ("RC [%]", lambda s: f"{s.rc:.3f}"),
        ("IP", lambda s: f"{s.ip:.3f}"),
        ("success rate [%]", lambda s: f"{s.success_rate_pct:.2f}"),
    ]  # fmt: skip
    metrics += [(f"Bench2Drive {h}", _b2d_cell(k)) for k, h in enumerate(B2D_HEAD)]
    metrics.append(("closed-loop routes", lambda s: str(s.closed_loop.routes)))
    metrics += [(f"closed-loop {h}", _closed_cell(key)) for h, key in CLOSED_LOOP_HEADERS]
    body.append("<h2>Summary</h2>")
    body.append(
        '<p class="note">DS / RC / IP / success rate: leaderboard means over each run\'s routes; '
        "Bench2Drive: over the route file's routes, as `harness eval` prints them; closed-loop: "
        "means over the routes with scored steps.</p>"
    )
    body.append(_table(["metric", *names], [[m, *(f(sums[n]) for n in names)] for m, f in metrics]))
    body.append("<h2>Abilities (success rate %)</h2>")
    body.append(
        _table(
            ["ability", *names],
            [[a, *(_pct(sums[n].ability_rates[a]) for n in names)] for a in ABILITIES],
        )
    )
    body.append(
        f'<img alt="abilities" src="{ability_figure({n: sums[n].ability_rates for n in names})}">'
    )
    body.append("<h2>Infractions by kind</h2>")
    body.append(
        _table(
            ["kind", *names],
            [[k, *(sums[n].infractions[k] for n in names)] for k in INFRACTION_KEYS],
        )
    )
    kinds = [k for k in INFRACTION_KEYS if any(sums[n].infractions[k] for n in names)]
    if kinds:
        body.append('<img alt="infractions" src="' + bars_figure(
            kinds, {n: [sums[n].infractions[k] for k in kinds] for n in names}, "count",
            "infractions by kind") + '">')  # fmt: skip
    body += _per_route_section(
        runs, names, "Driving score per route", "DS", _route_ds, ".2f", (-2.0, 102.0)
    )
    body += _per_route_section(runs, names, "Closed-loop PDMS per route", "PDMS",
                               _route_score("pdms"), ".3f", SCORE_AXIS)  # fmt: skip
    body += _per_route_section(runs, names, "Closed-loop EPDMS per route", "EPDMS",
                               _route_score("epdms"), ".3f", SCORE_AXIS)  # fmt: skip
    return _page("comparison", body)


def write_comparison(dirs: Sequence[str | Path], out: str | Path) -> Path:
    """The comparison page of the eval folders ``dirs`` to ``out`` (atomic)."""
    return atomic_write_text(Path(out), render_comparison([load_run(d) for d in dirs]))
