"""Who may call what (issue 20): every route of every service's API × every kind of caller, on the real services.

POLICY states, for each route variant — "METHOD /path" as the service's OpenAPI names it, and what the variant asks —
the outcome for each of the 14 kinds of principal in PRINCIPALS (columns in that order):

- ``401``: not authenticated; ``403``: the role may not; ``404``: not visible (a deal the caller may not see answers as
  if it did not exist: 404 without a rule); ``422``: input refused (an id a client may not choose, a source lead);
- ``ok``: allowed (2xx, or what a business rule answers: the rights were checked first);
- ``T`` / ``X`` / ``TX`` / ``-``: allowed, and which of the marked deals the answer shows: ``T`` the north team's
  deals of u-owner (R, F), ``X`` the deals without a team of u-solo (N, FN), ``-`` neither; in the directory's lists,
  the north team and its user u-owner (``T``), the south team and its user u-south (``X``); in the agenda's, the
  activity of u-owner in the north (``T``) and the one of u-south in the south (``X``);
- ``sig``: the route is verified otherwise (a webhook's signature, token or key): any token changes nothing.

The test walks each service's OpenAPI: a route without a policy here fails it, as does a policy for a route that no
longer exists, and a role of ``shared.edge.auth.ROLES`` that no principal has. One stack of the services serves the
whole module; requests run concurrently, those changing one entity in turn (in PRINCIPALS order).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.agenda.main import build as build_agenda
from services.deals.events import deal_id_for_lead
from services.deals.main import DealsService
from services.deals.main import build as build_deals
from services.directory.main import build as build_directory
from services.leads.main import build as build_leads
from services.production.main import build as build_production
from services.signin.main import build as build_signin
from services.webhooks.main import build as build_webhooks
from shared.edge.auth import ROLES
from shared.edge.service import ServiceCore, utc_now
from shared.ops.settings import Settings
from shared.ops.stack import Endpoints
from testkit.services import (
    TEST_KEYS,
    SimClock,
    bearer,
    client_for,
    drop_everything,
    isolated_settings,
    start_parts,
)
from testkit.waiting import wait_until

pytestmark = [pytest.mark.pg, pytest.mark.kafka]

# name → (user, roles, team); None: no token at all
PRINCIPALS: dict[str, tuple[str, tuple[str, ...], str | None] | None] = {
    "anonymous": None,
    "no roles": ("u-nobody", (), "north"),
    "marketing": ("u-mkt", ("marketing",), None),
    "deal owner": ("u-owner", ("sales",), "north"),
    "team peer": ("u-peer", ("sales",), "north"),
    "other team's salesperson": ("u-south", ("sales",), "south"),
    "team manager": ("u-mgr", ("sales_manager",), "north"),
    "other team's manager": ("u-mgr-south", ("sales_manager",), "south"),
    "manager without a team": ("u-mgr-none", ("sales_manager",), None),
    "sales director": ("u-dir", ("sales_director",), None),
    "production": ("u-prod", ("production",), None),
    "auditor": ("u-audit", ("auditor",), None),
    "importer": ("u-import", ("importer",), None),
    "admin": ("u-admin", ("admin",), None),
}
NAMES = list(PRINCIPALS)
OUTCOMES = {"401", "403", "404", "422", "ok", "T", "X", "TX", "-", "sig"}


def row(text: str) -> dict[str, str]:
    cells = text.split()
    assert len(cells) == len(NAMES) and set(cells) <= OUTCOMES, text
    return dict(zip(NAMES, cells, strict=True))


# fmt: off
#                        anon none mkt  own  peer othr mgr  mgrX mgr0 dir  prod aud  imp  admin
PUBLIC =             row("ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok")
SIGNED =             row("sig  sig  sig  sig  sig  sig  sig  sig  sig  sig  sig  sig  sig  sig")
# deals: opening
OPEN_FOR_OWNER =     row("401  403  403  ok   403  403  ok   403  403  ok   403  403  403  ok")
OPEN_OWN_ELSEWHERE = row("401  403  403  403  403  403  403  403  403  ok   403  403  403  ok")
SALES_INPUT_REFUSED = row("401  403  403  422  422  422  422  422  422  422  403  403  403  422")
# deals: one deal (W: commands; R: reads; N: a deal without a team; W2: reassigned into another team)
DEAL_WRITE =         row("401  403  403  ok   404  404  ok   404  404  ok   403  403  403  ok")
REASSIGN_AWAY =      row("401  403  403  403  404  404  403  404  404  ok   403  403  403  ok")
DEAL_READ =          row("401  403  403  ok   404  404  ok   404  404  ok   403  ok   403  ok")
TEAMLESS_READ =      row("401  403  403  404  404  404  404  404  404  ok   403  ok   403  ok")
CONTACT_READ =       row("401  403  403  ok   404  404  ok   404  404  ok   403  403  403  ok")
# deals: lists and numbers (which of the marked deals each answer shows)
DEALS_SHOWN =        row("401  403  403  T    -    -    T    -    -    TX   403  TX   403  TX")
TEAM_NUMBERS =       row("401  403  403  T    -    -    T    403  -    T    403  T    403  T")
SOLO_NUMBERS =       row("401  403  403  403  403  403  -    -    403  X    403  X    403  X")
SOLO_STATUS =        row("401  403  403  403  403  403  ok   ok   403  ok   403  ok   403  ok")
TEAM_PLAN =          row("401  403  403  403  403  403  ok   403  403  ok   403  ok   403  ok")
OWNER_PLAN =         row("401  403  403  ok   403  403  403  403  403  ok   403  ok   403  ok")
LEARNING =           row("401  403  403  403  403  403  ok   ok   403  ok   403  ok   403  ok")
SALES_READ =         row("401  403  403  ok   ok   ok   ok   ok   ok   ok   403  ok   403  ok")
COMPANY_WIDE =       row("401  403  403  403  403  403  403  403  403  ok   403  403  403  ok")
TEAM_TARGET =        row("401  403  403  403  403  403  ok   403  403  ok   403  403  403  ok")
# leads and production
MARKETING_WRITE =    row("401  403  ok   403  403  403  403  403  403  403  403  403  403  ok")
LEADS_READ =         row("401  403  ok   ok   ok   ok   ok   ok   ok   ok   403  ok   403  ok")
PRODUCTION_WRITE =   row("401  403  403  403  403  403  403  403  403  403  ok   403  403  ok")
ORDERS_READ =        row("401  403  403  403  403  403  ok   ok   ok   ok   ok   ok   403  ok")
# the directory: admins change it; admin, auditor and director see everyone, anyone else their token's team and
# themselves (404 otherwise); the audit trails are the three's
ADMIN_ONLY =         row("401  403  403  403  403  403  403  403  403  403  403  403  403  ok")
DIRECTORY_SHOWN =    row("401  403  -    T    T    X    T    X    -    TX   -    TX   403  TX")
NORTH_READ =         row("401  403  404  ok   ok   404  ok   404  404  ok   404  ok   403  ok")
SOUTH_READ =         row("401  403  404  404  404  ok   404  ok   404  ok   404  ok   403  ok")
SELF_READ =          row("401  403  ok   404  404  404  404  404  404  ok   404  ok   403  ok")
DIRECTORY_AUDIT =    row("401  403  403  403  403  403  403  403  403  ok   403  ok   403  ok")
RATES_READ =         row("401  403  ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   403  ok")
# the directory's customers, as deals: CO (the north's, u-owner's) and CS (the south's); CP, SP their people
CUSTOMERS_SHOWN =    row("401  403  403  T    T    X    T    X    -    TX   403  TX   403  TX")
CUSTOMER_READ =      row("401  403  403  ok   ok   404  ok   404  404  ok   403  ok   403  ok")
CUSTOMER_WRITE =     row("401  403  403  ok   403  404  ok   404  404  ok   403  403  403  ok")
CUSTOMER_MERGE =     row("401  403  403  403  403  403  ok   404  404  ok   403  403  403  ok")
CUSTOMER_LIST =      row("401  403  403  ok   ok   ok   ok   ok   ok   ok   403  ok   403  ok")
# the agenda (decision 0020): activities as deals (scheduling on deal R for u-owner, commands on AW, reads of AT);
# the lists mark AT (u-owner's, the north's) and AX (u-south's, the south's); an agenda is its owner's, their team
# manager's and those who see everything's
ACTIVITIES_SHOWN =   row("401  403  403  T    -    X    T    X    -    TX   403  TX   403  TX")
OWNER_AGENDA =       row("401  403  403  T    403  403  T    403  403  T    403  T    403  T")
TEAM_AGENDA =        row("401  403  403  403  403  403  T    403  403  T    403  T    403  T")
# each service's POST /imports/batches (issue 26): the importer's and admin's
IMPORTS =            row("401  403  403  403  403  403  403  403  403  403  403  403  ok   ok")
# the directory's import jobs: an empty upload is refused by its rule (import_refused), an unknown job is 404
IMPORT_JOBS =        row("401  403  403  403  403  403  403  403  403  403  403  403  ok   ok")
IMPORT_JOB_READ =    row("401  403  403  403  403  403  403  403  403  403  403  403  404  404")
# the webhooks (decision 0026): an admin manages subscriptions, an auditor reads them; WH is a subscription, delivery 1
# and a fresh subscription id exist nowhere (404 for those allowed)
WEBHOOKS_READ =      row("401  403  403  403  403  403  403  403  403  403  403  ok   403  ok")
WEBHOOKS_ABSENT =    row("401  403  403  403  403  403  403  403  403  403  403  404  403  404")
WEBHOOKS_GONE =      row("401  403  403  403  403  403  403  403  403  403  403  403  403  404")
# fmt: on


@dataclass(frozen=True)
class Who:
    name: str
    user: str
    team: str | None


Body = Callable[[Who], Any] | Any


@dataclass(frozen=True)
class Case:
    op: str  # "METHOD /path" as in the OpenAPI
    expect: dict[str, str]
    variant: str = ""
    path: dict[str, str] = field(default_factory=dict)  # path parameter → a World.ids key, "new" (a fresh id) or itself
    params: dict[str, str] = field(default_factory=dict)  # values may name World.ids keys as "{key}"
    body: Body = None
    serial: str | None = None  # the entity this changes: its requests run one after another
    valid: bool = False  # the body is valid: an allowed caller's answer is never a validation error
    shows: str | None = None  # how to find the marked deals in the answer: see SHOWS

    @property
    def label(self) -> str:
        return f"{self.op} ({self.variant})" if self.variant else self.op


LINE = {"product": "Tủ đông 500L", "quantity": "2", "unit_price": {"amount": "21000000", "currency": "VND"}}
SOME = "6f1f3c8e-2f4e-4b7a-9d0c-1a2b3c4d5e99"  # an id of nothing (a random-looking version 4)
DEAL_COMMANDS: dict[str, Any] = {
    "move-stage": {"stage_id": "contacted"},
    "change-value": {"value": {"amount": "42000000", "currency": "VND"}},
    "change-lines": {"lines": [LINE]},
    "change-close-date": {"expected_close_date": "2027-03-01", "reason": "budget after Tết"},
    "override-probability": {"probability": "0.5", "reason": "verbal yes"},
    "clear-probability-override": {},
    "reassign": {"owner_id": "u-owner", "team_id": "north"},  # where it is: changes nothing
    "log-activity": {"activity_type": "call", "channel": "phone"},
    "record-needs": {"needs": ["500L"]},
    "send-quote": {"lines": [LINE], "valid_until": "2027-06-30"},
    "revise-quote": {"quote_id": SOME, "lines": [LINE], "valid_until": "2027-06-30"},
    "accept-quote": {"quote_id": SOME},
    "reject-quote": {"quote_id": SOME, "reason": "too dear"},
    "win": {},
    "lose": {"reason": "budget cut"},
    "reopen": {"reason": "budget back"},
    "start-follow-up": {"due_on": "2027-07-01"},
    "reschedule-follow-up": {"follow_up_id": SOME, "due_on": "2027-07-02", "reason": "away"},
    "record-follow-up-contact": {"follow_up_id": SOME, "channel": "phone"},
    "record-feedback": {"follow_up_id": SOME, "csat": 5},
    "complete-follow-up": {"follow_up_id": SOME, "outcome": "happy"},
    "flag-delivery-risk": {"order_id": SOME, "reason": "late parts"},
    "erase-contact": {"reason": "data subject request #2026-118"},
    "link-customer": {"organisation_id": SOME},  # this suite's replica checks are off (isolated_settings)
}
LEAD_COMMANDS = [
    "assign",
    "record-engagement",
    "segment",
    "score",
    "contact",
    "start-nurture",
    "stop-nurture",
    "record-nurture-email",
    "extend-offer",
    "start-trial",
    "qualify",
    "disqualify",
    "convert",
    "recycle",
    "update-contact",
    "merge",
    "remap",
    "erase",
]
ORDER_COMMANDS = [
    "plan",
    "start-design",
    "approve-design",
    "request-materials",
    "receive-materials",
    "report-shortage",
    "start-assembly",
    "record-output",
    "scrap",
    "complete-assembly",
    "record-inspection",
    "complete-rework",
    "pack",
    "ship",
    "confirm-delivery",
    "hold",
    "resume",
    "change-due-date",
    "cancel",
    "erase-contact",
]
HEALTH = [
    *(Case(op, PUBLIC) for op in ("GET /metrics", "GET /healthz", "GET /readyz")),
    Case("GET /schemas/events/{name}", PUBLIC, path={"name": "deals/DealOpened.v1.json"}),  # decision 0024: open
]


def deal_body(owner: str | None = None, team: str | None = "north", **more: Any) -> Callable[[Who], Any]:
    """A new deal's body; ``owner`` None: the caller's own, ``team`` "own": the caller's team."""

    def body(who: Who) -> dict[str, Any]:
        return {
            "title": "Tủ đông cho siêu thị",
            "customer": "Siêu thị Minh Châu",
            "owner_id": owner or who.user,
            "team_id": who.team if team == "own" else team,
            "lines": [LINE],
            "expected_close_date": "2027-01-20",
        } | more

    return body


