"""Charts of the board as server-rendered SVG: no script, no library, no request of their own.

A chart is drawn from exactly the rows its panel shows (``apis.Shown.rows``, the panel's API query), so it equals
the table beside it and the panel's CSV by construction. Every mark carries the row it came from (``data-point``),
the key it reads (``data-series``) and the value as the API gave it (``data-datum``, JSON): a test reads them back
and compares them with the rows. Marks of a row whose value is null have no height (``data-datum="null"``). A
chart with many marks draws each series as one path whose ``data-data`` is the JSON list of its values, point by
point; a chart with ``by`` draws one point per value of that key, the sum of its rows (the test sums the rows). (Not
``data-row``, ``data-key``, ``data-value``: those mark the table's cells, which tests read off the panel.)

Kinds: ``bar`` (grouped bars, one group per row), ``stacked`` (the series of a row stacked), ``line`` (one line
per series across the rows). The axes' ticks are in the locale's number format (Babel); the words go through
``i18n.word``; ``role="img"`` with ``aria-label``, ``<title>`` and ``<desc>``; the series differ in lightness and
in hatching/dashes, so a grey-scale print still tells them apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from babel.numbers import format_compact_decimal, format_decimal
from markupsafe import Markup, escape

from services.web import i18n
from services.web.catalogs import N_
from services.web.formats import locale_of
from services.web.pages.production import FLOW
from services.web.panels import Column, value_at

Kind = Literal["bar", "stacked", "line"]
W, H = 640, 260  # the drawing's own units; CSS scales it to the panel's width
NARROW = 400  # a chart in a panel a third of the page wide
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 28, 56  # TOP: below one row of the legend
LEGEND_ROW = 16
# dark to light, so grey-scale keeps the order; each series also has its own hatching or dashes
COLOURS = ("#1f3b73", "#d9822b", "#7fb3d5", "#3d8c40", "#8e5ea2", "#c9c9c9")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
LABEL_CHARS = 14  # a longer row label is cut (its whole text is in the mark's <title>)
MAX_BAR = 64  # a bar is never wider (a few rows would make slabs)
LABEL_SPACE = 84  # the room a row's label needs under the axis


@dataclass(frozen=True)
class Chart:
    kind: Kind
    title: str  # an English msgid (N_)
    label: tuple[Column, ...]  # what names a row (joined by " · ")
    series: tuple[Column, ...]  # the figures drawn, one mark per row and series
    note: str = ""  # an English msgid (N_): what the chart shows when it is the nearest figure to the one asked
    width: int = W  # the drawing's width in its own units: a narrow panel's chart is drawn narrower, not smaller
    joiner: str = " · "  # between the label's parts; "–" makes a range, and a range with no end reads "84+"
    by: str = ""  # a label key: the rows sharing its value are one point, their series summed (see ``grouped``)


def C(key: str, label: str, kind: str = "text") -> Column:  # noqa: N802 - as panels.C
    return Column(key, label, kind)


FUNNEL_STEPS = (
    C("captured", N_("Captured"), "int"),
    C("contacted", N_("Contacted"), "int"),
    C("mql", N_("MQL"), "int"),
    C("sql", N_("SQL"), "int"),
    C("opportunities", N_("Opportunities"), "int"),
    C("customers", N_("Customers"), "int"),
)
CHARTS: dict[tuple[str, str], Chart] = {
    ("marketing", "funnel_source"): Chart(
        "bar", N_("Marketing funnel by source"), (C("source", N_("Source")),), FUNNEL_STEPS
    ),
    ("marketing", "funnel_month"): Chart(
        "line",
        N_("Win rate by month"),
        (C("month", N_("Month")),),
        (C("win_rate", N_("Win rate"), "pct"), C("lead_to_customer", N_("Lead → customer"), "pct")),
    ),
    ("marketing", "campaigns"): Chart(
        "bar",
        N_("Campaign spend and revenue"),
        (C("name", N_("Name")),),
        (C("spend", N_("Spend"), "money"), C("revenue", N_("Revenue"), "money")),
    ),
    ("sales", "forecast"): Chart(
        "stacked",
        N_("Forecast by month: won and weighted"),
        (C("period", N_("Month")),),
        (C("won", N_("Won"), "money"), C("weighted", N_("Weighted"), "money")),
        width=NARROW,
        by="period",  # the rows are month x owner: a bar per month, what a reader can see at this size
    ),
    ("sales", "forecast_target"): Chart(
        "bar",
        N_("Forecast against target by month"),
        (C("period", N_("Month")),),
        (C("expected", N_("Expected"), "money"), C("target", N_("Target"), "money")),
        note=N_(
            "Expected: won plus the weighted open deals expected to close in the month. Target: the month's targets"
            " summed; a quarter's target is spread evenly over its three months."
        ),
    ),
    ("sales", "win_rate"): Chart(
        "line",
        N_("Win rate by month of close"),
        (C("month", N_("Month")),),
        (C("win_rate", N_("Win rate"), "pct"),),
        note=N_("Won / (won + lost) of every deal closed in the month, whatever its source."),
        width=NARROW,
    ),
    ("sales", "scorecard"): Chart(
        "bar",
        N_("Won against target"),
        (C("owner_id", N_("Owner")),),
        (C("won_value", N_("Won value"), "money"), C("target", N_("Target"), "money")),
    ),
    ("sales", "stages"): Chart(
        "bar",
        N_("Stage conversion"),
        (C("name", N_("Stage")),),
        (C("conversion_rate", N_("Conversion"), "pct"),),
        width=NARROW,
    ),
    ("production", "floor"): Chart(
        "stacked",
        N_("Orders in each stage now"),
        (C("stage", N_("Stage"), "stage"),),
        (C("orders", N_("Orders"), "int"), C("late", N_("Late"), "int")),
        note=N_("Today's slice of the cumulative flow: orders open in each stage, and how many of them are late."),
    ),
    ("production", "lead_time_histogram"): Chart(
        "bar",
        N_("Orders by lead time (days)"),
        (C("from_days", "From (days)", "int"), C("to_days", "To (days)", "int")),
        (C("orders", N_("Orders"), "int"),),
        note=N_(
            "Each bar counts the orders completed in the period whose lead time, from order to completion, fell in it."
        ),
        joiner="–",
        width=NARROW,
    ),
    ("production", "flow"): Chart(
        "stacked",
        N_("Cumulative flow: orders in each stage, week by week"),
        FLOW.columns[:1],
        FLOW.columns[1:],  # a band per stage
        note=N_("Each band is one stage: its height is how many orders were in it at the start of the week."),
    ),
    ("production", "cycle"): Chart(
        "bar",
        N_("Days in each stage"),
        (C("stage", N_("Stage"), "stage"),),
        (C("median_days", N_("Median days"), "days"), C("p90_days", N_("p90 days"), "days")),
        note=N_("The spread of the cycle time: the median and the slowest tenth (90th percentile) of each stage."),
        width=NARROW,
    ),
}


def chart_of(page_id: str, panel_id: str) -> Chart | None:
    return CHARTS.get((page_id, panel_id))


def number_of(value: Any) -> float | None:
    """A value the API gave as a number (money may come as a string), or None when it is not one."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    try:
        n = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return n if math.isfinite(n) else None


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round tick values covering lo..hi (always including 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(math.ceil((hi - first) / step - 1e-9) + 1)]


