"""The directory's import job (``POST /imports``, ``GET /imports/{id}``; issue 26, decision 0021) on the in-memory
services: an upload is spooled, checked up front and imported in the background by the same core as the tool; its
progress is the directory's events; a directory stopped mid-job resumes it (nothing lost, nothing twice); an upload
past its limit answers 413 and keeps nothing; a file its source does not know answers 422 with the list; only the
importer (and admin) start and read jobs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.directory.api import DirectoryAPI, create_app
from services.directory.customers import Customers
from services.directory.handlers import Directory
from services.directory.import_jobs import ImportJobs, JobConfig
from shared.core.ids import import_id
from shared.edge.auth import ROLES, TokenVerifier
from testkit.import_world import ADMIN, IMPORTER, NOW, MemorySender, World, auth
from testkit.services import TEST_KEYS

COMPANIES = Path(__file__).parents[2] / "fixtures" / "imports" / "hubspot" / "companies.csv"
# the fixture's seven companies: five good, 3106 with no owner, 3107 created on a 13th month
KEYS = [f"{n}" for n in range(3101, 3106)]


class Stalled:
    """A sender that never answers (a directory stopped mid-job)."""

    async def send(self, service: str, batch: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def jobs_on(world: World, spool: Path, sender: Any, max_bytes: int = 1 << 20) -> ImportJobs:
    config = JobConfig(spool, max_bytes, {}, sender=lambda actor: sender)
    return ImportJobs(world.store, lambda: NOW, config)


def spooled(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir())


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


def client_for(world: World, jobs: ImportJobs) -> httpx.AsyncClient:
    directory = Directory(world.store, lambda: NOW, ROLES)
    pd = world.store.personal_data
    api = DirectoryAPI(directory, None, pd, _ready, Customers(world.store, lambda: NOW, directory), imports=jobs)
    app = create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://directory")


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = await World().start()
    yield w
    await w.close()


QUERY = "/imports?source=hubspot&file_name=companies.csv&owner=u-lan&owner_team=north"


async def organisations(world: World) -> set[str]:
    return {r.stream_id for r in await world.store.read_streams("directory-organisation-")}


async def test_an_upload_is_imported_as_a_job_and_read_back(world: World, tmp_path: Path) -> None:
    jobs = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    async with client_for(world, jobs) as client:
        started = await client.post(QUERY, content=COMPANIES.read_bytes(), headers=IMPORTER)
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        assert started.headers["Location"] == f"/imports/{job}"
        await asyncio.gather(*jobs.tasks.values())
        read = await client.get(f"/imports/{job}", headers=IMPORTER)
    assert read.status_code == 200, read.text
    body = read.json()
    assert (body["state"], body["source"], body["file_name"], body["dry_run"]) == (
        "done",
        "hubspot",
        "companies.csv",
        False,
    )
    assert body["counts"] == {"rows": 7, "created": 5, "exists": 0, "refused": 0, "bad": 2}
    assert [(b["row"], b["column"]) for b in body["bad_rows"]] == [(7, "Company owner"), (8, "Create Date")]
    assert await organisations(world) == {
        f"directory-organisation-{import_id('hubspot', 'organisation', k)}" for k in KEYS
    }
    kinds = [r.event_type.rsplit(".", 1)[1] for r in await world.store.read_stream(f"directory-import-{job}")]
    assert kinds[0] == "ImportStarted" and kinds[-1] == "ImportFinished" and "ImportProgressed" in kinds
    assert spooled(tmp_path) == [f"{job}.report.csv"]  # the upload and checkpoint gone


async def test_a_directory_stopped_mid_job_resumes_it(world: World, tmp_path: Path) -> None:
    stalled = jobs_on(world, tmp_path, Stalled())
    async with client_for(world, stalled) as client:
        started = await client.post(QUERY, content=COMPANIES.read_bytes(), headers=ADMIN)
    assert started.status_code == 202, started.text
    await asyncio.sleep(0)
    await stalled.close()  # the shutdown: the job stops where it is, unfinished
    assert await organisations(world) == set()

    restarted = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    assert await restarted.resume() == 1
    await asyncio.gather(*restarted.tasks.values())
    status = await restarted.status(uuid.UUID(started.json()["id"]))
    assert status is not None and status["state"] == "done"
    assert (status["counts"]["created"], status["counts"]["bad"]) == (5, 2)
    assert len(await organisations(world)) == 5
    assert await restarted.resume() == 0  # done: nothing to resume


async def test_a_job_whose_upload_is_gone_after_a_restart_is_failed_not_left_running(
    world: World, tmp_path: Path
) -> None:
    stalled = jobs_on(world, tmp_path, Stalled())
    async with client_for(world, stalled) as client:
        started = await client.post(QUERY, content=COMPANIES.read_bytes(), headers=IMPORTER)
    await asyncio.sleep(0)
    await stalled.close()
    job = uuid.UUID(started.json()["id"])
    await asyncio.to_thread((tmp_path / f"{job}.upload").unlink)  # a new, empty spool volume
    restarted = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    assert await restarted.resume() == 0
    status = await restarted.status(job)
    assert status is not None and status["state"] == "failed" and "no longer in" in status["reason"]


async def test_an_upload_past_its_limit_answers_413_and_keeps_nothing(world: World, tmp_path: Path) -> None:
    jobs = jobs_on(world, tmp_path, MemorySender(world, IMPORTER), max_bytes=1024)
    async with client_for(world, jobs) as client:
        big = COMPANIES.read_bytes() * 4

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is found while streaming
            for i in range(0, len(big), 256):
                yield big[i : i + 256]

        streamed = await client.post(QUERY, content=chunks(), headers=IMPORTER)
        declared = await client.post(QUERY, content=big, headers=IMPORTER)
    assert (streamed.status_code, declared.status_code) == (413, 413)
    assert spooled(tmp_path) == []
    assert await world.store.read_streams("directory-import-") == []


async def test_a_file_its_source_does_not_know_is_refused_up_front(world: World, tmp_path: Path) -> None:
    jobs = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    async with client_for(world, jobs) as client:
        missing = await client.post(QUERY, content=b"Record ID,Company name\n1,A\n", headers=IMPORTER)
        unknown = await client.post("/imports?source=nosuch", content=COMPANIES.read_bytes(), headers=IMPORTER)
        absent = await client.get(f"/imports/{import_id('x', 'y', 'z')}", headers=IMPORTER)
    assert missing.status_code == 422, missing.text
    assert "missing required columns: Company owner, Create Date" in missing.json()["detail"]
    assert "companies.csv" in missing.json()["detail"]  # the upload's name, not the spool's
    assert unknown.status_code == 422 and "no mapping shipped for 'nosuch'" in unknown.json()["detail"]
    assert absent.status_code == 404
    assert spooled(tmp_path) == []


@pytest.mark.parametrize("roles", [("sales_director",), ("auditor",)])  # every role: test_security_roles
async def test_only_the_importer_and_admin_start_and_read_jobs(world: World, tmp_path: Path, roles: Any) -> None:
    jobs = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    async with client_for(world, jobs) as client:
        headers = auth("u-lan", *roles, team="north")
        post = await client.post(QUERY, content=COMPANIES.read_bytes(), headers=headers)
        get = await client.get(f"/imports/{import_id('x', 'y', 'z')}", headers=headers)
    assert (post.status_code, get.status_code) == (403, 403)
    assert spooled(tmp_path) == []


async def test_a_job_s_batches_carry_its_starter_s_token_kept_until_it_ends(world: World, tmp_path: Path) -> None:
    """No API can sign a token (decision 0022): the job sends its batches with the token it was started with, kept
    owner-only in the spool for a resume, and gone with the upload when the job ends."""
    stalled = jobs_on(world, tmp_path, Stalled())
    async with client_for(world, stalled) as client:
        started = await client.post(QUERY, content=COMPANIES.read_bytes(), headers=ADMIN)
    job = uuid.UUID(started.json()["id"])
    kept = tmp_path / f"{job}.token"
    assert kept.read_text() == ADMIN["Authorization"].removeprefix("Bearer ")
    assert kept.stat().st_mode & 0o777 == 0o600
    assert stalled._token(job) == kept.read_text()
    await stalled.close()
    restarted = jobs_on(world, tmp_path, MemorySender(world, IMPORTER))
    assert await restarted.resume() == 1
    await asyncio.gather(*restarted.tasks.values())
    assert not kept.exists()
