"""Scoring counts who the lead is (issue 23, item 11), through the leads API and its handler on a store that seals
personal data as the real ones do.

The contact travels and is stored sealed, so the lead's state never holds it: a lead with a company, a company
email and the title "Giám đốc" scored fit 10 with the reason "source website_form" only. Now the handler opens
the contact in memory when it scores; the score and its reasons say which rules matched, never the values, and
an erased lead scores without them.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest

from services.leads import domain as d
from services.leads.events import LeadContact
from tests.unit.test_request_bounds import MKT, NOW, Service

BOSS = {"name": "Đỗ Thu Trang", "email": "trang@congty-halong.vn", "company": "Công ty Hạ Long", "title": "Giám đốc"}
SOURCE_ONLY = ["source website_form"]
WHO = ["company given", "business email", "senior title"]


@pytest.fixture
def leads() -> Iterator[Service]:
    s = Service("leads")
    with s.http:
        yield s


def capture(leads: Service, contact: dict[str, str]) -> str:
    r = leads.http.post("/leads", json={"source": "website_form", "contact": contact}, headers=MKT)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def scored(leads: Service, lead_id: str) -> dict[str, Any]:
    """The lead's LeadScored event as its history shows it (fit, total, reasons)."""
    r = leads.http.post(f"/leads/{lead_id}/score", json={}, headers=MKT)
    assert r.status_code == 200, r.text
    items = leads.http.get(f"/leads/{lead_id}/history", headers=MKT).json()["items"]
    return dict(next(i["data"] for i in reversed(items) if i["type"].endswith(".LeadScored")))


def test_a_director_with_a_company_email_scores_on_who_they_are(leads: Service) -> None:
    lead_id = capture(leads, BOSS)
    score = scored(leads, lead_id)
    assert score["fit"] == 10 + 10 + 15 + 10  # company, business email, senior title, website form
    assert sorted(score["top_reasons"]) == sorted([*WHO, *SOURCE_ONLY])
    assert leads.http.get(f"/leads/{lead_id}", headers=MKT).json()["score"] == "45.00"
    # nothing of the contact in clear in the store: not in the score, not in any event or its metadata
    stored = json.dumps([(e.data, e.metadata) for e in leads.events()], ensure_ascii=False)
    for value in (*BOSS.values(), "congty-halong", "Giám"):
        assert value not in stored


def test_a_free_mail_address_gets_no_company_domain_points(leads: Service) -> None:
    score = scored(leads, capture(leads, BOSS | {"email": "Trang.Do@Gmail.com"}))
    assert score["fit"] == 10 + 15 + 10
    assert "business email" not in score["top_reasons"]
    assert "company given" in score["top_reasons"] and "senior title" in score["top_reasons"]


def test_an_updated_contact_is_scored_as_it_is_now(leads: Service) -> None:
    lead_id = capture(leads, {"name": "Minh", "email": "minh@gmail.com"})
    assert scored(leads, lead_id)["top_reasons"] == SOURCE_ONLY
    r = leads.http.post(
        f"/leads/{lead_id}/update-contact", json={"contact": BOSS | {"name": "Minh"}, "reason": "moved"}, headers=MKT
    )
    assert r.status_code == 200, r.text
    assert scored(leads, lead_id)["fit"] == 45


def test_an_erased_lead_scores_without_personal_fields(leads: Service) -> None:
    lead_id = capture(leads, BOSS)
    erased = leads.http.post(f"/leads/{lead_id}/erase", json={"reason": "data subject request"}, headers=MKT)
    assert erased.status_code == 200, erased.text
    score = scored(leads, lead_id)
    assert (score["fit"], score["top_reasons"]) == (10, SOURCE_ONLY)


NFD = unicodedata.normalize("NFD", "Giám đốc")


@pytest.mark.parametrize(
    ("title", "senior"),
    [
        ("Giám đốc", True),
        (NFD, True),  # typed on a keyboard that composes Vietnamese as base letters and combining marks
        ("GIÁM ĐỐC KINH DOANH", True),
        ("Phó giám đốc", True),
        ("Director of Sales", True),
        ("CEO", True),
        ("ceo & founder", True),
        ("Trưởng phòng Marketing", True),
        ("TRƯỞNG PHÒNG", True),
        ("Chủ cửa hàng", True),
        ("Sales Manager", True),
        ("Co-owner", True),
        ("Nhân viên kinh doanh", False),
        ("Kế toán", False),
        ("Chuyên viên", False),
        ("Giam doc", False),  # without its marks it is other words: the rules name "giám đốc"
        ("Kế toán trưởng", False),
        ("Chủng loại", False),  # nor "chủ" inside another syllable
        ("  ", False),
    ],
)
def test_senior_titles_match_as_the_rules_name_them(title: str, senior: bool) -> None:
    lead = d.Lead(source="manual", status=d.Status.NEW)
    _, _, reasons = d.score(lead, NOW, contact=LeadContact(phone="+84905123456", title=title))
    assert ("senior title" in reasons) is senior
