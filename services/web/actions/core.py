"""The board's action framework (issue 28, decision 0023): an action is one API command a page lets the user run.

An ``Action`` names its API (``service``), the command's path (``{name}`` parts are form fields, each a bounded
id), how the form becomes the command's JSON body (``body``), its form's fields (``Field``: the templates
``actions/macros.html`` draw them), and whether it is stream-versioned (``versioned``: the form's ``version`` goes
as ``If-Match: "<version>"``). ``register`` adds actions; each is then:

- ``POST /act/{action_id}``: CSRF token required (field ``csrf`` or header ``X-CSRF-Token``), the session's own API
  token; the board checks only sizes and the shape of path ids (the API decides everything else) and answers a
  plain form with a redirect back (``back``, a path of this site) or, on a refusal, a page saying why in the user's
  language (the API's ``rule``) with the form to retry; a script (``Accept: application/json``) gets
  ``{"ok", "status", "rule", "message", "detail", "answer", "current"}``. On 409/412 ``current`` is the thing as it
  is now (``Action.current``, read with the user's token), so the user sees what changed and retries with its
  version.
- ``GET /act/{action_id}?<field>=…``: the action's form on a page of its own (a link from a card, no script needed).

The APIs publish every command's event; the board's live stream (``live.py``) tells every open page, which fetches
its panels again: a second browser sees the change without anything here.
"""

from __future__ import annotations

import json
import re
import string
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from services.web import csrf, domain_words, i18n
from services.web.catalogs import N_
from services.web.render import html, lang_of
from services.web.session import Session, login_redirect, refusal, safe_next, signed_in
from services.web.state import Board, board_of
from shared.core.limits import Code

log = structlog.get_logger(__name__)
MAX_BODY = 32_768  # a form larger than this is no form of the board's
MAX_VALUE = 4000  # one field
PATH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:|+-]{0,99}")  # a path part: an id (uuid, stage, user), never / or ..
IDEMPOTENCY = re.compile(r"[A-Za-z0-9_-]{8,100}")
VERSION = re.compile(r"\d{1,18}")
JSON = "application/json"

Form = Mapping[str, str]
Options = dict[str, list[tuple[str, str]]]  # a select's or datalist's (value, label) pairs, by list name
OptionsLoader = Callable[[Board, Session, Form], Awaitable[Options]]
Prepare = Callable[[Board, Session, dict[str, str]], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Field:
    name: str
    label: str  # an English msgid (N_), translated when shown
    kind: str = "text"  # text, textarea, date, datetime-local, number, select, hidden
    required: bool = False
    max_len: int = 200  # the input's maxlength (the API's own limit decides)
    options: str = ""  # select (or a text's datalist): the name of the list the options loader gives
    translate: bool = False  # True: the labels of the options are msgids (N_) (else names as given, e.g. users)


@dataclass(frozen=True)
class Action:
    id: str  # POST /act/{id}, e.g. "deal.move"
    label: str  # its button, an English msgid (N_)
    service: str  # deals, leads, production, directory, agenda
    path: str  # the command's path, e.g. "/deals/{deal_id}/move-stage"
    body: Callable[[Form], dict[str, Any]]  # the command's JSON body from the form (ValueError: the form is unusable)
    fields: tuple[Field, ...] = ()
    versioned: bool = False  # If-Match from the form's ``version``
    current: str | None = None  # GET path of the thing as it is now, shown with a 409/412, e.g. "/deals/{deal_id}"
    query: tuple[str, ...] = ()  # form fields passed as query parameters (e.g. a new deal's ``deal_id``)
    back: str = "/sales"  # where a plain form returns by default (the form's ``back`` field overrides it)
    options: OptionsLoader | None = None  # the lists its form's selects need
    method: str = "POST"  # the command's HTTP method (a campaign's day of spend is a PUT)
    prepare: Prepare | None = None  # fills the form in before ``body`` (e.g. a chosen customer's name, with the
    # user's token); raises ValueError for a form it cannot use

    @property
    def ids(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.path) if name]


REGISTRY: dict[str, Action] = {}


def register(*actions: Action) -> None:
    for a in actions:
        if a.id in REGISTRY and REGISTRY[a.id] is not a:
            raise ValueError(f"two actions named {a.id}")
        REGISTRY[a.id] = a


