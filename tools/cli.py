"""``pipelines``: the command line for the whole system (typer + rich).

pipelines stack up|down|status        the local Kafka and PostgreSQL
pipelines services up|down|status     every service, each as one process (api + relay + projector), the agenda's
                                      notifier (and a local mail sink when no PIPELINES_SMTP_HOST, a Graph API
                                      stub when no PIPELINES_FACEBOOK_GRAPH_URL) and the board
pipelines simulate --leads N --rate R realistic traffic through the whole flow, over the HTTP APIs
pipelines import SOURCE FILE…         another CRM's exports (or a CSV/XLSX with --mapping), resumable (decision 0021)
pipelines demo                        a generated year of history, then all of the above, then where to look
pipelines token ROLE                  a bearer token for trying the APIs
pipelines signin reset-link USER_ID   a one-time link where the user sets their password (the first admin's too)
pipelines events                      the catalog of event types and their versions
pipelines history|projections|rebuild|dlq|relay|tail   what operators ask of a running system

(This module is the top of the tools: it uses tools.local, tools.history, tools.ops, tools.simulate, tools.importer and
tools.contract, and
none of them uses it or another of them; they reach the services through their HTTP APIs and contracts only.)
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shared.ops.settings import SERVICES, SettingsError
from shared.ops.stack import STACK_SCRIPT
from shared.ops.version import VERSION
from tools import local

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
stack_app = typer.Typer(help="the local Kafka and PostgreSQL", no_args_is_help=True)
services_app = typer.Typer(help="every service and the web board as local processes", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")
signin_app = typer.Typer(help="the sign-in service: passwords (decision 0022)", no_args_is_help=True)
app.add_typer(signin_app, name="signin")
console = Console()


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
    """Start each service (api, relay and projector in one process) and the web board on the local stack; wait
    until ready."""
    local.up()


@services_app.command("down")
def services_down() -> None:
    local.down()


@services_app.command("status")
def services_status() -> None:
    local.status()


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


@app.command()
def history(
    kind: str = typer.Argument(..., help="deal, lead, order, user, team, organisation, person or activity"),
    aggregate_id: str = typer.Argument(..., help="its id: a UUID, or a user's id (u-lan) or a team's slug (north)"),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO time with offset: the state as recorded then"),
) -> None:
    """A readable timeline (who, what, when it happened and when it was recorded, why) of one deal, lead, order, user,
    team, organisation, person or activity (the agenda's), and its state (now or as of a time), from its service's
    API (the service must be running; deals only keep a state as of a time there)."""
    import json
    from datetime import datetime

    from tools import history as histories
    from tools import ops

    if kind not in histories.KINDS:
        raise typer.BadParameter(", ".join(histories.KINDS), param_hint="KIND")
    try:
        key = histories.parse_id(kind, aggregate_id)
        at = datetime.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if at is not None and at.tzinfo is None:
        raise typer.BadParameter("--as-of needs a time zone offset")
    try:
        h = asyncio.run(histories.history(local.load_settings(), kind, key, at))
    except histories.ServiceError as exc:
        console.print(f"[red]{exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not h.events:
        console.print(f"[red]no {kind} {aggregate_id}" + (f" as of {as_of}" if as_of else ""))
        raise typer.Exit(1)
    table = Table("v", "happened", "recorded", "event", "by", "what", "why")
    for e in h.events:
        table.add_row(
            str(e.version),
            e.occurred_at.strftime("%Y-%m-%d %H:%M"),
            e.recorded_at.strftime("%Y-%m-%d %H:%M"),
            e.event_type.rsplit(".", 1)[1],
            e.actor or "",
            ops.describe({k: v for k, v in e.data.items() if k != "reason"}),
            e.reason or "",
        )
    console.print(table)
    if h.reads_as is not None:
        console.print(f"(merged: this {kind} reads as {h.reads_as}, whose state follows)")
    if h.state is None:
        console.print(f"(the {kind}'s API answers its state now only: above, what was recorded by {as_of})")
    else:
        console.print_json(json.dumps(h.state, ensure_ascii=False))


@app.command()
def projections() -> None:
    """Each read model's generations, whether it serves or is being built, and how far behind it is."""
    from tools import ops

    table = Table("service", "read model", "generation", "state", "lag (messages)")
    for r in asyncio.run(ops.projections(local.load_settings())):
        table.add_row(r["service"], r["projection"], str(r["generation"]), r["state"], str(r["lag"]))
    console.print(table)


@app.command()
def rebuild(service: str = typer.Argument(...), name: str = typer.Argument(..., help="the read model")) -> None:
    """Rebuild a read model from the beginning of its topics; the old one serves until the new one is swapped in."""
    from tools import ops

    settings = local.load_settings()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[rate]:.0f} events/s"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"{service}.{name}", total=None, rate=0.0)

        def step(done: int, total: int, rate: float) -> None:
            progress.update(task, completed=done, total=total, rate=rate)

        try:
            generation = asyncio.run(ops.rebuild(settings, service, name, step))
        except LookupError as exc:
            progress.stop()
            console.print(f"[red]{exc.args[0]}")
            raise typer.Exit(1) from None
    console.print(f"[green]{service}.{name}: generation {generation} is live")


