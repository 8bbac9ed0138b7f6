"""What operators ask of a running system: ``pipelines history|projections|rebuild|dlq|relay|tail|events``.

Every read command takes ``--json``; services and kinds are choices (a typo is refused with the list); answers follow
tools/output.py (tables at a terminal, whole values when piped, one-line errors on stderr).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tools import history as histories
from tools import local, ops
from tools.output import JSON, BusyError, UnansweredError, UserError, as_json, console, emit


class Service(StrEnum):  # shared.ops.settings.SERVICES (tests/unit/test_cli_conventions.py keeps them equal)
    leads = "leads"
    deals = "deals"
    production = "production"
    directory = "directory"
    agenda = "agenda"


class Kind(StrEnum):  # tools.history.KINDS
    deal = "deal"
    lead = "lead"
    order = "order"
    user = "user"
    team = "team"
    organisation = "organisation"
    person = "person"
    activity = "activity"


ServiceArg = Annotated[Service, typer.Argument(help="the service", show_default=False)]
dlq_app = typer.Typer(help="dead letters of a service's projectors: list, show, redrive", no_args_is_help=True)
relay_app = typer.Typer(help="the relay: status, republish", no_args_is_help=True)


def history(
    kind: Annotated[Kind, typer.Argument(help="what the id names")],
    aggregate_id: Annotated[str, typer.Argument(help="a UUID, or a user's id (u-lan) or a team's slug (north)")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time with offset: the state as recorded then")
    ] = None,
    json_out: Annotated[bool, JSON] = False,
) -> None:
    """A readable timeline (who, what, when it happened and when it was recorded, why) of one deal, lead, order, user,
    team, organisation, person or activity (the agenda's), and its state (now or as of a time), from its service's
    API (the service must be running; deals only keep a state as of a time there)."""
    try:
        key = histories.parse_id(kind.value, aggregate_id)
        at = datetime.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if at is not None and at.tzinfo is None:
        raise typer.BadParameter("--as-of needs a time zone offset")
    try:
        h = asyncio.run(histories.history(local.load_settings(), kind.value, key, at))
    except histories.BusyError as exc:
        raise BusyError(exc.retry_after) from None
    except histories.ServiceError as exc:
        raise UnansweredError(" ".join(str(exc).split())) from None
    if not h.events:
        raise UserError(f"no {kind.value} {aggregate_id}" + (f" as of {as_of}" if as_of else ""))
    rows = [
        {
            "version": e.version,
            "occurred_at": e.occurred_at.isoformat(),
            "recorded_at": e.recorded_at.isoformat(),
            "event_type": e.event_type,
            "actor": e.actor,
            "data": e.data,
            "reason": e.reason,
            "what": ops.describe({k: v for k, v in e.data.items() if k != "reason"}),
        }
        for e in h.events
    ]
    if json_out:
        as_json({"events": rows, "state": h.state, "reads_as": h.reads_as})
        return
    for row, e in zip(rows, h.events, strict=True):
        row["happened"], row["recorded"] = f"{e.occurred_at:%Y-%m-%d %H:%M}", f"{e.recorded_at:%Y-%m-%d %H:%M}"
        row["event"] = e.event_type.rsplit(".", 1)[1]
    columns = {"version": "v", "happened": "happened", "recorded": "recorded", "event": "event", "actor": "by"}
    emit(rows, columns | {"what": "what", "reason": "why"}, json_out=False)
    if h.reads_as is not None:
        console.print(f"(merged: this {kind.value} reads as {h.reads_as}, whose state follows)")
    if h.state is None:
        console.print(f"(the {kind.value}'s API answers its state now only: above, what was recorded by {as_of})")
    else:
        console.print_json(json.dumps(h.state, ensure_ascii=False))


def projections(json_out: Annotated[bool, JSON] = False) -> None:
    """Each read model's generations, whether it serves or is being built, and how far behind it is."""
    rows = asyncio.run(ops.projections(local.load_settings()))
    columns = {"service": "service", "projection": "read model", "generation": "generation", "state": "state"}
    emit(rows, columns | {"lag": "lag (messages)"}, json_out=json_out)


def rebuild(service: ServiceArg, name: Annotated[str, typer.Argument(help="the read model")]) -> None:
    """Rebuild a read model from the beginning of its topics; the old one serves until the new one is swapped in."""
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
            generation = asyncio.run(ops.rebuild(settings, service.value, name, step))
        except LookupError as exc:
            progress.stop()
            raise UserError(str(exc.args[0])) from None
    console.print(f"[green]{service}.{name}: generation {generation} is live")


@dlq_app.command("list")
def dlq_list(service: ServiceArg, json_out: Annotated[bool, JSON] = False) -> None:
    """The dead letters of a service's projectors, with their reasons."""
    letters = asyncio.run(ops.dead_letters(local.load_settings(), service.value))
    rows = [{k: v for k, v in d.items() if k != "value"} for d in letters]
    columns = {"offset": "offset", "key": "key", "projection": "read model", "reason": "reason", "source": "from"}
    emit(rows, columns | {"time": "at"}, json_out=json_out)


@dlq_app.command("show")
def dlq_show(
    service: ServiceArg,
    offset: Annotated[int, typer.Option("--offset", min=0, help="the dead letter's offset (dlq list)")],
    json_out: Annotated[bool, JSON] = False,
) -> None:
    """One dead letter: its headers, reason and the message as it was."""
    letters = asyncio.run(ops.dead_letters(local.load_settings(), service.value))
    found = [d | {"value": d["value"].decode("utf-8", "replace")} for d in letters if d["offset"] == offset]
    if not found:
        raise UserError(f"no dead letter at offset {offset} of {service}")
    if json_out:
        as_json(found[0])
    else:
        for key, value in found[0].items():
            typer.echo(f"{key}: {value}")


@dlq_app.command("redrive")
def dlq_redrive(
    service: ServiceArg,
    offset: Annotated[
        list[int] | None, typer.Option("--offset", min=0, help="only these (repeatable); all when absent")
    ] = None,
) -> None:
    """Send dead letters back to their read models once the cause is fixed."""
    n = asyncio.run(ops.redrive(local.load_settings(), service.value, offset or None))
    console.print(f"sent {n} dead letter(s) back")


@relay_app.command("status")
def relay_status(service: ServiceArg, json_out: Annotated[bool, JSON] = False) -> None:
    """The relay's checkpoint and backlog, and whether the next event fits Kafka (an event that does not stops
    the relay until an operator acts: docs/OPERATIONS.md)."""
    status = asyncio.run(ops.relay_status(local.load_settings(), service.value))
    following = status["next"]
    stuck = following is not None and not following["fits"]
    if json_out:
        as_json(status)
    else:
        _print_relay(service.value, status)
    if stuck:
        raise typer.Exit(3)


def _print_relay(service: str, status: dict[str, Any]) -> None:
    console.print(
        f"{service}: checkpoint at position {status['checkpoint_position']}, {status['published']} published, "
        f"{status['backlog']} waiting (oldest recorded {status['oldest_unpublished'] or '-'})",
        soft_wrap=True,
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
            "see docs/OPERATIONS.md, 'An event the relay cannot publish'",
            soft_wrap=True,
        )


@relay_app.command("republish")
def relay_republish(
    service: ServiceArg,
    stream: Annotated[str, typer.Option("--stream", help="the stream to publish again from the store")],
) -> None:
    """Publish a stream's events again from the store (a projector stopped at a gap: docs/OPERATIONS.md)."""
    n = asyncio.run(ops.republish(local.load_settings(), service.value, stream))
    console.print(f"published {n} event(s) of {stream} again")


def tail(
    service: ServiceArg,
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    count: Annotated[int, typer.Option("--count", min=0, help="stop after this many (0: until Ctrl-C)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="one CloudEvent per line (JSON Lines)")] = False,
) -> None:
    """A service's events, decoded, as they arrive."""

    async def go() -> None:
        n = 0
        async for e in ops.tail(local.load_settings(), service.value, from_beginning=from_beginning):
            if json_out:
                typer.echo(e.model_dump_json())
            else:
                line = f"{e.time:%H:%M:%S} {e.type.rsplit('.', 1)[1]:<28} {e.streamid} v{e.streamversion}"
                console.print(f"{line}  {ops.describe(e.data)}", highlight=False, soft_wrap=True)
            n += 1
            if count and n >= count:
                return

    asyncio.run(go())


def events(json_out: Annotated[bool, JSON] = False) -> None:
    """The catalog of event types, their versions and their personal fields."""
    from tools.contract import schemas

    rows = [
        {
            "type": schema["x-event-type"],
            "version": schema["x-schema-version"],
            "personal_fields": schema.get("x-personal-fields", []),
            "fields": list(schema.get("properties", {})),
        }
        for _, schema in sorted(schemas().items())
        if "x-event-type" in schema
    ]
    columns = {"type": "type", "version": "version", "personal_fields": "personal fields", "fields": "fields"}
    emit(rows, columns, json_out=json_out)


def register(app: typer.Typer) -> None:
    for command in (history, projections, rebuild, tail, events):
        app.command()(command)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(relay_app, name="relay")
