"""Read models: a fresh deployment of each service building every read model from N events, beside the raw read.

For each service with a module ``bench/readmodels_<service>.py`` (``SERVICE``, ``READ_MODELS``, ``REACTIONS``,
``templates(core)``: the service's real handlers driven for a few template streams; optionally ``build_options()``
and ``settings_options()``, what the service is built and its deployment set with), an isolated deployment of
the service gets about N events (default 1,000,000; ``--quick``: 500, the services of ``QUICK`` only): the
templates' stored rows cloned in bulk into its store, every UUID of a template (in its stream ids and data) replaced
by a fresh one per clone, with one INSERT per 20,000 rows of exactly the columns the store's append writes (as
bench/relay.py ``prefill`` does); the project's relay publishes them to the service's topic (6 partitions). Then:

- raw: one aiokafka consumer reads the whole topic from the beginning and ``json.loads`` each value (the read
  alone, no envelope, no database) — the baseline, in the same run;
- project: one ``python -m services.<service> projector`` process is started on the fresh deployment (no read
  model has a generation yet: it makes them and builds them from the topic's beginning, as a new deployment
  does); timed from its spawn (so the process's start, a few seconds, counts: it starts consuming before it logs
  ``service.started``) until every one of ``READ_MODELS`` has applied every stored event
  (the sum of its progress versions reaches the events filled). Events/s count each event once. A service's reactions
  (``REACTIONS``, those on its own topic) are timed in their own row, in the same process.

Scaling (the services ``BENCH_READMODELS_SCALING`` names; default every one, the directory alone at the quick size):
after the fresh build, the read models are rebuilt on the same deployment by 1 process whose projections each decode
every record (``PIPELINES_PROJECTION_DECODE_WINDOW=0``, the baseline of decision 0034), then by 1, then by 2 projector
processes sharing the topic's partitions through the consumer groups, as replicas scaled out by KEDA do (at the quick size the
fresh build is made by 2 processes instead: their path runs, nothing is compared). Each build also reports every
process kind's CPU (bench/cpu.py), so the notes show whether a projector or PostgreSQL is the limit.

Read models on other services' topics (production's demand model on the deals topic, every service's alerts
model) see no events here: they are measured by the random-split test for correctness only (decision 0030).
Target: >= 10,000 events/s per service (2 cores, shared by the projector, PostgreSQL and Kafka). In the full run
the slowest service is built once more under py-spy (bench/results/readmodels-profile-<service>.txt).
"""

# long because: one benchmark's fill, publish, raw read, builds by 1 and 2 processes and report, each step used once

from __future__ import annotations

import asyncio
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

from bench import cpu
from bench.common import Env, Report, cleanup, wait_for
from bench.projectors import started, summarise
from bench.relay import all_visible
from shared.edge.service import ServiceCore
from shared.messaging.kafka import TopicSpec, admin_client, ensure_topics, stop_consumer
from shared.messaging.projections import generation_schema, request_rebuild
from shared.ops.settings import Settings
from testkit.services import process_env, spawn, stop_processes

SERVICES = ("leads", "production", "directory", "agenda", "deals")  # those with a bench/readmodels_<service>.py run
QUICK = ("leads", "production", "directory", "agenda")  # at the quick size (the CI's run): deals would add ~7 s
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COLUMNS = "stream_id, version, event_type, schema_version, data::text AS data, metadata::text AS metadata, occurred_at"
TARGET = 10_000
SWAP_WITHIN_S = 30.0  # how long after a rebuild has applied every event its swap is waited for


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


async def partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    async with admin_client(settings.kafka_bootstrap_servers, **settings.kafka_options()) as admin:
        (described,) = await admin.describe_topics([topic])
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def raw_read(settings: Settings, topic: str, total: int) -> float:
    """Seconds for one consumer to read the whole topic from the beginning, decoding each value's JSON."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, **settings.kafka_options()
    )
    await consumer.start()
    try:
        parts = await partitions(settings, topic)
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


@dataclass
class Built:
    """One build: seconds from the processes' spawn until each read model (and reaction) had applied every event,
    and ("(started)") until every process had logged service.started; each process kind's CPU seconds meanwhile."""

    seconds: dict[str, float]
    cpu: dict[str, float]  # from service.started on
    metered_s: float  # the wall time the CPU figures span
    load: float  # the machine's load average (1 min) at the end: other processes' share of the cores
    unswapped: list[str]  # a rebuild's read models applied in full but still not swapped in SWAP_WITHIN_S later

    def cores(self) -> dict[str, float]:
        """Each kind's CPU seconds per wall second (1.0: one core busy all the time), the projectors summed too."""
        out = {kind: s / self.metered_s for kind, s in self.cpu.items()}
        out["projectors"] = sum(v for k, v in out.items() if k.startswith("projector "))
        return out

    def rate(self, total: int, names: Sequence[str]) -> float:
        return total / max(self.seconds[m] for m in names)


