"""Exchange rates, the directory's reference data (issue 26, decision 0021): set one (``set_rate``), read them all
(``rate_table``). Each currency's rates are one stream, ``directory-rate-<currency>``; the other services keep
them in their replica of the directory (services.directory.replica: the ``rates`` table) and convert with
shared.core.rates."""

from __future__ import annotations

from services.directory.domain.rate import Rate, SetRate, decide_rate, rate_decider
from services.directory.events import RateSet
from services.directory.handlers import Directory
from shared.core.rates import RateTable
from shared.privacy.pii import parse_stored
from shared.store import EventStore
from shared.store.commands import CommandResult, Context, execute

RATE_STREAM = "directory-rate-"


def rate_stream(currency: str) -> str:
    return RATE_STREAM + currency


async def set_rate(directory: Directory, currency: str, cmd: SetRate, ctx: Context) -> CommandResult[Rate]:
    return await execute(
        directory.store,
        rate_stream(currency),
        rate_decider,
        lambda state: decide_rate(state, cmd, currency),
        **ctx.options(directory.clock()),
    )


async def rate_table(store: EventStore) -> RateTable:
    """Every rate set, over every committed event of the rate streams (``read_streams``: complete)."""
    rows = []
    for r in await store.read_streams(RATE_STREAM):
        e = parse_stored(r.event_type, r.schema_version, r.data)
        if isinstance(e, RateSet):
            rows.append((e.currency, e.effective_from, e.per_vnd))
    return RateTable.of(rows)
