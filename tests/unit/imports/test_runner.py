"""The import core end to end against the deals service's real ``POST /imports/batches`` (its app on the in-memory
store, reached over ASGI): a generic mapping's sample file lands back-dated, its bad rows reported by row, column
and reason and never sent; a second run appends nothing; a dry run writes nothing; a run stopped after a batch and
started again resumes after it, nothing lost or written twice (issue 26, decision 0021).

Oracle for tests/unit/imports/samples/generic-deals.csv (worked out by hand from the file and its mapping):
row 2 D-1 created: opened 2025-03-01 09:00 +07 at 90,000,000 VND, moved to quote_sent 2025-03-09 10:00 +07;
row 3 D-2 created: opened 2025-04-15 14:30 +07 at 12,500.50 USD, no move ("Mới" is the first stage);
row 4 D-3 bad: its stage changed (01/05) before it was created (02/05);
row 5 D-4 bad: a formula, an impossible date (31/02), a malformed number, an unknown stage, an unknown owner;
row 6 D-5 created: opened 2025-06-03 08:00 +07, moved to negotiation 2025-06-20 16:45 +07.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.deals.api import DealsAPI, create_app
from services.deals.handlers import Deals
from services.directory.replica import MemoryReplica
from shared.core.ids import import_id
from shared.edge.auth import TokenVerifier, issue_token
from shared.imports import runner
from shared.imports.mapping import load
from shared.imports.runner import Options, Run, RunError
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

SAMPLES = Path(__file__).parent / "samples"
MAPPING = load(SAMPLES / "generic-deals.toml")
DEALS = SAMPLES / "generic-deals.csv"
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TOKEN = issue_token(TEST_KEYS, user_id="u-import", roles=["importer"])


class AppSender:
    """Batches to the deals app in memory, as ``HttpSender`` sends them; ``fail_after``: a crash after that many
    answered batches (what a kill -9 leaves: the next batch never sent)."""

    def __init__(self, client: httpx.AsyncClient, fail_after: int | None = None) -> None:
        self.client, self.fail_after, self.sent = client, fail_after, []

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        assert service == "deals"
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise RunError("killed")
        self.sent.append(batch)
        answer = await self.client.post("/imports/batches", json=batch, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
async def deals() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryEventStore]]:
    store = InMemoryEventStore()
    replica = MemoryReplica().seed(("u-lan", "north"), ("u-tuan", "south"))
    handler = Deals(store, lambda: NOW)

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = DealsAPI(handler, store, None, store.personal_data, "Asia/Ho_Chi_Minh", ready, replica)
    app = create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))
    await handler.ensure_default_pipeline()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://deals") as client:
        yield client, store


def options(tmp_path: Path, **kw: Any) -> Options:
    return Options(
        "sheet",
        report=tmp_path / "report.csv",
        checkpoint=tmp_path / "checkpoint.json",
        now=lambda: NOW,
        **kw,
    )


async def streams(store: InMemoryEventStore) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for e in await store.read_streams("deal-"):
        out.setdefault(e.stream_id, []).append(e)
    return out


def report(path: Path) -> list[tuple[int, str, str]]:
    with path.open(encoding="utf-8") as f:
        return [(int(r["row"]), r["column"], r["reason"]) for r in csv.DictReader(f)]


async def test_a_sample_file_lands_back_dated_and_its_bad_rows_are_reported(deals, tmp_path: Path) -> None:
    client, store = deals
    sender = AppSender(client)
    counts = await Run(MAPPING, sender, options(tmp_path)).run([DEALS])
    assert (counts.rows, counts.created, counts.exists, counts.refused, counts.bad) == (5, 3, 0, 0, 2)
    assert "HYPERLINK" not in json.dumps(sender.sent)  # a bad row is never sent
    found = await streams(store)
    d1, d2, d5 = (f"deal-{import_id('sheet', 'deal', k)}" for k in ("D-1", "D-2", "D-5"))
    assert set(found) == {d1, d2, d5}
    kinds = {s: [(e.event_type.rsplit(".", 1)[1], e.occurred_at) for e in found[s]] for s in found}
    assert kinds[d1] == [
        ("DealOpened", datetime(2025, 3, 1, 2, 0, tzinfo=UTC)),
        ("StageChanged", datetime(2025, 3, 9, 3, 0, tzinfo=UTC)),
    ]
    assert kinds[d2] == [("DealOpened", datetime(2025, 4, 15, 7, 30, tzinfo=UTC))]
    assert [k for k, _ in kinds[d5]] == ["DealOpened", "StageChanged"]
    assert found[d1][0].data["value"] == {"amount": "90000000", "currency": "VND"}
    assert found[d2][0].data["value"] == {"amount": "12500.50", "currency": "USD"}
    assert found[d5][1].data["to_stage"]["stage_id"] == "negotiation"
    bad = report(tmp_path / "report.csv")
    assert [(r, c) for r, c, _ in bad] == [
        (4, "Đổi giai đoạn"),
        (5, "Tên cơ hội"),
        (5, "Ngày tạo"),
        (5, "Giá trị"),
        (5, "Giai đoạn"),
        (5, "Phụ trách"),
    ]
    reasons = {c: r for _, c, r in bad}
    assert reasons["Tên cơ hội"].startswith("formula injection")
    assert "31/02/2025" in reasons["Ngày tạo"] and "not a number" in reasons["Giá trị"]
    assert "unknown value 'Đang chờ'" in reasons["Giai đoạn"] and "unknown owner 'Bob'" in reasons["Phụ trách"]

    again = await Run(MAPPING, AppSender(client), options(tmp_path / "second")).run([DEALS])
    assert (again.created, again.exists, again.bad) == (0, 3, 2)
    assert {s: len(e) for s, e in (await streams(store)).items()} == {s: len(e) for s, e in found.items()}


async def test_a_dry_run_writes_nothing_and_reports_every_bad_row(deals, tmp_path: Path) -> None:
    client, store = deals
    sender = AppSender(client)
    counts = await Run(MAPPING, sender, options(tmp_path, dry_run=True)).run([DEALS])
    assert (counts.created, counts.bad) == (3, 2)
    assert all(b["dry_run"] for b in sender.sent)
    assert await store.read_streams("deal-") == []
    assert {r for r, _, _ in report(tmp_path / "report.csv")} == {4, 5}
    assert not (tmp_path / "checkpoint.json").exists()


async def test_a_refusal_by_the_service_is_reported_against_its_column(deals, tmp_path: Path) -> None:
    client, store = deals
    sheet = tmp_path / "won.csv"
    sheet.write_text(
        "Mã;Tên cơ hội;Khách hàng;Ngày tạo;Giai đoạn;Đổi giai đoạn;Phụ trách\n"
        "W-1;A;B;01/03/2025;Báo giá;02/03/2025;Lan\n",
        encoding="utf-8",
    )
    mapping = load(SAMPLES / "generic-deals.toml")
    for spec in mapping.files:
        for col in spec.columns:
            if col.field == "stage":
                col.options["map"]["báo giá"] = "nowhere"
    counts = await Run(mapping, AppSender(client), options(tmp_path)).run([sheet])
    assert (counts.created, counts.refused) == (0, 1)
    ((row, column, reason),) = report(tmp_path / "report.csv")
    assert (row, column) == (2, "Giai đoạn") and reason.startswith("facts[1]: unknown_stage")
    assert await store.read_streams("deal-") == []


async def test_a_run_stopped_between_batches_resumes_after_the_last_answered_row(
    deals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store = deals
    monkeypatch.setattr(runner, "MAX_BATCH_ROWS", 2)
    sheet = tmp_path / "many.csv"
    lines = ["Mã;Tên cơ hội;Khách hàng;Ngày tạo;Phụ trách"]
    lines += [f"K-{i};Deal {i};Customer {i};0{1 + i % 9}/03/2025 09:00;Lan" for i in range(7)]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RunError, match="killed"):
        await Run(MAPPING, AppSender(client, fail_after=2), options(tmp_path)).run([sheet])
    assert len(await streams(store)) == 4  # two batches of two answered, then the crash
    checkpoint = json.loads((tmp_path / "checkpoint.json").read_text())
    assert list(checkpoint["files"].values()) == [5]  # rows 2..5 answered

    sender = AppSender(client)
    counts = await Run(MAPPING, sender, options(tmp_path)).run([sheet])
    assert (counts.skipped, counts.rows, counts.created, counts.exists) == (4, 3, 3, 0)
    found = await streams(store)
    assert sorted(found) == sorted(f"deal-{import_id('sheet', 'deal', f'K-{i}')}" for i in range(7))
    assert all(len(events) == 1 for events in found.values())
    assert list(json.loads((tmp_path / "checkpoint.json").read_text())["files"].values()) == [-1]
    done = await Run(MAPPING, AppSender(client), options(tmp_path)).run([sheet])
    assert (done.rows, done.created) == (0, 0)  # the file is done: nothing read, nothing sent


ORG_AND_DEAL = {
    "title": "orgs and deals",
    "sources": ["none found: a test mapping"],
    "owners": {"Lan": {"user": "u-lan", "team": "north"}},
    "files": {
        "deals": {
            "match": ["ID", "Company"],
            "columns": {
                "ID": {"field": "id", "required": True},
                "Company": {"field": "company", "required": True},
                "Created": {"field": "created", "type": "datetime", "required": True},
                "Owner": {"field": "owner", "type": "owner"},
            },
            "rows": [
                {
                    "kind": "organisation",
                    "key": "{company}",
                    "facts": [{"command": "register", "at": "created", "body": {"name": "{company}"}}],
                },
                {
                    "kind": "deal",
                    "key": "{id}",
                    "facts": [
                        {
                            "command": "open_deal",
                            "at": "created",
                            "body": {
                                "title": "{company}",
                                "owner_id": "{owner.user}",
                                "organisation_id": {"$import": {"kind": "organisation", "key": "{company}"}},
                            },
                        }
                    ],
                },
            ],
        }
    },
}


class LaggingReplica:
    """The directory creates; the deals refuse a reference to it twice (their replica behind), then take it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], int]] = []

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        self.calls.append((service, headers, len(batch["rows"])))
        results = []
        for n, r in enumerate(batch["rows"]):
            if service == "directory":
                stream = f"directory-organisation-{n}"
                results.append({"row": r["row"], "status": "created", "id": "o", "stream_id": stream, "version": 1})
            elif sum(1 for s, _, _ in self.calls if s == "deals") <= 2:
                error = {"field": "facts[0].body.organisation_id", "reason": "unknown organisation"}
                results.append({"row": r["row"], "status": "refused", "id": "d", "errors": [error]})
            else:
                results.append({"row": r["row"], "status": "created", "id": "d"})
        return {"results": results}


async def test_rows_refused_on_a_reference_the_replica_lacks_yet_are_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.imports.mapping import parse

    monkeypatch.setattr(runner, "REFERENCE_RETRY_SECONDS", 0.0)
    sheet = tmp_path / "d.csv"
    sheet.write_text("ID,Company,Created,Owner\n1,An Phát,2025-03-01T09:00:00+07:00,Lan\n2,Hòa Bình,2025-03-02,Lan\n")
    sender = LaggingReplica()
    counts = await Run(parse(ORG_AND_DEAL), sender, options(tmp_path)).run([sheet])
    assert (counts.created, counts.refused) == (4, 0)
    assert [(s, n) for s, _, n in sender.calls] == [("directory", 2), ("deals", 2), ("deals", 2), ("deals", 2)]
    after = sender.calls[1][1]["X-Directory-After"]
    assert after == "directory-organisation-0@1, directory-organisation-1@1"
