"""The HTML pages: ``report.html`` of one eval folder and the side-by-side comparison of several.
Self-contained: inline CSS, every picture an inline PNG data URI, no script, no link out."""

from __future__ import annotations

import html
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import HarnessError
from harness.io import atomic_write_text
from harness.leaderboard.outcome import INFRACTION_KEYS
from harness.leaderboard.statistics import (
    bench2drive_summary,
    global_record,
    is_bench2drive_success,
)
from harness.maps import load_town
from harness.maps.town import Town
from harness.report.abilities import (
    ABILITIES,
    JUNCTION_MARGIN_POINTS,
    AbilityRoute,
    AbilityScore,
    ability_scores,
    mean_ability_rate,
    scenario_type_of,
)
from harness.report.figures import ability_figure, bars_figure, per_route_figure, route_figure
from harness.report.inputs import RouteData, RunData, load_run
from harness.routes.interpolate import PlannedRoute, plan_route

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"  # OUT/report.html
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
    """The headline numbers of one run (leaderboard means over ``total_routes``, missing routes
    count 0; Bench2Drive DS / SR; statuses and infractions counted over the records)."""

    routes_done: int
    total_routes: int
    ds: float
    rc: float
    ip: float
    b2d_ds: float
    success_rate_pct: float
    statuses: dict[str, int]
    infractions: dict[str, int]
    abilities: dict[str, AbilityScore]

    @property
    def ability_mean(self) -> float | None:
        return mean_ability_rate(self.abilities)


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


def junction_fraction(town: Town, planned: PlannedRoute) -> float | None:
    """Fraction of the 1 m route up to its first junction point + Bench2Drive's margin."""
    in_junction = town.lanes.junction_id[planned.lane] >= 0
    if not in_junction.any():
        return None
    count = int(np.argmax(in_junction)) + 1
    return (count + JUNCTION_MARGIN_POINTS) / float(len(planned.lane))


def _ability_route(route: RouteData, geo: _Geometry | None) -> AbilityRoute:
    kind = None
    if route.route is not None and route.route.scenarios:
        kind = route.route.scenarios[0].type
    if kind is None:
        kind = scenario_type_of(route.record.get("scenario_name"))
    frac = None
    if geo is not None and geo.town is not None and geo.planned is not None:
        frac = junction_fraction(geo.town, geo.planned)
    return AbilityRoute(route.record, kind, frac)