def tick_text(value: float, kind: str, lang: i18n.Lang) -> str:
    locale = locale_of(lang)  # parsed once, not on every tick
    if kind == "pct":
        return format_decimal(round(value * 100, 4), locale=locale) + " %"
    if abs(value) >= 10_000:
        return format_compact_decimal(value, locale=locale, fraction_digits=1)
    return format_decimal(round(value, 4), locale=locale)


def label_of(row: dict[str, Any], chart: Chart, lang: i18n.Lang) -> str:
    values = [value_at(row, c.key) for c in chart.label]
    if chart.joiner == "–" and values and values[-1] is None:  # an open-ended range
        return i18n.fmt(values[0], chart.label[0].kind, lang) + "+"
    return chart.joiner.join(i18n.fmt(v, c.kind, lang) for v, c in zip(values, chart.label, strict=True))


def short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def attrs(**values: Any) -> str:
    return "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in values.items())


COMPACT = 48  # more marks than this: each series is one path, its values a JSON list on it (``data-data``)


def grouped(chart: Chart, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points a chart draws: its rows, or with ``by`` one point per value of that key (in the rows' order)
    whose series are the sums of its rows' values (exact decimals, given as a number; null when all are null)."""
    if not chart.by:
        return rows
    points: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = value_at(row, chart.by)
        point = points.setdefault(json.dumps(key), {chart.by: key} | {c.key: None for c in chart.series})
        for c in chart.series:
            n = value_at(row, c.key)
            if number_of(n) is not None:
                point[c.key] = (point[c.key] or Decimal(0)) + Decimal(str(n))
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in p.items()} for p in points.values()]


