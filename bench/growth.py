"""5. Growth: does a command slow down as the store and its streams grow?

- Append latency with 10,000 vs 1,000,000 events already stored (deal streams of ten events, filled in bulk
  from the rows a real deal's events are stored as), the same command on the same number of streams in both,
  with and without the process's state cache, rounds alternating the two stores (docs/decisions/0011).
- A command on a stream of 10, 1,000 and 10,000 events against one on a fresh stream: folded from nothing every
  time (no cache, no snapshot: what a naive event store does), from its snapshot in a process that has not seen
  it (a restart, a new replica), and from this process's state cache.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import UTC, datetime

from bench.common import Env, Report, cleanup, median, percentile
from services.deals import domain
from services.deals.handlers import Deals, deal_stream
from shared.core.decider import Decider
from shared.edge.service import Storage
from shared.store import StateCache
from shared.store.commands import Context, execute
from shared.store.postgres import PostgresEventStore


async def template_rows(deals: Deals) -> tuple[dict[str, object], dict[str, object]]:
    """The stored data of a real DealOpened and ActivityLogged, to fill streams in bulk with."""
    d = uuid.uuid4()
    ctx = Context(actor="u-bench")
    await deals.handle(d, domain.OpenDeal(title="Máy CNC", customer="Công ty An", owner_id="u-lan"), ctx)
    await deals.handle(
        d, domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="phone", outcome="ok"), ctx
    )
    opened, logged = await deals.store.read_stream(deal_stream(d))
    return opened.data, logged.data


async def fill(
    store: PostgresEventStore,
    templates: tuple[dict[str, object], dict[str, object]],
    streams: int,
    length: int,
    tag: str,
) -> list[uuid.UUID]:
    """``streams`` deals of ``length`` events each (opened, then activities), inserted by SQL in chunks."""
    opened, logged = templates
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}") for i in range(streams)]
    chunk = max(1, 200_000 // length)
    async with store.pool.acquire() as conn:
        for start in range(0, streams, chunk):
            part = ids[start : start + chunk]
            await conn.execute(
                f"""INSERT INTO {store.schema}.events (stream_id, version, event_id, event_type, schema_version,
                                                      data, metadata, occurred_at)
                    SELECT 'deal-' || d, v, gen_random_uuid(),
                           CASE WHEN v = 1 THEN 'pipelines.deals.DealOpened' ELSE 'pipelines.deals.ActivityLogged' END,
                           CASE WHEN v = 1 THEN 1 ELSE 2 END,
                           jsonb_set(CASE WHEN v = 1 THEN $2::jsonb ELSE $3::jsonb END, '{{deal_id}}', to_jsonb(d::text)),
                           '{{"actor": "u-bench", "correlation_id": "bench"}}'::jsonb, now()
                    FROM unnest($1::uuid[]) AS d, generate_series(1, $4) AS v""",
                part,
                opened,
                logged,
                length,
            )
    return ids


def log_activity(store: PostgresEventStore, decider: Decider[domain.Deal]):
    async def run(deal_id: uuid.UUID) -> float:
        started = time.perf_counter()
        await execute(
            store,
            deal_stream(deal_id),
            decider,
            lambda state: domain.decide(
                state,
                domain.LogActivity(activity_id=uuid.uuid4(), activity_type="call", channel="phone"),
                domain.Pipeline(),
                datetime.now(UTC),
                deal_id,
            ),
            metadata={"actor": "u-bench", "correlation_id": str(uuid.uuid4())},
        )
        return time.perf_counter() - started

    return run


async def wal_lsn(store: PostgresEventStore) -> str:
    async with store.pool.acquire() as conn:
        return str(await conn.fetchval("SELECT pg_current_wal_lsn()::text"))


async def wal_bytes_since(store: PostgresEventStore, lsn: str) -> int:
    """WAL written by the whole cluster since ``lsn`` (other sessions included)."""
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT pg_current_wal_lsn() - $1::text::pg_lsn", lsn))


async def store_size(env: Env, report: Report) -> None:
    """The same command on the same number of streams of the same length; only what else is stored differs.

    Each store is measured on 1,000 deal streams of ten events (the whole small store; a random 1 % of the big
    one, its rows and index entries scattered through a table and indexes 100 times larger), so the streams grow
    alike during the run and the process's state cache holds the same share of them in both. Measuring random
    streams of the whole store instead (as this benchmark did before, decision 0011) compared a command that
    mostly found its state in the cache (1,000 streams, 3,000 commands) with one that almost never did (100,000
    streams): the ratio was the cache's hit rate, not the store's size.
    """
    small_settings, big_settings = env.settings(), env.settings()
    small, big = await Storage.open(small_settings, "deals"), await Storage.open(big_settings, "deals")
    stores = {"small": small.store, "big": big.store}
    try:
        deals = Deals(small.store, lambda: datetime.now(UTC))
        await deals.ensure_default_pipeline()
        templates = await template_rows(deals)
        sizes = {"small": env.size(10_000, 1_000), "big": env.size(1_000_000, 20_000)}
        ids = {
            "small": await fill(small.store, templates, sizes["small"] // 10, 10, "small"),
            "big": await fill(big.store, templates, sizes["big"] // 10, 10, "big"),
        }
        for s in (small, big):
            async with s.pool.acquire() as conn:
                await conn.execute(f"ANALYZE {s.store.schema}.events")
        rng = random.Random(9)
        working = {"small": ids["small"], "big": rng.sample(ids["big"], len(ids["small"]))}
        paths = {
            "no state cache": True,  # every command reads the stream's snapshot and events from the store
            "state cache": False,
        }
        commands = {name: log_activity(store, domain.deal_decider) for name, store in stores.items()}
        lat: dict[str, dict[str, list[float]]] = {p: {"small": [], "big": []} for p in paths}
        wal: dict[str, dict[str, int]] = {p: {"small": 0, "big": 0} for p in paths}
        caches = {"small": StateCache(), "big": StateCache()}
        hits: dict[str, int] = {"small": 0, "big": 0}
        per_round = env.size(500, 30)
        rounds = env.size(6, 2)
        for r in range(rounds):
            for path, cold in paths.items():
                for name in ("small", "big") if r % 2 == 0 else ("big", "small"):
                    store = stores[name]
                    cache = caches[name]
                    if not cold:
                        store.states = cache  # kept across rounds, as a process keeps it
                    lsn = await wal_lsn(store)
                    for _ in range(per_round):
                        deal_id = rng.choice(working[name])
                        if cold:
                            store.states = StateCache()
                        elif cache.get((deal_stream(deal_id), id(domain.deal_decider))) is not None:
                            hits[name] += 1
                        lat[path][name].append(await commands[name](deal_id))
                    wal[path][name] += await wal_bytes_since(store, lsn)
        stored = {"small": f"{sizes['small']:,}", "big": f"{sizes['big']:,}"}
        for path in paths:
            for name in ("small", "big"):
                report.rows.append(
                    [
                        "append",
                        f"{stored[name]} events stored, {path}",
                        len(lat[path][name]),
                        percentile(lat[path][name], 50) * 1000,
                        percentile(lat[path][name], 99) * 1000,
                        percentile(lat[path][name], 50) / percentile(lat[path]["small"], 50),
                    ]
                )
        for path in paths:
            ratio = percentile(lat[path]["big"], 50) / percentile(lat[path]["small"], 50)
            report.within(f"append p50 with {stored['big']} vs {stored['small']} stored, {path}", ratio, 0.8, 1.2)
        n = rounds * per_round
        report.notes.append(
            f"Append rows: {len(working['small']):,} deal streams of 10 events in each store (the whole small "
            f"store; a random {len(working['big']) / len(ids['big']):.0%} of the big one), a random one per "
            f"command; {rounds} rounds of {per_round} commands per path and store, alternating which store goes "
            "first; ANALYZE after the bulk fill. 'no state cache': every command reads the stream's snapshot and "
            "events from the store (the cold path of decision 0009). 'state cache': one cache per store, kept "
            f"across rounds as a process keeps it; it held the stream's state for {hits['small'] / n:.0%} (small) "
            f"and {hits['big'] / n:.0%} (big) of the commands. Why the same streams in both: docs/decisions/0011."
        )
        report.notes.append(
            "WAL per command (LSN delta of the whole cluster, other sessions included): "
            + "; ".join(
                f"{path} {wal[path]['small'] / n:,.0f} B (small), {wal[path]['big'] / n:,.0f} B (big)" for path in paths
            )
            + ". After a checkpoint begins, the first change to each index page writes a full-page image (8 kB): "
            "the big store's measured streams lie on a leaf page each of its (stream_id, version) index, the small "
            "store's share its ~160, so the big store writes more of them until the next checkpoint "
            "(bench/results/growth-store-size.txt)."
        )
        report.data["store_size"] = {
            "sizes": sizes,
            "streams_measured": len(working["small"]),
            "state_cache_hits": hits,
            "wal_bytes": wal,
            "latencies_s": lat,
        }
    finally:
        await small.close()
        await big.close()
        await cleanup(small_settings)
        await cleanup(big_settings)


async def stream_length(env: Env, report: Report) -> None:
    settings = env.settings()
    storage = await Storage.open(settings, "deals")
    store = storage.store
    try:
        deals = Deals(store, lambda: datetime.now(UTC))
        await deals.ensure_default_pipeline()
        templates = await template_rows(deals)
        lengths = (1, 10, 1_000, 10_000) if not env.quick else (1, 10, 200)
        repeats = env.size(15, 3)
        streams = {n: await fill(store, templates, repeats, n, f"len{n}") for n in lengths}
        naive = dataclasses.replace(domain.deal_decider, snapshot_every=0)
        modes = {
            "folded from the start": (naive, True),
            "from its snapshot (new process)": (domain.deal_decider, True),
            "from this process's cache": (domain.deal_decider, False),
        }
        results: dict[str, dict[int, list[float]]] = {m: {n: [] for n in lengths} for m in modes}
        for mode, (decider, cold) in modes.items():
            command = log_activity(store, decider)
            for n in lengths:
                for i in range(repeats):
                    d = streams[n][i]
                    if mode.startswith("from its snapshot"):
                        store.states = StateCache()
                        await command(d)  # the first cold load writes the snapshot; measure the next one
                    if cold:
                        store.states = StateCache()
                    else:
                        await command(d)  # warm the cache
                    results[mode][n].append(await command(d))
        for mode in modes:
            fresh = median(results[mode][1])
            for n in lengths:
                m = median(results[mode][n])
                report.rows.append(
                    [
                        "command",
                        f"{n:,}-event stream, {mode}",
                        len(results[mode][n]),
                        m * 1000,
                        percentile(results[mode][n], 99) * 1000,
                        m / fresh,
                    ]
                )
        longest = lengths[-1]
        for mode in ("from its snapshot (new process)", "from this process's cache"):
            ratio = median(results[mode][longest]) / median(results[mode][1])
            report.at_most(f"command on a {longest:,}-event stream / on a fresh stream, {mode}", ratio, 2.0)
        report.data["stream_length"] = {m: {str(n): v for n, v in r.items()} for m, r in results.items()}
        report.notes.append(
            f"Stream-length rows: median of {repeats} commands per length and mode, each on its own stream; "
            f"snapshots every {domain.deal_decider.snapshot_every} events (docs/decisions/0009). "
            "'folded from the start' is a decider without snapshots and an empty cache: every event read and folded."
        )
    finally:
        await storage.close()
        await cleanup(settings)


async def run(env: Env) -> Report:
    report = Report(
        "growth",
        "Growth: a deal command as the store and the stream grow",
        ["what", "case", "commands", "p50 ms", "p99 ms", "ratio to first row of its group"],
    )
    await store_size(env, report)
    await stream_length(env, report)
    return report
