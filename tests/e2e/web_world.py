"""One set of processes for every test of the board in Chromium (tests/e2e/test_web_board.py and
test_web_sign_in.py; the ``board`` fixture of tests/e2e/conftest.py): the three pipelines, the directory, the sign-in
service (the only process holding the signing key), the board, and a real OpenID Provider (npm ``oidc-provider``,
testkit/oidc) on the real Kafka and PostgreSQL, with demo data from the simulation. The directory knows the tests'
users (``USERS``); each set their password from an administrator's reset link, as a person would; the board's
tests sign in with it through the login form."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page

from shared.ops.settings import PIPELINES, Settings
from shared.ops.stack import ROOT, Endpoints, free_ports
from testkit.browser import chromium
from testkit.oidc import Account, OidcProvider
from testkit.services import (
    TEST_KEYS,
    bearer,
    drop_everything,
    isolated_settings,
    operator_settings,
    process_env,
    stop_processes,
)
from testkit.waiting import wait_until
from tools.simulate import Endpoints as SimEndpoints
from tools.simulate import Simulation

ADMIN = bearer("u-admin", "admin", team=None)
MAX_FAILURES = 3  # wrong passwords before an account locks (PIPELINES_SIGNIN_MAX_FAILURES)
TEAMS = {"north": "Miền Bắc", "south": "Miền Nam", "hq": "Văn phòng"}
USERS: dict[str, tuple[tuple[str, ...], str]] = {  # user → roles, team, as the directory has them
    "u-audit": (("auditor",), "hq"),
    "u-out": (("auditor",), "hq"),
    "u-mgr": (("sales_manager",), "north"),
    "u-south": (("sales_manager",), "south"),
    "u-lan": (("sales",), "north"),
    "u-binh": (("sales",), "north"),
    "u-dung": (("sales",), "south"),
    "u-mkt": (("marketing",), "hq"),
    "u-prod": (("production",), "hq"),  # acts on the production page (tests/e2e/test_web_ops_actions.py)
    "u-lock": (("sales",), "north"),
    "u-every": (("auditor",), "hq"),  # signs out everywhere
    "u-oidc": (("auditor",), "hq"),  # signs in at the OpenID Provider only (matched by email)
}
PROCESSES = (*PIPELINES, "directory", "agenda", "signin", "web")  # the agenda: the sales actions' activities


def email(user: str) -> str:
    return f"{user}@pipelines.vn"


def password(user: str) -> str:
    return f"{user} mật khẩu 2026"


@dataclass
class Board:
    settings: Settings
    urls: dict[str, str]  # the APIs, "signin" and "web"
    browser: Browser
    won_deal: str
    provider: OidcProvider


def token(user: str, *roles: str, team: str | None = None) -> str:
    """A token as the sign-in service would give ``user`` (the tests' own key): to ask the APIs what the board shows."""
    return bearer(user, *roles, team=team)["Authorization"].removeprefix("Bearer ")


def environment(settings: Settings, ports: dict[str, int], provider: OidcProvider) -> dict[str, str]:
    return process_env(
        settings,
        PIPELINES_ALERT_SCAN_SECONDS="2",
        PIPELINES_SIGNIN_MAX_FAILURES=str(MAX_FAILURES),
        PIPELINES_SIGNIN_RATE="10000",  # every browser of these tests comes from 127.0.0.1
        **{f"PIPELINES_{s.upper()}_PORT": str(p) for s, p in ports.items()},
        **provider.settings(),
    )


def start(env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    processes = []
    for name in PROCESSES:
        every = name in (*PIPELINES, "directory", "agenda")  # its api, relay and projector in one process
        cmd = [sys.executable, "-m", f"services.{name}", *(["all"] if every else [])]
        own = dict(env)
        if name == "signin":  # the only process that can sign
            own |= {"PIPELINES_JWT_SIGNING_KEYS": json.dumps(TEST_KEYS.seeds()), "PIPELINES_JWT_ACTIVE_KID": "test"}
        log = (logs / f"{name}.log").open("wb")  # read it when a test fails
        processes.append(subprocess.Popen(cmd, cwd=ROOT, env=own, stdout=log, stderr=subprocess.STDOUT))
    return processes


async def people(http: httpx.AsyncClient, urls: dict[str, str]) -> None:
    """The teams and users in the directory; each user sets a password from an administrator's reset link, on the
    board's reset page (``/reset?token=…``)."""
    for team, name in TEAMS.items():
        r = await http.post(f"{urls['directory']}/teams", json={"team_id": team, "name": name}, headers=ADMIN)
        assert r.status_code == 201, r.text
    for user, (roles, team) in USERS.items():
        body = {"user_id": user, "name": user, "email": email(user), "team_id": team, "roles": list(roles)}
        r = await http.post(f"{urls['directory']}/users", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
    async with httpx.AsyncClient(base_url=urls["web"], timeout=30) as board:
        for user in USERS:
            link = await reset_link(http, urls, user)
            page = await board.get("/reset", params={"token": link})
            assert page.status_code == 200, page.text
            form = {"token": link, "password": password(user), "confirm": password(user)}
            r = await board.post("/reset", data=form | {"csrf": board.cookies["pipelines_csrf"]})
            assert r.status_code == 303 and r.headers["location"] == "/login?done=reset", r.text


async def reset_link(http: httpx.AsyncClient, urls: dict[str, str], user: str) -> str:
    """An administrator's one-time link for ``user`` (once the sign-in service finds them in the directory)."""
    links: list[str] = []

    async def made() -> bool:
        r = await http.post(f"{urls['signin']}/users/{user}/password-reset", headers=ADMIN)
        links.extend([r.json()["link_token"]] if r.status_code == 201 else [])
        return bool(links)

    await wait_until(made, timeout=30, interval=0.3)
    return links[0]


async def demo_data(http: httpx.AsyncClient, urls: dict[str, str], settings: Settings) -> str:
    """The simulation's leads and deals, settled; a won deal's id. It signs its tokens with the tests' key."""
    sim = Simulation(
        SimEndpoints(urls["leads"], urls["deals"], urls["production"]), operator_settings(settings), seed=11
    )
    try:
        stats = await sim.run(leads=24, rate=12)
    finally:
        await sim.close()
    assert stats.won > 0 and not stats.errors, stats
    won = (await http.get(f"{urls['deals']}/deals", params={"status": "won"}, headers=ADMIN)).json()
    await settled(http, urls)
    return str(won["items"][0]["deal_id"])


@asynccontextmanager
async def board_world(endpoints: Endpoints, logs: Path) -> AsyncIterator[Board]:
    settings = isolated_settings(endpoints)
    ports = dict(zip(PROCESSES, free_ports(len(PROCESSES)), strict=True))
    settings = settings.model_copy(update={f"{s}_port": p for s, p in ports.items()})
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    provider = OidcProvider(logs / "oidc", [f"{urls['web']}/login/oidc/callback"], [Account("u-oidc", email("u-oidc"))])
    provider.start()
    processes = start(environment(settings, ports, provider), logs)
    try:
        async with httpx.AsyncClient(timeout=30) as http:

            async def ready() -> bool:
                assert all(p.poll() is None for p in processes), f"a process died; logs in {logs}"
                for url in urls.values():
                    try:
                        if (await http.get(f"{url}/readyz", timeout=2)).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
                return True

            await wait_until(ready, timeout=120, interval=0.5)
            await people(http, urls)
            won = await demo_data(http, urls, settings)
        async with chromium() as browser:
            yield Board(settings, urls, browser, won, provider)
    finally:
        stop_processes(processes)
        provider.stop()
        await drop_everything(settings)


async def settled(http: httpx.AsyncClient, urls: dict[str, str]) -> None:
    """The read models stopped moving: the same answers twice, a second apart (the reactions travel Kafka)."""
    probes = [
        ("deals", "/board"),
        ("deals", "/analytics/scorecard?period=" + f"{datetime.now(UTC):%Y-%m}"),
        ("leads", "/funnel?from=2026-01-01&to=2199-01-01"),
        ("leads", "/campaigns?from=2026-01-01&to=2199-01-01"),
        ("production", "/board"),
        ("production", "/analytics/delivery?from=2026-01-01&to=2199-01-01"),
    ]
    seen: list[list[Any]] = []

    async def same() -> bool:
        now = []
        for service, path in probes:
            r = await http.get(urls[service] + path, headers=ADMIN)
            assert r.status_code == 200, (path, r.text)
            body = r.json()
            now.append(body.get("stages", body) if isinstance(body, dict) else body)
        for b in now:  # the board's as_of is the clock
            if isinstance(b, list):
                for s in b:
                    if isinstance(s, dict):
                        s.pop("as_of", None)
        seen.append(now)
        return len(seen) >= 4 and all(x == now for x in seen[-4:])

    await wait_until(same, timeout=90, interval=1.5)


async def new_page(board: Board, *, lang: str = "en", **context: Any) -> tuple[BrowserContext, Page]:
    ctx = await board.browser.new_context(locale="vi-VN" if lang == "vi" else "en-US", **context)
    return ctx, await ctx.new_page()


async def sign_in_at(page: Page, board: Board, user: str, secret: str | None = None) -> None:
    """The login form, filled as a person does; the page is on the login form (or led there) before."""
    if "/login" not in page.url:
        await page.goto(f"{board.urls['web']}/login")
    await page.fill("#email", email(user))
    await page.fill("#password", secret if secret is not None else password(user))
    await page.click("form.login button[type=submit]")


async def session_token(board: Board, ctx: BrowserContext) -> str:
    """An API token of the browser's session, as the sign-in service gives the board (the same ``sid``)."""
    cookies = {c["name"]: c["value"] for c in await ctx.cookies(board.urls["web"])}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{board.urls['signin']}/sessions/token", json={"session": cookies["pipelines_session"]})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def signed_in(board: Board, user: str, *, lang: str = "en", **context: Any) -> tuple[BrowserContext, Page]:
    """A new browser context signed in through the login form with ``user``'s password."""
    ctx, page = await new_page(board, lang=lang, **context)
    await page.goto(f"{board.urls['web']}/sales")
    assert "/login" in page.url  # not signed in yet
    await sign_in_at(page, board, user)
    await page.wait_for_url("**/sales")
    return ctx, page
