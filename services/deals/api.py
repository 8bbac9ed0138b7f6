"""The deals service's HTTP API: commands on deals, pipelines and targets; the deal's audit trail; read models.

Who may do what: a salesperson (``sales``) sees and changes their own deals and opens them in their own team (or
none); a ``sales_manager`` does the same for every deal of their team (the token's ``team``: a manager without one
has no team's, only their own deals); a ``sales_director`` for every team, and defines pipelines; an ``auditor``
reads everything and changes nothing; ``admin`` does anything. Deals a caller may not see answer 404, as if they did
not exist; their alerts are not listed. Numbers (forecast, analytics, targets) follow the same scopes. Only a lead's
conversion opens a deal from a lead (``source_lead_id``): its outcome is the only one the lead's revenue counts.
Every route's rights for every kind of caller: tests/integration/test_security_roles.py.
"""

# No `from __future__ import annotations` here: FastAPI reads the command routes' body types at runtime.

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response

from services.deals import analytics, domain, projections
from services.deals.domain import Deal
from services.deals.handlers import Deals, deal_stream
from shared.alerts import add_alerts_route
from shared.core.ids import CLIENT_ID_RULE, ClientId, is_client_id
from shared.core.limits import DAY_RANGE, MAX_TIME_HEADER_CHARS, MAX_VERSION, Day, Moment, moment_problem
from shared.edge.auth import Principal, TokenVerifier, require
from shared.edge.commands import CommandAnswer, IdempotencyKey, IfMatch, answer, command_context
from shared.edge.http import install_common
from shared.edge.problems import ERRORS as COMMON_ERRORS
from shared.edge.problems import Problem
from shared.edge.queries import Cursor, Limit, WaitFor, decode_cursor, history_page, page, wait_target
from shared.messaging.projections import ReadModels
from shared.privacy.pii import PersonalData
from shared.store import EventStore
from shared.store.commands import Context, Loaded

SALES_ROLES = ("sales", "sales_manager", "sales_director")
READ_ROLES = ("sales", "sales_manager", "sales_director", "auditor")
COMPANY_WIDE = frozenset({"admin", "sales_director"})  # every team's deals, numbers, targets and pipelines
ERRORS = COMMON_ERRORS | {404: {"model": Problem, "description": "no such deal (or not one the caller may see)"}}


@dataclass
class DealsAPI:
    deals: Deals
    store: EventStore
    read_models: ReadModels | None
    personal_data: PersonalData
    timezone: str
    readiness: Callable[[], Awaitable[dict[str, str]]]


def company_wide(p: Principal) -> bool:
    """A director or an admin: every team's sales."""
    return bool(p.roles & COMPANY_WIDE)


def sees_all(p: Principal) -> bool:
    return company_wide(p) or "auditor" in p.roles


def managed_team(p: Principal) -> str | None:
    """The team whose deals a manager sees and changes: their token's team. A manager without a team manages none
    (they see their own deals, as a salesperson does); a salesperson sees only their own."""
    return p.team if "sales_manager" in p.roles and p.team else None


def can_read(p: Principal, deal: Deal) -> bool:
    return sees_all(p) or can_write(p, deal)


def can_write(p: Principal, deal: Deal) -> bool:
    if company_wide(p):
        return True
    team = managed_team(p)
    if team is not None and deal.team_id == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and deal.owner_id == p.user_id


def may_place(p: Principal, owner_id: str, team_id: str | None) -> bool:
    """Whether the caller may put a deal of ``owner_id`` in ``team_id`` (opening it, or reassigning one they
    change): a director or an admin anywhere; a manager anyone's in their team; anyone of the sales roles their own
    in their own team or in none. Handing a deal to someone else is their manager's (or a director's) call."""
    if company_wide(p):
        return True
    team = managed_team(p)
    if team is not None and team_id == team:
        return True
    return bool(p.roles & set(SALES_ROLES)) and owner_id == p.user_id and team_id in (None, p.team)


PLACES = "a salesperson's own deals, in their team; a manager's team's; a director's anywhere"
# Ids a client names for new things of kinds the service also derives ids of (shared.core.ids): a shipment's follow-up.
CLIENT_CHOSEN_IDS = {"start_follow_up": "follow_up_id"}


def _aware(at: datetime | None) -> datetime | None:
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, detail="times need a time zone offset")
    return at


