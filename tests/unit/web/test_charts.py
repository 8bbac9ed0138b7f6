"""The board's SVG charts (services/web/charts.py): every mark read back from the SVG is a row's value as the API
gave it, for every chart, in both languages, with no rows, one row, negative and zero values and long labels."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest

from services.web import charts, i18n
from services.web.panels import value_at

SVG = "{http://www.w3.org/2000/svg}"


def parsed(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - the board's own SVG, made in this test


def read_back(markup: str) -> dict[tuple[int, str], Any]:
    """Each mark's row, key and value, as the SVG says."""
    found = {}
    for el in parsed(markup).iter():
        if el.get("data-point") is not None:
            found[(int(el.get("data-point", "")), el.get("data-series", ""))] = json.loads(el.get("data-datum", ""))
        if el.get("data-data") is not None:  # a compact series: one path, its values a list
            for i, v in enumerate(json.loads(el.get("data-data", ""))):
                found[(i, el.get("data-series", ""))] = v
    return found


def expected(chart: charts.Chart, rows: list[dict[str, Any]]) -> dict[tuple[int, str], Any]:
    """Each row's values; for a chart drawn ``by`` a key, per value of that key the sum of its rows' numbers."""
    if not chart.by:
        return {(i, c.key): value_at(r, c.key) for i, r in enumerate(rows) for c in chart.series}
    keys = list(dict.fromkeys(json.dumps(r.get(chart.by)) for r in rows))
    out: dict[tuple[int, str], Any] = {}
    for i, key in enumerate(keys):
        group = [r for r in rows if json.dumps(r.get(chart.by)) == key]
        for c in chart.series:
            values = [Decimal(str(r[c.key])) for r in group if r.get(c.key) is not None]
            out[(i, c.key)] = float(sum(values)) if values else None
    return out


