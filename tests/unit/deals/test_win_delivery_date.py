"""A won deal's requested delivery date becomes its production order's due date, and production's
``change-due-date`` refuses a date in the past: winning refuses one too (issue 23, item 5). One rule for both: the
date may not precede the command's occurred time, as a date in the business time zone, so a back-dated or imported
win (``X-Occurred-At``) is judged at the time it happened, not by the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from services.deals import domain as d
from services.deals.api import DealsAPI, create_app
from services.deals.events import DealWon
from services.deals.handlers import Deals
from shared.edge.problems import status_of
from shared.store.memory import InMemoryEventStore
from testkit.slices import Slice
from tests.unit.deals.test_domain import OPENED_EVENT, WITH_LINE, deals_at
from tests.unit.deals.test_rules import DEAL, NOW, PIPELINE
from tests.unit.test_request_bounds import DEAL as DEAL_BODY
from tests.unit.test_request_bounds import LAN, ready, verifier

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_requested_delivery_date_before_the_win_is_refused_409() -> None:
    yesterday = NOW.date() - timedelta(days=1)
    refused = (
        deals_at(NOW)
        .given(OPENED_EVENT, WITH_LINE)
        .when(d.WinDeal(requested_delivery_date=yesterday))
        .refused("delivery_date_past")
    )
    assert str(yesterday) in refused.message
    assert status_of(refused) == 409


def test_the_day_of_the_win_and_later_are_accepted() -> None:
    for day in (NOW.date(), NOW.date() + timedelta(days=30)):
        (won,) = deals_at(NOW).given(OPENED_EVENT, WITH_LINE).when(d.WinDeal(requested_delivery_date=day)).then_events()
        assert isinstance(won, DealWon)
        assert won.requested_delivery_date == day


def test_the_day_is_the_business_time_zones_as_production_judges_a_due_date() -> None:
    # 20:00 UTC on 24 November is 03:00 on the 25th in Ho Chi Minh City: the 24th is past there
    late_evening = datetime(2026, 11, 24, 20, 0, tzinfo=NOW.tzinfo)
    in_vn = Slice(d.deal_decider, lambda deal, c: d.decide(deal, c, PIPELINE, late_evening, DEAL, tz=VN))
    in_vn.given(OPENED_EVENT, WITH_LINE).when(d.WinDeal(requested_delivery_date=late_evening.date())).refused(
        "delivery_date_past"
    )
    (won,) = (
        in_vn.given(OPENED_EVENT, WITH_LINE)
        .when(d.WinDeal(requested_delivery_date=late_evening.astimezone(VN).date()))
        .then_events()
    )
    assert isinstance(won, DealWon)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def http(clock: Clock) -> Iterator[TestClient]:
    """The deals API on a clock the test moves, judging dates in Ho Chi Minh City."""
    store = InMemoryEventStore()
    deals = Deals(store, clock, tz=VN)
    app = create_app(DealsAPI(deals, store, None, store.personal_data, "Asia/Ho_Chi_Minh", ready), verifier())
    with TestClient(app) as client:
        client.portal.call(deals.ensure_default_pipeline)
        yield client


def test_a_back_dated_win_is_judged_at_its_occurred_time_not_the_wall_clock(http: TestClient, clock: Clock) -> None:
    r = http.post("/deals", json=DEAL_BODY, headers=LAN)  # opened at NOW
    assert r.status_code == 201, r.text
    deal = r.json()["id"]
    clock.now = NOW + timedelta(days=6)  # the win is entered six days later (within a salesperson's back-dating limit)
    happened = {"X-Occurred-At": (NOW + timedelta(days=1)).isoformat()}
    three_days_after = str(NOW.date() + timedelta(days=3))  # past by the wall clock, ahead when it happened
    r = http.post(f"/deals/{deal}/win", json={"requested_delivery_date": three_days_after}, headers=LAN)
    assert (r.status_code, r.json()["rule"]) == (409, "delivery_date_past"), r.text
    r = http.post(f"/deals/{deal}/win", json={"requested_delivery_date": three_days_after}, headers=LAN | happened)
    assert r.status_code == 200, r.text