async def build(
    core: ServiceCore,
    module: ModuleType,
    env: dict[str, str],
    log: Path,
    total: int,
    *,
    processes: int = 1,
    rebuild: bool = False,
    profile: Path | None = None,
) -> Built:
    """``processes`` projector processes of the service (one deployment: they share each projection's partitions
    through its consumer group, as scaled-out replicas do), timed from their spawn until every read model (and
    reaction) has applied every stored event. ``rebuild`` (or ``profile``): a rebuild of the read models is
    requested first (a new generation read from the topic's beginning); ``profile``: the first process under py-spy."""
    rebuilding = rebuild or profile is not None
    if rebuilding:
        for name in module.READ_MODELS:
            await request_rebuild(core.storage.pool, core.storage.store.schema, name)
    logs = [log.with_name(f"{log.stem}-{i + 1}{log.suffix}") if processes > 1 else log for i in range(processes)]
    begun = time.perf_counter()
    procs = [spawn(("-m", f"services.{module.SERVICE}", "projector"), env, path) for path in logs]
    meter = await cpu.kinds(
        {f"projector {i + 1}": p.pid for i, p in enumerate(procs)},
        core.settings.database_url_for(module.SERVICE),
        core.settings.kafka_bootstrap_servers,
    )
    spy = None
    try:
        await started(logs, procs)
        done: dict[str, float] = {"(started)": time.perf_counter() - begun}
        meter.start()  # the processes' imports and start are not in their CPU figures
        if profile is not None:
            spy = subprocess.Popen(
                [
                    *(str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(procs[0].pid)),
                    *("--format", "raw", "--rate", "100", "--nonblocking", "-o", str(profile)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        names = (*module.READ_MODELS, *module.REACTIONS)

        async def everything() -> bool:
            for name in names:
                if name not in done and await (_applied if rebuilding else _built)(core, name, total):
                    done[name] = time.perf_counter() - begun
            return all(name in done for name in names)

        await wait_for(everything, 3600, f"{module.SERVICE} read models built", interval=0.1)
        spent, metered, load = meter.spent(), time.perf_counter() - begun - done["(started)"], os.getloadavg()[0]
        unswapped = await _unswapped(core, module.READ_MODELS) if rebuilding else []
        return Built(done, spent, metered, load, unswapped)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop_processes(procs, wait_s=60)


async def _applied(core: ServiceCore, projection: str, total: int) -> bool:
    """The read model's newest generation (a rebuild's, swapped in or not yet) has applied the ``total`` events."""
    ns = core.storage.store.schema
    async with core.storage.pool.acquire() as conn:
        generation = await conn.fetchval(
            f"""SELECT max(generation) FROM {ns}.projection_generations
                WHERE projection = $1 AND state IN ('building', 'active')""",
            projection,
        )
        if generation is None:
            return False
        try:
            applied = await conn.fetchval(
                f"SELECT coalesce(sum(version), 0) FROM {generation_schema(ns, projection, generation)}.projection_progress"
            )
        except asyncpg.UndefinedTableError:  # not made yet
            return False
    return bool(applied >= total)


async def _unswapped(core: ServiceCore, projections: Sequence[str]) -> list[str]:
    """Which of a rebuild's read models, every event applied, are still not swapped in after SWAP_WITHIN_S (the
    runner swaps a generation in once its group's committed offsets reach the active one's)."""
    deadline = time.monotonic() + SWAP_WITHIN_S
    while True:
        async with core.storage.pool.acquire() as conn:
            building = await conn.fetch(
                f"""SELECT projection FROM {core.storage.store.schema}.projection_generations
                    WHERE projection = ANY($1::text[]) AND state = 'building'""",
                list(projections),
            )
        if not building or time.monotonic() > deadline:
            return sorted(r["projection"] for r in building)
        await asyncio.sleep(0.2)


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


async def scale(
    core: ServiceCore, module: ModuleType, env: dict[str, str], workdir: Path, total: int
) -> dict[str, Any]:
    """Rebuilds of the read models on the same deployment by 1, then 2 projector processes sharing the partitions."""
    topic = core.settings.events_topic(module.SERVICE)
    parts = len(await partitions(core.settings, topic))
    assert parts >= 2, f"{topic} has {parts} partition: nothing for a second process to take"
    # the baseline of decision 0034 in the same run: one process whose projections each decode every record
    alone_env = env | {"PIPELINES_PROJECTION_DECODE_WINDOW": "0"}
    log = workdir / f"{module.SERVICE}-rebuild-alone.log"
    b = await build(core, module, alone_env, log, total, rebuild=True)
    alone, alone_cores = b.rate(total, module.READ_MODELS), b.cores() | {"load average": b.load}
    print(f"  {module.SERVICE}: rebuilt by 1 process, each projection decoding alone, at {alone:,.0f}/s", flush=True)
    rates, cores, unswapped = {}, {}, {}
    for k in (1, 2):
        log = workdir / f"{module.SERVICE}-rebuild-{k}.log"
        b = await build(core, module, env, log, total, processes=k, rebuild=True)
        rates[k], cores[k] = b.rate(total, module.READ_MODELS), b.cores() | {"load average": b.load}
        unswapped[k] = b.unswapped
        busy = ", ".join(f"{kind} {v:.2f}" for kind, v in cores[k].items())
        print(f"  {module.SERVICE}: rebuilt by {k} process(es) at {rates[k]:,.0f}/s; cores busy: {busy}", flush=True)
    return {
        "partitions": parts,
        "rates": rates,
        "cores": cores,
        "ratio": rates[2] / rates[1],
        "unswapped": unswapped,
        "alone": alone,
        "alone_cores": alone_cores,
    }


async def measure(
    env: Env, module: ModuleType, n: int, workdir: Path, *, profile: bool = False, scaling: bool = False
) -> dict[str, Any]:
    """One service: fill, publish, the raw read and the build (``scaling``: then rebuilds by 1 and 2 processes; at
    the quick size instead the fresh build by 2 processes, so their path runs without a process start more)."""
    settings = env.settings(**getattr(module, "settings_options", dict)())
    core = await importlib.import_module(f"services.{module.SERVICE}.main").build(
        settings, **getattr(module, "build_options", dict)()
    )
    try:
        await core.ensure_topics()
        # the alerts topic, which a deployment's alerting services make (a projector on a missing topic waits for it)
        alerts = TopicSpec(settings.alerts_topic(), settings.kafka_partitions, settings.kafka_replication_factor)
        await ensure_topics(settings.kafka_bootstrap_servers, [alerts], **settings.kafka_options())
        templates = await module.templates(core)
        total = await fill(core, settings, templates, n)
        await publish(core, total)
        raw = total / await raw_read(settings, settings.events_topic(module.SERVICE), total)
        penv = process_env(settings)
        processes = 2 if scaling and env.quick else 1
        fresh = await build(core, module, penv, workdir / f"{module.SERVICE}-fresh.log", total, processes=processes)
        seconds, built = fresh.seconds, fresh.rate(total, module.READ_MODELS)
        out: dict[str, Any] = {"service": module.SERVICE, "events": total, "raw": raw, "built": built}
        out["processes"] = processes
        out["reactions"] = {r: total / seconds[r] for r in module.REACTIONS}
        out["per_model"] = {m: total / seconds[m] for m in module.READ_MODELS}
        out["startup_s"] = seconds["(started)"]
        out["after_start"] = total / max(max(seconds[m] for m in module.READ_MODELS) - seconds["(started)"], 1e-3)
        out["cores"] = fresh.cores() | {"load average": fresh.load}
        print(f"  {module.SERVICE}: {total:,} events, build {built:,.0f}/s, raw read {raw:,.0f}/s", flush=True)
        if scaling and not env.quick:
            out["scaling"] = await scale(core, module, penv, workdir, total)
        if profile:
            env.out.mkdir(parents=True, exist_ok=True)
            path = env.out / f"readmodels-profile-{module.SERVICE}.txt"
            log = workdir / f"{module.SERVICE}-profiled.log"
            again = await build(core, module, penv, log, total, profile=path)
            notes = summarise(path) if path.exists() else ["py-spy wrote no profile"]
            what = f"rebuilding its read models (bench/results/{path.name}, collapsed stacks)"
            notes[0] = notes[0].replace("rebuilding the board alone; bench/results/projector.profile.txt", what)
            rate = again.rate(total, module.READ_MODELS)
            out["profile"] = [*notes, f"(the profiled rebuild ran at {rate:,.0f} events/s under py-spy)"]
        return out
    finally:
        await core.close()
        await cleanup(settings)


def modules(quick: bool = False) -> list[ModuleType]:
    """The services' modules (``quick``: those of ``QUICK``); ``BENCH_READMODELS_SERVICES`` (comma-separated) picks
    some."""
    picked = os.environ.get("BENCH_READMODELS_SERVICES", "")
    out = []
    for service in [s for s in picked.split(",") if s] or (QUICK if quick else SERVICES):
        try:
            out.append(importlib.import_module(f"bench.readmodels_{service}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.readmodels_{service}":
                raise
    return out


def scaled(env: Env) -> set[str]:
    """The services whose rebuild is measured with 1 and 2 processes: ``BENCH_READMODELS_SCALING`` (comma-separated,
    ``none`` for none), else every one in a full run and the directory (four read models) at the quick size."""
    picked = os.environ.get("BENCH_READMODELS_SCALING", "")
    if picked:
        return {s for s in picked.split(",") if s and s != "none"}
    return {"directory"} if env.quick else set(SERVICES)


def busy(cores: dict[str, float]) -> str:
    return ", ".join(f"{kind} {v:.2f}" for kind, v in cores.items() if kind != cpu.LOAD)


async def run(env: Env) -> Report:
    n = int(os.environ.get("BENCH_READMODELS_EVENTS", 0)) or env.size(1_000_000, 500)  # a smaller N to develop
    workdir = Path(tempfile.mkdtemp(prefix="bench-readmodels-"))
    wanted = scaled(env)
    results = [await measure(env, m, n, workdir, scaling=m.SERVICE in wanted) for m in modules(env.quick)]
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
                by = f", {x['processes']} processes" if x["processes"] > 1 else ""
                report.rows.append([r["service"], f"read models ({models}){by}{label}", r["events"], *row])
        for name, rate in r["reactions"].items():
            report.rows.append([r["service"], f"reaction {name}", r["events"], rate, None, r["raw"], rate / r["raw"]])
        if sc := r.get("scaling"):
            what = "read models rebuilt by 1 projector process, each projection decoding alone (window 0)"
            report.rows.append([r["service"], what, r["events"], sc["alone"], None, r["raw"], sc["alone"] / r["raw"]])
            for k, rate in sc["rates"].items():
                what = f"read models rebuilt by {k} projector process{'es' if k > 1 else ''}"
                if k > 1:
                    what += f" ({sc['ratio']:.2f}× of 1)"
                report.rows.append([r["service"], what, r["events"], rate, None, r["raw"], rate / r["raw"]])
        report.at_least(f"{r['service']}: fresh build of every read model, events/s", r["built"], TARGET)
        report.notes.append(
            f"{r['service']}: cores busy during the fresh build (after service.started): {busy(r['cores'])}"
        )
        if sc := r.get("scaling"):
            report.notes.append(
                f"{r['service']}: rebuilt by 1 then 2 projector processes ({sc['partitions']} partitions): "
                f"{sc['rates'][1]:,.0f} → {sc['rates'][2]:,.0f} events/s, {sc['ratio']:.2f}×; cores busy with 1: "
                f"{busy(sc['cores'][1])}; with 2: {busy(sc['cores'][2])}"
            )
            report.notes.append(
                f"{r['service']}: rebuilt by 1 process, sharing the decoded records (decision 0034) "
                f"{sc['rates'][1]:,.0f} events/s, each projection decoding alone {sc['alone']:,.0f} "
                f"({sc['rates'][1] / sc['alone']:.2f}×); cores busy alone: {busy(sc['alone_cores'])}"
            )
            for k, names in sc["unswapped"].items():
                if names:
                    report.notes.append(
                        f"{r['service']}: rebuilt by {k} process(es), {', '.join(names)} applied every event but was "
                        f"not swapped in within {SWAP_WITHIN_S:g} s (the runner swaps on the group's committed "
                        "offsets; a rebalance between processes can leave them behind the events applied)"
                    )
        report.notes += [f"{r['service']} profile: {line}" for line in r.get("profile", [])]
    report.notes += [
        "One projector process per service (every projection of the service runs in it, as deployed); timed from "
        "its spawn (its start included: "
        + ", ".join(f"{r['service']} {r['startup_s']:.1f} s" for r in results)
        + " to service.started) until every read model on the service's own topic has applied every event.",
        "After service.started: the same build timed from the process's start line (it may already have been "
        "consuming: an upper bound). 'again': the slowest service's fresh deployment measured a second time, before "
        "its profiled rebuild; the target reads the first measurement.",
        "Rebuilt by k processes: on the same deployment after its fresh build, a rebuild of every read model is "
        "requested (a new generation read from the topic's beginning) and k projector processes are started, the "
        "service's own entrypoint, sharing the topic's partitions through each projection's consumer group (as "
        "replicas scaled out by KEDA do); timed from their spawn, 1 process then 2, after 1 process with "
        "PIPELINES_PROJECTION_DECODE_WINDOW=0, whose projections each decode every record (the baseline of decision "
        "0034; at the quick size: the fresh "
        "build by 2, compared with nothing). Cores busy: each process kind's CPU seconds (bench/cpu.py, /proc) per "
        "wall second from service.started until built, 2.0 being the whole machine: a projector near 1.0 is bound "
        "by its own CPU; all kinds together near 2.0, by the machine's; a sum well under 2.0 at a load average "
        "above 2, by other processes sharing the machine.",
        "Raw read: one aiokafka consumer reading the same topic from the beginning, json.loads per value.",
        "Not measured here (no events on their topics in this run): production's demand model (deals topic), "
        "the alerts model each service runs (alerts topic); reactions to other services' topics.",
    ]
    report.data = {"results": results, "target": TARGET, "scaled": sorted(wanted)}
    return report