def take(*names: str, **renamed: str) -> Callable[[Form], dict[str, Any]]:
    """A body of the form's non-empty fields (``renamed``: body key = form field)."""
    pairs = [(n, n) for n in names] + list(renamed.items())

    def body(form: Form) -> dict[str, Any]:
        return {key: form[f].strip() for key, f in pairs if form.get(f, "").strip()}

    return body


@dataclass
class Outcome:
    action: Action
    form: dict[str, str]
    status: int
    rule: str | None = None
    detail: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class BadFormError(ValueError):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields as strings: a form (urlencoded) or a script's JSON object; bounded in size."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPException(413, detail=f"a form is at most {MAX_BODY} bytes")
    text = raw.decode("utf-8", "replace")
    if request.headers.get("content-type", "").startswith(JSON):
        try:
            data = json.loads(text or "{}")
        except ValueError:
            raise HTTPException(400, detail="the body is not JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(400, detail="the body is not a JSON object")
        form = {str(k): "" if v is None else str(v) for k, v in data.items() if not isinstance(v, dict | list)}
    else:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
    if any(len(v) > MAX_VALUE for v in form.values()):
        raise HTTPException(413, detail=f"a field is at most {MAX_VALUE} characters")
    deal_id, _, version = form.get("card", "").partition(":")  # a board card's button: "<deal id>:<version>"
    if deal_id:  # a field the form (or a retry) gives itself is kept
        form = {"deal_id": deal_id, "version": version} | form
    return form


def command_path(action: Action, form: Form) -> str:
    parts = {}
    for name in action.ids:
        value = form.get(name, "").strip()
        if not PATH_ID.fullmatch(value):
            raise BadFormError(f"{name}: not an id")
        parts[name] = urllib.parse.quote(value, safe="")
    return action.path.format(**parts)


def headers_of(action: Action, form: Form, token: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if action.versioned and VERSION.fullmatch(version := form.get("version", "").strip()):
        headers["If-Match"] = f'"{version}"'
    if IDEMPOTENCY.fullmatch(key := form.get("idempotency_key", "")):
        headers["Idempotency-Key"] = key  # a form sent twice (a double click, a retry) runs once
    return headers


async def run(board: Board, who: Session, action: Action, form: dict[str, str]) -> Outcome:
    """The command, as the user, through its API; the API's answer or refusal as it is."""
    outcome = Outcome(action, form, 0)
    filled = {k: v for k, v in form.items() if not k.startswith("_")}  # ``_`` fields are the board's, never the form's
    filled |= {"_user": who.principal.user_id, "_team": who.principal.team or ""}
    try:
        if action.prepare is not None:
            filled = await action.prepare(board, who, filled)
        path = command_path(action, filled)
        body = action.body(filled)
    except ValueError as exc:
        outcome.status, outcome.rule, outcome.detail = 422, "invalid_input", str(exc)
        return outcome
    url = board.settings.api_url(action.service)
    params = {q: filled[q] for q in action.query if filled.get(q)}
    try:
        r = await board.apis.http.request(
            action.method, url + path, json=body, params=params, headers=headers_of(action, form, who.token)
        )
    except httpx.HTTPError as exc:
        outcome.status, outcome.rule, outcome.detail = 503, "unavailable", type(exc).__name__
        return outcome
    outcome.status = r.status_code
    try:
        answer = r.json()
    except ValueError:
        answer = {}
    if outcome.ok:
        outcome.answer = answer if isinstance(answer, dict) else {}
        return outcome
    if isinstance(answer, dict):
        outcome.rule = str(answer.get("rule") or "") or None
        detail = answer.get("detail")
        outcome.detail = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)[:500]
    if r.status_code in (409, 412) and action.current:
        outcome.current = await now_is(board, who, action, form)
    return outcome


async def now_is(board: Board, who: Session, action: Action, form: Form) -> dict[str, Any] | None:
    """The thing as it is now (the user's view of it), after a conflict; None if it cannot be read."""
    assert action.current is not None
    try:
        path = action.current.format(**{n: urllib.parse.quote(form.get(n, ""), safe="") for n in action.ids})
        r = await board.apis.http.get(
            board.settings.api_url(action.service) + path, headers={"Authorization": f"Bearer {who.token}"}
        )
    except (httpx.HTTPError, KeyError):
        return None
    try:
        body = r.json() if r.status_code == 200 else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


FALLBACKS = {  # a refusal whose rule the board has no sentence for, by its status
    400: N_("Some of what you entered is not valid"),
    403: N_("You may not do this"),
    404: N_("Not found, or not something you may see"),
    409: N_("This cannot be done as things are now"),
    412: N_("Someone changed this meanwhile: here is how it is now. Check it and try again."),
    413: N_("Some of what you entered is not valid"),
    422: N_("Some of what you entered is not valid"),
}
UNAVAILABLE = N_("The service does not answer right now: try again in a moment")
TEXTS = {"now": N_("As it is now"), "retry": N_("Try again"), "cancel": N_("Cancel")}  # the page script's texts


def message(outcome: Outcome, lang: i18n.Lang) -> str:
    """What happened, in the user's language: the rule's own sentence where there is one, else the status's."""
    if outcome.ok:
        return i18n.word(N_("Done"), lang)
    if domain_words.rule_text(outcome.rule) is not None:  # the APIs' rules, said by the board's domain words
        return domain_words.refusal(outcome.rule, outcome.detail, lang)
    if outcome.rule:
        log.warning("web.untranslated_rule", rule=outcome.rule, detail=(outcome.detail or "")[:200])
    return i18n.word(FALLBACKS.get(outcome.status, UNAVAILABLE), lang)


def wants_json(request: Request) -> bool:
    return JSON in request.headers.get("accept", "")


def back_of(action: Action, form: Form) -> str:
    return safe_next(form.get("back") or action.back)


async def act(request: Request, action_id: Code) -> Response:
    """POST /act/{action_id}: run one action as the signed-in user (see the module's docstring)."""
    action = REGISTRY.get(action_id)
    if action is None:
        raise HTTPException(404, detail=f"no action {action_id[:100]}")
    form = await read_form(request)
    who = await signed_in(request)
    scripted = wants_json(request)
    if who is None:
        if scripted:
            raise HTTPException(401, detail="sign in again")
        return login_redirect(request)
    if (reason := csrf.refused(request, form, who.csrf)) is not None:
        if scripted:
            raise HTTPException(403, detail=reason)
        return refusal(request, reason)
    board = board_of(request)
    outcome = await run(board, who, action, form)
    log.info("web.action", action=action.id, user=who.principal.user_id, status=outcome.status, rule=outcome.rule)
    if outcome.status == 401:  # the API refused the token: the sign-in service is asked again next time
        board.signin.tokens.forget(who.key)
    lang = lang_of(request)
    if scripted:
        return JSONResponse(
            {
                "ok": outcome.ok,
                "status": outcome.status,
                "rule": outcome.rule,
                "message": message(outcome, lang),
                "detail": outcome.detail,
                "answer": outcome.answer,
                "current": outcome.current,
                "texts": {k: i18n.word(text, lang) for k, text in TEXTS.items()},
            },
            status_code=200 if outcome.ok else outcome.status,
            headers={"Cache-Control": "no-store"},
        )
    if outcome.ok:
        return RedirectResponse(back_of(action, form), status_code=303)
    return await result_page(request, who, outcome)


def nav_of(board: Board) -> list[tuple[str, str]]:
    return [(p.id, p.title) for p in board.pages.values()]


async def result_page(request: Request, who: Session, outcome: Outcome) -> Response:
    """A refusal said in the user's language, the thing as it is now (after a conflict), and the form to retry."""
    board = board_of(request)
    values = dict(outcome.form)
    if outcome.current is not None and "version" in outcome.current:
        values["version"] = str(outcome.current["version"])  # a retry is against the version now shown
    options = await outcome.action.options(board, who, values) if outcome.action.options else {}
    return html(
        request,
        "actions/result.html",
        outcome.status if outcome.status >= 400 else 502,
        a=outcome.action,
        outcome=outcome,
        text=message(outcome, lang_of(request)),
        values=values,
        options=options,
        back=back_of(outcome.action, values),
        user=who.principal,
        nav=nav_of(board),
    )


async def form_page(request: Request, action_id: Code) -> Response:
    """GET /act/{action_id}?<field>=…: the action's form on a page of its own, its fields filled from the query."""
    action = REGISTRY.get(action_id)
    if action is None:
        raise HTTPException(404, detail=f"no action {action_id[:100]}")
    who = await signed_in(request)
    if who is None:
        return login_redirect(request)
    board = board_of(request)
    values = {k: v[:MAX_VALUE] for k, v in request.query_params.items() if k != "lang"}
    options = await action.options(board, who, values) if action.options else {}
    return html(
        request,
        "actions/page.html",
        a=action,
        values=values,
        options=options,
        back=back_of(action, values),
        user=who.principal,
        nav=nav_of(board),
    )