def deals_cases() -> list[Case]:
    w = {"deal_id": "W"}
    cases = [
        *HEALTH,
        Case("POST /deals", OPEN_FOR_OWNER, "for u-owner, in the north", body=deal_body("u-owner"), valid=True),
        Case("POST /deals", OPEN_OWN_ELSEWHERE, "their own, in the west", body=deal_body(team="west"), valid=True),
        Case(
            "POST /deals",
            SALES_INPUT_REFUSED,
            "under the id a lead's conversion derives",
            params={"deal_id": "{derived}"},
            body=deal_body(team="own"),
        ),
        Case(
            "POST /deals",
            SALES_INPUT_REFUSED,
            "naming a lead as its source",
            body=deal_body(team="own", source_lead_id="{L}"),
        ),
        *(
            Case(f"POST /deals/{{deal_id}}/{c}", DEAL_WRITE, "W", w, body=b, serial="W", valid=True)
            for c, b in DEAL_COMMANDS.items()
        ),
        Case(
            "POST /deals/{deal_id}/reassign",
            REASSIGN_AWAY,
            "W2, into the west",
            {"deal_id": "W2"},
            body={"owner_id": "u-owner", "team_id": "west"},
            serial="W2",
            valid=True,
        ),
        Case("GET /deals/{deal_id}", DEAL_READ, "R", {"deal_id": "R"}),
        Case("GET /deals/{deal_id}", TEAMLESS_READ, "N, without a team", {"deal_id": "N"}),
        Case("GET /deals/{deal_id}", CONTACT_READ, "R with its contact", {"deal_id": "R"}, {"include_contact": "true"}),
        Case("GET /deals/{deal_id}/history", DEAL_READ, "R", {"deal_id": "R"}),
        Case("GET /deals/{deal_id}/history", TEAMLESS_READ, "N", {"deal_id": "N"}),
        Case("GET /deals/{deal_id}/state", DEAL_READ, "R", {"deal_id": "R"}, {"version": "1"}),
        Case("GET /deals/{deal_id}/diff", DEAL_READ, "R", {"deal_id": "R"}, {"from_version": "0"}),
        Case("GET /deals/{deal_id}/diff", TEAMLESS_READ, "N", {"deal_id": "N"}, {"from_version": "0"}),
        Case("GET /board", DEALS_SHOWN, shows="board"),
        Case("GET /deals", DEALS_SHOWN, params={"limit": "200"}, shows="items"),
        Case("GET /follow-ups", DEALS_SHOWN, params={"due_by": "2030-01-01", "limit": "200"}, shows="items"),
        Case("GET /alerts", DEALS_SHOWN, shows="alerts"),
        Case("GET /forecast", DEALS_SHOWN, shows="owners"),
        Case("GET /forecast", TEAM_NUMBERS, "the north's", {}, {"team_id": "north"}, shows="owners"),
        Case("GET /forecast/changes", DEALS_SHOWN, params={"since": "{since}"}, shows="changes"),
        Case(
            "GET /analytics/stages",
            SOLO_NUMBERS,
            "u-solo's",
            params={"from": "{from}", "to": "{to}", "owner_id": "u-solo"},
            shows="open_now",
        ),
        Case("GET /analytics/scorecard", DEALS_SHOWN, params={"period": "{period}"}, shows="owners"),
        Case(
            "GET /analytics/lost-reasons",
            SOLO_STATUS,
            "u-solo's",
            params={"from": "{from}", "to": "{to}", "owner_id": "u-solo"},
        ),
        Case(
            "GET /analytics/win-rate",
            SOLO_STATUS,
            "u-solo's",
            params={"from": "{from}", "to": "{to}", "owner_id": "u-solo"},
        ),
        Case("GET /analytics/target-plan", TEAM_PLAN, "the north's", params={"period": "{period}", "team_id": "north"}),
        Case(
            "GET /analytics/target-plan", OWNER_PLAN, "u-owner's", params={"period": "{period}", "owner_id": "u-owner"}
        ),
        Case("GET /analytics/success-factors", LEARNING),
        Case("GET /analytics/next-steps", DEALS_SHOWN, shows="by_owner"),
        Case("GET /analytics/next-steps", TEAM_NUMBERS, "the north's", {}, {"team_id": "north"}, shows="by_owner"),
        Case("GET /pipelines/{pipeline_id}", SALES_READ, path={"pipeline_id": "default"}),
        Case(
            "PUT /pipelines/{pipeline_id}",
            COMPANY_WIDE,
            "default, as it is",
            {"pipeline_id": "default"},
            body=lambda who: "{pipeline}",
            serial="pipeline",
            valid=True,
        ),
        Case(
            "PUT /targets/{target_id}",
            TEAM_TARGET,
            "the north's",
            {"target_id": "new"},
            body={"team_id": "north", "period": "2027-01", "amount": {"amount": "900000000", "currency": "VND"}},
            valid=True,
        ),
        Case(
            "PUT /targets/{target_id}",
            COMPANY_WIDE,
            "u-owner's, no team",
            {"target_id": "new"},
            body={"owner_id": "u-owner", "period": "2027-01", "amount": {"amount": "1", "currency": "VND"}},
            valid=True,
        ),
    ]
    return cases


