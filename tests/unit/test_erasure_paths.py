"""Every place personal data lives can be erased (issue 21, decision 0015).

- The kernel's rule: an event type with personal fields names the erasure event type of its own service that
  forgets its subject (``erased_by``), so a personal field added later cannot skip erasure: a class without it
  does not import, and one naming no erasure event of its service fails here.
- Contacts typed on deals and orders' delivery addresses: ``POST /deals/{id}/erase-contact`` (the deal's owner,
  their team's manager, an admin) and ``POST /orders/{id}/erase-contact`` (production, an admin) destroy the
  contact's key before recording the erasure; a refused command destroys nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from services.deals.api import DealsAPI
from services.deals.api import create_app as deals_app
from services.deals.handlers import Deals
from services.production.api import ProductionAPI
from services.production.api import create_app as production_app
from services.production.handlers import Production
from shared.core.events import DomainEvent, EventDefinitionError, registry
from shared.edge.auth import TokenVerifier, issue_token
from shared.privacy.pii import InMemoryKeyStore, PersonalData
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS
from tools.contract import EVENT_MODULES  # noqa: F401  (importing it registers every contract's event types)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def auth(user: str, *roles: str, team: str | None = "north") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles, team=team)}


# ---------------------------------------------------------------------------------------------- the kernel's rule
def test_every_event_type_with_personal_fields_has_an_erasure_path() -> None:
    personal = [cls.event_type for cls in registry.types("pipelines.") if cls.personal_fields]
    assert {"pipelines.deals.DealOpened", "pipelines.production.ProductionOrderCreated"} <= set(personal)
    assert registry.erasure_gaps("pipelines.") == []
    erasers = {cls.event_type for cls in registry.types("pipelines.") if cls.erasure}
    assert erasers >= {
        "pipelines.leads.LeadPersonalDataErased",
        "pipelines.deals.DealContactErased",
        "pipelines.production.OrderContactErased",
    }
    for name in erasers:
        assert registry.get(name).personal_fields == (), "an erasure event carries no personal data"


def test_a_personal_field_without_an_erasure_path_is_refused() -> None:
    with pytest.raises(EventDefinitionError, match="need erased_by"):

        class NoteWritten(DomainEvent):
            event_type: ClassVar[str] = "tests.rulecheck.NoteWritten"
            personal_fields: ClassVar[tuple[str, ...]] = ("note",)
            subject_field: ClassVar[str | None] = "person_id"
            person_id: str
            note: str | None

    with pytest.raises(EventDefinitionError, match="needs a subject_field"):

        class Forgotten(DomainEvent):
            event_type: ClassVar[str] = "tests.rulecheck.Forgotten"
            erasure: ClassVar[bool] = True
            person_id: str

    class PersonNoted(DomainEvent):
        event_type: ClassVar[str] = "tests.rulecheck.PersonNoted"
        personal_fields: ClassVar[tuple[str, ...]] = ("note",)
        subject_field: ClassVar[str | None] = "person_id"
        erased_by: ClassVar[str | None] = "pipelines.deals.DealContactErased"  # another service's
        person_id: str
        note: str | None

    class PersonNamed(PersonNoted):
        event_type: ClassVar[str] = "tests.rulecheck.PersonNamed"
        erased_by: ClassVar[str | None] = "tests.rulecheck.PersonNoted"  # not an erasure

    class PersonAged(PersonNoted):
        event_type: ClassVar[str] = "tests.rulecheck.PersonAged"
        erased_by: ClassVar[str | None] = "tests.rulecheck.Nothing"

    assert registry.erasure_gaps("tests.rulecheck.") == [
        "tests.rulecheck.PersonAged: erased_by 'tests.rulecheck.Nothing' is not a registered event type",
        "tests.rulecheck.PersonNamed: tests.rulecheck.PersonNoted is not an erasure event (erasure = True)",
        "tests.rulecheck.PersonNoted: pipelines.deals.DealContactErased is another service's: each service "
        "erases its own",
    ]
    assert registry.erased_subject("pipelines.deals.DealContactErased", {"contact_id": "c-1"}) == "c-1"
    assert registry.erased_subject("tests.rulecheck.PersonNoted", {"person_id": "p"}) is None


# ---------------------------------------------------------------------------------------------- deals
DEAL = {
    "title": "Máy lạnh văn phòng",
    "customer": "Công ty Hòa Bình",
    "owner_id": "u-lan",
    "team_id": "north",
    "contact_id": "c-typed-1",
    "contact": {"name": "Phạm Thu Hà", "email": "ha.pham@hoabinh.vn"},
    "lines": [{"product": "Máy lạnh 2HP", "quantity": "4", "unit_price": {"amount": "15000000", "currency": "VND"}}],
}


class Recording(InMemoryKeyStore):
    """A key store that remembers the order things happened in."""

    def __init__(self, store: InMemoryEventStore | None = None) -> None:
        super().__init__()
        self.store = store
        self.erased_before: list[int] = []  # events in the store when each key was destroyed

    async def erase(self, subject: str, *, reason: str = "") -> bool:
        if self.store is not None:
            self.erased_before.append(len(await self.store.read_all(limit=10_000)))
        return await super().erase(subject, reason=reason)


async def _ready() -> dict[str, str]:
    return {"store": "ok"}


def test_a_contact_typed_on_a_deal_is_erased_by_who_works_the_deal() -> None:
    keys = Recording()
    store = InMemoryEventStore(PersonalData(keys))
    keys.store = store
    deals = Deals(store, lambda: NOW)
    assert deals.keys is keys, "the store's key store unless told otherwise"
    app = deals_app(
        DealsAPI(deals, store, None, store.personal_data, "Asia/Ho_Chi_Minh", _ready),
        TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"),
    )
    with TestClient(app) as http:
        http.portal.call(deals.ensure_default_pipeline)
        lan, binh, auditor = auth("u-lan", "sales"), auth("u-binh", "sales"), auth("u-audit", "auditor", team=None)
        deal_id = http.post("/deals", json=DEAL, headers=lan).json()["id"]
        without = http.post("/deals", json=DEAL | {"contact_id": None, "contact": None}, headers=lan).json()["id"]
        shown = http.get(f"/deals/{deal_id}", params={"include_contact": True}, headers=lan).json()
        assert shown["contact"]["email"] == "ha.pham@hoabinh.vn"

        body = {"reason": "data subject request #118"}
        assert http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=auditor).status_code == 403
        assert http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=binh).status_code == 404
        r = http.post(f"/deals/{without}/erase-contact", json=body, headers=lan)
        assert (r.status_code, r.json()["rule"]) == (409, "no_contact")
        assert keys.erased_before == [], "a refused erasure destroys nothing"

        r = http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=lan | {"If-Match": '"7"'})
        assert r.status_code == 412 and keys.erased_before == [], "a stale If-Match destroys nothing"
        events_before = len(http.portal.call(store.read_all))
        once = lan | {"Idempotency-Key": "erase-118"}
        r = http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=once)
        assert r.status_code == 200, r.text
        assert keys.erased_before == [events_before], "the key goes before the erasure is recorded"
        again = http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=once)
        assert again.status_code == 200 and again.json() == r.json() | {"replayed": True}, "its first answer, again"
        assert http.portal.call(keys.is_erased, "c-typed-1")
        shown = http.get(f"/deals/{deal_id}", params={"include_contact": True}, headers=lan).json()
        assert shown["contact"] is None and shown["contact_erased"] is True
        history = http.get(f"/deals/{deal_id}/history", headers=lan).json()["items"]
        assert history[-1]["type"].endswith("DealContactErased") and history[-1]["data"]["contact_id"] == "c-typed-1"
        assert "Phạm Thu Hà" not in http.get(f"/deals/{deal_id}/history", headers=lan).text
        r = http.post(f"/deals/{deal_id}/erase-contact", json=body, headers=lan)
        assert (r.status_code, r.json()["rule"]) == (409, "contact_erased")
        lines = {"lines": DEAL["lines"]}
        assert http.post(f"/deals/{deal_id}/change-lines", json=lines, headers=lan).status_code == 200
        address = {"delivery_address": {"line1": "12 Lý Thường Kiệt", "city": "Hà Nội"}}
        r = http.post(f"/deals/{deal_id}/win", json=address, headers=lan)
        assert (r.status_code, r.json()["rule"]) == (409, "contact_erased"), "no new personal data for them"
        assert http.post(f"/deals/{deal_id}/win", json={}, headers=lan).status_code == 200, "the deal goes on"


# ---------------------------------------------------------------------------------------------- production
ORDER = {
    "customer": "Siêu thị Bình An",
    "lines": [{"product": "Tủ đông 500L", "quantity": "2"}],
    "due_date": date(2026, 12, 20).isoformat(),
    "contact_id": "c-typed-2",
    "delivery_address": {"line1": "45 Trần Phú", "city": "Nha Trang"},
}


def test_an_orders_delivery_address_is_erased_by_production() -> None:
    keys = Recording()
    store = InMemoryEventStore(PersonalData(keys))
    keys.store = store
    app = production_app(
        ProductionAPI(Production(store, lambda: NOW), None, store.personal_data, "Asia/Ho_Chi_Minh", _ready),
        TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"),
    )
    with TestClient(app) as http:
        prod, manager = auth("u-xuong", "production"), auth("u-mai", "sales_manager")
        order_id = http.post("/orders", json=ORDER, headers=prod).json()["id"]
        plain = http.post("/orders", json=ORDER | {"contact_id": None, "delivery_address": None}, headers=prod)
        assert http.get(f"/orders/{order_id}", headers=prod).json()["delivery_address"]["city"] == "Nha Trang"
        body = {"reason": "data subject request #119"}
        assert http.post(f"/orders/{order_id}/erase-contact", json=body, headers=manager).status_code == 403
        r = http.post(f"/orders/{plain.json()['id']}/erase-contact", json=body, headers=prod)
        assert (r.status_code, r.json()["rule"]) == (409, "no_contact")
        r = http.post(f"/orders/{uuid.uuid4()}/erase-contact", json=body, headers=prod)
        assert r.status_code == 404
        assert keys.erased_before == []
        r = http.post(f"/orders/{order_id}/erase-contact", json=body, headers=prod)
        assert r.status_code == 200, r.text
        assert keys.erased_before == [2], "the key goes before the erasure is recorded (2 orders created)"
        order = http.get(f"/orders/{order_id}", headers=prod).json()
        assert order["delivery_address"] is None and order["contact_erased"] is True
        assert "Trần Phú" not in http.get(f"/orders/{order_id}/history", headers=prod).text
        assert (
            http.post(
                f"/orders/{order_id}/plan",
                json={"planned_start": "2026-11-25", "planned_end": "2026-12-10"},
                headers=prod,
            ).status_code
            == 200
        ), "the order goes on"
