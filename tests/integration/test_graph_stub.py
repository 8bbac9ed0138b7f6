"""The demo's Graph API stub, run as the process the demo starts, read by the leads service's own Graph client through
``PIPELINES_FACEBOOK_GRAPH_URL``: a Facebook Lead Ads lead captured end to end without Facebook."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from services.leads import sources
from services.leads.events import Source
from shared.ops.settings import Settings
from shared.ops.stack import free_port

TOKEN = "demo-graph-token-0123456789"
LEAD = {
    "created_time": "2026-03-02T08:15:00+0000",
    "campaign_id": "tet-2027",
    "ad_id": "120210000000001",
    "form_id": "120210000000002",
    "field_data": [
        {"name": "full_name", "values": ["Nguyễn Thị Hoa"]},
        {"name": "email", "values": ["hoa@example.vn"]},
        {"name": "phone_number", "values": ["0912345678"]},
        {"name": "bạn cần tư vấn gì?", "values": ["tủ đông 500 lít"]},
    ],
}


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    port = free_port()
    env = os.environ | {"PIPELINES_FACEBOOK_ACCESS_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "tools.graph_stub", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def test_the_leads_graph_client_reads_a_lead_from_the_stub(stub: str) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(f"{stub}/_demo/leads/4200000000001", json=LEAD)).raise_for_status()
    settings = Settings(_env_file=None, facebook_graph_url=stub)
    graph = sources.HttpFacebookGraph(TOKEN, base_url=settings.facebook_graph_url)
    lead = await graph.fetch_lead("4200000000001")
    assert lead["id"] == "4200000000001" and lead["campaign_id"] == "tet-2027"
    cmd = sources.facebook_lead({"leadgen_id": "4200000000001", "page_id": "1"}, lead)
    assert cmd.source == Source.FACEBOOK_LEAD_ADS and cmd.external_id == "4200000000001"
    assert cmd.contact.name == "Nguyễn Thị Hoa" and cmd.contact.phone == "+84912345678"
    assert cmd.attribution is not None and cmd.attribution.campaign_id == "tet-2027"
    assert cmd.captured_at is not None and cmd.captured_at.isoformat() == "2026-03-02T08:15:00+00:00"
    assert cmd.answers == {"bạn cần tư vấn gì?": "tủ đông 500 lít"}


async def test_the_stub_answers_as_graph_does_for_a_wrong_token_and_an_unknown_lead(stub: str) -> None:
    async with httpx.AsyncClient() as http:
        wrong = await http.get(f"{stub}/v21.0/4200000000001", params={"access_token": "nope"})
        bad_id = await http.put(f"{stub}/_demo/leads/not-digits", json=LEAD)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 190
    with pytest.raises(sources.GraphAPIError, match="400"):
        await sources.HttpFacebookGraph("nope", base_url=stub).fetch_lead("4200000000001")
    with pytest.raises(sources.GraphAPIError, match="400"):
        await sources.HttpFacebookGraph(TOKEN, base_url=stub).fetch_lead("4299999999999")
    assert bad_id.status_code == 422


def test_the_graph_url_setting_is_bounded() -> None:
    with pytest.raises(ValueError, match="facebook_graph_url"):
        Settings(_env_file=None, facebook_graph_url="file:///etc/passwd")
