"""Import (issue 26 "Targets"): rows/s through the command path beside a raw COPY of the same rows, and the importer's
memory over a million rows.

A row is one deal opened (its contact's name, phone and email sealed under the contact's own key) plus one stage
move, each at its own back-dated time: a generated CSV read by ``pipelines import``'s core (shared/imports: the
reader, a mapping file, the batches, the checkpoint) and sent to the deals service's ``POST /imports/batches`` served
by its API process, with its relay process publishing to Kafka meanwhile. Each round imports a fresh file (its own
source, so its own ids). Directory references are not checked (no directory runs here: ``check_references`` off);
everything else is the API's path. The projectors' catch-up is measured separately: a projector process started
after the rounds, timed until the board holds every imported deal.

The baseline reads the same CSV and COPYs the same events (two per row, their JSON as the store keeps it, the
contact sealed with AES-GCM under one key) into a table of the event store's shape: what PostgreSQL takes at most,
without deciding, a key per person, HTTP or the outbox.

Memory: the same core over 100,000 and then 1,000,000 generated rows in a process of its own, each batch answered
at once by a sender that only counts (what the importer itself holds: the reader streams, nothing grows with the
file); peak RSS printed for both sizes.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import Env, Report, cleanup, median
from bench.processes import ServiceProcesses
from shared.imports.mapping import load
from shared.imports.runner import HttpSender, Options, Run
from shared.messaging.projections import generation_schema
from shared.ops.settings import Settings
from testkit.services import bearer

HEADER = ["Deal id", "Title", "Customer", "Owner", "Contact", "Phone", "Email", "Value", "Created", "Moved"]
T0 = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)
MAPPING = """
format = 1
title = "Benchmark deals"
timezone = "Asia/Ho_Chi_Minh"
sources = ["none: the benchmark's own generated file (bench/imports.py), not a product's export"]

[defaults]
datetime = { formats = ["%Y-%m-%d %H:%M"] }

[owners]
"bench" = { user = "u-bench", team = "north" }

[files.deals]
match = ["Deal id", "Title"]

[files.deals.columns]
"Deal id" = { field = "id", required = true }
"Title" = { field = "title", required = true }
"Customer" = { field = "customer", required = true }
"Owner" = { field = "owner", type = "owner", required = true }
"Contact" = { field = "contact_name" }
"Phone" = { field = "phone" }
"Email" = { field = "email" }
"Value" = { field = "value", type = "money", default_currency = "VND" }
"Created" = { field = "created", type = "datetime", required = true }
"Moved" = { field = "moved", type = "datetime", required = true }

[[files.deals.rows]]
kind = "deal"
key = "{id}"
[[files.deals.rows.facts]]
command = "open_deal"
at = "created"
[files.deals.rows.facts.body]
title = "{title}"
customer = "{customer}"
owner_id = "{owner.user}"
team_id = "{owner.team}"
contact_id = "contact-{id}"
value = "{value}"
contact = { name = "{contact_name}", phone = "{phone}", email = "{email}" }
[[files.deals.rows.facts]]
command = "move_stage"
at = "moved"
[files.deals.rows.facts.body]
stage_id = "contacted"
"""


def line(i: int) -> list[str]:
    # every 7 minutes over a year, then again (a million rows must stay in the past: a future one is a bad row)
    created = T0 + timedelta(minutes=7 * (i % 70_000))
    return [
        str(i),
        f"Tủ đông cho cửa hàng {i}",
        f"Cửa hàng số {i}",
        "bench",
        f"Nguyễn Văn {i}",
        f"09{10_000_000 + i % 89_999_999}",
        f"khach{i}@example.vn",
        str(10_000_000 + 1_000 * (i % 5_000)),
        (created + timedelta(hours=7)).strftime("%Y-%m-%d %H:%M"),  # written in Hanoi time, as exports are
        (created + timedelta(days=3, hours=7)).strftime("%Y-%m-%d %H:%M"),
    ]


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(1, rows + 1):
            out.writerow(line(i))
    return path


async def project(api: str, mapping: Path, csv_path: Path, source: str) -> tuple[float, int]:
    """The file through the importer to the deals API: seconds, rows created."""
    token = bearer("u-import", "importer")["Authorization"].removeprefix("Bearer ")
    sender = HttpSender({"deals": api}, token)
    try:
        started = time.perf_counter()
        counts = await Run(load(mapping), sender, Options(source)).run([csv_path])
        return time.perf_counter() - started, counts.created
    finally:
        await sender.close()


async def raw_copy(pool: asyncpg.Pool, table: str, csv_path: Path) -> tuple[float, int]:
    """The same rows by hand: the CSV read, two events a row built as the store keeps them (the contact sealed with
    AES-GCM under one key: no key per person), COPY."""
    started = time.perf_counter()
    records: list[tuple[Any, ...]] = []
    seal = AESGCM(AESGCM.generate_key(bit_length=256))
    schema, _, name = table.partition(".")
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {table}")
        with csv_path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                stream = f"deal-{uuid.uuid5(uuid.NAMESPACE_URL, row[0])}"
                opened = {"title": row[1], "customer": row[2], "owner_id": "u-bench", "value": row[7]}
                contact = json.dumps({"name": row[4], "phone": row[5], "email": row[6]}).encode()
                nonce = os.urandom(12)
                opened["contact"] = base64.b64encode(nonce + seal.encrypt(nonce, contact, None)).decode()
                at = datetime.strptime(row[8], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
                moved = datetime.strptime(row[9], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
                meta = json.dumps({"actor": "u-import"})
                records.append((stream, 1, "pipelines.deals.DealOpened", json.dumps(opened), meta, at))
                records.append((stream, 2, "pipelines.deals.StageChanged", '{"to": "contacted"}', meta, moved))
                if len(records) >= 10_000:
                    await conn.copy_records_to_table(name, schema_name=schema, records=records)
                    records = []
        if records:
            await conn.copy_records_to_table(name, schema_name=schema, records=records)
        rows = await conn.fetchval(f"SELECT count(*) / 2 FROM {table}")
    return time.perf_counter() - started, int(rows)


async def catch_up(settings: Settings, pool: asyncpg.Pool, want: int) -> float:
    """A projector process started now, from nothing: seconds until the board's read model holds ``want`` deals."""
    projector = ServiceProcesses(settings, service="deals", modes=("projector",))
    started = time.perf_counter()
    await projector.start()
    table = f"{generation_schema(settings.schema_name('deals'), 'board', 1)}.board"
    try:
        while time.perf_counter() - started < 600:
            async with pool.acquire() as conn:
                try:
                    if await conn.fetchval(f"SELECT count(*) FROM {table}") >= want:  # our own name
                        return time.perf_counter() - started
                except asyncpg.UndefinedTableError:
                    pass
            await asyncio.sleep(0.25)
        raise TimeoutError(f"the board did not reach {want} deals in 600 s")
    finally:
        projector.stop()


