"""Replay in commit order: ``read_all`` (the relay's and every catch-up reader's path) beside a raw keyset read.

The deals store is filled with about ``n`` events in deals of about a dozen (bench/relay.py's ``prefill``: rows
cloned from deals driven through the handlers). Then, in interleaved rounds, each path reads every event from the
start in pages of ``page`` rows, for the relay's page (500) and a catch-up reader's (10,000):

- **raw, json.loads** (the baseline): a plain asyncpg connection (no codecs: jsonb arrives as text), the same
  commit-order keyset query with the same commit-safe bound (``tx_id < pg_snapshot_xmin(...)``), ``json.loads`` of
  each row's data and metadata, the next page after the last row's (tx_id, position);
- **raw, msgspec**: the same with msgspec's JSON decoder (what the JSON parse alone costs with the faster parser);
- **read_all before 0031**: the same query on a connection decoding jsonb with ``json.loads``, each row built by
  ``RecordedEvent.__init__`` with columns looked up by name (the code read_all ran before): the change, in one run;
- **read_all**: ``PostgresEventStore.read_all`` pages, each event a ``RecordedEvent``;
- **read_all + typed**: the same and ``to_event()`` of each (the typed, upcast event a read model applies).

Ratios are of medians; each pass also gives this process's CPU µs per event, steadier on a shared machine; the target is read_all / raw (json.loads) >= 0.6 at both pages. A full run keeps a cProfile
of one read_all pass (``bench/results/replay_profile_read_all.txt``).
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from bench.common import Env, Report, cleanup, median
from bench.relay import all_visible, prefill
from services.deals import main as deals_main
from shared.store import START
from shared.store.postgres import PostgresEventStore, _recorded

PAGES = (500, 10_000)
RAW_SQL = """SELECT stream_id, version, position, event_id, event_type, schema_version, data, metadata,
                    occurred_at, recorded_at, tx_id FROM {s}.events
             WHERE (tx_id, position) > ($1::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY tx_id, position LIMIT $3"""


async def raw(conn: asyncpg.Connection, schema: str, page: int, loads: Callable[[str], Any]) -> int:
    """Every row by keyset pages, data and metadata decoded with ``loads``; returns how many."""
    sql = RAW_SQL.format(s=schema)
    tx, position, n = 0, 0, 0
    while rows := await conn.fetch(sql, tx, position, page):
        decoded = [(r, loads(r[6]), loads(r[7])) for r in rows]
        n += len(decoded)
        last = rows[-1]
        tx, position = last[10], last[2]
    return n


async def before(conn: asyncpg.Connection, schema: str, page: int) -> int:
    """read_all as it was before decision 0031, on a connection decoding jsonb with json.loads: the same query, each
    row built by RecordedEvent's ``__init__`` with its columns looked up by name (``_recorded``)."""
    sql = RAW_SQL.format(s=schema)
    after, n = START, 0
    while rows := await conn.fetch(sql, after.tx, after.position, page):
        batch = [_recorded(r) for r in rows]
        n += len(batch)
        after = batch[-1].checkpoint
    return n


async def recorded(store: PostgresEventStore, page: int, typed: bool = False) -> int:
    """Every event by ``read_all`` pages (and, ``typed``, each one's ``to_event()``); returns how many."""
    after, n = START, 0
    while batch := await store.read_all(after, limit=page):
        if typed:
            events = [e.to_event() for e in batch]
            assert len(events) == len(batch)
        n += len(batch)
        after = batch[-1].checkpoint
    return n


async def timed(total: int, work: Callable[[], Awaitable[int]]) -> tuple[float, float]:
    """Events per second of one pass, which must read every event, and this process's CPU µs per event (steadier
    than the wall clock on a shared machine; PostgreSQL's share, the same for every path, is not in it)."""
    started, cpu = time.perf_counter(), time.process_time()
    n = await work()
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    assert n == total, f"read {n} of {total}"
    return total / seconds, cpu_s * 1e6 / total


async def profile(store: PostgresEventStore, page: int, path: str) -> None:
    prof = cProfile.Profile()
    prof.enable()
    await recorded(store, page)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    with open(path, "w") as f:
        f.write(f"# cProfile of one read_all pass, pages of {page} (python -m bench replay)\n")
        f.write(out.getvalue())


async def run(env: Env) -> Report:
    n = env.size(100_000, 3_000)
    rounds = env.size(5, 2)
    settings = env.settings()
    core = await deals_main.build(settings)
    plain = await asyncpg.connect(settings.database_url_for("deals"))
    old = await asyncpg.connect(settings.database_url_for("deals"))
    await old.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)
    try:
        total = await prefill(core, settings, n)
        await all_visible(core, total)
        store = core.storage.store
        schema = store.schema
        paths: dict[str, Callable[[int], Awaitable[int]]] = {
            "raw keyset read, json.loads (baseline)": lambda p: raw(plain, schema, p, json.loads),
            "raw keyset read, msgspec": lambda p: raw(plain, schema, p, msgspec.json.Decoder().decode),
            "read_all before 0031 (json.loads codec, __init__)": lambda p: before(old, schema, p),
            "read_all → RecordedEvent": lambda p: recorded(store, p),
            "read_all → RecordedEvent → to_event()": lambda p: recorded(store, p, typed=True),
        }
        rates: dict[tuple[str, int], list[float]] = {(k, p): [] for k in paths for p in PAGES}
        cpu: dict[tuple[str, int], list[float]] = {(k, p): [] for k in paths for p in PAGES}
        for i in range(rounds):
            names = list(paths) if i % 2 == 0 else list(reversed(paths))
            for page in PAGES:
                for name in names:
                    rate, us = await timed(total, lambda: paths[name](page))  # noqa: B023
                    rates[name, page].append(rate)
                    cpu[name, page].append(us)
            print(f"  round {i + 1}: " + ", ".join(f"{k[0]}/{k[1]} {v[-1]:,.0f}" for k, v in rates.items()))
        if not env.quick:
            await profile(store, PAGES[-1], str(env.out / "replay_profile_read_all.txt"))
        report = Report(
            name="replay",
            title=f"Replay in commit order: {total:,} deals events, pages of {' and '.join(map(str, PAGES))} "
            f"(events/s, medians of {rounds} rounds)",
            columns=["path", "page", "events/s", "min", "max", "ratio to raw json.loads", "client CPU µs/event"],
        )
        baseline = "raw keyset read, json.loads (baseline)"
        for page in PAGES:
            base = median(rates[baseline, page])
            for name in paths:
                r = rates[name, page]
                report.rows.append([name, page, median(r), min(r), max(r), median(r) / base, median(cpu[name, page])])
            report.at_least(
                f"read_all / raw keyset read + json.loads, pages of {page}",
                median(rates["read_all → RecordedEvent", page]) / base,
                0.6,
            )
        report.notes += [
            f"{total:,} events in the deals store (bench/relay.py's prefill); every path reads all of them from "
            "the start with the same commit-order keyset query and commit-safe bound; rounds alternate the order.",
            "The baseline is a plain asyncpg connection without codecs (jsonb as text) and json.loads of data and "
            "metadata per row; the msgspec row shows the same read with the faster parser read_all's pool uses.",
        ]
        paired = {
            page: [p / b for p, b in zip(rates["read_all → RecordedEvent", page], rates[baseline, page], strict=True)]
            for page in PAGES
        }
        report.notes.append(
            "read_all / baseline within each round (same minute, same neighbours on a shared machine): "
            + "; ".join(
                f"pages of {p}: median {median(v):.2f}, min {min(v):.2f}, max {max(v):.2f}" for p, v in paired.items()
            )
        )
        report.data = {
            "events": total,
            "rounds": rounds,
            "rates": {f"{k[0]} / {k[1]}": v for k, v in rates.items()},
            "client_cpu_us_per_event": {f"{k[0]} / {k[1]}": v for k, v in cpu.items()},
            "paired_ratios": paired,
        }
        return report
    finally:
        await plain.close()
        await old.close()
        await core.close()
        await cleanup(settings)