def leads_cases() -> list[Case]:
    lead, campaign = {"lead_id": "L"}, {"campaign_id": "C"}
    return [
        *HEALTH,
        *(
            Case(op, SIGNED)
            for op in (
                "POST /webhooks/website",
                "POST /webhooks/ladipage",
                "GET /webhooks/facebook",
                "POST /webhooks/facebook",
                "POST /webhooks/google-ads",
            )
        ),
        Case("POST /leads", MARKETING_WRITE, body={}),
        Case("POST /campaigns", MARKETING_WRITE, body={}),
        Case("POST /campaigns/{campaign_id}/status", MARKETING_WRITE, path=campaign, body={}, serial="C"),
        Case("PUT /campaigns/{campaign_id}/budget", MARKETING_WRITE, path=campaign, body={}, serial="C"),
        Case(
            "PUT /campaigns/{campaign_id}/spend/{day}",
            MARKETING_WRITE,
            path=campaign | {"day": "day"},
            body={},
            serial="C",
        ),
        *(Case(f"POST /leads/{{lead_id}}/{c}", MARKETING_WRITE, path=lead, body={}, serial="L") for c in LEAD_COMMANDS),
        Case("GET /leads/{lead_id}", LEADS_READ, path=lead),
        Case("GET /leads/{lead_id}/history", LEADS_READ, path=lead),
        Case("GET /campaigns/{campaign_id}", LEADS_READ, path=campaign),
        *(
            Case(f"GET {p}", LEADS_READ)
            for p in ("/leads", "/funnel", "/campaigns", "/nurture", "/segments", "/alerts")
        ),
    ]


