"""Read models: a fresh deployment of each service building every read model from N events, beside the raw read.

For each service with a module ``bench/readmodels_<service>.py`` (``SERVICE``, ``READ_MODELS``, ``REACTIONS``,
``templates(core)``: the service's real handlers driven for a few template streams), an isolated deployment of
the service gets about N events (default 1,000,000; ``--quick``: 500): the templates' stored rows cloned in bulk
into its store, every UUID of a template (in its stream ids and data) replaced by a fresh one per clone, with one
INSERT per 20,000 rows of exactly the columns the store's append writes (as bench/relay.py ``prefill`` does); the
project's relay publishes them to the service's topic (6 partitions). Then:

- raw: one aiokafka consumer reads the whole topic from the beginning and ``json.loads`` each value (the read
  alone, no envelope, no database) — the baseline, in the same run;
- project: one ``python -m services.<service> projector`` process is started on the fresh deployment (no read
  model has a generation yet: it makes them and builds them from the topic's beginning, as a new deployment
  does); timed from its spawn (so the process's start, a few seconds, counts: it starts consuming before it logs
  ``service.started``) until every one of ``READ_MODELS`` has applied every stored event
  (the sum of its progress versions reaches the events filled). Events/s count each event once. A service's reactions
  (``REACTIONS``, those on its own topic) are timed in their own row, in the same process.

Read models on other services' topics (production's demand model on the deals topic, every service's alerts
model) see no events here: they are measured by the random-split test for correctness only (decision 0030).
Target: >= 10,000 events/s per service (2 cores, shared by the projector, PostgreSQL and Kafka). In the full run
the slowest service is built once more under py-spy (bench/results/readmodels-profile-<service>.txt).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import RESULTS, Env, Report, cleanup
from bench.projectors import started, stop, summarise, wait_for
from bench.relay import all_visible
from shared.edge.service import ServiceCore
from shared.messaging.kafka import admin_client, stop_consumer
from shared.messaging.projections import request_rebuild
from shared.ops.settings import Settings
from shared.ops.stack import ROOT
from testkit.services import process_env

SERVICES = ("leads", "production", "directory", "agenda")  # those with a bench/readmodels_<service>.py run
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COLUMNS = "stream_id, version, event_type, schema_version, data::text AS data, metadata::text AS metadata, occurred_at"
TARGET = 10_000


class Clock:
    """A settable clock for a service's handlers while its templates are driven through simulated time
    (``build_options`` of a service's bench module: ``{"clock": CLOCK}``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Template:
    """Stored rows of a few streams (``stored_rows``), cloned in bulk: ``ids`` are replaced by fresh UUIDs per clone
    (default: every UUID in the rows' stream ids and data)."""

    rows: Sequence[asyncpg.Record]
    ids: tuple[str, ...] = ()

    def replaced(self) -> tuple[str, ...]:
        return self.ids or tuple(sorted({u for r in self.rows for u in UUID.findall(r["stream_id"] + r["data"])}))


async def stored_rows(core: ServiceCore, stream_ids: Sequence[str] | None = None) -> list[asyncpg.Record]:
    """The stored rows of ``stream_ids`` (default: every stream with a UUID in its id), in the store's order."""
    s = core.storage.store.schema
    async with core.storage.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM {s}.events ORDER BY position")
    wanted = set(stream_ids) if stream_ids is not None else None
    return [r for r in rows if (r["stream_id"] in wanted if wanted is not None else UUID.search(r["stream_id"]))]


INSERT = """
    INSERT INTO {s}.events (stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at)
    SELECT t.stream_id, t.version, t.event_id, t.event_type, t.schema_version, t.data::jsonb, t.metadata::jsonb,
           t.occurred_at
    FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[], $8::timestamptz[])
         AS t(stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at)"""


def _pieces(text: str, old: set[str]) -> list[str]:
    """``text`` cut around the UUIDs to replace: the even pieces are kept, the odd ones are UUIDs."""
    parts = UUID.split(text)
    found = UUID.findall(text)
    out = [parts[0]]
    for u, rest in zip(found, parts[1:], strict=True):
        if u in old:
            out += [u, rest]
        else:
            out[-1] += u + rest
    return out


def _join(pieces: list[str], new: dict[str, str]) -> str:
    return "".join(new[p] if i % 2 else p for i, p in enumerate(pieces))


async def fill(core: ServiceCore, settings: Settings, templates: Sequence[Template], n: int) -> int:
    """About ``n`` events in the store: the templates (already stored) and clones of them; returns the total."""
    s = core.storage.store.schema
    conn = await asyncpg.connect(settings.database_url_for(core.name))
    try:
        have = int(await conn.fetchval(f"SELECT count(*) FROM {s}.events"))
        cut = []
        for t in templates:
            old = set(t.replaced())
            rows = [(_pieces(r["stream_id"], old), _pieces(r["data"], old), r) for r in t.rows]
            cut.append((sorted(old), rows))
        cols: list[list[Any]] = [[] for _ in range(8)]
        c = 0
        while have < n and cut:
            old, rows = cut[c % len(cut)]
            new = {o: str(uuid.uuid4()) for o in old}
            for stream, data, r in rows:
                values = (
                    _join(stream, new),
                    r["version"],
                    uuid.uuid4(),
                    r["event_type"],
                    r["schema_version"],
                    _join(data, new),
                    r["metadata"],
                    r["occurred_at"],
                )
                for col, v in zip(cols, values, strict=True):
                    col.append(v)
            have += len(rows)
            c += 1
            if len(cols[0]) >= 20_000 or have >= n:
                await conn.execute(INSERT.format(s=s), *cols)
                for col in cols:
                    col.clear()
        return int(await conn.fetchval(f"SELECT count(*) FROM {s}.events"))
    finally:
        await conn.close()


async def publish(core: ServiceCore, total: int) -> None:
    """Every stored event on the service's topic, by the project's relay."""
    await all_visible(core, total)
    relay = core.relay()
    await relay.setup()
    assert await relay.lead()
    try:
        while await relay.publish_batch():
            pass
    finally:
        await relay.close()
    assert relay.published >= total, f"published {relay.published} of {total}"


async def raw_read(settings: Settings, topic: str, total: int) -> float:
    """Seconds for one consumer to read the whole topic from the beginning, decoding each value's JSON."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, **settings.kafka_options()
    )
    await consumer.start()
    try:
        async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
            (described,) = await admin.describe_topics([topic])
        parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        read = 0
        begun = time.perf_counter()
        while read < total:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for r in records:
                    json.loads(r.value or b"null")
                read += len(records)
            if all([await consumer.position(tp) >= end[tp] for tp in parts]):
                break
        return time.perf_counter() - begun
    finally:
        await stop_consumer(consumer)


def spawn(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}", "projector"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def build(
    core: ServiceCore, module: ModuleType, env: dict[str, str], log: Path, total: int, *, profile: Path | None = None
) -> dict[str, float]:
    """Seconds from the projector process's spawn until each of its read models (and reactions) has applied every
    stored event, and ("(started)") until it logged service.started; ``profile``: the process under py-spy (a rebuild
    of the read models, requested first)."""
    if profile is not None:
        for name in module.READ_MODELS:
            await request_rebuild(core.storage.pool, core.storage.store.schema, name)
    begun = time.perf_counter()
    process = spawn(module.SERVICE, env, log)
    spy = None
    try:
        await started([log], [process])
        done: dict[str, float] = {"(started)": time.perf_counter() - begun}
        if profile is not None:
            spy = subprocess.Popen(
                [
                    *(str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(process.pid)),
                    *("--format", "raw", "--rate", "100", "--nonblocking", "-o", str(profile)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        names = (*module.READ_MODELS, *module.REACTIONS)

        async def everything() -> bool:
            for name in names:
                if name not in done and await _built(core, name, total):
                    done[name] = time.perf_counter() - begun
            return all(name in done for name in names)

        await wait_for(everything, 3600, f"{module.SERVICE} read models built", interval=0.1)
        return done
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop([process])


async def _built(core: ServiceCore, projection: str, total: int) -> bool:
    """The read model's active generation (its newest, after a requested rebuild) has applied the ``total`` events
    filled (the store grows meanwhile by the alerts the process's scanner raises: another topic's)."""
    async with core.storage.pool.acquire() as conn:
        building = await conn.fetchval(
            f"""SELECT count(*) FROM {core.storage.store.schema}.projection_generations
                WHERE projection = $1 AND state = 'building'""",
            projection,
        )
    if building:
        return False
    try:
        async with core.storage.read_models.connection(projection) as conn:
            applied = await conn.fetchval("SELECT coalesce(sum(version), 0) FROM projection_progress")
    except LookupError:  # no generation yet: the process has not made it
        return False
    return bool(applied >= total)


async def measure(env: Env, module: ModuleType, n: int, workdir: Path, profile: bool) -> dict[str, Any]:
    """One service: fill, publish, the raw read and the build; the figures."""
    settings = env.settings()
    core = await importlib.import_module(f"services.{module.SERVICE}.main").build(
        settings, **getattr(module, "build_options", dict)()
    )
    try:
        await core.ensure_topics()
        templates = await module.templates(core)
        total = await fill(core, settings, templates, n)
        await publish(core, total)
        topic = settings.events_topic(module.SERVICE)
        raw = total / await raw_read(settings, topic, total)
        penv = process_env(settings)
        seconds = await build(core, module, penv, workdir / f"{module.SERVICE}-fresh.log", total)
        built = total / max(seconds[m] for m in module.READ_MODELS)
        out: dict[str, Any] = {"service": module.SERVICE, "events": total, "raw": raw, "built": built}
        out["reactions"] = {r: total / seconds[r] for r in module.REACTIONS}
        out["per_model"] = {m: total / seconds[m] for m in module.READ_MODELS}
        out["startup_s"] = seconds["(started)"]
        out["after_start"] = total / max(max(seconds[m] for m in module.READ_MODELS) - seconds["(started)"], 1e-3)
        print(f"  {module.SERVICE}: {total:,} events, build {built:,.0f}/s, raw read {raw:,.0f}/s", flush=True)
        if profile:
            path = RESULTS / f"readmodels-profile-{module.SERVICE}.txt"
            again = await build(core, module, penv, workdir / f"{module.SERVICE}-profiled.log", total, profile=path)
            notes = summarise(path) if path.exists() else ["py-spy wrote no profile"]
            what = f"rebuilding its read models (bench/results/{path.name}, collapsed stacks)"
            notes[0] = notes[0].replace("rebuilding the board alone; bench/results/projector.profile.txt", what)
            rate = total / max(again[m] for m in module.READ_MODELS)
            out["profile"] = [*notes, f"(the profiled rebuild ran at {rate:,.0f} events/s under py-spy)"]
        return out
    finally:
        await core.close()
        await cleanup(settings)


def modules() -> list[ModuleType]:
    """The services' modules; ``BENCH_READMODELS_SERVICES`` (comma-separated) picks some."""
    picked = os.environ.get("BENCH_READMODELS_SERVICES", "")
    out = []
    for service in [s for s in picked.split(",") if s] or SERVICES:
        try:
            out.append(importlib.import_module(f"bench.readmodels_{service}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.readmodels_{service}":
                raise
    return out


async def run(env: Env) -> Report:
    n = int(os.environ.get("BENCH_READMODELS_EVENTS", 0)) or env.size(1_000_000, 500)  # a smaller N to develop
    workdir = Path(tempfile.mkdtemp(prefix="bench-readmodels-"))
    results = [await measure(env, m, n, workdir, profile=False) for m in modules()]
    if not env.quick and results:
        slowest = min(results, key=lambda r: r["built"])
        module = next(m for m in modules() if slowest["service"] == m.SERVICE)
        profiled = await measure(env, module, n, workdir, profile=True)
        slowest["profile"] = profiled.get("profile", [])
        slowest["again"] = profiled  # its fresh deployment measured a second time (before the profiled rebuild)
    report = Report(
        name="readmodels",
        title=f"Read models: a fresh deployment of each service building them all from about {n:,} events",
        columns=["service", "what", "events", "events/s", "after service.started", "raw read events/s", "ratio to raw"],
    )
    for r in results:
        models = ", ".join(r["per_model"])
        for label, x in (("", r), (", again", r.get("again"))):
            if x is not None:
                row = [x["built"], x["after_start"], x["raw"], x["built"] / x["raw"]]
                report.rows.append([r["service"], f"read models ({models}){label}", r["events"], *row])
        for name, rate in r["reactions"].items():
            report.rows.append([r["service"], f"reaction {name}", r["events"], rate, None, r["raw"], rate / r["raw"]])
        report.at_least(f"{r['service']}: fresh build of every read model, events/s", r["built"], TARGET)
        report.notes += [f"{r['service']} profile: {line}" for line in r.get("profile", [])]
    report.notes += [
        "One projector process per service (every projection of the service runs in it, as deployed); timed from "
        "its spawn (its start included: "
        + ", ".join(f"{r['service']} {r['startup_s']:.1f} s" for r in results)
        + " to service.started) until every read model on the service's own topic has applied every event.",
        "After service.started: the same build timed from the process's start line (it may already have been "
        "consuming: an upper bound). 'again': the slowest service's fresh deployment measured a second time, before "
        "its profiled rebuild; the target reads the first measurement.",
        "Raw read: one aiokafka consumer reading the same topic from the beginning, json.loads per value.",
        "Not measured here (no events on their topics in this run): production's demand model (deals topic), "
        "the alerts model each service runs (alerts topic); reactions to other services' topics.",
    ]
    report.data = {"results": results, "target": TARGET}
    return report
