"""The board's languages: every page in a pseudo-locale shows no text that did not go through the catalog, the
Vietnamese catalog is complete, and numbers, money, dates and the time zone are written as each language does."""

from __future__ import annotations

import gettext
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.web import catalogs, domain_words, formats, i18n
from services.web.actions.core import REGISTRY
from services.web.app import COOKIE, create_app
from tests.unit.web.signin_fake import SIGNIN_PORT
from tests.unit.web.test_board_unit import BOARD, SETTINGS, SIGNIN, session

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FIGURE = re.compile(r"^[\s\d.,:;%·—–\-+/()|…₫$×#*]*$")  # a figure, a separator, the required mark
ALERTS: list[dict[str, Any]] = [
    {
        "alert_id": "a-1",
        "service": "deals",
        "kind": "deal_stuck",
        "entity": "d-1",
        "summary": "Tủ đông: 21 days in Quote sent (threshold 10)",
        "details": {"owner_id": "u-lan", "stage_id": "quote_sent", "days": "21", "title": "Tủ đông"},
        "raised_at": "2026-12-01T21:13:24+00:00",
    },
    {
        "alert_id": "a-2",
        "service": "leads",
        "kind": "lead_not_contacted",
        "entity": "l-1",
        "summary": "a zalo lead has waited 95 minutes (target 30)",
        "details": {"owner_id": "", "source": "zalo"},
        "raised_at": "2026-12-01T21:13:24+00:00",
    },
    {
        "alert_id": "a-3",
        "service": "production",
        "kind": "order_at_risk",
        "entity": "o-1",
        "summary": "Sen Vàng: still assembling with delivery promised for 2026-12-10",
        "details": {"stage": "assembling", "due_date": "2026-12-10"},
        "raised_at": "2026-12-01T21:13:24+00:00",
    },
]


def fake_apis(request: httpx.Request) -> httpx.Response:
    """Answers with rows for the board and the alerts; an empty list elsewhere; a refusal for the funnel."""
    if request.url.port == SIGNIN_PORT:
        return SIGNIN(request)
    if request.url.path == "/board" and request.url.port == 8102:
        return httpx.Response(200, json=BOARD)
    if request.url.path == "/alerts":
        return httpx.Response(200, json=ALERTS)
    if request.url.path == "/funnel" or request.url.path.startswith("/deals/0000"):
        status, rule = (403, "forbidden") if request.url.path == "/funnel" else (404, "not_found")
        body = {"type": f"urn:pipelines:problem:{rule}", "status": status, "detail": "as the API says", "rule": rule}
        return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})
    return httpx.Response(200, json=[])


class Texts(HTMLParser):
    """The text a page shows outside user data: text nodes and the attributes read aloud or shown on hover."""

    SKIP = frozenset({"script", "style", "pre", "code"})  # pre, code: data, an API's words

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: is its content user data?
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        data = (
            tag in self.SKIP
            or "data-value" in a  # a cell: the API's value, as fmt wrote it (figures, ids, names)
            or (tag == "option" and a.get("value"))  # a team or a person of the directory
            or "user" in (a.get("class") or "").split()  # who is signed in
            or "lang" in (a.get("class") or "").split()  # the languages, by their codes
            or a.get("translate") == "no"  # user data the page marks so (HTML's own attribute: a deal's title)
        )
        if tag not in {"br", "input", "meta", "link", "img", "hr"}:
            self.stack.append(bool(data) or bool(self.stack and self.stack[-1]))
        if not (self.stack and self.stack[-1]):
            self.found += [v for k, v in attrs if k in {"title", "aria-label", "placeholder", "alt"} and v]

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag not in {"br", "input", "meta", "link", "img", "hr"}:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and not (self.stack and self.stack[-1]):
            self.found.append(data.strip())


def untranslated(html: str) -> list[str]:
    """The texts of a page that are neither from the catalog (``⟦…⟧``) nor figures."""
    parser = Texts()
    parser.feed(html)
    left = [re.sub(r"⟦[^⟦⟧]*⟧", "", re.sub(r"⟦[^⟦⟧]*⟧", "", text)) for text in parser.found]  # a text in a text
    return [text for text, rest in zip(parser.found, left, strict=True) if not FIGURE.match(rest)]