def production_cases() -> list[Case]:
    order = {"order_id": "O"}
    return [
        *HEALTH,
        Case("POST /orders", PRODUCTION_WRITE, body={}),
        Case(
            "PUT /plans/{product}/{period}",
            PRODUCTION_WRITE,
            path={"product": "product", "period": "period"},
            body={},
            serial="plan",
        ),
        Case("POST /plans/{period}/propose", PRODUCTION_WRITE, path={"period": "period"}, serial="plan"),
        *(
            Case(f"POST /orders/{{order_id}}/{c}", PRODUCTION_WRITE, path=order, body={}, serial="O")
            for c in ORDER_COMMANDS
        ),
        Case("GET /orders/{order_id}", ORDERS_READ, path=order),
        Case("GET /orders/{order_id}/history", ORDERS_READ, path=order),
        Case("GET /orders/for-deal/{deal_id}", ORDERS_READ, path={"deal_id": "F"}),
        *(
            Case(f"GET {p}", ORDERS_READ)
            for p in (
                "/board",
                "/analytics/cycle-times",
                "/analytics/quality",
                "/analytics/delivery",
                "/demand",
                "/orders",
                "/alerts",
            )
        ),
    ]


USER_COMMANDS = ["profile", "roles", "team"]  # PUT /users/{user_id}/<command>
USER_ACTIONS = ["deactivate", "reactivate", "erase"]  # POST /users/{user_id}/<action>


def directory_cases() -> list[Case]:
    """Every command with an empty body (the admin's answer is 422: nothing changes), reads on the marked users and
    teams (DIRECTORY_USERS, DIRECTORY_TEAMS)."""
    user, team = {"user_id": "u-owner"}, {"team_id": "north"}
    new_user = {"user_id": "u-new", "name": "Lý Thu Hà", "email": "ha.ly@pipelines.vn", "team_id": "north"}
    return [
        *HEALTH,
        Case("POST /users", ADMIN_ONLY, body=new_user, serial="U", valid=True),
        *(Case(f"PUT /users/{{user_id}}/{c}", ADMIN_ONLY, path=user, body={}, serial="U") for c in USER_COMMANDS),
        *(Case(f"POST /users/{{user_id}}/{c}", ADMIN_ONLY, path=user, body={}, serial="U") for c in USER_ACTIONS),
        Case("POST /users/lookup", ADMIN_ONLY, body={"email": "u-owner@pipelines.vn"}, valid=True),
        Case("POST /teams", ADMIN_ONLY, body={"team_id": "west", "name": "Miền Tây"}, serial="T", valid=True),
        Case("PUT /teams/{team_id}", ADMIN_ONLY, path=team, body={}, serial="T"),
        Case("POST /teams/{team_id}/close", ADMIN_ONLY, path=team, body={}, serial="T"),
        Case("GET /users", DIRECTORY_SHOWN, shows="users"),
        Case("GET /users/{user_id}", NORTH_READ, "the north team's", path=user),
        Case("GET /users/{user_id}", SOUTH_READ, "the south team's", path={"user_id": "u-south"}),
        Case(
            "GET /users/{user_id}", SELF_READ, "oneself, in a team one's token does not name", path={"user_id": "u-mkt"}
        ),
        Case("GET /users/{user_id}/history", DIRECTORY_AUDIT, path=user),
        Case("GET /teams", DIRECTORY_SHOWN, shows="teams"),
        Case("GET /teams/{team_id}", NORTH_READ, "north", path=team),
        Case("GET /teams/{team_id}", SOUTH_READ, "south", path={"team_id": "south"}),
        Case("GET /teams/{team_id}/history", DIRECTORY_AUDIT, path=team),
        Case("PUT /rates/{currency}", ADMIN_ONLY, path={"currency": "USD"}, body={}),
        Case("GET /rates", RATES_READ),
        Case("POST /imports", IMPORT_JOBS, params={"source": "hubspot"}),
        Case("GET /imports/{import_id}", IMPORT_JOB_READ, path={"import_id": "new"}),
        *customer_cases(),
    ]