def mark(tag: str, i: int, c: Column, row: dict[str, Any], tip: str, **geometry: Any) -> str:
    v = value_at(row, c.key)
    return (
        f'<{tag} class="pt"{attrs(data_point=i, data_series=c.key, data_datum=json.dumps(v), **geometry)}>'
        f"<title>{escape(tip)}</title></{tag}>"
    )


class Frame:
    """The plot area and the y scale of one chart."""

    def __init__(self, values: list[float], n: int, top: int = TOP, width: int = W):
        self.top, self.w = top, width
        self.ticks = nice_ticks(min(values, default=0.0), max(values, default=0.0))
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.n = max(n, 1)
        self.band = (width - LEFT - RIGHT) / self.n

    def y(self, v: float) -> float:
        return round(self.top + (self.hi - v) / (self.hi - self.lo) * (H - self.top - BOTTOM), 2)

    def x(self, i: int) -> float:
        return LEFT + self.band * i


def axes(frame: Frame, labels: list[str], kind: str, lang: i18n.Lang) -> list[str]:
    out = []
    for t in frame.ticks:
        y = frame.y(t)
        out.append(f'<line class="grid"{attrs(x1=LEFT, x2=frame.w - RIGHT, y1=y, y2=y)}/>')
        out.append(
            f'<text class="tick"{attrs(x=LEFT - 4, y=y + 4)} text-anchor="end">{escape(tick_text(t, kind, lang))}</text>'
        )
    zero = frame.y(0.0)
    out.append(f'<line class="axis"{attrs(x1=LEFT, x2=frame.w - RIGHT, y1=zero, y2=zero)}/>')
    room = min(LABEL_SPACE, 7 * max((len(short(t)) for t in labels), default=1) + 10)
    every = math.ceil(room / frame.band)  # many rows: every n-th label (each mark's <title> names its row)
    for i, text in enumerate(labels):
        if i % every:
            continue
        x = round(frame.x(i) + frame.band / 2, 2)
        out.append(
            f'<text class="label"{attrs(x=x, y=H - BOTTOM + 14)} text-anchor="middle">'
            f"<title>{escape(text)}</title>{escape(short(text))}</text>"
        )
    return out


def bars(chart: Chart, rows: list[dict[str, Any]], frame: Frame, labels: list[str], lang: i18n.Lang) -> list[str]:
    out = []
    k = len(chart.series)
    width = min(frame.band * 0.8 / (1 if chart.kind == "stacked" else k), MAX_BAR)
    pad = (frame.band - width * (1 if chart.kind == "stacked" else k)) / 2  # the group centred in its band
    compact = len(rows) * k > COMPACT
    paths: list[list[str]] = [[] for _ in chart.series]
    for i, row in enumerate(rows):
        up = down = 0.0  # a stack grows from 0 both ways (negative values below the axis)
        for j, c in enumerate(chart.series):
            n = number_of(value_at(row, c.key))
            v = n or 0.0
            if chart.kind == "stacked":
                base = up if v >= 0 else down
                top = base + v
                up, down = (top, down) if v >= 0 else (up, top)
                x = frame.x(i) + pad
            else:
                base, top = 0.0, v
                x = frame.x(i) + pad + j * width
            y0, y1 = sorted((frame.y(base), frame.y(top)))
            if compact:  # the bar as a sub-path (none for a zero); its row's figures are in the table beside it
                if y1 - y0 >= 0.05:
                    paths[j].append(f"M{x:.1f} {y0:.1f}h{width:.1f}v{y1 - y0:.1f}h{-width:.1f}z")
                continue
            tip = f"{labels[i]} — {i18n.word(c.label, lang)}: {i18n.fmt(value_at(row, c.key), c.kind, lang)}"
            geometry = {"x": round(x, 2), "y": y0, "width": round(width, 2), "height": round(y1 - y0, 2)}
            out.append(mark("rect", i, c, row, tip, fill=f"url(#{chart.title}-h{j})", stroke="#222", **geometry))
    if compact:
        for j, c in enumerate(chart.series):
            data = json.dumps([value_at(r, c.key) for r in rows], separators=(",", ":"))
            d, fill = "".join(paths[j]), f"url(#{chart.title}-h{j})"
            out.append(f'<path class="pts"{attrs(data_series=c.key, data_data=data, d=d, fill=fill)} stroke="#222"/>')
    return out


