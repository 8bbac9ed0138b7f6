"""``pipelines``: the command line for the whole system (typer + rich).

pipelines stack up|down|status        the local Kafka and PostgreSQL
pipelines services up|down|status     every service, each as one process (api + relay + projector), the agenda's
                                      notifier (and a local mail sink when no PIPELINES_SMTP_HOST, a Graph API
                                      stub when no PIPELINES_FACEBOOK_GRAPH_URL), the sign-in service, the
                                      webhooks' API and dispatcher, and the board
pipelines simulate --leads N --rate R realistic traffic through the whole flow, over the HTTP APIs
pipelines import SOURCE FILE…         another CRM's exports (or a CSV/XLSX with --mapping), resumable (decision 0021)
pipelines demo                        a generated year of history, then all of the above, then where to look
pipelines token ROLE                  a bearer token for trying the APIs
pipelines signin reset-link USER_ID   a one-time link where the user sets their password (the first admin's too)
pipelines events|history|projections|rebuild|dlq|relay|tail   what operators ask of a running system (tools/cli_ops.py)
pipelines --version

Read commands take --json; tables are whole when piped; errors are one line on stderr (tools/output.py).
(This module is the top of the tools: it uses tools.cli_ops, tools.local, tools.simulate, tools.importer; none of them
uses it, and the tools below cli_ops do not use one another; they reach the services through their HTTP APIs and
contracts only.)
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.ops.settings import SERVICES, SettingsError
from shared.ops.stack import STACK_SCRIPT
from shared.ops.version import VERSION
from tools import cli_ops, local, output

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None
)
stack_app = typer.Typer(help="the local Kafka and PostgreSQL", no_args_is_help=True)
services_app = typer.Typer(help="every service and the web board as local processes", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")
signin_app = typer.Typer(help="the sign-in service: passwords (decision 0022)", no_args_is_help=True)
app.add_typer(signin_app, name="signin")
console = output.console


def _print_version(value: bool) -> None:
    if value:
        print(f"pipelines {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Pipelines' command line."""


@stack_app.command("up")
def stack_up() -> None:
    """Install what is missing, start Kafka and PostgreSQL, print their endpoints."""
    raise typer.Exit(subprocess.call([str(STACK_SCRIPT), "up"]))


@stack_app.command("down")
def stack_down() -> None:
    raise typer.Exit(subprocess.call([str(STACK_SCRIPT), "down"]))


@stack_app.command("status")
def stack_status() -> None:
    raise typer.Exit(subprocess.call([str(STACK_SCRIPT), "status"]))


@services_app.command("up")
def services_up() -> None:
    """Start each service (api, relay and projector in one process), the agenda's notifier, the sign-in service, the
    webhooks' API and dispatcher, and the web board on the local stack; wait until ready."""
    local.up()


@services_app.command("down")
def services_down() -> None:
    local.down()


@services_app.command("status")
def services_status(json_out: Annotated[bool, output.JSON] = False) -> None:
    rows = local.status()
    output.emit(rows, {"service": "service", "pid": "pid", "url": "url"}, json_out=json_out)


@app.command()
def simulate(
    leads: int = typer.Option(60, "--leads", min=1, help="how many leads to drive through the flow"),
    rate: float = typer.Option(4.0, "--rate", min=0.1, help="new leads per second"),
    seed: int = typer.Option(2026, "--seed"),
) -> None:
    """Drive realistic traffic through the running services, over their HTTP APIs (its people registered first)."""
    from tools.simulate import Endpoints, Simulation

    settings = local.load_settings()
    base = f"http://{settings.api_host}:"
    urls = Endpoints(*(base + str(settings.port(s)) for s in ("leads", "deals", "production", "directory", "agenda")))

    async def go() -> None:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("journeys", total=leads)
            done = 0

            def step(_: object) -> None:
                nonlocal done
                done += 1
                progress.update(task, completed=done)

            sim = Simulation(urls, settings, seed=seed, progress=step)
            try:
                stats = await sim.run(leads, rate)
            finally:
                await sim.close()
        table = Table("leads", "converted", "won", "lost", "delivered orders", "reworked", "errors")
        table.add_row(
            *(
                str(x)
                for x in (
                    stats.leads,
                    stats.converted,
                    stats.won,
                    stats.lost,
                    stats.orders_delivered,
                    stats.rework,
                    len(stats.errors),
                )
            )
        )
        console.print(table)
        for e in stats.errors[:5]:
            console.print(f"[yellow]{e}")

    asyncio.run(go())


@app.command("import")
def import_(
    source: Annotated[str, typer.Argument(help="pipedrive, hubspot, odoo, facebook_ads, google_ads… or your own")],
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="the exports (CSV or XLSX)")],
    mapping: Annotated[Path | None, typer.Option("--mapping", exists=True, dir_okay=False, help="your mapping")] = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="decide every row, write nothing, report the bad ones"),
    report: Annotated[Path | None, typer.Option("--report", help="the bad rows (SOURCE-import-report.csv)")] = None,
    owner: str | None = typer.Option(None, "--owner", help="the user owning rows whose owner the mapping lacks"),
    owner_team: str | None = typer.Option(None, "--owner-team", help="that user's team (where a row needs one)"),
) -> None:
    """Import another CRM's exports (or a CSV/XLSX with --mapping): back-dated, resumable, a second run adds nothing."""
    from tools.importer import run_import

    code = run_import(
        local.load_settings(),
        console,
        source=source,
        files=files,
        mapping=mapping,
        dry_run=dry_run,
        report=report,
        owner=owner,
        owner_team=owner_team,
        run_dir=local.RUN,
    )
    raise typer.Exit(code)