def customer_cases() -> list[Case]:
    """Organisations and people: valid commands on the north's CO and CP (a rule refusing one, as ``unchanged``, is
    an allowed caller's answer), reads of them, the lists marking CO/CP ``T`` and CS/SP ``X``."""
    co, cp = {"organisation_id": "CO"}, {"person_id": "CP"}
    org = {"name": "Siêu thị Minh Châu", "owner_id": "u-owner", "team_id": "north"}
    here = {"owner_id": "u-owner", "team_id": "north", "reason": "where it is"}
    into = {"into": SOME, "reason": "a duplicate"}
    return [
        Case("POST /organisations", OPEN_FOR_OWNER, "for u-owner, in the north", body=org, valid=True),
        Case("GET /organisations", CUSTOMERS_SHOWN, shows="organisations"),
        Case("GET /organisations/{organisation_id}", CUSTOMER_READ, path=co),
        Case("GET /organisations/{organisation_id}/history", CUSTOMER_READ, path=co),
        Case(
            "PUT /organisations/{organisation_id}",
            CUSTOMER_WRITE,
            path=co,
            body={"name": "Siêu thị Minh Châu", "reason": "as it is"},
            serial="CO",
            valid=True,
        ),
        Case(
            "POST /organisations/{organisation_id}/reassign",
            CUSTOMER_WRITE,
            path=co,
            body=here,
            serial="CO",
            valid=True,
        ),
        Case(
            "POST /organisations/{organisation_id}/merge", CUSTOMER_MERGE, path=co, body=into, serial="CO", valid=True
        ),
        Case(
            "POST /people", CUSTOMER_WRITE, "in CO", body={"organisation_id": "{CO}", "name": "Lê Thị Hồng"}, valid=True
        ),
        Case("GET /people", CUSTOMERS_SHOWN, shows="people"),
        Case("GET /people/{person_id}", CUSTOMER_READ, path=cp),
        Case("GET /people/{person_id}/history", CUSTOMER_READ, path=cp),
        Case(
            "PUT /people/{person_id}",
            CUSTOMER_WRITE,
            path=cp,
            body={"name": "Đỗ Minh Châu", "reason": "x"},
            serial="CP",
        ),
        Case("POST /people/{person_id}/reassign", CUSTOMER_WRITE, path=cp, body=here, serial="CP", valid=True),
        Case("POST /people/{person_id}/merge", CUSTOMER_MERGE, path=cp, body=into, serial="CP", valid=True),
        Case("POST /people/{person_id}/erase", ADMIN_ONLY, path=cp, body={}, serial="CP"),
        Case("GET /customers/duplicates", CUSTOMER_LIST),
        Case(
            "POST /customers/adopt", ADMIN_ONLY, "a dry run", body={"reason": "old deals", "dry_run": True}, valid=True
        ),
        Case("GET /organisations/{organisation_id}/360", CUSTOMER_READ, path=co),
        Case(
            "GET /analytics/customers/repeat-revenue", CUSTOMER_LIST, params={"from": "2026-01-01", "to": "2027-01-01"}
        ),
        Case("GET /analytics/customers/segments", CUSTOMER_LIST),
    ]


def agenda_cases() -> list[Case]:
    """Scheduling on the north's deal R for u-owner, each command on AW (u-owner's; a rule refusing one, as done
    already, is an allowed caller's answer), reads of AT, the lists and agendas marking AT and AX."""
    schedule = {
        "kind": "phone",
        "subject_type": "deal",
        "subject_id": "{R}",
        "owner_id": "u-owner",
        "title": "Gọi lại chị Châu",
        "due_at": "2031-01-06T09:00:00+07:00",
    }
    aw, at = {"activity_id": "AW"}, {"activity_id": "AT"}
    commands = {
        "complete": {"outcome": "đã gọi"},
        "reschedule": {"due_at": "2031-01-07T09:00:00+07:00", "reason": "khách bận"},
        "cancel": {"reason": "không cần nữa"},
        "reassign": {"owner_id": "u-owner", "team_id": "north", "reason": "where it is"},
    }
    return [
        *HEALTH,
        Case("POST /activities", DEAL_WRITE, "on deal R, for u-owner", body=schedule, valid=True),
        *(
            Case(f"POST /activities/{{activity_id}}/{c}", DEAL_WRITE, path=aw, body=b, serial="AW", valid=True)
            for c, b in commands.items()
        ),
        Case("GET /activities/{activity_id}", DEAL_READ, path=at),
        Case("GET /activities/{activity_id}/history", DEAL_READ, path=at),
        Case("GET /activities", ACTIVITIES_SHOWN, params={"limit": "200"}, shows="activities"),
        Case("GET /agenda", OWNER_AGENDA, "u-owner's", params={"owner_id": "u-owner"}, shows="agenda"),
        Case("GET /agenda", TEAM_AGENDA, "the north's", params={"team_id": "north"}, shows="agenda"),
    ]


def signin_cases() -> list[Case]:
    """The sign-in service (decision 0022): its session routes take no bearer token (a session secret, a password,
    a reset link: the same answer whoever calls), its admin routes an admin's (u-owner is in the directory)."""
    nothing = "x" * 43  # a well-formed secret of no session, no reset link

    def wrong_password(who: Who) -> dict[str, str]:  # each caller its own email: no lockout across callers
        return {"email": f"{who.name.replace(' ', '-').replace(chr(39), '')}@nowhere.vn", "password": "not it"}

    return [
        *HEALTH,
        Case("GET /.well-known/jwks.json", PUBLIC),
        Case("POST /sessions/password", SIGNED, "a wrong password", body=wrong_password),
        *(
            Case(f"POST /sessions/{r}", SIGNED, "no such session", body={"session": nothing})
            for r in ROUTES_OF_A_SESSION
        ),
        Case("POST /password-resets", SIGNED, "no such link", body={"token": nothing, "password": "a long password!"}),
        Case("POST /users/{user_id}/password-reset", ADMIN_ONLY, path={"user_id": "u-owner"}, valid=True),
        # OpenID Connect (not configured in this suite: the same refusal whoever calls)
        Case("GET /oidc/start", SIGNED, "not configured"),
        Case("POST /oidc/callback", SIGNED, "not configured", body={"code": "c", "state": nothing, "binding": nothing}),
        Case("POST /users/{user_id}/sessions/end", ADMIN_ONLY, path={"user_id": "u-owner"}, valid=True),
    ]


