"""The web board: server-rendered pages over the three APIs, called with the signed-in user's own token.

- Sign in with a bearer token (the same JWT the APIs take); it is kept in an HttpOnly cookie and sent on to the
  APIs, so a page shows exactly what the user's role may see there: a salesperson their own deals, a manager
  their team's, an auditor everything (a panel the role may not see says so). Signing out revokes the token in
  every API (``shared.edge.revocation``). Both forms are refused from another site (``csrf.py``).
- ``/sales``, ``/marketing``, ``/production``, ``/alerts``, ``/audit``: panels defined in ``pages.py``;
  ``/panel/{page}/{panel}`` one panel's HTML (what live updates fetch), ``/export/{page}/{panel}.csv`` its CSV.
- ``/events``: server-sent events, one small notice per event on the topics (see ``live.py``).
- English and Vietnamese: ``?lang=en|vi`` (kept in a cookie), else the browser's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jinja2
import structlog
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from services.web import csrf, i18n, live
from services.web.pages import C, FilterError, Filters, Page, Panel, pages, rows_of, value_at
from shared.edge.auth import InvalidTokenError, Principal, TokenVerifier
from shared.edge.http import install_common
from shared.edge.revocation import RevocationList
from shared.ops.settings import SERVICES, Settings

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
COOKIE = "pipelines_token"
MILESTONES = {
    "LeadCaptured",
    "LeadConverted",
    "DealOpened",
    "DealWon",
    "DealLost",
    "ProductionOrderCreated",
    "QualityInspectionFailed",
    "OrderShipped",
    "OrderDelivered",
    "FollowUpStarted",
    "FollowUpCompleted",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
RECENT_DEALS = Panel(
    "deals",
    "deal",
    "deals",
    "/deals",
    rows="items",
    columns=(
        C("title", "c_title"),
        C("customer", "c_customer"),
        C("owner_id", "c_owner"),
        C("stage_name", "c_stage"),
        C("status", "c_status"),
        C("value", "c_value", "money"),
        C("opened_at", "c_when", "datetime"),
    ),
    params=lambda f, p: {"limit": "25"},
    waits=True,
    link="deal_id",
    wide=True,
)
TIMELINE = Panel(
    "timeline",
    "p_timeline",
    "deals",
    "/deals/{deal}/history",
    kind="table",
    trigger="*",
    columns=(
        C("recorded_at", "c_when", "datetime"),
        C("service", "c_service"),
        C("event", "c_event"),
        C("actor", "c_actor"),
        C("version", "c_version", "int"),
        C("reason", "c_reason"),
        C("data", "c_data", "json"),
    ),
    wide=True,
)
AUDIT = Page("audit", "audit", panels=(TIMELINE, RECENT_DEALS), filters=("deal",))


@dataclass
class Shown:
    """One panel as loaded: its rows exactly as the API answered, or why there are none."""

    panel: Panel
    source: str  # "<service> <path>?<query>": the API query the rows are from
    state: str = "ok"  # ok, choose, forbidden, not_found, invalid, unavailable, signed_out
    rows: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None
    hidden: list[str] = field(default_factory=list)  # parts the user's role may not read (the timeline's)


class Apis:
    """The three APIs, called with the user's token."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = {s: settings.api_url(s) for s in SERVICES}
        self.http = httpx.AsyncClient(timeout=10, transport=transport)

    async def get(self, service: str, path: str, params: dict[str, str], token: str) -> httpx.Response:
        return await self.http.get(
            self.urls[service] + path, params=params, headers={"Authorization": f"Bearer {token}"}
        )

    async def close(self) -> None:
        await self.http.aclose()


def source_of(service: str, path: str, params: dict[str, str]) -> str:
    return f"{service} {path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")


async def fetch(apis: Apis, panel: Panel, path: str, params: dict[str, str], token: str) -> Shown:
    shown = Shown(panel, source_of(panel.service, path, params))
    try:
        r = await apis.get(panel.service, path, params, token)
    except httpx.HTTPError as exc:
        shown.state, shown.detail = "unavailable", type(exc).__name__
        return shown
    if r.status_code == 200:
        shown.rows = rows_of(r.json(), panel)
        return shown
    return refused(shown, r)


def refused(shown: Shown, r: httpx.Response) -> Shown:
    """Why an API did not give the rows: its status as the panel's state, its detail as the reason."""
    states = {401: "signed_out", 403: "forbidden", 404: "not_found", 422: "invalid"}
    shown.state = states.get(r.status_code, "unavailable")
    with contextlib.suppress(ValueError):
        detail = r.json().get("detail")
        shown.detail = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)[:300]
    return shown


