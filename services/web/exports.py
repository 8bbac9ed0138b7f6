"""A panel as CSV (``/export/{page}/{panel}.csv``): the same rows and columns the page shows, the values as the
API gave them, never a spreadsheet formula; a kanban's cards one per line after their column's figures."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import HTTPException, Request, Response

from services.web import i18n
from services.web.apis import Shown
from services.web.panels import value_at
from services.web.render import SECURITY_HEADERS
from services.web.state import board_of
from services.web.views import one
from shared.core.limits import Code


def csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "; ".join(f"{k} {csv_value(v)}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return "; ".join(csv_value(v) for v in value)
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):  # a spreadsheet would run it as a formula
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def to_csv(shown: Shown, lang: i18n.Lang) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    panel = shown.panel
    if panel.kind == "kanban" and panel.cards:
        w.writerow([i18n.word(c.label, lang) for c in (*panel.columns, *panel.card_columns)])
        for row in shown.rows:
            head = [csv_value(value_at(row, c.key)) for c in panel.columns]
            for card in value_at(row, panel.cards) or [None]:
                w.writerow(head + [csv_value(value_at(card, c.key)) for c in panel.card_columns])
    else:
        w.writerow([i18n.word(c.label, lang) for c in panel.columns])
        for row in shown.rows:
            w.writerow([csv_value(value_at(row, c.key)) for c in panel.columns])
    return out.getvalue()


async def export(request: Request, page_id: Code, panel_id: Code) -> Response:
    """GET /export/{page_id}/{panel_id}.csv: the panel as a CSV file; a panel it could not load: a problem."""
    shown, lang = await one(request, page_id, panel_id, whole=True)  # every card of a kanban
    if shown.state != "ok":
        code = {"signed_out": 401, "forbidden": 403, "not_found": 404, "invalid": 422, "choose": 422}
        raise HTTPException(code.get(shown.state, 503), detail=shown.detail or shown.state)
    name = f"{page_id}-{panel_id}-{board_of(request).today()}.csv"
    return Response(
        "\ufeff" + to_csv(shown, lang),  # the byte order mark makes spreadsheets read UTF-8 (Vietnamese)
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'} | SECURITY_HEADERS,
    )