def webhooks_cases() -> list[Case]:
    """The webhooks (decision 0026): subscriptions are the admin's, readable by an auditor; WH exists (made by an
    admin, its URL a public address: no DNS asked), delivery 1 does not."""
    sub = {"subscription_id": "WH"}
    delivery = sub | {"delivery_id": "1"}
    new = {"url": "https://93.184.215.14/hooks/policy", "event_types": ["pipelines.deals.*"]}
    return [
        *HEALTH,
        Case("POST /subscriptions", ADMIN_ONLY, body=new, valid=True),
        Case("GET /subscriptions", WEBHOOKS_READ),
        Case("GET /subscriptions/{subscription_id}", WEBHOOKS_READ, path=sub),
        Case("PATCH /subscriptions/{subscription_id}", ADMIN_ONLY, path=sub, body={"description": "ERP"}, serial="WH"),
        Case("POST /subscriptions/{subscription_id}/rotate-secret", ADMIN_ONLY, path=sub, serial="WH"),
        Case("DELETE /subscriptions/{subscription_id}", WEBHOOKS_GONE, path={"subscription_id": "new"}),
        Case("GET /subscriptions/{subscription_id}/deliveries", WEBHOOKS_READ, path=sub),
        Case("GET /subscriptions/{subscription_id}/deliveries/{delivery_id}", WEBHOOKS_ABSENT, path=delivery),
        Case("POST /subscriptions/{subscription_id}/deliveries/{delivery_id}/redrive", WEBHOOKS_GONE, path=delivery),
        Case("POST /subscriptions/{subscription_id}/deliveries/{delivery_id}/skip", WEBHOOKS_GONE, path=delivery),
    ]


ROUTES_OF_A_SESSION = ("token", "end", "end-all")
POLICY: dict[str, list[Case]] = {
    "deals": deals_cases(),
    "leads": leads_cases(),
    "production": production_cases(),
    "directory": directory_cases(),
    "agenda": agenda_cases(),
    "signin": signin_cases(),
    "webhooks": webhooks_cases(),
}


def import_case(kind: str, first: str, body: dict[str, Any]) -> Case:
    """A batch of one row (issue 26) keyed by the caller, so that each caller's row is a new one."""

    def batch(who: Who) -> dict[str, Any]:
        fact = {"command": first, "occurred_at": "2026-01-05T09:00:00+07:00", "body": body}
        return {"source": "policy", "rows": [{"row": 1, "kind": kind, "key": who.name, "facts": [fact]}]}

    return Case("POST /imports/batches", IMPORTS, body=batch, valid=True)


IMPORT_CASES = {
    "deals": import_case("deal", "open_deal", {"title": "Kho lạnh", "customer": "Hòa Bình", "owner_id": "u-owner"}),
    "leads": import_case("lead", "capture", {"source": "csv", "contact": {"name": "An", "email": "an@example.vn"}}),
    "production": import_case(
        "order",
        "create",
        {"customer": "Hòa Bình", "lines": [{"product": "Tủ", "quantity": "1"}], "due_date": "2026-02-01"},
    ),
    "directory": import_case(
        "organisation", "register", {"name": "Hòa Bình", "owner_id": "u-owner", "team_id": "north"}
    ),
    "agenda": import_case(
        "activity",
        "schedule",
        {
            "kind": "call",
            "subject_type": "deal",
            "subject_id": SOME,
            "owner_id": "u-owner",
            "title": "Gọi",
            "due_at": "2026-01-06T09:00:00+07:00",
        },
    ),
}
for _service, _case in IMPORT_CASES.items():
    POLICY[_service].append(_case)
# the directory's teams and users (user → team): u-mkt's team is one no token names; and how the lists mark them
DIRECTORY_TEAMS = ["north", "south", "east"]
DIRECTORY_USERS = {"u-owner": "north", "u-south": "south", "u-mkt": "east"}
DIRECTORY_MARKS = {"north": "T", "u-owner": "T", "south": "X", "u-south": "X"}


# ---------------------------------------------------------------------------------------------- the world
@dataclass
class World:
    settings: Settings
    cores: dict[str, ServiceCore]
    http: dict[str, httpx.AsyncClient]
    ids: dict[str, Any]  # what the cases name: deals R N W W2 F FN, lead L, campaign C, order O, dates, bodies
    marked: dict[str, str]  # deal id → "T" or "X"


def who_is(name: str) -> Who:
    principal = PRINCIPALS[name]
    return Who(name, principal[0], principal[2]) if principal else Who(name, "", None)


def headers_of(name: str) -> dict[str, str]:
    principal = PRINCIPALS[name]
    if principal is None:
        return {}
    user, roles, team = principal
    return bearer(user, *roles, team=team)


ADMIN = headers_of("admin")