def lines(chart: Chart, rows: list[dict[str, Any]], frame: Frame, labels: list[str], lang: i18n.Lang) -> list[str]:
    out = []
    for j, c in enumerate(chart.series):
        points = []
        for i, row in enumerate(rows):
            n = number_of(value_at(row, c.key))
            x = round(frame.x(i) + frame.band / 2, 2)
            tip = f"{labels[i]} — {i18n.word(c.label, lang)}: {i18n.fmt(value_at(row, c.key), c.kind, lang)}"
            y = frame.y(n) if n is not None else frame.y(0.0)
            if n is not None:
                points.append(f"{x},{y}")
            out.append(mark("circle", i, c, row, tip, cx=x, cy=y, r=4 if n is not None else 0, fill=COLOURS[j % 6]))
        if len(points) > 1:
            dash = {"stroke_dasharray": DASHES[j % 6]} if DASHES[j % 6] else {}
            out.insert(
                0, f'<polyline class="ln"{attrs(points=" ".join(points), stroke=COLOURS[j % 6], **dash)} fill="none"/>'
            )
    return out


def defs(chart: Chart) -> str:
    """One fill per series: its colour, with its own hatching (none, /, \\, |, -, x) for grey-scale print."""
    paths = ("", "M0,8 L8,0", "M0,0 L8,8", "M4,0 L4,8", "M0,4 L8,4", "M0,0 L8,8 M0,8 L8,0")
    out = []
    for j in range(len(chart.series)):
        shape = paths[(j + j // 6) % 6]  # past six series: another hatching on the same colour
        hatch = f'<path d="{shape}" stroke="#fff" stroke-width="1.5"/>' if shape else ""
        out.append(
            f'<pattern id="{chart.title}-h{j}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{COLOURS[j % 6]}"/>{hatch}</pattern>'
        )
    return "<defs>" + "".join(out) + "</defs>"


LEGEND_PER_ROW = 5


def legend(chart: Chart, lang: i18n.Lang) -> list[str]:
    """The series' keys, five to a row."""
    out = []
    step = min(150, (chart.width - LEFT - RIGHT) // min(len(chart.series), LEGEND_PER_ROW))
    for j, c in enumerate(chart.series):
        x, y = LEFT + (j % LEGEND_PER_ROW) * step, 4 + (j // LEGEND_PER_ROW) * LEGEND_ROW
        swatch = (
            f'<line{attrs(x1=x, x2=x + 14, y1=y + 6, y2=y + 6, stroke=COLOURS[j % 6])} stroke-width="3"/>'
            if chart.kind == "line"
            else f'<rect{attrs(x=x, y=y, width=12, height=12, fill=f"url(#{chart.title}-h{j})")} stroke="#222"/>'
        )
        name, room = i18n.word(c.label, lang), (step - 22) // 6  # ~6 units a letter
        cut = name if len(name) <= room else name[: room - 1] + "…"
        out.append(
            f'{swatch}<text class="key"{attrs(x=x + 18, y=y + 10)}><title>{escape(name)}</title>{escape(cut)}</text>'
        )
    return out


def svg(page_id: str, panel_id: str, rows: list[dict[str, Any]], lang: i18n.Lang) -> Markup:
    """The chart of a panel, drawn from its shown rows; nothing when the panel has no chart or no rows."""
    chart = chart_of(page_id, panel_id)
    if chart is None or not rows:
        return Markup("")
    count, rows = len(rows), grouped(chart, rows)
    labels = [label_of(r, chart, lang) for r in rows]
    if chart.kind == "stacked":
        values = []
        for r in rows:
            ns = [number_of(value_at(r, c.key)) or 0.0 for c in chart.series]
            values += [sum(n for n in ns if n > 0), sum(n for n in ns if n < 0)]
    else:
        values = [n for r in rows for c in chart.series if (n := number_of(value_at(r, c.key))) is not None]
    top = TOP + LEGEND_ROW * ((len(chart.series) - 1) // LEGEND_PER_ROW)
    frame = Frame(values, len(rows), top, chart.width)
    title = i18n.word(chart.title, lang)
    desc = i18n.word(N_("Drawn from the {rows} rows of the table below, which has every figure."), lang).format(
        rows=count
    )
    if chart.note:
        desc += " " + i18n.word(chart.note, lang)
    draw = lines if chart.kind == "line" else bars
    body = [defs(chart), *legend(chart, lang), *axes(frame, labels, chart.series[0].kind, lang)]
    body += draw(chart, rows, frame, labels, lang)
    return Markup(  # noqa: S704 - every text and attribute in it went through escape()
        f'<figure class="chart" data-chart="{escape(chart.kind)}" tabindex="0">'  # keys scroll a narrow one
        f'<svg role="img"{attrs(aria_label=f"{title}. {desc}", viewBox=f"0 0 {chart.width} {H}")}'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg></figure>"
    )