async def load(apis: Apis, panel: Panel, f: Filters, p: Principal, token: str, position: int | None = None) -> Shown:
    if panel is TIMELINE:
        return await timeline(apis, f, token)
    params = panel.params(f, p)
    if params is None:
        return Shown(panel, "", state="choose")
    if position is not None and panel.waits:
        params = params | {"position": str(position)}
    return await fetch(apis, panel, panel.path, params, token)


async def history(apis: Apis, service: str, path: str, token: str) -> tuple[int, list[dict[str, Any]]]:
    """Every event of one aggregate's audit trail, following the pages (status, items)."""
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "200"}
    for _ in range(50):  # 10,000 events at most on one page of the board
        r = await apis.get(service, path, params, token)
        if r.status_code != 200:
            return r.status_code, items
        body = r.json()
        items += body["items"]
        if not body.get("next_cursor"):
            break
        params = {"limit": "200", "cursor": body["next_cursor"]}
    return 200, items


async def timeline(apis: Apis, f: Filters, token: str) -> Shown:
    """A deal's whole story: the lead it came from, the deal, the order it made and its shipments, in the order
    they were recorded, each event with its details."""
    shown = Shown(TIMELINE, source_of("deals", f"/deals/{f.deal}/history", {}))
    if f.deal is None:
        shown.state = "choose"
        return shown
    try:
        deal = await apis.get("deals", f"/deals/{f.deal}", {}, token)
        if deal.status_code != 200:  # no such deal, or not one the user may see: say why, without asking again
            return refused(shown, deal)
        parts = [("deals", f"/deals/{f.deal}/history")]
        lead = deal.json().get("source_lead_id")
        if lead:
            parts.append(("leads", f"/leads/{lead}/history"))
        order = await apis.get("production", f"/orders/for-deal/{f.deal}", {}, token)
        if order.status_code == 200:
            parts.append(("production", f"/orders/{order.json()['order_id']}/history"))
        elif order.status_code in (401, 403):  # e.g. a salesperson may not read orders: say so, show the rest
            shown.hidden.append("production")
        answers = await asyncio.gather(*(history(apis, s, path, token) for s, path in parts))
    except httpx.HTTPError as exc:
        shown.state, shown.detail = "unavailable", type(exc).__name__
        return shown
    for (service, _), (status, items) in zip(parts, answers, strict=True):
        for e in items:
            shown.rows.append(
                {
                    "recorded_at": e["recorded_at"],
                    "occurred_at": e["occurred_at"],
                    "service": service,
                    "event": e["type"].rsplit(".", 1)[-1],
                    "actor": e.get("actor"),
                    "version": e["version"],
                    "reason": e.get("reason"),
                    "correlation_id": e.get("correlation_id"),
                    "causation_id": e.get("causation_id"),
                    "data": e["data"],
                }
            )
        if status != 200:
            shown.hidden.append(service)
    shown.rows.sort(key=lambda r: (r["recorded_at"], r["service"], r["version"]))
    return shown


ALERTS_PAGE = 500  # the most one /alerts answer lists