def summarise(run: RunData, geometry: Sequence[_Geometry | None] | None = None) -> Summary:
    """The run's headline numbers."""
    records = run.records
    glob = global_record(records, run.total_routes)["scores_mean"]
    b2d = bench2drive_summary(records, run.total_routes)
    statuses = Counter(str(r["status"]) for r in records)
    infr = {
        k: sum(len(r.get("infractions", {}).get(k, [])) for r in records) for k in INFRACTION_KEYS
    }
    geos = geometry if geometry is not None else [None] * len(run.routes)
    abilities = ability_scores(
        [_ability_route(r, g) for r, g in zip(run.routes, geos, strict=True)]
    )
    return Summary(
        routes_done=len(records), total_routes=run.total_routes,
        ds=float(glob["score_composed"]), rc=float(glob["score_route"]),
        ip=float(glob["score_penalty"]), b2d_ds=b2d.driving_score,
        success_rate_pct=b2d.success_rate_pct, statuses=dict(statuses), infractions=infr,
        abilities=abilities,
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


def _rate(s: AbilityScore) -> str:
    return "n/a" if s.rate is None else f"{100.0 * s.rate:.1f}"


def _summary_html(s: Summary) -> str:
    parts = [_table(
        ["routes", "DS", "RC [%]", "IP", "Bench2Drive DS", "success rate [%]", "ability mean [%]"],
        [[f"{s.routes_done}/{s.total_routes}", f"{s.ds:.3f}", f"{s.rc:.3f}", f"{s.ip:.3f}",
          f"{s.b2d_ds:.3f}", f"{s.success_rate_pct:.2f}",
          "n/a" if s.ability_mean is None else f"{100.0 * s.ability_mean:.2f}"]],
        left=0,
    )]  # fmt: skip
    parts.append("<h3>Statuses</h3>")
    parts.append(_table(["status", "routes"], sorted(s.statuses.items())))
    parts.append("<h3>Infractions by kind</h3>")
    parts.append(_table(["kind", "count"], [[k, n] for k, n in s.infractions.items()]))
    parts.append("<h3>Abilities</h3>")
    parts.append(_table(
        ["ability", "successes", "routes", "success rate [%]"],
        [[a, sc.successes, sc.routes, _rate(sc)] for a, sc in s.abilities.items()],
    ))  # fmt: skip
    parts.append(f'<img alt="abilities" src="{ability_figure({"run": s.abilities})}">')
    return "\n".join(parts)


def _infraction_text(record: dict[str, Any]) -> str:
    parts = [f"{k} x{len(v)}" for k, v in record.get("infractions", {}).items() if v]
    return ", ".join(parts) or "-"


def _routes_table(run: RunData) -> str:
    rows = []
    for r in run.routes:
        rec, sc = r.record, r.record["scores"]
        rows.append([
            rec["index"], r.stem, rec.get("town_name") or "-", rec.get("scenario_name") or "-",
            _status(rec), f"{float(sc['score_route']):.2f}", f"{float(sc['score_penalty']):.3f}",
            f"{float(sc['score_composed']):.2f}", _infraction_text(rec),
            str(r.video.relative_to(run.out_dir)) if r.video is not None else "-",
        ])  # fmt: skip
    head = [
        "#",
        "route",
        "town",
        "scenario",
        "status",
        "RC [%]",
        "IP",
        "DS",
        "infractions",
        "video",
    ]
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
    s = summarise(run, geos)
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
    body += ["<h2>Summary</h2>", _summary_html(s), "<h2>Routes</h2>", _routes_table(run)]
    body.append("<h2>Per route</h2>")
    body.append(
        '<p class="note">Map: grey band the planned route, blue the driven path, orange the '
        "agent's plans, star the goal, markers the infractions at the places their messages name. "
        "Right: route completion with each infraction (dashed) and the ego speed.</p>"
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


def _route_ds(
    runs: Sequence[RunData], names: Sequence[str]
) -> tuple[list[str], dict[str, NDArray[np.float64]]]:
    """Route ids over all runs (first-seen order) and each run's DS per route (NaN: absent)."""
    ids: list[str] = []
    for run in runs:
        for r in run.routes:
            if r.stem not in ids:
                ids.append(r.stem)
    table = {}
    for name, run in zip(names, runs, strict=True):
        by = {r.stem: float(r.record["scores"]["score_composed"]) for r in run.routes}
        table[name] = np.array([by.get(i, np.nan) for i in ids])
    return ids, table


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """A distinct column label per run: the shortest trailing part of the folder paths that
    tells them apart ('a', or 'ex_before/a' and 'new/a'), '#k' appended if nothing does."""
    paths = [run.out_dir.resolve().parts for run in runs]
    for depth in range(1, max((len(p) for p in paths), default=1) + 1):
        labels = ["/".join(p[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{run.name} #{k + 1}" for k, run in enumerate(runs)]


def render_comparison(runs: Sequence[RunData]) -> str:
    """Runs side by side: headline numbers, abilities, infractions by kind, DS per route."""
    names = run_labels(runs)
    sums = {n: summarise(run) for n, run in zip(names, runs, strict=True)}
    body = ["<h1>Comparison of " + ", ".join(_e(n) for n in names) + "</h1>"]
    body.append(
        _table(["run", "folder"], [[n, run.out_dir] for n, run in zip(names, runs, strict=True)])
    )
    metrics = [
        ("routes", lambda s: f"{s.routes_done}/{s.total_routes}"),
        ("DS", lambda s: f"{s.ds:.3f}"), ("RC [%]", lambda s: f"{s.rc:.3f}"),
        ("IP", lambda s: f"{s.ip:.3f}"), ("Bench2Drive DS", lambda s: f"{s.b2d_ds:.3f}"),
        ("success rate [%]", lambda s: f"{s.success_rate_pct:.2f}"),
        ("ability mean [%]", lambda s: "n/a" if s.ability_mean is None else f"{100 * s.ability_mean:.2f}"),
    ]  # fmt: skip
    body.append("<h2>Summary</h2>")
    body.append(_table(["metric", *names], [[m, *(f(sums[n]) for n in names)] for m, f in metrics]))
    body.append("<h2>Abilities (success rate [%])</h2>")
    body.append(
        _table(
            ["ability", *names],
            [[a, *(_rate(sums[n].abilities[a]) for n in names)] for a in ABILITIES],
        )
    )
    body.append(
        f'<img alt="abilities" src="{ability_figure({n: sums[n].abilities for n in names})}">'
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
    ids, ds = _route_ds(runs, names)
    body.append("<h2>Driving score per route</h2>")
    body.append(_table(["route", *names], [
        [rid, *("-" if np.isnan(ds[n][i]) else f"{ds[n][i]:.2f}" for n in names)]
        for i, rid in enumerate(ids)
    ]))  # fmt: skip
    if ids:
        body.append('<img alt="DS per route" src="' + per_route_figure(
            [i.removeprefix("RouteScenario_") for i in ids], {n: v.tolist() for n, v in ds.items()}, "DS",
            "driving score per route",
        ) + '">')  # fmt: skip
    return _page("comparison", body)


def write_comparison(dirs: Sequence[str | Path], out: str | Path) -> Path:
    """The comparison page of the eval folders ``dirs`` to ``out`` (atomic)."""
    return atomic_write_text(Path(out), render_comparison([load_run(d) for d in dirs]))