@pytest.fixture
async def pseudo_web(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = catalogs.pseudo()
    monkeypatch.setattr(catalogs, "translations", lambda lang: fake)
    app = create_app(SETTINGS, transport=httpx.MockTransport(fake_apis), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    async with app.router.lifespan_context(app), client:
        yield client


async def test_in_a_pseudo_locale_every_text_of_every_page_went_through_the_catalog(
    pseudo_web: httpx.AsyncClient,
) -> None:
    seen = {}
    seen["/login"] = (await pseudo_web.get("/login")).text
    pseudo_web.cookies.set(COOKIE, session("u-admin", "admin"))
    for path in (
        "/sales",
        "/marketing",
        "/production",
        "/alerts",
        "/audit",
        "/audit?deal=" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
    ):
        r = await pseudo_web.get(path)
        assert r.status_code == 200, path
        seen[path] = r.text
    ids = "deal_id=d-1&lead_id=l-1&order_id=o-1&campaign_id=c-1"
    for action in sorted(REGISTRY):  # every action's form, on its own page
        r = await pseudo_web.get(f"/act/{action}?{ids}")
        assert r.status_code == 200, action
        seen[f"/act/{action}"] = r.text
    seen["/agenda"] = (await pseudo_web.get("/agenda")).text
    refused = await pseudo_web.post("/logout", data={"csrf": "not the session's"})
    assert refused.status_code == 403 and "⟦This form was refused⟧" in refused.text
    seen["refused"] = refused.text
    assert "⟦Deals by stage⟧" in seen["/sales"] and "⟦Target identified⟧" not in seen["/sales"]  # only shown stages
    assert "⟦Quote sent⟧" in seen["/sales"]  # the stage's name, labelled, not the API's English
    assert "⟦Tủ đông: 21 days in ⟦Quote sent⟧⟧" in seen["/alerts"]  # the alert's sentence, by kind and parameters
    for path, html in seen.items():
        assert untranslated(html) == [], path


def test_the_pseudo_check_catches_a_text_written_past_the_catalog() -> None:
    assert untranslated("<p>⟦Sales⟧ 12.5 % — 3/4</p>") == []
    assert untranslated("<p>⟦Sales⟧ and more</p><td data-value='1'>user data</td>") == ["⟦Sales⟧ and more"]
    assert untranslated('<button title="Close">⟦x⟧</button>') == ["Close"]


def test_the_vietnamese_catalog_is_complete_and_current() -> None:
    vi, en = catalogs.read("vi"), catalogs.read("en")
    assert not vi.fuzzy
    missing = [m.id for m in vi if m.id and (not m.string or m.fuzzy)]
    assert missing == [], (
        f"untranslated or fuzzy in vi: {missing} (python -m services.web.i18n extract, then translate)"
    )
    assert {m.id for m in vi if m.id} == {m.id for m in en if m.id}
    errors = [(m.id, [str(e) for e in errs]) for m, errs in vi.check()]
    assert errors == [], errors  # placeholders of each msgstr match its msgid's
    extracted = {m.id for m in catalogs.extract() if m.id}
    stale = sorted(str(x) for x in extracted - {m.id for m in vi})
    assert stale == [], f"not in the catalogs yet: {stale} (run python -m services.web.i18n extract)"


def test_the_catalog_is_compiled_in_memory_and_nothing_compiled_is_kept() -> None:
    tr = catalogs.translations("vi")
    assert isinstance(tr, gettext.GNUTranslations) and tr.gettext("Deals by stage") == "Cơ hội theo giai đoạn"
    assert isinstance(catalogs.translations("en"), gettext.NullTranslations)
    assert not list(catalogs.LOCALES.rglob("*.mo"))


@pytest.mark.parametrize(
    ("call", "en", "vi"),
    [
        (lambda lang: formats.money("88000000", lang), "₫88,000,000", "88.000.000\u00a0₫"),
        (lambda lang: formats.money("12.5", lang, "USD"), "$12.50", "12,50\u00a0US$"),
        (lambda lang: formats.money("-1500", lang, "jpy"), "-¥1,500", "-1.500\u00a0¥"),
        (lambda lang: formats.number("1234567.5", lang), "1,234,567.5", "1.234.567,5"),
        (lambda lang: formats.number(2, lang, places=1), "2.0", "2,0"),
        (lambda lang: formats.percent("0.8333", lang), "83.3%", "83,3%"),
        (lambda lang: formats.day("2026-12-07", lang), "7\u00a0Dec\u00a02026", "07/12/2026"),
        (
            lambda lang: formats.when("2026-12-06T21:31:00+00:00", lang, TZ),
            "7\u00a0Dec\u00a02026,\u00a004:31",
            "07/12/2026\u00a004:31",
        ),
        (
            lambda lang: formats.zone(TZ, lang, datetime(2026, 12, 6, tzinfo=UTC)),
            "Vietnam Time (GMT+7)",
            "giờ Việt Nam (GMT+7)",
        ),
        (lambda lang: formats.zone(ZoneInfo("Asia/Kolkata"), lang), "India Time (GMT+5:30)", "giờ Ấn Độ (GMT+5:30)"),
        (lambda lang: formats.zone(ZoneInfo("UTC"), lang), "UTC (GMT+0)", "giờ UTC (GMT+0)"),
        (lambda lang: formats.money("not money", lang), "not money", "not money"),
    ],
)
def test_figures_are_written_as_each_language_writes_them(call: Any, en: str, vi: str) -> None:
    assert (call("en"), call("vi")) == (en, vi)


def test_ids_are_labelled_and_never_shown_raw() -> None:
    assert domain_words.label("stage", "target_identified", "vi") == "Xác định mục tiêu"
    assert domain_words.label("stage", "Quote sent", "vi") == "Đã gửi báo giá"  # the API's English name of a stage
    assert domain_words.label("stage", "Khảo sát riêng", "vi") == "Khảo sát riêng"  # a custom stage: user data
    assert domain_words.label("source", "facebook_lead_ads", "vi") == "Quảng cáo khách tiềm năng Facebook"
    assert domain_words.label("status", "disqualified", "en") == "Disqualified"
    assert domain_words.label("event", "DealWon", "vi") == "Thắng cơ hội"
    assert domain_words.label("event", "DealValueChanged", "en") == "Deal value changed"  # not a milestone: its type
    for kind, words in domain_words.KINDS.items():
        for value in words:
            assert domain_words.label(kind, value, "vi") != value or value in {"zalo"}, (kind, value)


def test_a_refusal_is_the_rules_sentence_and_an_unknown_rule_falls_back_to_the_apis_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert domain_words.refusal("use_win_or_lose", "use win or lose", "vi").startswith("Hãy dùng Thắng hoặc Thua")
    assert domain_words.refusal("stale_version", None, "en").startswith("Someone changed this meanwhile")
    assert domain_words.refusal("brand_new_rule", "the API's own words", "vi") == "the API's own words"
    assert domain_words.refusal(None, None, "vi") == i18n.gettext("vi", domain_words.RULES["conflict"])


def test_an_alert_is_written_from_its_kind_and_parameters() -> None:
    deal, lead, order = ALERTS
    assert domain_words.alert(deal, "vi") == "Tủ đông: 21 ngày ở giai đoạn Đã gửi báo giá"
    assert (
        domain_words.alert(deal | {"details": {"stage_id": "quote_sent", "days": "3"}}, "en") == "3 days in Quote sent"
    )
    assert domain_words.alert(lead, "vi") == "Một khách tiềm năng từ Zalo vẫn đang chờ được liên hệ lần đầu"
    assert domain_words.alert(order, "vi") == "Vẫn ở công đoạn Lắp ráp, đã hẹn giao ngày 10/12/2026"
    assert domain_words.alert(order, "en") == "Still at Assembling, delivery promised for 10\u00a0Dec\u00a02026"
    named = order | {"details": order["details"] | {"customer": "Sen Vàng"}}
    assert domain_words.alert(named, "vi") == "Sen Vàng: vẫn ở công đoạn Lắp ráp, đã hẹn giao ngày 10/12/2026"
    assert domain_words.alert({"kind": "new_kind", "summary": "as the API said"}, "vi") == "as the API said"
    assert i18n.fmt("deal_stuck", "alert_kind", "vi") == "Cơ hội bị kẹt"