def _occurred_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, detail=f"X-Occurred-At must be an ISO 8601 time, not {value!r}") from None
    if at.tzinfo is None:
        raise HTTPException(422, detail="X-Occurred-At needs a time zone offset")
    if problem := moment_problem(at):
        raise HTTPException(422, detail=f"X-Occurred-At: {problem}")
    return at


Currency = Annotated[str, Query(pattern=r"^[A-Z]{3}$")]
Period = Annotated[str, Query(pattern=r"^[12]\d{3}-(0[1-9]|1[0-2]|Q[1-4])$", examples=["2026-12", "2027-Q1"])]
OccurredAt = Annotated[
    str | None,
    Header(
        max_length=MAX_TIME_HEADER_CHARS,
        description="back-dates the fact to when it happened (ISO 8601 with offset); its recorded time stays",
    ),
]


def create_app(svc: DealsAPI, verifier: TokenVerifier, *, title: str = "Pipelines — deals") -> FastAPI:
    app = FastAPI(
        title=title,
        version="1.0.0",
        description="The sales pipeline: deals from first contact to after-sales follow-up. " + (__doc__ or ""),
    )
    app.state.token_verifier = verifier
    install_common(app, svc.readiness, "deals")

    router = APIRouter(responses=ERRORS)
    tz = ZoneInfo(svc.timezone)

    async def context(
        request: Request, p: Principal, if_match: str | None, key: str | None, occurred_at: str | None = None
    ) -> Context:
        return await command_context(request, p.user_id, if_match, key, _occurred_at(occurred_at))

    async def visible_deal(deal_id: uuid.UUID, p: Principal, **read: Any) -> Loaded[Deal]:
        loaded = await svc.deals.deal(deal_id, **read)
        if loaded.version == 0 or not can_read(p, loaded.state):
            raise HTTPException(404, detail=f"no deal {deal_id}")
        return loaded

    def writable(
        deal_id: uuid.UUID, p: Principal, command: domain.Command | None = None
    ) -> Callable[[Deal, int], None]:
        """The rights check a command runs on the deal it decides on: 404 for a deal the caller cannot see, 403
        for one they cannot change (or cannot reassign where the command puts it)."""

        def check(deal: Deal, version: int) -> None:
            if version == 0 or not can_read(p, deal):
                raise HTTPException(404, detail=f"no deal {deal_id}")
            if not can_write(p, deal):
                raise HTTPException(
                    403, detail="only the deal's owner, their team's manager, a director or an admin change it"
                )
            if isinstance(command, domain.Reassign) and not may_place(p, command.owner_id, command.team_id):
                raise HTTPException(403, detail=f"a deal is reassigned where its new place is the caller's: {PLACES}")

        return check

    # ------------------------------------------------------------------ opening a deal
    @router.post("/deals", status_code=201, response_model=CommandAnswer, tags=["deals"], summary="open a deal")
    async def open_deal(
        request: Request,
        body: Annotated[
            domain.OpenDeal,
            Body(
                openapi_examples={
                    "manual": {
                        "value": {
                            "title": "Tủ lạnh cho chuỗi cửa hàng",
                            "customer": "Điện máy An Phát",
                            "owner_id": "u-lan",
                            "team_id": "north",
                            "contact_id": "c-123",
                            "contact": {"name": "Nguyễn Văn An", "phone": "+84901234567"},
                            "lines": [
                                {
                                    "product": "Tủ lạnh 300L",
                                    "quantity": "10",
                                    "unit_price": {"amount": "9000000", "currency": "VND"},
                                }
                            ],
                            "expected_close_date": "2026-12-20",
                        }
                    }
                }
            ),
        ],
        p: Annotated[Principal, Depends(require(*SALES_ROLES))],
        idempotency_key: IdempotencyKey = None,
        deal_id: Annotated[
            ClientId | None,
            Query(
                description="the new deal's id, so that a retry finds it (default: a new one); "
                f"{CLIENT_ID_RULE} (a converted lead's deal, for one)"
            ),
        ] = None,
    ) -> Response:
        if not may_place(p, body.owner_id, body.team_id):
            raise HTTPException(403, detail=f"a deal is opened where the caller may put it: {PLACES}")
        if body.source_lead_id is not None:
            raise HTTPException(
                422,
                detail="source_lead_id is set by a lead's conversion (POST /leads/{id}/convert on the leads "
                "service), which opens the lead's deal; a deal opened here comes from no lead",
            )
        new_id = deal_id or uuid.uuid4()
        ctx = await context(request, p, None, idempotency_key)
        result = await svc.deals.handle(new_id, body, ctx)
        opened = result.append.stream_id.removeprefix("deal-")
        return answer(opened, result.append, created=True, location=f"/deals/{opened}")

    # ------------------------------------------------------------------ every other command
    def command_route(cmd: type[domain.Command]) -> None:
        path = "/deals/{deal_id}/" + cmd.name.replace("_", "-")

        async def run(
            deal_id: uuid.UUID,
            request: Request,
            body: cmd,  # type: ignore[valid-type]  # a class chosen at runtime, one route per command
            p: Annotated[Principal, Depends(require(*SALES_ROLES))],
            if_match: IfMatch = None,
            idempotency_key: IdempotencyKey = None,
            x_occurred_at: OccurredAt = None,
        ) -> Response:
            command: domain.Command = body
            if (field := CLIENT_CHOSEN_IDS.get(command.name)) and not is_client_id(getattr(command, field)):
                raise HTTPException(422, detail=f"{field} must be {CLIENT_ID_RULE}")
            ctx = await context(request, p, if_match, idempotency_key, x_occurred_at)
            result = await svc.deals.handle(deal_id, command, ctx, check=writable(deal_id, p, command))
            return answer(str(deal_id), result.append)

        router.add_api_route(
            path,
            run,
            methods=["POST"],
            response_model=CommandAnswer,
            tags=["deal commands"],
            summary=cmd.name.replace("_", " "),
            description=(cmd.__doc__ or "").strip() or None,
        )

    for cmd in domain.Command.__subclasses__():
        if cmd is not domain.OpenDeal:
            command_route(cmd)

    # ------------------------------------------------------------------ the deal and its audit trail
    @router.get("/deals/{deal_id}", tags=["deals"], summary="the deal now (or as of a version)")
    async def get_deal(
        deal_id: uuid.UUID,
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        response: Response,
        include_contact: bool = False,
    ) -> dict[str, Any]:
        loaded = await visible_deal(deal_id, p)
        body = domain.state_as_json(loaded.state)
        body["version"] = loaded.version
        if include_contact:
            if not can_write(p, loaded.state):
                raise HTTPException(403, detail="contact details are shown to those who work the deal")
            opened = next(e for e in loaded.events if e.event_type == "pipelines.deals.DealOpened")
            body["contact"] = (await svc.personal_data.open([opened.data]))[0].get("contact")
        response.headers["ETag"] = f'"{loaded.version}"'
        return body

    @router.get("/deals/{deal_id}/history", tags=["audit"], summary="every event of the deal, oldest first")
    async def history(
        deal_id: uuid.UUID,
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Any:
        loaded = await visible_deal(deal_id, p)
        return await history_page(
            loaded.events,
            svc.personal_data,
            personal=can_write(p, loaded.state),
            offset=decode_cursor(cursor),
            limit=limit,
        )

    @router.get("/deals/{deal_id}/state", tags=["audit"], summary="the deal as of a time or a version")
    async def state_as_of(
        deal_id: uuid.UUID,
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        at: Annotated[Moment | None, Query(description="a time with offset")] = None,
        basis: Annotated[
            Literal["recorded", "occurred"],
            Query(
                description="recorded: what the system knew at `at`; occurred: what had happened by `at` "
                "(back-dated facts included)"
            ),
        ] = "recorded",
        version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    ) -> dict[str, Any]:
        await visible_deal(deal_id, p)
        loaded = await _as_of(deal_id, at, basis, version)
        body = domain.state_as_json(loaded.state)
        body["version"] = loaded.version
        body["as_of"] = {"at": at.isoformat() if at else None, "basis": basis, "version": version}
        return body

    async def _as_of(deal_id: uuid.UUID, at: datetime | None, basis: str, version: int | None) -> Loaded[Deal]:
        if at is not None and at.tzinfo is None:
            raise HTTPException(422, detail="`at` needs a time zone offset")
        if at is None or basis == "recorded":
            return await svc.deals.deal(deal_id, to_version=version, as_of=at)
        events = [
            e for e in await svc.store.read_stream(deal_stream(deal_id), to_version=version) if e.occurred_at <= at
        ]
        state = domain.deal_decider.fold([e.to_event() for e in events])
        return Loaded(state, events[-1].version if events else 0, events)

    @router.get("/deals/{deal_id}/diff", tags=["audit"], summary="what changed between two versions or times")
    async def diff(
        deal_id: uuid.UUID,
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        from_version: Annotated[int | None, Query(ge=0, le=MAX_VERSION)] = None,
        to_version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
        from_time: Annotated[Moment | None, Query(alias="from")] = None,
        to_time: Annotated[Moment | None, Query(alias="to")] = None,
        basis: Literal["recorded", "occurred"] = "recorded",
    ) -> dict[str, Any]:
        await visible_deal(deal_id, p)
        if from_version is None and from_time is None:
            raise HTTPException(422, detail="give from_version or from")
        before = await _as_of(deal_id, from_time, basis, from_version) if from_version != 0 else Loaded(Deal(), 0, [])
        after = await _as_of(deal_id, to_time, basis, to_version)
        a, b = domain.state_as_json(before.state), domain.state_as_json(after.state)
        changes = {k: {"from": a[k], "to": b[k]} for k in b if a.get(k) != b[k]}
        between = [e.event_type.rsplit(".", 1)[-1] for e in after.events if e.version > before.version]
        return {"from_version": before.version, "to_version": after.version, "changes": changes, "events": between}

    # ------------------------------------------------------------------ read models
    def read_models() -> ReadModels:
        if svc.read_models is None:
            raise HTTPException(503, detail="this process serves no read models")
        return svc.read_models

    async def waited(position: int | None) -> tuple[str, int] | None:
        return await wait_target(svc.store, position)

    @router.get("/board", tags=["read models"], summary="the sales board: per stage the open deals, counts and values")
    async def get_board(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        pipeline_id: str = domain.DEFAULT_PIPELINE_ID,
        owner_id: str | None = None,
        position: WaitFor = None,
    ) -> dict[str, Any]:
        async with read_models().connection("board", wait_for=await waited(position)) as conn:
            return await projections.board_view(
                conn,
                pipeline_id=pipeline_id,
                now=svc.deals.clock(),
                tz=svc.timezone,
                user=p.user_id,
                team=managed_team(p),
                all_deals=sees_all(p),
                owner_id=owner_id,
            )

    @router.get("/deals", tags=["read models"], summary="deals, newest first, with days in stage and stuck flags")
    async def get_deals(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        deal_status: Annotated[Literal["open", "won", "lost"] | None, Query(alias="status")] = None,
        stage_id: str | None = None,
        owner_id: str | None = None,
        stuck: bool | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        position: WaitFor = None,
    ) -> Any:
        offset = decode_cursor(cursor)
        async with read_models().connection("board", wait_for=await waited(position)) as conn:
            rows = await projections.list_deals(
                conn,
                now=svc.deals.clock(),
                tz=svc.timezone,
                user=p.user_id,
                team=managed_team(p),
                all_deals=sees_all(p),
                status=deal_status,
                stage_id=stage_id,
                owner_id=owner_id,
                stuck=stuck,
                offset=offset,
                limit=limit,
            )
        return page(rows, offset, limit)

    @router.get("/follow-ups", tags=["read models"], summary="after-sales follow-ups due by a date")
    async def get_follow_ups(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        due_by: date | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Any:
        offset = decode_cursor(cursor)
        until = due_by or svc.deals.clock().astimezone(tz).date()
        async with read_models().connection("board") as conn:
            rows = await projections.follow_ups_due(
                conn,
                until=until,
                user=p.user_id,
                team=managed_team(p),
                all_deals=sees_all(p),
                offset=offset,
                limit=limit,
            )
        return page(rows, offset, limit)

    # ------------------------------------------------------------------ analytics
    def scope(p: Principal, owner_id: str | None, team_id: str | None) -> tuple[str | None, str | None]:
        """Salespeople (and managers without a team) see their own numbers, managers their team's, directors,
        auditors and admins anyone's."""
        if sees_all(p):
            return owner_id, team_id
        team = managed_team(p)
        if team is not None:
            if team_id not in (None, team):
                raise HTTPException(403, detail="a manager sees their own team's numbers")
            return owner_id, team
        if owner_id not in (None, p.user_id):
            raise HTTPException(403, detail="a salesperson sees their own numbers")
        return p.user_id, None

    def window(start: date, end: date) -> tuple[datetime, datetime]:
        if end <= start:
            raise HTTPException(422, detail="`to` must be after `from`")
        return (datetime.combine(start, time(), tz), datetime.combine(end, time(), tz))

    @router.get("/forecast", tags=["analytics"], summary="forecast per month and owner, now or as recorded on a date")
    async def get_forecast(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        as_of: Annotated[Moment | None, Query(description="as the system knew it then (with offset)")] = None,
        owner_id: str | None = None,
        team_id: str | None = None,
        currency: Currency = "VND",
    ) -> dict[str, Any]:
        owner_id, team_id = scope(p, owner_id, team_id)
        at = _aware(as_of)  # None: the forecast as it stands now
        async with read_models().connection("analytics") as conn:
            rows = await analytics.forecast(
                conn, as_of=at, tz=svc.timezone, currency=currency, owner_id=owner_id, team_id=team_id
            )
        return {"as_of": at.isoformat() if at else None, "rows": rows}

    @router.get("/forecast/changes", tags=["analytics"], summary="what moved the forecast between two dates")
    async def get_forecast_changes(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        since: Moment,
        until: Moment | None = None,
        owner_id: str | None = None,
        currency: Currency = "VND",
    ) -> dict[str, Any]:
        owner_id, team_id = scope(p, owner_id, None)
        async with read_models().connection("analytics") as conn:
            return await analytics.forecast_changes(
                conn,
                since=_aware(since) or since,
                until=_aware(until),
                currency=currency,
                owner_id=owner_id,
                team_id=team_id,
            )

    @router.get(
        "/analytics/stages",
        tags=["analytics"],
        summary="stage conversion, time in stage, backward moves, skips; win rate, size, cycle, velocity",
    )
    async def get_stage_analytics(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        start: Annotated[Day, Query(alias="from", description=DAY_RANGE)],
        end: Annotated[Day, Query(alias="to", description=DAY_RANGE)],
        pipeline_id: str = domain.DEFAULT_PIPELINE_ID,
        owner_id: str | None = None,
        currency: Currency = "VND",
    ) -> dict[str, Any]:
        owner_id, team_id = scope(p, owner_id, None)
        lo, hi = window(start, end)
        async with read_models().connection("analytics") as conn:
            return await analytics.stage_analytics(
                conn,
                start=lo,
                end=hi,
                now=svc.deals.clock(),
                pipeline_id=pipeline_id,
                currency=currency,
                owner_id=owner_id,
                team_id=team_id,
            )

    @router.get("/analytics/scorecard", tags=["analytics"], summary="each salesperson's period")
    async def get_scorecard(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        period: Period,
        owner_id: str | None = None,
        team_id: str | None = None,
        currency: Currency = "VND",
    ) -> list[dict[str, Any]]:
        owner_id, team_id = scope(p, owner_id, team_id)
        async with read_models().connection("analytics") as conn:
            return await analytics.scorecard(
                conn,
                period=period,
                tz=svc.timezone,
                now=svc.deals.clock(),
                currency=currency,
                owner_id=owner_id,
                team_id=team_id,
            )

    @router.get("/analytics/lost-reasons", tags=["analytics"], summary="why deals were lost, where, to whom")
    async def get_lost_reasons(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        start: Annotated[Day, Query(alias="from", description=DAY_RANGE)],
        end: Annotated[Day, Query(alias="to", description=DAY_RANGE)],
        owner_id: str | None = None,
        currency: Currency = "VND",
    ) -> list[dict[str, Any]]:
        owner_id, team_id = scope(p, owner_id, None)
        lo, hi = window(start, end)
        async with read_models().connection("analytics") as conn:
            return await analytics.lost_reasons(
                conn, start=lo, end=hi, currency=currency, owner_id=owner_id, team_id=team_id
            )

    @router.get(
        "/analytics/target-plan",
        tags=["analytics"],
        summary="deals still needed at each stage to reach a target (seed S2)",
    )
    async def get_target_plan(
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        period: Period,
        owner_id: str | None = None,
        team_id: str | None = None,
        pipeline_id: str = domain.DEFAULT_PIPELINE_ID,
    ) -> dict[str, Any]:
        if (owner_id is None) == (team_id is None):
            raise HTTPException(422, detail="give owner_id or team_id")
        # a target is an owner's or a team's: a salesperson reads their own plan, a manager their team's
        if not sees_all(p) and (owner_id not in (None, p.user_id) or team_id not in (None, managed_team(p))):
            raise HTTPException(403, detail="a salesperson reads their own plan, a manager their team's")
        async with read_models().connection("analytics") as conn:
            try:
                return await analytics.target_plan(
                    conn, period=period, tz=svc.timezone, owner_id=owner_id, team_id=team_id, pipeline_id=pipeline_id
                )
            except LookupError as exc:
                raise HTTPException(404, detail=str(exc)) from None

    @router.get(
        "/analytics/success-factors", tags=["analytics"], summary="what converting deals did at each stage (seed S3)"
    )
    async def get_success_factors(
        p: Annotated[Principal, Depends(require("sales_manager", "sales_director", "auditor"))],
        pipeline_id: str = domain.DEFAULT_PIPELINE_ID,
        by: Literal["activity_type", "channel"] = "activity_type",
    ) -> list[dict[str, Any]]:
        team = None if sees_all(p) else managed_team(p)
        if team is None and not sees_all(p):
            raise HTTPException(403, detail="a manager without a team has no team's deals to learn from")
        async with read_models().connection("analytics") as conn:
            return await analytics.success_factors(conn, pipeline_id=pipeline_id, by=by, team_id=team)

    # ------------------------------------------------------------------ pipelines and targets
    @router.get("/pipelines/{pipeline_id}", tags=["pipelines"], summary="a pipeline's stages (or as of a version)")
    async def get_pipeline(
        pipeline_id: str,
        p: Annotated[Principal, Depends(require(*READ_ROLES))],
        response: Response,
        version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    ) -> dict[str, Any]:
        pipeline = await svc.deals.pipeline(pipeline_id, to_version=version)
        if not pipeline.exists:
            raise HTTPException(404, detail=f"no pipeline {pipeline_id}")
        response.headers["ETag"] = f'"{pipeline.version}"'
        return {
            "pipeline_id": pipeline.pipeline_id,
            "name": pipeline.name,
            "version": pipeline.version,
            "stages": [s.model_dump(mode="json") for s in pipeline.stages],
        }

    @router.put(
        "/pipelines/{pipeline_id}",
        tags=["pipelines"],
        response_model=CommandAnswer,
        summary="define a pipeline's stages (a new version)",
    )
    async def put_pipeline(
        pipeline_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
        request: Request,
        body: domain.DefinePipeline,
        p: Annotated[Principal, Depends(require("sales_director"))],  # every team works the pipelines
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        ctx = await context(request, p, if_match, idempotency_key)
        result = await svc.deals.define_pipeline(pipeline_id, body, ctx)
        return answer(pipeline_id, result.append)

    @router.put(
        "/targets/{target_id}",
        tags=["targets"],
        response_model=CommandAnswer,
        summary="set a revenue target for an owner or a team and period",
    )
    async def put_target(
        target_id: uuid.UUID,
        request: Request,
        body: domain.SetSalesTarget,
        p: Annotated[Principal, Depends(require("sales_manager", "sales_director"))],
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        # a target keeps its team or owner (target_scope_fixed), so the body's is the target's
        if not company_wide(p) and (body.team_id is None or body.team_id != managed_team(p)):
            raise HTTPException(403, detail="a manager sets their own team's target; a director any team's or owner's")
        ctx = await context(request, p, if_match, idempotency_key)
        result = await svc.deals.set_target(target_id, body, ctx)
        return answer(str(target_id), result.append)

    async def visible_alerts(p: Principal, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alerts of the deals the caller's lists show them."""
        if sees_all(p):
            return alerts
        about = {a["entity"].removeprefix("deal-") for a in alerts if a["entity"].startswith("deal-")}
        async with read_models().connection("board") as conn:
            seen = await projections.visible_deals(
                conn, [uuid.UUID(d) for d in about], user=p.user_id, team=managed_team(p)
            )
        return [a for a in alerts if a["entity"].removeprefix("deal-") in seen]

    add_alerts_route(router, "deals", read_models, require(*READ_ROLES), visible=visible_alerts)
    app.include_router(router)
    return app
