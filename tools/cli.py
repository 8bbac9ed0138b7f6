"""``pipelines``: the command line for the whole system (typer + rich).

pipelines stack up|down|status        the local Kafka and PostgreSQL
pipelines services up|down|status     every service, each as one process (api + relay + projector), the agenda's
                                      notifier (and a local mail sink when no PIPELINES_SMTP_HOST) and the board
pipelines simulate --leads N --rate R realistic traffic through the whole flow, over the HTTP APIs
pipelines demo                        all of the above, then where to look
pipelines token ROLE                  a bearer token for trying the APIs
pipelines events                      the catalog of event types and their versions
pipelines history|projections|rebuild|dlq|relay|tail   what operators ask of a running system

(This module is the top of the tools: it uses tools.history, tools.ops, tools.simulate and tools.contract, and
none of them uses it or another of them; they reach the services through their HTTP APIs and contracts only.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from shared.ops.settings import SERVICES, Settings
from shared.ops.stack import ROOT, STACK_SCRIPT

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
stack_app = typer.Typer(help="the local Kafka and PostgreSQL", no_args_is_help=True)
services_app = typer.Typer(help="every service and the web board as local processes", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")
console = Console()
RUN = Path(os.environ.get("PIPELINES_RUN_DIR", ROOT / ".run"))
NOTIFIER = "agenda-notifier"  # the agenda's fourth process kind (decision 0020), its own process beside the agenda
PARTS = (*SERVICES, NOTIFIER, "web")  # the processes `services up` starts: each service (all in one), the board
NOTIFIER_OPS_PORT, MAIL_SINK_PORT = 8106, 8125  # the local notifier's /readyz; the SMTP sink it sends to if no server


def _command(part: str) -> list[str]:
    kind = ["notifier"] if part == NOTIFIER else ["all"] if part in SERVICES else []
    return ["-m", f"services.{part.split('-')[0]}", *kind]


def _port(settings: Settings, part: str) -> int:  # where a part answers /readyz
    return (settings.ops_port or NOTIFIER_OPS_PORT) if part == NOTIFIER else settings.port(part)


def _mail_sink(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """The notifier's environment: the SMTP server set, else a local sink writing each message to mail.log."""
    notifier = env | {"PIPELINES_OPS_PORT": str(_port(settings, NOTIFIER))}
    if settings.smtp_host:
        return notifier
    if not _alive("mail"):
        log, sink = (RUN / "services" / "mail.log").open("ab"), f"127.0.0.1:{MAIL_SINK_PORT}"
        mail = [sys.executable, "-m", "aiosmtpd", "-n", "-l", sink, "-c", "aiosmtpd.handlers.Debugging", "stdout"]
        process = subprocess.Popen(mail, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        _pidfile("mail").write_text(str(process.pid))
        console.print(f"[yellow]no PIPELINES_SMTP_HOST[/]: reminders go to {RUN / 'services' / 'mail.log'}")
    local = {"PIPELINES_SMTP_HOST": "127.0.0.1", "PIPELINES_SMTP_PORT": str(MAIL_SINK_PORT)}
    return notifier | local | {"PIPELINES_SMTP_STARTTLS": "false"}


def _stack_env() -> dict[str, str]:
    out = subprocess.run([str(STACK_SCRIPT), "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
    return env


def _settings() -> Settings:
    os.environ.update({k: v for k, v in _stack_env().items() if k not in os.environ})
    return Settings()


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


def _pidfile(service: str) -> Path:
    return RUN / "services" / f"{service}.pid"


def _alive(service: str) -> int | None:
    try:
        pid = int(_pidfile(service).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


@services_app.command("up")
def services_up() -> None:
    """Start each service (api, relay and projector in one process) and the web board on the local stack; wait
    until ready."""
    settings = _settings()
    (RUN / "services").mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PIPELINES_LOG_JSON": "true"}
    for service in PARTS:
        if _alive(service):
            continue
        log = (RUN / "services" / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *_command(service)],
            cwd=ROOT,
            env=_mail_sink(settings, env) if service == NOTIFIER else env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _pidfile(service).write_text(str(process.pid))
    for service in PARTS:
        url = f"http://{settings.api_host}:{_port(settings, service)}/readyz"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not _alive(service):
                console.print(f"[red]{service} did not become ready; see {RUN / 'services' / (service + '.log')}")
                raise typer.Exit(1)
            time.sleep(0.5)
        console.print(f"[green]{service}[/] ready on http://{settings.api_host}:{_port(settings, service)}")


@services_app.command("down")
def services_down() -> None:
    for service in (*PARTS, "mail"):
        pid = _alive(service)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive(service):
                    break
                time.sleep(0.1)
            console.print(f"{service} stopped")
        _pidfile(service).unlink(missing_ok=True)


@services_app.command("status")
def services_status() -> None:
    table = Table("service", "pid", "url")
    settings = _settings()
    for service in PARTS:
        pid = _alive(service)
        url = f"http://{settings.api_host}:{_port(settings, service)}"
        table.add_row(service, str(pid) if pid else "[red]down", url)
    console.print(table)


@app.command()
def simulate(
    leads: int = typer.Option(60, "--leads", min=1, help="how many leads to drive through the flow"),
    rate: float = typer.Option(4.0, "--rate", min=0.1, help="new leads per second"),
    seed: int = typer.Option(2026, "--seed"),
) -> None:
    """Drive realistic traffic through the running services, over their HTTP APIs (its people registered first)."""
    from tools.simulate import Endpoints, Simulation

    settings = _settings()
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


@app.command()
def history(
    kind: str = typer.Argument(..., help="deal, lead, order, user, team, organisation or person"),
    aggregate_id: str = typer.Argument(..., help="its id: a UUID, or a user's id (u-lan) or a team's slug (north)"),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO time with offset: the state as recorded then"),
) -> None:
    """A readable timeline (who, what, when, why) of one deal, lead, order, user, team, organisation or person, and its
    state (now or as of a time), from its service's API (the service must be running; deals only keep a state as of a
    time there)."""
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
        h = asyncio.run(histories.history(_settings(), kind, key, at))
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
    for r in asyncio.run(ops.projections(_settings())):
        table.add_row(r["service"], r["projection"], str(r["generation"]), r["state"], str(r["lag"]))
    console.print(table)


@app.command()
def rebuild(service: str = typer.Argument(...), name: str = typer.Argument(..., help="the read model")) -> None:
    """Rebuild a read model from the beginning of its topics; the old one serves until the new one is swapped in."""
    from tools import ops

    settings = _settings()
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

    settings = _settings()
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

    settings = _settings()
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
        async for e in ops.tail(_settings(), service, from_beginning=from_beginning):
            console.print(
                f"{e.time:%H:%M:%S} {e.type.rsplit('.', 1)[1]:<28} {e.streamid} v{e.streamversion}  {ops.describe(e.data)}",
                highlight=False,
                soft_wrap=True,
            )
            n += 1
            if count and n >= count:
                return

    asyncio.run(go())


@app.command()
def token(
    role: str = typer.Argument(
        ..., help="marketing, sales, sales_manager (needs --team), sales_director, production, auditor or admin"
    ),
    user: str = typer.Option("u-cli"),
    team: str | None = typer.Option(None, help="the team a sales_manager manages (a salesperson's own team)"),
) -> None:
    """Print a bearer token (12 hours) signed with the local stack's key."""
    from datetime import timedelta

    from shared.edge.auth import ROLES, issue_token, signing_key

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(sorted(ROLES))}", param_hint="ROLE")
    if role == "sales_manager" and not team:
        raise typer.BadParameter(
            "a sales_manager manages a team: give --team (every team's sales: sales_director)", param_hint="--team"
        )
    kid, secret = signing_key(_settings())
    typer.echo(
        issue_token(
            key_id=kid,
            secret=secret,
            user_id=user,
            roles=[role],
            team=team,
            ttl=timedelta(hours=12),
        )
    )


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
def demo(leads: int = typer.Option(60, "--leads", min=1), rate: float = typer.Option(4.0, "--rate", min=0.1)) -> None:
    """Start the stack, every service and the board, drive traffic through them, and show where to look."""
    if subprocess.call([str(STACK_SCRIPT), "up"], stdout=subprocess.DEVNULL) != 0:
        raise typer.Exit(1)
    services_up()
    simulate(leads=leads, rate=rate, seed=2026)
    settings = _settings()
    base = f"http://{settings.api_host}"
    console.rule("where to look")
    console.print(
        f"The board: {base}:{settings.port('web')}/login — sign in with a token, e.g. a sales manager's:",
        soft_wrap=True,
    )
    console.print(".venv/bin/pipelines token sales_manager --team north --user u-mgr", soft_wrap=True, highlight=False)
    console.print(
        "(sales_director: every team's sales; auditor: everything; sales --user u-lan: her own deals; marketing; "
        "production)\n",
        soft_wrap=True,
    )
    for service in SERVICES:
        console.print(f"{service:<11} {base}:{settings.port(service)}/docs")
    console.print("\nA token for reading everything:", soft_wrap=True)
    console.print("export TOKEN=$(.venv/bin/pipelines token auditor)", soft_wrap=True, highlight=False)
    for path in (
        f":{settings.port('deals')}/board",
        f":{settings.port('deals')}/forecast",
        f":{settings.port('leads')}/funnel?from=2026-01-01&to=2027-01-01&by=source",
        f":{settings.port('leads')}/campaigns?from=2026-01-01&to=2027-01-01",
        f":{settings.port('production')}/board",
    ):
        console.print(f'curl -s -H "Authorization: Bearer $TOKEN" "{base}{path}"', soft_wrap=True, highlight=False)
    console.print("\nStop everything: [bold]make down[/]")


if __name__ == "__main__":
    app()
