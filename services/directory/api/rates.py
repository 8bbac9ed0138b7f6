"""Exchange rates (issue 26, decision 0021): ``PUT /rates/{currency}`` sets the rate in effect from a day on
(admin only), ``GET /rates`` lists every rate set (anyone who reads the directory: rates are no personal data).
Base VND: ``per_vnd`` is the đồng one unit of the currency is worth."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from services.directory.api.answers import Rates
from services.directory.api.common import ERRORS, Service
from services.directory.api.rights import Admin, Reader
from services.directory.domain.rate import CURRENCY_PATTERN, SetRate
from services.directory.rates import rate_table, set_rate
from shared.core.rates import BASE, ROUNDING
from shared.edge.commands import CommandAnswer, IfMatch, run_command

router = APIRouter(responses=ERRORS, tags=["rates"])
CurrencyParam = Annotated[str, Path(min_length=3, max_length=3, pattern=CURRENCY_PATTERN)]


@router.put(
    "/rates/{currency}",
    response_model=CommandAnswer,
    summary="the rate of a currency from a day on (the same again changes nothing; another supersedes it)",
)
async def put_rate(
    request: Request, currency: CurrencyParam, body: SetRate, svc: Service, p: Admin, if_match: IfMatch = None
) -> Response:
    return await run_command(
        request,
        p.user_id,
        lambda ctx: set_rate(svc.directory, currency, body, ctx),
        aggregate_id=currency,
        if_match=if_match,
    )


@router.get("/rates", summary="every exchange rate set, per currency by day (base VND)", response_model=Rates)
async def get_rates(svc: Service, p: Reader) -> dict[str, Any]:
    table = await rate_table(svc.directory.store)
    return {"base": BASE, "rounding": ROUNDING, "rates": table.as_json()}