async def alert_count(apis: Apis, token: str) -> str:
    """How many active alerts the three APIs show this user ("" when none may be seen; "500+" past a page)."""
    answers = await asyncio.gather(
        *(apis.get(s, "/alerts", {"limit": str(ALERTS_PAGE)}, token) for s in SERVICES), return_exceptions=True
    )
    lists = [r.json() for r in answers if isinstance(r, httpx.Response) and r.status_code == 200]
    if not lists:
        return ""
    total = sum(len(x) for x in lists if isinstance(x, list))
    return f"{total}+" if any(isinstance(x, list) and len(x) >= ALERTS_PAGE for x in lists) else str(total)


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


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    live_feed: bool = True,
    stop: asyncio.Event | None = None,
) -> FastAPI:
    """The board's app; setting ``stop`` ends its live feed and open event streams (a process's shutdown).
    ``live_feed=False`` (tests without Kafka): no live notices, and signing out revokes in this process only."""
    tz = ZoneInfo(settings.timezone)
    revocations = RevocationList(settings if live_feed else None)
    verifier = TokenVerifier.from_settings(settings, revoked=revocations)
    hub = live.Hub()
    apis = Apis(settings, transport)
    all_pages: dict[str, Page] = pages(tz) | {"audit": AUDIT}
    stop = stop or asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [live.feed(settings, hub, stop), revocations.run(stop)] if live_feed else []
        running = [asyncio.create_task(t) for t in tasks]
        try:
            yield
        finally:
            stop.set()
            for task in running:
                await task
            await apis.close()

    app = FastAPI(title="Pipelines — board", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.hub = hub
    app.state.revocations = revocations

    async def readiness() -> dict[str, str]:
        checks = {"live": "ok" if hub.connected or not live_feed else "not connected to Kafka"}
        if live_feed:  # not before it knows every token signed out
            checks["revocations"] = revocations.readiness()
        for service in SERVICES:
            try:
                r = await apis.http.get(apis.urls[service] + "/healthz", timeout=2)
                checks[service] = "ok" if r.status_code == 200 else f"answered {r.status_code}"
            except httpx.HTTPError as exc:
                checks[service] = type(exc).__name__
        return checks

    install_common(app, readiness, "web", max_body_bytes=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals |= {
        "fmt": lambda value, kind, lang: i18n.fmt(value, kind, lang, tz),  # times in the business's time zone
        "value_at": value_at,
        "MILESTONES": MILESTONES,
        "json": json,
    }

    def lang_of(request: Request) -> i18n.Lang:
        return i18n.pick_lang(
            request.query_params.get("lang"), request.cookies.get("lang"), request.headers.get("accept-language")
        )

    def html(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        lang = lang_of(request)
        context.setdefault("alerts", "")  # the nav's badge: counted on full pages only
        context.setdefault("csrf", csrf.value(request))  # the forms' token (sign in, sign out)
        body = env.get_template(template).render(
            lang=lang, t=lambda key: i18n.word(key, lang), request_path=request.url.path, **context
        )
        response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
        if context["csrf"] is not None:
            csrf.keep(request, response)
        if request.query_params.get("lang") in i18n.LANGS:
            response.set_cookie("lang", lang, max_age=365 * 86400, samesite="strict")
        return response

    def signed_in(request: Request) -> tuple[Principal, str] | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            return verifier.verify(token), token
        except InvalidTokenError:
            return None

    def query_of(request: Request) -> dict[str, str]:
        return {k: v for k, v in request.query_params.items() if k not in ("lang", "position")}

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)

    def today() -> Any:
        return datetime.now(UTC).astimezone(tz).date()

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/sales", status_code=303)

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request, next: str = "/sales") -> HTMLResponse:
        return html(request, "login.html", next=safe_next(next), error=None, user=None)

    async def form_of(request: Request) -> dict[str, str]:
        fields = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        return {k: v[0] for k, v in fields.items()}

    def refusal(request: Request, reason: str) -> HTMLResponse:
        """A post another site made, or without this site's token: nothing done, no cookie set."""
        log.warning("web.form_refused", path=request.url.path, reason=reason)
        return html(request, "message.html", 403, title="refused", message=reason, user=None, csrf=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await form_of(request)
        if (reason := csrf.refused(request, form)) is not None:
            return refusal(request, reason)
        token = form.get("token", "").strip().removeprefix("Bearer ").strip()
        target = safe_next(form.get("next", "/sales"))
        try:
            # the APIs verify it again on every call; this only refuses a bad one early
            expires = verifier.check(token).expires
        except InvalidTokenError as exc:
            return html(request, "login.html", 401, next=target, error=str(exc), user=None)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=max(60, int(expires - datetime.now(UTC).timestamp())),
            path="/",
            httponly=True,
            samesite="strict",
            secure=csrf.https(request),
        )
        csrf.renew(request, response)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        """Sign out: the token is revoked in every API (within seconds) before its cookie is cleared; if the
        revocation cannot be published, the user is told and stays signed in, to try again."""
        form = await form_of(request)
        if (reason := csrf.refused(request, form)) is not None:
            return refusal(request, reason)
        token = request.cookies.get(COOKIE)
        if token:
            try:
                verified = verifier.check(token)
            except InvalidTokenError:
                pass  # expired, revoked or not a token: nothing to revoke
            else:
                try:
                    await revocations.publish(verified.token_id, verified.expires)
                except Exception as exc:
                    log.error("web.logout_not_revoked", error=repr(exc))
                    return html(request, "message.html", 503, title="logout_failed", message=None, user=None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=csrf.https(request))
        csrf.renew(request, response)
        return response

    def filters_or_error(request: Request) -> tuple[Filters | None, str | None]:
        try:
            return Filters.parse(query_of(request), today()), None
        except FilterError as exc:
            return None, str(exc)

    async def render_page(request: Request, page: Page) -> Response:
        who = signed_in(request)
        if who is None:
            return login_redirect(request)
        principal, token = who
        f, error = filters_or_error(request)
        if f is None:
            typed = query_of(request)
            return html(
                request, "page.html", 422, page=page, shown=[], error=error, user=principal, query=typed, **nav()
            )
        counting = asyncio.ensure_future(alert_count(apis, token))  # beside the panels, not after them
        shown = list(await asyncio.gather(*(load(apis, panel, f, principal, token) for panel in page.panels)))
        alerts = await counting
        if any(s.state == "signed_out" for s in shown):
            return login_redirect(request)
        return html(
            request,
            "page.html",
            page=page,
            shown=shown,
            error=None,
            user=principal,
            query=f.as_query(),
            alerts=alerts,
            **nav(),
        )

    def nav() -> dict[str, Any]:
        return {"nav": [(p.id, p.title) for p in all_pages.values()]}

    def page_route(page: Page) -> Callable[[Request], Awaitable[Response]]:
        async def show(request: Request) -> Response:
            return await render_page(request, page)

        return show

    for p in all_pages.values():
        app.add_api_route(f"/{p.id}", page_route(p), methods=["GET"], include_in_schema=False)

    def panel_of(page_id: str, panel_id: str) -> Panel:
        page = all_pages.get(page_id)
        if page is None or panel_id not in page.by_id:
            raise HTTPException(404, detail=f"no panel {page_id}/{panel_id}")
        return page.by_id[panel_id]

    async def one(request: Request, page_id: str, panel_id: str) -> tuple[Shown, i18n.Lang]:
        panel = panel_of(page_id, panel_id)
        who = signed_in(request)
        if who is None:
            raise HTTPException(401, detail="sign in again")
        f, error = filters_or_error(request)
        if f is None:
            raise HTTPException(422, detail=error)
        raw = request.query_params.get("position")
        position = int(raw) if raw and raw.isdigit() and int(raw) > 0 else None
        return await load(apis, panel, f, who[0], who[1], position), lang_of(request)

    @app.get("/panel/{page_id}/{panel_id}", include_in_schema=False)
    async def panel_fragment(request: Request, page_id: str, panel_id: str) -> Response:
        shown, _ = await one(request, page_id, panel_id)
        if shown.state == "signed_out":
            raise HTTPException(401, detail="sign in again")
        return html(request, "panel.html", s=shown, page_id=page_id, query=query_of(request))

    @app.get("/export/{page_id}/{panel_id}.csv", include_in_schema=False)
    async def export(request: Request, page_id: str, panel_id: str) -> Response:
        shown, lang = await one(request, page_id, panel_id)
        if shown.state != "ok":
            code = {"signed_out": 401, "forbidden": 403, "not_found": 404, "invalid": 422, "choose": 422}
            raise HTTPException(code.get(shown.state, 503), detail=shown.detail or shown.state)
        name = f"{page_id}-{panel_id}-{today()}.csv"
        return Response(
            "\ufeff" + to_csv(shown, lang),  # the byte order mark makes spreadsheets read UTF-8 (Vietnamese)
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'} | SECURITY_HEADERS,
        )

    @app.get("/alerts/count", include_in_schema=False)
    async def alerts_count(request: Request) -> dict[str, str]:
        """The active alerts the user may see, for the badge on every page (refreshed on alert notices)."""
        who = signed_in(request)
        if who is None:
            raise HTTPException(401, detail="sign in again")
        return {"count": await alert_count(apis, who[1])}

    @app.get("/events", include_in_schema=False)
    async def events(request: Request) -> StreamingResponse:
        if signed_in(request) is None:
            raise HTTPException(401, detail="sign in again")

        async def stream() -> AsyncIterator[str]:
            async with hub.subscribe() as queue:
                yield "retry: 2000\n\n"
                quiet = 0.0
                while not stop.is_set():  # the process stops: end the stream, the page reconnects elsewhere
                    try:
                        notice = await asyncio.wait_for(queue.get(), 1)
                    except TimeoutError:
                        quiet += 1
                        if quiet >= 15:
                            yield ": keep-alive\n\n"  # proxies close quiet connections
                            quiet = 0
                        continue
                    quiet = 0
                    yield f"data: {json.dumps(notice)}\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return app


def safe_next(target: str) -> str:
    """Only a path of this site (no scheme, no host, no //): an open redirect would help phishing."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/sales"
    return target
