"""Exchange rates as facts (issue 26 item 3): set by an admin, superseded, listed; converted exactly at the rate in
effect on a fact's day (a hand-computed oracle across a rate change); a currency without a rate listed, not
converted, and named."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from services.directory.api import DirectoryAPI, create_app
from services.directory.domain.rate import SetRate, decide_rate, rate_decider
from services.directory.events import RateSet
from services.directory.handlers import Directory
from services.directory.replica import MemoryReplica
from shared.core.decider import RefusedError
from shared.core.money import Money
from shared.core.rates import RateTable, convert
from shared.edge.auth import ROLES, TokenVerifier, issue_token
from shared.store.memory import InMemoryEventStore
from testkit.services import TEST_KEYS

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
USD = RateTable.of(
    [
        ("USD", date(2026, 1, 1), Decimal("25000")),
        ("USD", date(2026, 3, 1), Decimal("25400.5")),
        ("EUR", date(2026, 2, 15), Decimal("27000")),
    ]
)


def test_each_fact_is_converted_at_the_rate_in_effect_on_its_day_and_the_total_rounded_once() -> None:
    facts = [
        (Money.of("1234.56", "USD"), date(2026, 2, 28)),  # 1234.56 × 25000   = 30,864,000
        (Money.of("100.01", "USD"), date(2026, 3, 1)),  # 100.01 × 25400.5   =  2,540,304.005 (the new rate)
        (Money.of("0.01", "USD"), date(2026, 3, 5)),  # 0.01 × 25400.5       =        254.005
        (Money.of(5_000_000), date(2026, 3, 5)),  # VND as it is              =  5,000,000
    ]
    total = convert(facts, USD).as_json()
    # USD: 33,404,558.010 exactly → 33,404,558; with VND: 38,404,558.010 → 38,404,558
    assert total == {
        "currency": "VND",
        "total": "38404558",
        "by_currency": {
            "USD": {"amount": "1334.58", "vnd": "33404558"},
            "VND": {"amount": "5000000", "vnd": "5000000"},
        },
        "unconverted": [],
    }


def test_a_currency_without_a_rate_on_a_facts_day_is_listed_not_converted_and_named() -> None:
    facts = [
        (Money.of("10.00", "EUR"), date(2026, 2, 1)),  # EUR's first rate takes effect on 15 February
        (Money.of("20.00", "EUR"), date(2026, 2, 20)),
        (Money.of("1.00", "USD"), date(2026, 1, 1)),
        (Money.of("5", "JPY"), date(2026, 1, 1)),  # no JPY rate at all
    ]
    total = convert(facts, USD).as_json()
    assert total["total"] == "25000"  # USD only: EUR is never partly converted
    assert total["unconverted"] == ["EUR", "JPY"]
    assert total["by_currency"]["EUR"] == {"amount": "30.00", "vnd": None}
    assert total["by_currency"]["JPY"] == {"amount": "5", "vnd": None}
    assert USD.rate_on("USD", date(2025, 12, 31)) is None
    assert USD.rate_on("USD", date(2026, 2, 28)) == Decimal("25000")
    assert USD.rate_on("VND", date(1900, 1, 1)) == 1


def test_a_total_is_rounded_half_even_to_the_dong() -> None:
    rates = RateTable.of([("USD", date(2026, 1, 1), Decimal("50"))])
    assert convert([(Money.of("0.01", "USD"), date(2026, 1, 2))], rates).as_json()["total"] == "0"  # 0.5 → 0
    assert convert([(Money.of("0.03", "USD"), date(2026, 1, 2))], rates).as_json()["total"] == "2"  # 1.5 → 2


def test_the_same_rate_again_changes_nothing_and_another_supersedes_it() -> None:
    cmd = SetRate(per_vnd=Decimal("25400.5"), effective_from=date(2026, 3, 1))
    first = decide_rate(rate_decider.initial, cmd, "USD")
    assert first == [RateSet(currency="USD", per_vnd=Decimal("25400.5"), effective_from=date(2026, 3, 1))]
    state = rate_decider.fold(first)
    assert decide_rate(state, cmd, "USD") == []
    fix = SetRate(per_vnd=Decimal("25401"), effective_from=date(2026, 3, 1), reason="typo")
    assert decide_rate(state, fix, "USD")[0].per_vnd == Decimal("25401")
    for currency, rule in (("VND", "base_currency"), ("XAU", "unsupported_currency")):
        with pytest.raises(RefusedError) as refused:
            decide_rate(rate_decider.initial, cmd, currency)
        assert refused.value.rule == rule


def test_the_replica_keeps_the_rates_it_is_fed() -> None:
    replica = MemoryReplica()
    replica.apply(RateSet(currency="USD", per_vnd=Decimal("25000"), effective_from=date(2026, 1, 1)))
    replica.apply(RateSet(currency="USD", per_vnd=Decimal("25100"), effective_from=date(2026, 1, 1)))
    table = asyncio.run(replica.rates())
    assert table.rate_on("USD", date(2026, 6, 1)) == Decimal("25100")


def auth(user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(TEST_KEYS, user_id=user, roles=roles)}


@pytest.fixture
def client() -> Iterator[TestClient]:
    store = InMemoryEventStore()

    async def ready() -> dict[str, str]:
        return {"store": "ok"}

    api = DirectoryAPI(Directory(store, lambda: NOW, ROLES), None, store.personal_data, ready)
    with TestClient(create_app(api, TokenVerifier(TEST_KEYS.public(), issuer="pipelines", audience="pipelines"))) as c:
        yield c


def test_rates_are_set_by_an_admin_and_read_by_the_directorys_readers(client: TestClient) -> None:
    admin = auth("u-admin", "admin")
    body = {"per_vnd": "25400.5", "effective_from": "2026-03-01", "reason": "Vietcombank sell rate"}
    first = client.put("/rates/USD", json=body, headers=admin)
    assert first.status_code == 200 and first.json()["stream_id"] == "directory-rate-USD"
    again = client.put("/rates/USD", json=body, headers=admin)
    assert again.status_code == 200 and again.json()["version"] == 1  # the same rate again: nothing appended
    assert client.put("/rates/USD", json={**body, "effective_from": "2026-01-01", "per_vnd": "25000"}, headers=admin)
    for who in (auth("u-sales", "sales"), auth("u-imp", "importer")):
        assert client.put("/rates/EUR", json=body, headers=who).status_code == 403
    bad = client.put("/rates/USD", json={**body, "per_vnd": "-1"}, headers=admin)
    assert bad.status_code == 422 and "per_vnd" in str(bad.json())
    assert client.put("/rates/usd", json=body, headers=admin).status_code == 422
    assert client.put("/rates/VND", json=body, headers=admin).status_code == 409
    listed = client.get("/rates", headers=auth("u-sales", "sales"))
    assert listed.status_code == 200
    assert listed.json()["rates"] == [
        {"currency": "USD", "effective_from": "2026-01-01", "per_vnd": "25000"},
        {"currency": "USD", "effective_from": "2026-03-01", "per_vnd": "25400.5"},
    ]
    assert client.get("/rates", headers=auth("u-imp", "importer")).status_code == 403
