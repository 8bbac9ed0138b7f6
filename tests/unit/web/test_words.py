"""The board's words have no hand-written list: every label is an English msgid the Vietnamese catalog translates,
every event type the timeline can show and every rule the APIs can refuse with has its sentence, the pseudo-locale
run covers the object pages, an action's refusal and a bad filter, and each page kind in Vietnamese writes dates
dd/MM/yyyy, money 88.000.000 ₫ and names the time zone (decision 0023, "words")."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import tools.contract  # noqa: F401 - registers every service's event types
from services.leads.domain.lead import Status as LeadStatus
from services.production.domain.order import ALL as ORDER_STAGES
from services.web import catalogs, charts, domain_words, event_words, i18n
from services.web.actions.core import REGISTRY
from services.web.app import COOKIE, create_app
from shared.core.events import registry
from shared.edge.problems import RULE_OF_STATUS
from tests.unit.web import test_actions as sales_fakes
from tests.unit.web import test_ops_actions as ops_fakes
from tests.unit.web.signin_fake import SIGNIN_PORT
from tests.unit.web.test_board_unit import ALL_PAGES, SETTINGS, SIGNIN
from tests.unit.web.test_i18n import fake_apis, untranslated

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("leads", "deals", "production", "directory", "agenda")  # the APIs the board calls
VI = {m.id: m.string for m in catalogs.read("vi") if m.id and m.string and not m.fuzzy}
VALUE = {"amount": "88000000", "currency": "VND"}
KEY = re.compile(r"^[a-z][a-z0-9]*_[a-z0-9_]+$")  # what a key of the old word list looked like: c_value, act_win


def translated(msgid: str) -> bool:
    return bool(VI.get(msgid))


def test_there_is_no_hand_written_word_list_and_every_label_is_a_translated_msgid() -> None:
    assert not hasattr(i18n, "WORDS")
    assert not (ROOT / "services/web/actions/words.py").exists()
    assert not (ROOT / "services/web/actions/ops_words.py").exists()
    labels = {a.label for a in REGISTRY.values()} | {f.label for a in REGISTRY.values() for f in a.fields}
    labels |= {t for c in charts.CHARTS.values() for t in (c.title, c.note) if t}
    labels |= {col.label for c in charts.CHARTS.values() for col in (*c.label, *c.series)}
    for page in ALL_PAGES.values():
        labels |= {page.title} | {p.title for p in page.panels} | {p.act[1] for p in page.panels if p.act}
    labels |= {text for words in domain_words.KINDS.values() for text in words.values()}
    keys = sorted(label for label in labels if KEY.match(label))
    assert keys == [], f"labels written as keys, not as English msgids (N_): {keys}"
    missing = sorted(label for label in labels if not translated(label) and label != "Zalo")
    assert missing == [], f"not translated in vi: {missing}"


def test_every_event_type_the_board_can_show_has_a_translated_name() -> None:
    services = (*SERVICES, "alerts")  # not the kernel tests' own types (pipelines.test.*), registered by other tests
    types = {
        c.event_type.rpartition(".")[2] for c in registry.types("pipelines.") if c.event_type.split(".")[1] in services
    }
    assert len(types) > 100  # every service's events.py (tools/contract.py EVENT_MODULES)
    unnamed = sorted(types - set(event_words.EVENTS))
    assert unnamed == [], f"event types without a name in services/web/event_words.py: {unnamed}"
    untranslated_names = sorted(t for t in types if not translated(event_words.EVENTS[t]))
    assert untranslated_names == [], f"event names the vi catalog lacks: {untranslated_names}"
    assert domain_words.label("event", "DealValueChanged", "vi") == "Đã đổi giá trị cơ hội"
    assert domain_words.label("event", "pipelines.production.UnitsScrapped", "vi") == "Đã ghi phế phẩm"


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def raised_rules() -> tuple[set[str], set[str]]:
    """The rules the APIs' code can refuse with: each refusal raised with a literal rule (``XRuleError("rule", …)``,
    ``rule="…"``) in services/<api>/ and shared/, and the prefixes of rules made from a state (``f"lead_{…}"``)."""
    rules, prefixes = set(RULE_OF_STATUS.values()), set()
    message_first = {"ForbiddenError", "NotVisibleError", "PydanticCustomError"}  # their first argument is not a rule
    paths = [p for s in SERVICES for p in (ROOT / "services" / s).rglob("*.py")] + list((ROOT / "shared").rglob("*.py"))
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            rules |= {k.value.value for k in node.keywords if k.arg == "rule" and isinstance(k.value, ast.Constant)}
            name = _name(node.func)
            if not node.args or not ((name.endswith("Error") and name not in message_first) or name == "__init__"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and KEY.match(first.value + "_x"):
                rules.add(first.value)
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                prefix = str(first.values[0].value)
                if KEY.match(prefix + "x"):
                    prefixes.add(prefix)
    return rules, prefixes


def test_every_rule_the_apis_can_refuse_with_has_a_translated_sentence() -> None:
    rules, prefixes = raised_rules()
    assert {"use_win_or_lose", "ship_exceeds_packed", "spend_recorded", "subject_closed", "tax_code_taken"} <= rules
    assert prefixes == {"lead_", "order_"}  # a lead's status, an order's stage (domain_words.RULE_PATTERNS)
    rules |= {f"lead_{s.value}" for s in LeadStatus} | {f"order_{s}" for s in ORDER_STAGES}
    unsaid = sorted(r for r in rules if domain_words.rule_text(r) is None)
    assert unsaid == [], f"rules with no sentence in services/web/domain_words.py RULES: {unsaid}"
    untranslated_rules = sorted(r for r in rules if not translated(domain_words.rule_text(r)[0]))
    assert untranslated_rules == [], f"rule sentences the vi catalog lacks: {untranslated_rules}"
    said = domain_words.refusal("order_on_hold", "an order in stage on_hold does not allow ship", "vi")
    assert said == "Đơn hàng ở công đoạn “Tạm dừng” không cho phép thao tác này."


class World:
    """The APIs of every page kind at once: the pages' panels, a deal, the agenda, a customer, a lead, an order."""

    def __init__(self) -> None:
        self.deals = sales_fakes.FakeApis()
        self.ops = ops_fakes.Apis()
        self.ops.refuse[f"/leads/{ops_fakes.LEAD}/qualify"] = ops_fakes.problem(
            409, "a converted lead does not allow qualify", "lead_converted"
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.port == SIGNIN_PORT:
            return SIGNIN(request)
        if path in ("/board", "/alerts", "/funnel") or path.startswith("/deals/0000"):
            return fake_apis(request)
        if path == "/analytics/win-rate":  # a panel the API refuses by a rule: its sentence, its detail below
            return ops_fakes.problem(422, "from: 1900-01-01 is before the first day kept", "backdate_limit")
        if path.startswith(("/leads/", "/orders/")) or path == "/users":
            return self.dated(self.ops(request), path)
        return self.dated(self.deals(request), path)

    @staticmethod
    def dated(r: httpx.Response, path: str) -> httpx.Response:
        """An order's and a deal's days and times, which every page writes as its language does."""
        more = {
            f"/orders/{ops_fakes.ORDER}": {"due_date": "2026-12-10"},
            f"/deals/{sales_fakes.DEAL}": {"expected_close_date": "2027-01-15", "value": VALUE},
            f"/leads/{ops_fakes.LEAD}": {"captured_at": "2026-12-01T02:00:00+00:00"},
        }.get(path)
        return httpx.Response(r.status_code, json=r.json() | more) if more and r.status_code == 200 else r


@pytest.fixture
def pseudo(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = catalogs.pseudo()
    monkeypatch.setattr(catalogs, "translations", lambda lang: fake)


@contextlib.asynccontextmanager
async def web_of(lang: str | None = None) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = create_app(SETTINGS, transport=httpx.MockTransport(World()), live_feed=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web")
    secret = SIGNIN.session("u-admin", "admin")
    client.cookies.set(COOKIE, secret)
    if lang:
        client.cookies.set("lang", lang)
    async with app.router.lifespan_context(app), client:
        yield client, SIGNIN.sessions[secret]["csrf"]


OBJECT_PAGES = (
    f"/deal/{sales_fakes.DEAL}",
    "/agenda",
    f"/customers/{sales_fakes.ORG}",
    f"/lead/{ops_fakes.LEAD}",
    f"/order/{ops_fakes.ORDER}",
)


async def refusals(web: httpx.AsyncClient, csrf: str) -> dict[str, httpx.Response]:
    """An action's refusal pages: a rule (409), a role (403), a lead's state with the lead as it is now (409)."""
    deal = {"deal_id": sales_fakes.DEAL, "version": "4", "csrf": csrf}
    lead = {"lead_id": ops_fakes.LEAD, "level": "sql", "version": "3", "csrf": csrf}
    return {
        "deal.move": await web.post("/act/deal.move", data=deal | {"stage_id": "won"}, headers=sales_fakes.SAME),
        "deal.lose": await web.post("/act/deal.lose", data=deal | {"reason": "giá"}, headers=sales_fakes.SAME),
        "lead.qualify": await web.post("/act/lead.qualify", data=lead, headers=sales_fakes.SAME),
    }


async def test_in_a_pseudo_locale_the_object_pages_refusals_and_a_bad_filter_went_through_the_catalog(
    pseudo: None,
) -> None:
    async with web_of() as (web, csrf):
        seen = {}
        for path in OBJECT_PAGES:
            r = await web.get(path)
            assert r.status_code == 200, path
            seen[path] = r.text
        for action, r in (await refusals(web, csrf)).items():
            assert r.status_code in (403, 409) and 'class="action-result"' in r.text, action
            seen[action] = r.text
        bad = await web.get("/sales?period=next-year")
        assert bad.status_code == 422 and "⟦The period is a month (2026-12) or a quarter (2027-Q1).⟧" in bad.text
        seen["bad filter"] = bad.text
        seen["a panel refused"] = (await web.get("/sales")).text
        assert "⟦This date is too far in the past.⟧" in seen["a panel refused"]
        assert "⟦Use Win or Lose to close a deal, not a move.⟧" in seen["deal.move"]
        assert "⟦An order at the stage" not in seen["lead.qualify"] and "⟦A lead in the status" in seen["lead.qualify"]
        for path, html in seen.items():
            assert untranslated(html) == [], path


async def test_a_refusal_shows_the_rules_sentence_first_and_the_apis_detail_as_a_secondary_line() -> None:
    async with web_of("vi") as (web, csrf):
        r = (await refusals(web, csrf))["deal.move"]
        sentence, detail = r.text.index("Hãy dùng Thắng hoặc Thua"), r.text.index("a deal is closed by win or lose")
        assert sentence < detail and '<p class="detail">' in r.text[sentence:detail]
        panel = (await web.get("/sales")).text.split('id="panel-win_rate"')[1].split("</section>")[0]
        assert 'class="msg invalid"' in panel
        said, detail = panel.index(domain_words.refusal("backdate_limit", None, "vi")), panel.index("1900-01-01")
        assert said < detail and '<p class="detail">' in panel[said:detail]
        bad = await web.get("/sales?to=2020-01-01")
        assert bad.status_code == 422 and "Ngày kết thúc phải sau ngày bắt đầu." in bad.text
        assert "to: must be after from" in bad.text.split("Ngày kết thúc phải sau ngày bắt đầu.")[1]  # the details


DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")  # an ISO day shown as text, not as people read it
ENGLISH_MONTH = re.compile(r"\b\d{1,2}\s(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")


async def test_each_page_kind_in_vietnamese_writes_days_money_and_the_time_zone_as_vietnamese_do() -> None:
    async with web_of("vi") as (web, _):
        kinds = ["/sales", "/marketing", "/production", "/alerts", "/audit", *OBJECT_PAGES]
        kinds += [
            f"/act/activity.schedule?subject_id={sales_fakes.DEAL}",
            f"/act/order.hold?order_id={ops_fakes.ORDER}",
        ]
        for path in kinds:
            r = await web.get(path)
            assert r.status_code == 200, path
            shown = re.sub(r"<(script|style|code|pre)\b.*?</\1>|<[^>]+>", " ", r.text, flags=re.S)  # words, not data
            assert not DATE.search(shown), (path, DATE.findall(shown)[:3])
            assert not ENGLISH_MONTH.search(shown), path
            assert "giờ Việt Nam (GMT+7)" in shown, path  # the time zone named on every page
            assert "₫" not in shown or re.search(r"\d[\d.]*(,\d+)?\u00a0₫", shown), path
        sales = (await web.get("/sales")).text
        assert re.search(r"\d{1,3}(\.\d{3})+\u00a0₫", sales)  # 88.000.000 ₫: the board's values
        agenda = (await web.get("/agenda")).text
        assert "01/12/2026" in agenda  # dd/MM/yyyy
        customer = (await web.get(f"/customers/{sales_fakes.ORG}")).text
        assert "88.000.000\u00a0₫" in customer
        deal = (await web.get(f"/deal/{sales_fakes.DEAL}")).text
        assert "15/01/2027" in deal and "88.000.000\u00a0₫" in deal
        assert "10/12/2026" in (await web.get(f"/order/{ops_fakes.ORDER}")).text
        assert "01/12/2026 09:00" in (await web.get(f"/lead/{ops_fakes.LEAD}")).text.replace("\u00a0", " ")


def test_a_label_of_an_option_list_is_an_msgid_of_its_kind() -> None:
    for kind in ("activity", "level", "disqualify_reason", "order_step"):
        assert domain_words.KINDS[kind], kind
    assert domain_words.label("order_step", "approve-design", "vi") == "Duyệt thiết kế"
    assert domain_words.label("activity", "video_call", "vi") == "Gọi video"
    assert i18n.word("Mark as won", "vi") == "Đánh dấu thắng"
