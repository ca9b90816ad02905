"""R24's pictures: plots of the report (matplotlib, PNG or SVG) and the one HTML page an
operator opens in a browser. Presentation only; the numbers are the report's."""

from __future__ import annotations

import base64
import io
from enum import StrEnum
from html import escape

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from domain.analytics import Report, SatisfactionMean

FLAGGED_COLOUR, NORMAL_COLOUR = "#c0392b", "#2c7fb8"
MAX_BARS = 30


class Plot(StrEnum):
    RETURN_RATE_BY_BATCH = "return_rate_by_batch"
    SLA_COMPLIANCE = "sla_compliance"
    REASONS = "reasons"
    SATISFACTION_TREND = "satisfaction_trend"


class ImageFormat(StrEnum):
    PNG = "png"
    SVG = "svg"


MEDIA_TYPES = {ImageFormat.PNG: "image/png", ImageFormat.SVG: "image/svg+xml"}


def _nothing_yet(axes: Axes) -> None:
    axes.set_yticks([])
    axes.text(0.5, 0.5, "nothing to show for these filters yet", ha="center", va="center",
              transform=axes.transAxes)  # fmt: skip


def _bars(
    figure: Figure, labels: list[str], values: list[float], colours: list[str] | str,
    *, title: str, xlabel: str,
) -> Axes:  # fmt: skip
    """Horizontal bars, the first on top."""
    axes = figure.subplots()
    axes.barh(labels, values, color=colours)
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    if not labels:
        _nothing_yet(axes)
    return axes


def _return_rates(report: Report, figure: Figure) -> None:
    flagged = {(f.sku, f.batch) for f in report.flagged_batches}
    rows = [r for r in report.by_batch if r.rate is not None]
    # The flagged first, then the highest rates: what a person looks at first.
    rows.sort(key=lambda r: ((r.sku, r.batch) not in flagged, -(r.rate or 0)))
    rows = rows[:MAX_BARS]
    labels = [f"{r.sku}/{r.batch}" for r in rows]
    colours = [FLAGGED_COLOUR if (r.sku, r.batch) in flagged else NORMAL_COLOUR for r in rows]
    _bars(figure, labels, [100 * (r.rate or 0) for r in rows], colours,
          title="Return rate by batch",
          xlabel="returned units per 100 delivered (red: flagged by the batch alarm)")  # fmt: skip


def _sla(report: Report, figure: Figure) -> None:
    rows = [r for r in report.sla if r.share_met is not None]
    axes = _bars(figure, [f"{r.rule}: {r.what}" for r in rows],
                 [100 * (r.share_met or 0) for r in rows], NORMAL_COLOUR,
                 title="SLA compliance per rule", xlabel="% met within the deadline")  # fmt: skip
    axes.set_xlim(0, 100)


def _reasons(report: Report, figure: Figure) -> None:
    counts: dict[str, int] = {}
    for row in report.reasons:
        counts[row.reason] = counts.get(row.reason, 0) + row.cases
    _bars(figure, list(counts), [float(n) for n in counts.values()], NORMAL_COLOUR,
          title="Cases by reason", xlabel="cases")  # fmt: skip


def _satisfaction_trend(report: Report, figure: Figure) -> None:
    axes = figure.subplots()
    by_dimension: dict[str, list[SatisfactionMean]] = {}
    # Weeks as positions, labelled by their Monday: every week answered gets a place.
    weeks = sorted({point.week for point in report.satisfaction_weekly_mean})
    for point in report.satisfaction_weekly_mean:
        by_dimension.setdefault(point.dimension, []).append(point)
    for dimension, points in by_dimension.items():
        axes.plot([weeks.index(p.week) for p in points], [p.mean_score for p in points], marker="o",
                  label=dimension)  # fmt: skip
    axes.set_ylim(0.8, 4.2)  # a margin, so a mean of 1 or 4 is not cut by the frame
    axes.set_yticks([1, 2, 3, 4], ["very dissatisfied", "dissatisfied", "satisfied",
                                   "very satisfied"])  # fmt: skip
    axes.set_xlabel("week (Monday, UTC)")
    axes.set_title("Satisfaction (R25): mean score per week and dimension")
    if by_dimension:
        axes.set_xticks(range(len(weeks)), [w.isoformat() for w in weeks], rotation=30)
        axes.legend(loc="lower left")
    else:
        _nothing_yet(axes)