def load_history(*, months: int, scale: float, seed: int) -> None:
    """``months`` of generated history (tools/demo_history.py) into the running services (tools/demo_load.py)."""
    import time

    from tools import demo_history, demo_load

    settings = local.load_settings()
    year = demo_history.generate(months=months, scale=scale, seed=seed)
    urls = {s: settings.api_url(s) for s in ("directory", "leads", "deals", "production", "agenda")}
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars = {what: progress.add_task(what, total=n) for what, n in demo_load.totals(year).items()}
        loaded = asyncio.run(demo_load.load(settings, urls, year, lambda what, n: progress.advance(bars[what], n)))
    f = year.figures
    console.print(
        f"history: {months} months from {year.start:%Y-%m-%d}: {f.leads} leads, {f.deals} deals ({f.won} won, "
        f"{f.lost} lost, {f.open} open, {f.stuck} stuck), {f.orders} orders; {loaded.rows} rows "
        f"({loaded.created} created, {loaded.exists} already there, {loaded.refused} refused), {loaded.commands} "
        f"commands ({loaded.commands_refused} refused) in {time.monotonic() - started:.0f} s",
        soft_wrap=True,
    )
    for e in loaded.errors[:5]:
        console.print(f"[yellow]{e}", soft_wrap=True)


@app.command()
def token(
    role: str = typer.Argument(
        ...,
        help="marketing, sales, sales_manager (needs --team), sales_director, production, auditor, importer or admin",
    ),
    user: str = typer.Option("u-cli"),
    team: str | None = typer.Option(None, help="the team a sales_manager manages (a salesperson's own team)"),
) -> None:
    """Print a bearer token (12 hours) signed with PIPELINES_JWT_SIGNING_KEYS (the local stack's env has them; an
    operator's shell elsewhere: no API process holds them, decision 0022)."""
    from datetime import timedelta

    from shared.edge.auth import ROLES, issue_token
    from shared.edge.keys import SigningKeys
    from shared.ops.settings import SettingsError

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(sorted(ROLES))}", param_hint="ROLE")
    if role == "sales_manager" and not team:
        raise typer.BadParameter(
            "a sales_manager manages a team: give --team (every team's sales: sales_director)", param_hint="--team"
        )
    try:
        keys = SigningKeys.from_settings(local.load_settings())
    except SettingsError as exc:
        raise output.UnansweredError(
            f"no key to sign with ({exc}). `pipelines token` needs the signing keys, which only the sign-in "
            'service and an operator hold: eval "$(scripts/stack env)" on the local stack'
        ) from None
    typer.echo(
        issue_token(
            keys,
            user_id=user,
            roles=[role],
            team=team,
            ttl=timedelta(hours=12),
        )
    )


@signin_app.command("reset-link")
def signin_reset_link(user_id: str = typer.Argument(..., help="the directory's user id (the tokens' sub)")) -> None:
    """Print a one-time link (24 hours) on the board where the user sets their password: how a first admin gets one
    (the demo's is u-admin, admin@demo.pipelines.vn). Asks the running sign-in service with the operator's keys."""
    try:
        link, expires = local.reset_link(local.load_settings(), user_id)
    except (SettingsError, RuntimeError, httpx.HTTPError) as exc:
        raise output.UnansweredError(str(exc)) from None
    typer.echo(link)
    typer.echo(f"(one use, until {expires})", err=True)


@app.command()
def demo(
    leads: int = typer.Option(60, "--leads", min=1, help="live traffic: how many leads, after the history"),
    rate: float = typer.Option(4.0, "--rate", min=0.1),
    history: bool = typer.Option(True, "--history/--no-history", help="load a generated year of history first"),
    months: int = typer.Option(12, "--months", min=1, max=36, help="how many months of history, ending today"),
    scale: float = typer.Option(1.0, "--scale", min=0.05, max=10.0, help="the history's volume (1.0: ~1,500 leads)"),
    seed: int = typer.Option(2026, "--seed"),
) -> None:
    """Start the stack, every service and the board, load a year of generated history (back-dated, through the
    batch routes), drive live traffic on top, and show where to look."""
    if subprocess.call([str(STACK_SCRIPT), "up"], stdout=subprocess.DEVNULL) != 0:
        raise typer.Exit(1)
    services_up()
    if history:
        load_history(months=months, scale=scale, seed=seed)
    simulate(leads=leads, rate=rate, seed=seed)
    settings = local.load_settings()
    base = f"http://{settings.api_host}"
    console.rule("where to look")
    local.board_signin(settings, base)
    for service in SERVICES:
        console.print(f"{service:<11} {base}:{settings.port(service)}/docs")
    console.print("\nA token for reading everything:", soft_wrap=True)
    console.print("export TOKEN=$(.venv/bin/pipelines token auditor)", soft_wrap=True, highlight=False)
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    window = f"from={today - timedelta(days=31 * months)}&to={today + timedelta(days=2)}"
    for path in (
        f":{settings.port('deals')}/board",
        f":{settings.port('deals')}/analytics/stages?{window}",
        f":{settings.port('deals')}/alerts",
        f":{settings.port('deals')}/forecast",
        f":{settings.port('leads')}/funnel?{window}&by=month",
        f":{settings.port('leads')}/campaigns?{window}",
        f":{settings.port('production')}/board",
    ):
        console.print(f'curl -s -H "Authorization: Bearer $TOKEN" "{base}{path}"', soft_wrap=True, highlight=False)
    console.print("\nStop everything: [bold]make down[/]")


cli_ops.register(app)


def main() -> None:
    """The ``pipelines`` console script: one-line errors on stderr (tools/output.py)."""
    output.run(app)


if __name__ == "__main__":
    main()