async def created(r: httpx.Response) -> str:
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
async def world(endpoints: Endpoints) -> AsyncIterator[World]:
    settings = isolated_settings(endpoints)
    clock = SimClock(utc_now())
    cores: dict[str, ServiceCore] = {
        "leads": await build_leads(settings, clock=clock),
        "deals": await build_deals(settings, clock=clock),
        "production": await build_production(settings, clock=clock),
        "directory": await build_directory(settings, clock=clock),
        "agenda": await build_agenda(settings, clock=clock),
    }
    stop = asyncio.Event()
    tasks = []
    for core in cores.values():
        await core.ensure_topics()
        tasks += await start_parts(core, stop)
    http = {name: client_for(core.app()) for name, core in cores.items()}
    # the sign-in service, asking the directory above for its users
    directory_app = httpx.ASGITransport(app=cores["directory"].app())
    signin = await build_signin(settings, clock=clock, keys=TEST_KEYS, directory_transport=directory_app)
    http["signin"] = client_for(signin.app())
    tasks.append(asyncio.create_task(signin.revocations.run(stop)))  # ready once it has read the revoked sessions
    webhooks = await build_webhooks(settings, clock=clock)
    http["webhooks"] = client_for(webhooks.app())
    try:
        deals = http["deals"]
        today = clock.now.date()
        ids: dict[str, Any] = {}

        async def open_deal(key: str, owner: str, team: str | None) -> str:
            body = deal_body(owner, team, expected_close_date=str(today + timedelta(days=60)))(who_is("admin"))
            body["contact_id"] = f"c-{key}"
            body["contact"] = {"name": "Đỗ Minh Châu", "email": "chau.do@minhchau.vn"}
            return await created(await deals.post("/deals", json=body, headers=ADMIN))

        for key, owner, team in (
            ("R", "u-owner", "north"),
            ("N", "u-solo", None),
            ("W", "u-owner", "north"),
            ("W2", "u-owner", "north"),
            ("F", "u-owner", "north"),
            ("FN", "u-solo", None),
        ):
            ids[key] = await open_deal(key, owner, team)
        for key in ("F", "FN"):  # won, with a follow-up each
            assert (await deals.post(f"/deals/{ids[key]}/win", json={}, headers=ADMIN)).status_code == 200
            follow_up = {"due_on": str(today + timedelta(days=5))}
            r = await deals.post(f"/deals/{ids[key]}/start-follow-up", json=follow_up, headers=ADMIN)
            assert r.status_code == 200, r.text
        lead = {"source": "manual", "contact": {"name": "Hoàng Thị Yến", "phone": "0905123456"}}
        ids["L"] = await created(await http["leads"].post("/leads", json=lead, headers=ADMIN))
        ids["derived"] = str(deal_id_for_lead(uuid.UUID(ids["L"])))
        campaign = {"name": "Tết", "channel": "facebook", "budget": {"amount": "50000000", "currency": "VND"}}
        ids["C"] = await created(await http["leads"].post("/campaigns", json=campaign, headers=ADMIN))
        order = {"customer": "Quán Yến", "lines": [{"product": "Tủ mát", "quantity": "1"}], "due_date": "2027-02-01"}
        ids["O"] = await created(await http["production"].post("/orders", json=order, headers=ADMIN))

        ids["directory"] = await directory_world(http["directory"])
        ids |= await customers_world(http["directory"])

        clock.now += timedelta(days=29)  # R, N (and W, W2) 29 days in their first stage: stuck (threshold 14)
        period = f"{clock.now:%Y-%m}"
        ids |= {
            "period": period,
            "day": str(today),
            "product": "tu-mat",
            "since": (clock.now - timedelta(days=60)).isoformat(),
            "from": str(today - timedelta(days=1)),
            "to": str(today + timedelta(days=60)),
        }
        for target in ({"team_id": "north"}, {"owner_id": "u-owner"}):
            body = target | {"period": period, "amount": {"amount": "500000000", "currency": "VND"}}
            assert (await deals.put(f"/targets/{uuid.uuid4()}", json=body, headers=ADMIN)).status_code == 200
        pipeline = (await deals.get("/pipelines/default", headers=ADMIN)).json()
        ids["pipeline"] = {"name": pipeline["name"], "stages": pipeline["stages"], "reason": "as it is"}
        marked = {ids[k]: "T" for k in ("R", "F")} | {ids[k]: "X" for k in ("N", "FN")}

        async def listed() -> bool:
            shown = (await deals.get("/deals", params={"limit": "200"}, headers=ADMIN)).json()["items"]
            return set(marked) <= {d["deal_id"] for d in shown}

        await wait_until(listed, timeout=30)
        deals_core = cores["deals"]
        assert isinstance(deals_core, DealsService)
        await deals_core.alert_scanner().scan()

        async def ready() -> bool:
            alerts = {a["entity"] for a in (await deals.get("/alerts", headers=ADMIN)).json()}
            changes = await deals.get("/forecast/changes", params={"since": ids["since"]}, headers=ADMIN)
            order = await http["production"].get(f"/orders/for-deal/{ids['F']}", headers=ADMIN)
            return (
                {f"deal-{ids['R']}", f"deal-{ids['N']}"} <= alerts
                and set(marked) <= {d["deal_id"] for d in changes.json()["deals"]}
                and order.status_code == 200
            )

        await wait_until(ready, timeout=60, interval=0.2)
        ids |= await agenda_world(http["agenda"], ids, clock)
        hook = {"url": "https://93.184.215.14/hooks/world", "event_types": ["pipelines.deals.DealWon"]}
        ids["WH"] = await created(await http["webhooks"].post("/subscriptions", json=hook, headers=ADMIN))
        yield World(settings, cores, http, ids, marked)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in http.values():
            await client.aclose()
        for core in cores.values():
            await core.close()
        await signin.close()
        await webhooks.close()
        await drop_everything(settings)