_DRAW = {Plot.RETURN_RATE_BY_BATCH: _return_rates, Plot.SLA_COMPLIANCE: _sla,
         Plot.REASONS: _reasons, Plot.SATISFACTION_TREND: _satisfaction_trend}  # fmt: skip


def render_plot(report: Report, plot: Plot, image_format: ImageFormat) -> bytes:
    # Figure, not pyplot: no global state, so requests in parallel draw their own.
    figure = Figure(figsize=(9, 5), layout="constrained")
    _DRAW[plot](report, figure)
    out = io.BytesIO()
    figure.savefig(out, format=image_format.value, dpi=100)
    return out.getvalue()


def _table(headers: list[str], rows: list[list[str]], *, css: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{(css or [""] * len(rows))[i]}">'
        + "".join(f"<td>{escape(cell)}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _percent(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.2f}%"


def _hours(hours: float | None) -> str:
    return "" if hours is None else f"{hours:.1f} h"


def report_html(report: Report) -> str:
    """One page: the flagged batches first, the plots inline (PNG, so the page needs no
    second authenticated request), then the tables."""
    plots = "".join(
        f'<img class="plot" alt="{escape(plot.value)}" src="data:image/png;base64,'
        f'{base64.b64encode(render_plot(report, plot, ImageFormat.PNG)).decode()}">'
        for plot in Plot
    )
    flagged_keys = {(f.sku, f.batch) for f in report.flagged_batches}
    flagged = _table(
        ["SKU", "batch", "returned", "delivered", "rate", "SKU baseline", "p-value"],
        [[f.sku, f.batch, str(f.returns), str(f.units), _percent(f.rate),
          _percent(f.baseline_rate), f"{f.p_value:.1e}" if f.p_value is not None else ""]
         for f in report.flagged_batches],
        css=["flagged"] * len(report.flagged_batches),
    )  # fmt: skip
    batches = _table(
        ["SKU", "batch", "returned", "delivered", "rate"],
        [[r.sku, r.batch or "", str(r.returned), str(r.delivered), _percent(r.rate)]
         for r in report.by_batch],
        css=["flagged" if (r.sku, r.batch) in flagged_keys else "" for r in report.by_batch],
    )  # fmt: skip
    sla = _table(
        ["rule", "what", "deadline", "met", "breached", "share met"],
        [[r.rule, r.what, _hours(r.deadline_hours), str(r.met), str(r.breached),
          _percent(r.share_met)] for r in report.sla],
    )  # fmt: skip
    resolve = _table(
        ["kind", "reason", "closed", "p50", "p90"],
        [[r.kind, r.reason, str(r.closed_cases), _hours(r.p50_hours), _hours(r.p90_hours)]
         for r in report.time_to_resolve],
    )  # fmt: skip
    money = _table(
        ["action", "currency", "movements", "amount (minor units)"],
        [[m.action, m.currency, str(m.movements), str(m.amount_minor)] for m in report.money],
    )
    satisfaction = _table(
        ["week", "dimension", "answers", "mean score (1-4)"],
        [[m.week.isoformat(), m.dimension, str(m.answers), f"{m.mean_score:.2f}"]
         for m in report.satisfaction_weekly_mean],
    )  # fmt: skip
    shown = ", ".join(f"{k}={v}" for k, v in report.filters.model_dump(exclude_none=True).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aftersales: returns report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }}
tr.flagged td {{ background: #fdecea; color: {FLAGGED_COLOUR}; font-weight: bold; }}
img.plot {{ max-width: 48%; margin: 0.5em; border: 1px solid #eee; }}
</style></head><body>
<h1>Returns report (R24)</h1>
<p>Filters: {escape(shown) or "none (everything)"}</p>
<h2 id="flagged">Flagged batches: {len(report.flagged_batches)}</h2>{flagged}
<div id="plots">{plots}</div>
<h2>Return rate by batch</h2>{batches}
<h2>SLA compliance per rule</h2>{sla}
<h2>Time to resolve</h2>{resolve}
<h2>Money</h2>{money}
<h2>Satisfaction per week (R25)</h2>{satisfaction}
</body></html>"""