def memory(sizes: tuple[int, ...]) -> dict[int, int]:
    """Peak RSS (KiB) of the importer's core over each size, each in a process of its own."""
    peaks = {}
    for n in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "bench.imports_memory", str(n)], capture_output=True, text=True, check=True
        )
        peaks[n] = int(json.loads(out.stdout.strip().splitlines()[-1])["peak_kib"])
    return peaks


async def run(env: Env) -> Report:
    rows, rounds = env.size(20_000, 400), env.size(3, 1)
    settings = env.settings(check_references=False)
    report = Report(
        "imports",
        f"Import: {rows:,} rows a round (one deal opened, contact sealed, plus one stage move), {rounds} rounds",
        ["path", "rows", "median s", "rows/s (median)", "ratio to raw COPY"],
    )
    processes = ServiceProcesses(settings, service="deals", modes=("api", "relay"))
    raw = f"{settings.schema_name('imports_raw')}.raw_events"
    pool = await asyncpg.create_pool(settings.database_url_for("deals"), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:  # in a schema of this run's prefix: cleanup drops it
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {raw.partition('.')[0]}")
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {raw} (stream_id text, version int, event_type text, data jsonb,
                   metadata jsonb, occurred_at timestamptz, PRIMARY KEY (stream_id, version))"""
            )
        await processes.start()
        ours: list[float] = []
        theirs: list[float] = []
        with TemporaryDirectory(prefix="bench-imports-") as tmp:
            mapping = Path(tmp) / "bench.toml"
            mapping.write_text(MAPPING)
            csv_path = write_csv(Path(tmp) / "deals.csv", rows)
            await project(processes.api_url, mapping, write_csv(Path(tmp) / "warm.csv", 200), "benchwarm")
            for r in range(rounds):
                seconds, created = await project(processes.api_url, mapping, csv_path, f"bench{r}")
                if created != rows:
                    raise AssertionError(f"round {r}: {created} of {rows} rows created")
                ours.append(seconds)
                seconds, copied = await raw_copy(pool, raw, csv_path)
                assert copied == rows
                theirs.append(seconds)
        project_rate, raw_rate = rows / median(ours), rows / median(theirs)
        report.rows.append(["project: importer → POST /imports/batches", rows, median(ours), project_rate, None])
        report.rows.append(["raw: CSV → COPY of the same events", rows, median(theirs), raw_rate, 1.0])
        report.rows[0][4] = project_rate / raw_rate
        caught = await catch_up(settings, pool, rows * rounds + 200)
        report.notes.append(
            f"projector catch-up from nothing: {rows * rounds + 200:,} deals on the board in {caught:.1f} s"
        )
        report.at_least("rows/s through the command path (relay running)", project_rate, 2000)
        peaks = memory(env.size((100_000, 1_000_000), (2_000, 20_000)))
        for n, kib in peaks.items():
            report.notes.append(f"importer peak RSS over {n:,} rows: {kib / 1024:.1f} MiB")
        small, large = peaks.values()
        report.at_most("importer peak RSS, 1,000,000 rows / 100,000 rows", large / small, 1.2)
        report.data = {"rows": rows, "rounds": rounds, "project_s": ours, "raw_s": theirs, "peak_kib": peaks}
        return report
    finally:
        processes.stop()
        await pool.close()
        await cleanup(settings)