async def directory_world(http: httpx.AsyncClient) -> int:
    """The marked teams and users, listed (the directory's read model has them); the position of the last."""
    for team in DIRECTORY_TEAMS:
        await created(await http.post("/teams", json={"team_id": team, "name": team.title()}, headers=ADMIN))
    position = 0
    for user, team in DIRECTORY_USERS.items():
        body = {"user_id": user, "name": "Trần Văn Nam", "email": f"{user}@pipelines.vn", "team_id": team}
        r = await http.post("/users", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        position = r.json()["position"]
    r = await http.get("/users", params={"position": position}, headers=ADMIN)
    assert set(DIRECTORY_USERS) <= {row["user_id"] for row in r.json()["items"]}, r.text
    return int(position)


async def agenda_world(http: httpx.AsyncClient, ids: dict[str, Any], clock: SimClock) -> dict[str, Any]:
    """The agenda's marked activities, due in two days (in its agenda's "upcoming"): AT (u-owner's, on the north's
    deal R) and AX (u-south's, on the teamless deal N), and AW (u-owner's) for the commands; listed. Each is
    scheduled once the agenda's replicas have the owner and the deal (422 until then)."""
    due = (clock.now + timedelta(days=2)).isoformat()
    found: dict[str, Any] = {}
    for key, owner, deal in (("AT", "u-owner", "R"), ("AX", "u-south", "N"), ("AW", "u-owner", "R")):
        body = {"kind": "meeting", "subject_type": "deal", "subject_id": ids[deal], "owner_id": owner}
        body |= {"title": f"Gặp khách {key}", "due_at": due}

        async def scheduled(key: str = key, body: dict[str, Any] = body) -> bool:
            r = await http.post("/activities", json=body, headers=ADMIN)
            assert r.status_code in (201, 422), r.text
            if r.status_code == 201:
                found[key], found["position"] = r.json()["id"], r.json()["position"]
            return r.status_code == 201

        await wait_until(scheduled, timeout=30, interval=0.3)
    r = await http.get("/activities", params={"position": found["position"], "limit": "200"}, headers=ADMIN)
    assert {found[k] for k in ("AT", "AX", "AW")} <= {row["activity_id"] for row in r.json()["items"]}, r.text
    return {k: found[k] for k in ("AT", "AX", "AW")} | {"activity marks": {found["AT"]: "T", found["AX"]: "X"}}


async def customers_world(http: httpx.AsyncClient) -> dict[str, Any]:
    """The marked organisations and people (CO, CP the north's; CS, SP the south's), listed."""
    ids: dict[str, Any] = {}
    for key, owner, team in (("CO", "u-owner", "north"), ("CS", "u-south", "south")):
        body = {"name": f"Công ty {key}", "owner_id": owner, "team_id": team}
        ids[key] = await created(await http.post("/organisations", json=body, headers=ADMIN))
    for key, org in (("CP", "CO"), ("SP", "CS")):
        person: dict[str, Any] = {"organisation_id": ids[org], "name": "Đỗ Minh Châu", "phones": ["0905123456"]}
        r = await http.post("/people", json=person, headers=ADMIN)
        ids[key] = await created(r)
    r = await http.get("/people", params={"position": r.json()["position"]}, headers=ADMIN)
    assert {ids["CP"], ids["SP"]} <= {row["person_id"] for row in r.json()["items"]}, r.text
    ids["customer marks"] = {ids["CO"]: "T", ids["CP"]: "T", ids["CS"]: "X", ids["SP"]: "X"}
    return ids


# ---------------------------------------------------------------------------------------------- running the cases
def fill(value: Any, ids: dict[str, Any]) -> Any:
    """``"{key}"`` anywhere in a value → ``ids[key]``."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def shown_in(how: str, answer: Any, world: World) -> str:
    """Which marks ("T", "X") of the marked deals an answer shows."""
    marks: set[str] = set()
    if how == "board":
        marks = {world.marked.get(d["deal_id"], "") for s in answer["stages"] for d in s["deals"]}
    elif how == "items":
        marks = {world.marked.get(d["deal_id"], "") for d in answer["items"]}
    elif how == "alerts":
        marks = {world.marked.get(a["entity"].removeprefix("deal-"), "") for a in answer}
    elif how == "changes":
        marks = {world.marked.get(d["deal_id"], "") for d in answer["deals"]}
    elif how == "owners":
        rows = answer["rows"] if isinstance(answer, dict) else answer
        marks = {{"u-owner": "T", "u-solo": "X"}.get(r["owner_id"], "") for r in rows}
    elif how in ("users", "teams"):
        key = "user_id" if how == "users" else "team_id"
        marks = {DIRECTORY_MARKS.get(row[key], "") for row in answer["items"]}
    elif how in ("organisations", "people"):
        key = "organisation_id" if how == "organisations" else "person_id"
        marks = {world.ids["customer marks"].get(row[key], "") for row in answer["items"]}
    elif how == "activities":
        marks = {world.ids["activity marks"].get(row["activity_id"], "") for row in answer["items"]}
    elif how == "agenda":
        rows = [row for bucket in ("overdue", "today", "upcoming") for row in answer[bucket]]
        marks = {world.ids["activity marks"].get(row["activity_id"], "") for row in rows}
    elif how == "open_now":
        marks = {"X"} if answer["open_now"] else set()
    elif how == "by_owner":  # the next-step analytics' rows per owner
        marks = {{"u-owner": "T", "u-solo": "X"}.get(r["owner_id"], "") for r in answer["by_owner"]}
    return "".join(sorted(marks - {""})) or "-"


async def outcome(world: World, service: str, case: Case, name: str) -> tuple[str, str]:
    """(what the answer means in POLICY's terms, the answer for the report)."""
    ids = world.ids
    url = case.op.split(" ", 1)[1]
    for param, key in case.path.items():
        url = url.replace(f"{{{param}}}", str(uuid.uuid4()) if key == "new" else str(ids.get(key, key)))
    body = case.body(who_is(name)) if callable(case.body) else case.body
    r = await world.http[service].request(
        case.op.split(" ", 1)[0],
        url,
        params=fill(case.params, ids),
        json=fill(body, ids),
        headers=headers_of(name),
    )
    seen = f"{r.status_code} {r.text[:300]}"
    answer: Any = None
    if "json" in r.headers.get("content-type", ""):  # application/json, or a problem's application/problem+json
        answer = r.json()
    # a business rule's own name, not one the edge gives an answer made without a rule (shared.edge.problems)
    rule = isinstance(answer, dict) and answer.get("rule") not in (None, *EDGE_RULES)
    if r.status_code >= 500:
        return "5xx", seen
    if r.status_code in (401, 403) or (r.status_code == 404 and not rule):
        return str(r.status_code), seen
    if r.status_code == 422 and not rule and (case.valid or case.expect[name] == "422"):
        return "422", seen
    if case.shows is not None and r.status_code == 200:
        return shown_in(case.shows, answer, world), seen
    return "ok", seen


EDGE_RULES = ("not_found", "invalid_input", "forbidden", "unauthenticated", "bad_request")


def operations(openapi: dict[str, Any]) -> set[str]:
    return {f"{method.upper()} {path}" for path, methods in openapi["paths"].items() for method in methods}


async def test_every_route_answers_every_kind_of_caller_as_its_policy_says(world: World) -> None:
    covered = {role for p in PRINCIPALS.values() if p for role in p[1]}
    assert sorted(ROLES - covered) == [], "roles no principal here has: add a principal (and a column) for them"
    for service, cases in POLICY.items():
        ops = operations((await world.http[service].get("/openapi.json")).json())
        stated = {c.op for c in cases}
        assert sorted(ops - stated) == [], f"{service}: routes without a policy here: add them to POLICY"
        assert sorted(stated - ops) == [], f"{service}: policies for routes that no longer exist"

    results: dict[tuple[str, str, str], tuple[str, str]] = {}
    limit = asyncio.Semaphore(24)

    async def run(service: str, case: Case, names: list[str]) -> None:
        for name in names:  # one after another: a serial group, or one request
            async with limit:
                results[(service, case.label, name)] = await outcome(world, service, case, name)

    groups: dict[str, list[tuple[str, Case]]] = defaultdict(list)
    singles = []
    for service, cases in POLICY.items():
        for case in cases:
            if case.serial:
                groups[f"{service}/{case.serial}"].append((service, case))
            else:
                singles += [run(service, case, [name]) for name in NAMES]

    async def in_turn(members: list[tuple[str, Case]]) -> None:
        for service, case in members:
            await run(service, case, NAMES)

    await asyncio.gather(*singles, *(in_turn(members) for members in groups.values()))

    wrong = []
    for service, cases in POLICY.items():
        for case in cases:
            anonymous = results[(service, case.label, "anonymous")]
            for name in NAMES:
                got, seen = results[(service, case.label, name)]
                want = case.expect[name]
                if want == "sig":
                    ok = seen.split()[0] == anonymous[1].split()[0] and not seen.startswith("2")
                elif want == "ok":
                    ok = got == "ok" or (got in ("T", "X", "TX", "-") and case.shows is not None)
                else:
                    ok = got == want
                if not ok:
                    wrong.append(f"{service} {case.label} as {name}: want {want}, got {got}: {seen}")
    assert not wrong, f"{len(wrong)} answers differ from the policy:\n" + "\n".join(wrong)