@app.command()
def dlq(
    action: str = typer.Argument(..., help="list, show or redrive"),
    service: str = typer.Argument(...),
    offset: int | None = typer.Option(None, "--offset", help="show or redrive one dead letter"),
) -> None:
    """Dead letters of a service's projectors, with their reasons; redrive sends them back once fixed."""
    from tools import ops

    settings = local.load_settings()
    if action == "redrive":
        n = asyncio.run(ops.redrive(settings, service, None if offset is None else [offset]))
        console.print(f"sent {n} dead letter(s) back")
        return
    letters = asyncio.run(ops.dead_letters(settings, service))
    if action == "show":
        for d in letters:
            if offset is None or d["offset"] == offset:
                console.print(d | {"value": d["value"].decode("utf-8", "replace")})
        return
    if action != "list":
        raise typer.BadParameter("list, show or redrive", param_hint="ACTION")
    table = Table("offset", "key", "read model", "reason", "from", "at")
    for d in letters:
        table.add_row(str(d["offset"]), d["key"], d["projection"], d["reason"][:80], d["source"], d["time"][:19])
    console.print(table)


@app.command()
def relay(
    action: str = typer.Argument(..., help="status or republish"),
    service: str = typer.Argument(...),
    stream: str | None = typer.Option(None, "--stream", help="republish: the stream to publish again"),
) -> None:
    """The relay's checkpoint and backlog, and whether the next event fits Kafka (an event that does not stops
    the relay until an operator acts: docs/OPERATIONS.md); republish publishes a stream again from the store."""
    from tools import ops

    settings = local.load_settings()
    if action == "republish":
        if not stream:
            raise typer.BadParameter("republish needs --stream STREAM_ID", param_hint="--stream")
        n = asyncio.run(ops.republish(settings, service, stream))
        console.print(f"published {n} event(s) of {stream} again")
        return
    if action != "status":
        raise typer.BadParameter("status or republish", param_hint="ACTION")
    status = asyncio.run(ops.relay_status(settings, service))
    console.print(
        f"{service}: checkpoint at position {status['checkpoint_position']}, {status['published']} published, "
        f"{status['backlog']} waiting (oldest recorded {status['oldest_unpublished'] or '-'})"
    )
    following = status["next"]
    if following is None:
        console.print("nothing waits to be published")
    elif following["fits"]:
        console.print(f"next: {following['type']} of {following['stream_id']} v{following['version']}, fits")
    else:
        console.print(
            f"[red]stuck: event {following['event_id']} ({following['type']} of {following['stream_id']} "
            f"v{following['version']}) is {following['record_bytes']:,} bytes, Kafka takes {following['limit']:,}; "
            "see docs/OPERATIONS.md, 'An event the relay cannot publish'"
        )
        raise typer.Exit(3)


@app.command()
def tail(
    service: str = typer.Argument(...),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
    count: int = typer.Option(0, "--count", help="stop after this many (0: until Ctrl-C)"),
) -> None:
    """A service's events, decoded, as they arrive."""
    from tools import ops

    async def go() -> None:
        n = 0
        async for e in ops.tail(local.load_settings(), service, from_beginning=from_beginning):
            console.print(
                f"{e.time:%H:%M:%S} {e.type.rsplit('.', 1)[1]:<28} {e.streamid} v{e.streamversion}  {ops.describe(e.data)}",
                highlight=False,
                soft_wrap=True,
            )
            n += 1
            if count and n >= count:
                return

    asyncio.run(go())


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
        typer.echo(
            f"error: no key to sign with ({exc}). `pipelines token` needs the signing keys, which only the sign-in "
            'service and an operator hold: eval "$(scripts/stack env)" on the local stack',
            err=True,
        )
        raise typer.Exit(2) from None
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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(link)
    typer.echo(f"(one use, until {expires})", err=True)


@app.command()
def events() -> None:
    """The catalog of event types, their versions and their personal fields."""
    from tools.contract import schemas

    table = Table("type", "version", "personal fields", "fields")
    for _, schema in sorted(schemas().items()):
        if "x-event-type" not in schema:
            continue
        table.add_row(
            schema["x-event-type"],
            str(schema["x-schema-version"]),
            ", ".join(schema.get("x-personal-fields", [])),
            ", ".join(schema.get("properties", {})),
        )
    console.print(table)


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


if __name__ == "__main__":
    app()