def rows_for(chart: charts.Chart, n: int) -> list[dict[str, Any]]:
    """n rows with the chart's keys: mixed ints, money strings, fractions, a zero, a negative and a null."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {c.key: f"2026-12-{i + 1:02d}" if c.kind == "date" else f"label {i}" for c in chart.label}
        for j, c in enumerate(chart.series):
            value: Any = (i + 1) * (j + 2) * (1000 if c.kind == "money" else 1)
            if c.kind == "money":
                value = f"{value}.00"  # money comes as a string
            elif c.kind == "pct":
                value = round(0.1 * (i % 10), 2)
            row[c.key] = value
        rows.append(row)
    if n > 2:
        first = chart.series[0].key
        rows[1][first] = 0
        rows[2][first] = -5
        rows[-1][chart.series[-1].key] = None
    return rows


@pytest.mark.parametrize("where", sorted(charts.CHARTS))
@pytest.mark.parametrize("lang", i18n.LANGS)
def test_each_charts_marks_are_its_rows(where: tuple[str, str], lang: i18n.Lang) -> None:
    chart = charts.CHARTS[where]
    for n in (1, 2, 7):
        rows = rows_for(chart, n)
        if chart.by:  # rows sharing the key (a month of several owners) are one point: their sum
            rows = [r | {chart.by: f"label {i % 3}"} for i, r in enumerate(rows)]
        markup = charts.svg(*where, rows, lang)
        assert read_back(markup) == expected(chart, rows)
        root = parsed(markup)
        svg = root.find(f"{SVG}svg")
        assert svg is not None and svg.get("role") == "img"
        assert i18n.word(chart.title, lang) in (svg.get("aria-label") or "")
        assert svg.find(f"{SVG}title") is not None and svg.find(f"{SVG}desc") is not None
        assert "<script" not in markup and "http://" not in markup.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_no_rows_no_chart_and_a_panel_without_a_chart_has_none() -> None:
    assert charts.svg("sales", "stages", [], "en") == ""
    assert charts.svg("sales", "velocity", [{"won": 3}], "en") == ""


def test_bars_grow_from_zero_both_ways_and_a_null_has_no_height() -> None:
    rows = [{"name": "A", "conversion_rate": 0.5}, {"name": "B", "conversion_rate": -0.25}, {"name": "C"}]
    root = parsed(charts.svg("sales", "stages", rows, "en"))
    rects = {int(r.get("data-point", "")): r for r in root.iter(f"{SVG}rect") if r.get("data-point") is not None}
    zero = float(next(ln.get("y1", "") for ln in root.iter(f"{SVG}line") if ln.get("class") == "axis"))
    a, b, c = (rects[i] for i in range(3))
    assert float(a.get("y", "")) + float(a.get("height", "")) == pytest.approx(zero)  # above the axis
    assert float(b.get("y", "")) == pytest.approx(zero)  # below it
    assert float(a.get("height", "")) == pytest.approx(2 * float(b.get("height", "")), rel=0.01)
    assert float(c.get("height", "")) == 0 and c.get("data-datum") == "null"


def test_stacks_put_each_series_on_the_one_before() -> None:
    rows = [
        {"period": "2026-12", "owner_id": "an", "won": "60.00", "weighted": "50.00"},
        {"period": "2026-12", "owner_id": "bo", "won": "40.00", "weighted": None},
    ]
    root = parsed(charts.svg("sales", "forecast", rows, "en"))
    won, weighted = (r for r in root.iter(f"{SVG}rect") if r.get("data-point") == "0")
    assert float(weighted.get("y", "")) + float(weighted.get("height", "")) == pytest.approx(float(won.get("y", "")))
    assert float(won.get("height", "")) == pytest.approx(2 * float(weighted.get("height", "")), rel=0.01)
    assert json.loads(won.get("data-datum", "")) == 100.0  # a month's owners summed


def test_many_marks_are_one_path_per_series_with_its_values() -> None:
    rows = [{"at": f"2026-{m:02d}-{d:02d}", "new": d, "shipped": None} for m in (1, 2) for d in range(1, 29)]
    markup = charts.svg("production", "flow", rows, "en")
    assert read_back(markup) == expected(charts.CHARTS[("production", "flow")], rows)
    paths = [p for p in parsed(markup).iter(f"{SVG}path") if p.get("class") == "pts"]
    assert len(paths) == len(charts.CHARTS[("production", "flow")].series)
    assert len(markup) < 15_000


def test_long_and_hostile_labels_are_cut_and_escaped_with_the_whole_text_in_the_title() -> None:
    name = "<script>alert(1)</script> a very long campaign name indeed"
    markup = charts.svg("marketing", "campaigns", [{"name": name, "spend": "1.00", "revenue": "2.00"}], "en")
    assert "<script>" not in markup
    label = next(t for t in parsed(markup).iter(f"{SVG}text") if t.get("class") == "label")
    whole = label.find(f"{SVG}title")
    assert whole is not None and whole.text == name
    shown = "".join(label.itertext()).replace(name, "", 1)
    assert len(shown) == charts.LABEL_CHARS and shown.endswith("…")


def test_ticks_are_written_in_the_locales_number_format() -> None:
    rows = [{"stage": "new", "median_days": 1234.5, "p90_days": 2500}]
    vi = [
        t.text
        for t in parsed(charts.svg("production", "cycle", rows, "vi")).iter(f"{SVG}text")
        if t.get("class") == "tick"
    ]
    en = [
        t.text
        for t in parsed(charts.svg("production", "cycle", rows, "en")).iter(f"{SVG}text")
        if t.get("class") == "tick"
    ]
    assert "1.000" in vi and "1,000" in en
    pct = parsed(charts.svg("sales", "stages", [{"name": "x", "conversion_rate": 0.5}], "vi"))
    assert any((t.text or "").endswith(" %") for t in pct.iter(f"{SVG}text") if t.get("class") == "tick")
    stage = next(
        t for t in parsed(charts.svg("production", "cycle", rows, "vi")).iter(f"{SVG}text") if t.get("class") == "label"
    )
    assert "".join(stage.itertext()).endswith(i18n.fmt("new", "stage", "vi"))


def test_a_histogram_is_labelled_by_its_ranges_the_last_open_ended() -> None:
    rows = [{"from_days": 0, "to_days": 7, "orders": 3}, {"from_days": 84, "to_days": None, "orders": 0}]
    root = parsed(charts.svg("production", "lead_time_histogram", rows, "en"))
    labels = [t.find(f"{SVG}title") for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert [(t.text, t.tail) for t in labels if t is not None] == [("0–7", "0–7"), ("84+", "84+")]


def test_ticks_cover_the_values_and_zero() -> None:
    for lo, hi in ((0, 0), (0, 7), (-3, 12), (0.01, 0.93), (5, 88_000_000)):
        ticks = charts.nice_ticks(lo, hi)
        assert ticks[0] <= min(lo, 0) and ticks[-1] >= hi and 0 in [round(t, 9) for t in ticks]
        assert len(ticks) <= 7


def test_every_chart_word_has_both_languages() -> None:
    for chart in charts.CHARTS.values():
        desc = "Drawn from the {rows} rows of the table below, which has every figure."
        for key in (chart.title, desc, *([chart.note] if chart.note else [])):
            en, vi = i18n.word(key, "en"), i18n.word(key, "vi")
            assert en and vi and en != vi
