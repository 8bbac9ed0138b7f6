"""What a lead must be, however it is captured (issue 23, item 5), on the in-memory leads API.

- A lead has a source: an empty one was accepted and the funnel showed an empty-named source.
- A lead can be reached: an email or a phone. The webhooks refused a lead without either while a lead typed in
  (``POST /leads``) was accepted with no contact at all; now one rule, on the capture command, for every way in.
- A lead's attribution is bounded so that whatever is accepted converts: the deal a conversion opens takes its
  source and campaign id, and a value over the deal's limit dead-lettered the conversion.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from services.deals.events import deal_id_for_lead
from services.deals.handlers import Deals
from services.leads import sources
from shared.messaging.envelope import CloudEvent
from shared.store.memory import InMemoryEventStore
from tests.unit.test_request_bounds import MKT, NOW, Service, field_errors

PHONE = {"phone": "0905123456"}
NO_WAY_TO_REACH = "a lead needs an email or a phone"


@pytest.fixture
def leads() -> Iterator[Service]:
    s = Service("leads")
    with s.http:
        yield s


def capture(leads: Service, body: dict[str, Any]) -> Any:
    return leads.http.post("/leads", json=body, headers=MKT)


# ---------------------------------------------------------------------------------------------- 5a: a source
def test_a_lead_with_an_empty_source_is_refused_naming_the_field(leads: Service) -> None:
    errors = field_errors(capture(leads, {"source": "", "contact": PHONE}))
    assert errors[("body", "source")]["ctx"] == {"min_length": 1}
    errors = field_errors(capture(leads, {"source": "manual", "contact": PHONE, "attribution": {"source": ""}}))
    assert ("body", "attribution", "source") in errors
    assert not leads.events()
    assert capture(leads, {"source": "m", "contact": PHONE}).status_code == 201


# ---------------------------------------------------------------------------------------------- 5b: a contact
@pytest.mark.parametrize(
    "contact",
    [None, {}, {"name": "Anh Tuấn", "company": "Công ty Sao Mai", "title": "Giám đốc"}, {"phone": ""}],
    ids=["none", "empty", "no email or phone", "empty phone"],
)
def test_a_lead_typed_in_without_an_email_or_a_phone_is_refused(leads: Service, contact: Any) -> None:
    body: dict[str, Any] = {"source": "manual"}
    if contact is not None:
        body["contact"] = contact
    errors = field_errors(capture(leads, body))
    assert ("body", "contact") in errors or ("body", "contact", "phone") in errors, sorted(errors)
    if contact and contact != {"phone": ""}:
        assert errors[("body", "contact")]["msg"].endswith(NO_WAY_TO_REACH)
    assert not leads.events()


@pytest.mark.parametrize("contact", [PHONE, {"email": "tuan@saomai.vn"}, {"name": "Tuấn", **PHONE}])
def test_a_lead_with_an_email_or_a_phone_is_captured(leads: Service, contact: dict[str, str]) -> None:
    assert capture(leads, {"source": "manual", "contact": contact}).status_code == 201


def test_every_source_keeps_the_same_rule(leads: Service) -> None:
    """The website form, Ladipage and Google Ads: the same refusal as a lead typed in, from the same rule."""
    website = json.dumps({"submission_id": "s-1", "name": "Anh Tuấn", "message": "gọi lại"}).encode()
    r = leads.http.post(
        "/webhooks/website", content=website, headers={"X-Pipelines-Signature": _signed(website, "site-secret")}
    )
    assert field_errors(r)[("lead", "contact")]["msg"].endswith(NO_WAY_TO_REACH)
    r = leads.http.post("/webhooks/ladipage", params={"token": "ladi-token"}, json={"id": "l-1", "name": "Anh Tuấn"})
    assert field_errors(r)[("lead", "contact")]["msg"].endswith(NO_WAY_TO_REACH)
    assert not leads.events()


def _signed(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- 5d: attribution
def _attribution_form(leads: Service) -> dict[str, Any]:
    schemas = leads.http.get("/openapi.json").json()["components"]["schemas"]
    return dict(schemas["AttributionInput"])


def test_every_attribution_field_is_bounded(leads: Service) -> None:
    for name, field in _attribution_form(leads)["properties"].items():
        strings = [b for b in field.get("anyOf", [field]) if b.get("type") == "string"]
        assert strings and all("maxLength" in b for b in strings), (name, field)


def test_a_campaign_id_over_its_limit_is_refused_before_it_could_dead_letter_the_conversion(leads: Service) -> None:
    body = {"source": "manual", "contact": PHONE, "attribution": {"source": "manual", "campaign_id": "c" * 2000}}
    assert ("body", "attribution", "campaign_id") in field_errors(capture(leads, body))
    assert not leads.events()


def _longest(field: dict[str, Any]) -> str:
    (string,) = [b for b in field.get("anyOf", [field]) if b.get("type") == "string"]
    limit = string["maxLength"]
    return ("https://x.vn/" + "p" * limit)[:limit] if "url" in field.get("title", "").lower() else "v" * limit


def test_an_attribution_at_every_limit_converts_to_a_deal(leads: Service) -> None:
    """Each field at its longest: captured, converted, and the deal the conversion opens takes them."""
    attribution = {name: _longest(f) for name, f in _attribution_form(leads)["properties"].items()}
    body = {"source": "manual", "contact": {"name": "Tuấn", **PHONE}, "attribution": attribution}
    r = capture(leads, body)
    assert r.status_code == 201, r.text[:500]
    lead = r.json()["id"]
    assert leads.http.post(f"/leads/{lead}/qualify", json={"level": "sql"}, headers=MKT).status_code == 200
    r = leads.http.post(
        f"/leads/{lead}/convert", json={"customer": "Sao Mai", "title": "Tủ mát", "owner_id": "u-lan"}, headers=MKT
    )
    assert r.status_code == 200, r.text[:500]
    (converted,) = [e for e in leads.events() if e.event_type == "pipelines.leads.LeadConverted"]

    store = InMemoryEventStore(leads.store.personal_data)  # the deals service's: one key store
    deals = Deals(store, lambda: NOW)

    async def react() -> None:
        await deals.ensure_default_pipeline()
        envelope = CloudEvent.from_recorded(converted, "leads")
        (data,) = await leads.store.personal_data.open([envelope.data])
        await deals.react(envelope, data)

    leads.http.portal.call(react)
    deal = leads.http.portal.call(deals.deal, deal_id_for_lead(uuid.UUID(lead))).state
    assert (deal.source, deal.campaign_id) == (attribution["source"], attribution["campaign_id"])


def test_the_deal_side_accepts_whatever_a_lead_side_limit_lets_through(leads: Service) -> None:
    """The fields a conversion carries to the deal: the lead's limit is never above the deal's."""
    deals = Service("deals")
    opened = deals.http.get("/openapi.json").json()["components"]["schemas"]["OpenDeal"]["properties"]
    lead_side = _attribution_form(leads)["properties"]
    for field in ("source", "campaign_id"):
        (deal_limit,) = [b["maxLength"] for b in opened[field].get("anyOf", [opened[field]]) if "maxLength" in b]
        (lead_limit,) = [b["maxLength"] for b in lead_side[field].get("anyOf", [lead_side[field]]) if "maxLength" in b]
        assert lead_limit <= deal_limit, field


def test_a_contact_the_deal_would_refuse_is_refused_at_capture(leads: Service) -> None:
    """The conversion carries the contact to the deal too (services.deals.events.Contact: a name of at least one
    character, a phone of at least three): a lead the deal side would refuse dead-lettered its conversion."""
    errors = field_errors(capture(leads, {"source": "manual", "contact": {"name": "", "phone": "12"}}))
    assert {("body", "contact", "name"), ("body", "contact", "phone")} <= set(errors), sorted(errors)
    assert not leads.events()


def test_google_ads_keeps_the_same_rule() -> None:
    column = {"column_id": "FULL_NAME", "string_value": "Anh Tuấn"}
    with pytest.raises(ValidationError) as refused:
        sources.google_ads({"lead_id": "g-1", "google_key": "k", "user_column_data": [column]})
    (error,) = refused.value.errors()
    assert (error["loc"], error["msg"]) == (("contact",), NO_WAY_TO_REACH)
