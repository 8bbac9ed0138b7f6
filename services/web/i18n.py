"""The board's languages: texts through gettext catalogs (``catalogs.py``: ``locale/<lang>/LC_MESSAGES/messages.po``,
the msgid being the English text), numbers, money and dates by Babel (``formats.py``), the domain's words
(``domain_words.py``).

``WORDS`` is what is left of the old hand-written list (key -> English, Vietnamese): ``t(key)`` and ``word(key, lang)``
still translate a key's English through the catalog; ``python -m services.web.i18n extract`` moves its Vietnamese
into the catalog. New texts: ``_("English")`` in templates, ``N_("English")`` for labels defined in Python.
"""

from __future__ import annotations

import sys
from datetime import tzinfo
from decimal import Decimal
from typing import Any, Literal

from services.web import catalogs, domain_words, formats
from services.web.actions import ops_words
from services.web.actions import words as action_words
from services.web.catalogs import N_

__all__ = ["LANGS", "N_", "WORDS", "Lang", "fmt", "gettext", "ngettext", "pick_lang", "word", "zone"]

Lang = Literal["en", "vi"]
LANGS: tuple[Lang, ...] = ("en", "vi")


def gettext(lang: str, message: str) -> str:
    """``message`` (an English msgid) in ``lang``."""
    return catalogs.translations(lang).gettext(message)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    return catalogs.translations(lang).ngettext(singular, plural, n)


WORDS: dict[str, tuple[str, str]] = {
    # navigation and chrome
    "sales": ("Sales", "Bán hàng"),
    "marketing": ("Marketing", "Marketing"),
    "production": ("Production", "Sản xuất"),
    "audit": ("Audit", "Kiểm toán"),
    "alerts": ("Alerts", "Cảnh báo"),
    "login": ("Sign in", "Đăng nhập"),
    "email": ("Email", "Email"),
    "password": ("Password", "Mật khẩu"),
    "or": ("or", "hoặc"),
    "bad_credentials": ("Wrong email or password", "Sai email hoặc mật khẩu"),
    "locked": (
        "Too many wrong passwords: this account is locked until {at}",
        "Nhập sai mật khẩu quá nhiều lần: tài khoản bị khóa đến {at}",
    ),
    "throttled": (
        "Too many attempts from your address: try again in {seconds} s",
        "Quá nhiều lần thử từ địa chỉ của bạn: hãy thử lại sau {seconds} giây",
    ),
    "signin_unavailable": (
        "The sign-in service does not answer right now: try again in a moment",
        "Dịch vụ đăng nhập hiện không phản hồi: hãy thử lại sau giây lát",
    ),
    "signin_refused": ("Sign-in refused", "Đăng nhập bị từ chối"),
    "oidc_failed": (
        "Sign-in with your organisation's account failed",
        "Đăng nhập bằng tài khoản tổ chức không thành công",
    ),
    "reset": ("Set your password", "Đặt mật khẩu"),
    "password_rules": (
        "12 to 128 characters, and not your email address",
        "Từ 12 đến 128 ký tự, và không phải địa chỉ email của bạn",
    ),
    "passwords_differ": ("The two passwords differ", "Hai mật khẩu không giống nhau"),
    "reset_link_invalid": (
        "This link is used, expired or not valid: ask your administrator for a new one",
        "Liên kết này đã dùng, đã hết hạn hoặc không hợp lệ: hãy xin quản trị viên liên kết mới",
    ),
    "password_set": ("Your password is set: sign in with it", "Mật khẩu đã được đặt: hãy đăng nhập bằng mật khẩu mới"),
    "refused": ("This form was refused", "Biểu mẫu này bị từ chối"),
    "logout_failed": ("Not signed out", "Chưa đăng xuất"),
    "signin_down": ("Sign-in unavailable", "Không đăng nhập được"),
    "back": ("Back to the board", "Quay lại bảng"),
    "live": ("live", "trực tiếp"),
    "updated": ("updated", "cập nhật"),
    "csv": ("CSV", "CSV"),
    "from": ("From", "Từ ngày"),
    "to": ("To", "Đến ngày"),
    "period": ("Period", "Kỳ"),
    "as_of": ("As it stood on", "Tại ngày"),
    "team": ("Team", "Nhóm"),
    "owner": ("Salesperson", "Nhân viên"),
    "deal": ("Deal", "Cơ hội"),
    "empty": ("Nothing here yet", "Chưa có dữ liệu"),
    "forbidden": ("Your role does not see this", "Vai trò của bạn không được xem mục này"),
    "not_found": ("Not found", "Không tìm thấy"),
    "unavailable": ("The service does not answer right now", "Dịch vụ hiện không phản hồi"),
    "invalid": ("Check the filters", "Kiểm tra lại bộ lọc"),
    "now": ("now", "hiện tại"),
    "yes": ("yes", "có"),
    "no": ("no", "không"),
    "details": ("details", "chi tiết"),
    "more": ("more…", "thêm…"),
    # layout and accessibility (issue 28)
    "language": ("Language", "Ngôn ngữ"),
    # panels
    # charts (services/web/charts.py)
    "ch_funnel": ("Marketing funnel by source", "Phễu marketing theo nguồn"),
    "ch_win_rate": ("Win rate by month", "Tỷ lệ chốt đơn theo tháng"),
    "ch_campaigns": ("Campaign spend and revenue", "Chi phí và doanh thu theo chiến dịch"),
    "ch_forecast": ("Forecast by month: won and weighted", "Dự báo theo tháng: đã chốt và theo xác suất"),
    "ch_target": ("Won against target", "Doanh số đã chốt so với chỉ tiêu"),
    "ch_conversion": ("Stage conversion", "Tỷ lệ chuyển đổi theo giai đoạn"),
    "ch_flow": ("Orders in each stage now", "Đơn hàng ở từng công đoạn hiện nay"),
    "ch_flow_note": (
        "Today's slice of the cumulative flow: orders open in each stage, and how many of them are late.",
        "Lát cắt hôm nay của biểu đồ dòng tích lũy: số đơn đang ở từng công đoạn và số đơn trễ hạn trong đó.",
    ),
    "ch_cycle": ("Days in each stage", "Số ngày ở từng công đoạn"),
    "ch_cycle_note": (
        "The spread of the cycle time: the median and the slowest tenth (90th percentile) of each stage.",
        "Độ phân tán của thời gian chu kỳ: trung vị và mức 10% chậm nhất (phân vị 90) của từng công đoạn.",
    ),
    "ch_lead_time": ("Orders by lead time (days)", "Số đơn theo thời gian sản xuất (ngày)"),
    "ch_lead_time_note": (
        "Each bar counts the orders completed in the period whose lead time, from order to completion, fell in it.",
        "Mỗi cột đếm số đơn hoàn thành trong kỳ có thời gian từ lúc đặt đến lúc hoàn thành nằm trong khoảng đó.",
    ),
    "ch_cfd": (
        "Cumulative flow: orders in each stage, week by week",
        "Dòng tích lũy: số đơn ở từng công đoạn theo tuần",
    ),
    "ch_cfd_note": (
        "Each band is one stage: its height is how many orders were in it at the start of the week.",
        "Mỗi dải là một công đoạn: độ cao là số đơn đang ở công đoạn đó vào đầu tuần.",
    ),
    "ch_desc": (
        "Drawn from the {rows} rows of the table below, which has every figure.",
        "Vẽ từ {rows} dòng của bảng bên dưới, nơi có đầy đủ số liệu.",
    ),
    "p_campaigns": ("Campaign ROI and ROAS", "ROI và ROAS chiến dịch"),
    # columns
    "c_stage": ("Stage", "Giai đoạn"),
    "c_count": ("Deals", "Số cơ hội"),
    "c_stuck": ("Stuck", "Bị kẹt"),
    "c_next_step": ("Next step", "Bước tiếp theo"),
    "c_next_due": ("Next step due", "Hạn bước tiếp theo"),
    "c_no_next_step": ("No next step", "Chưa có bước tiếp theo"),
    "c_overdue": ("Overdue", "Quá hạn"),
    "c_value": ("Value", "Giá trị"),
    "c_weighted": ("Weighted", "Giá trị có trọng số"),
    "c_title": ("Deal", "Cơ hội"),
    "c_customer": ("Customer", "Khách hàng"),
    "c_owner": ("Owner", "Phụ trách"),
    "c_days_in_stage": ("Days in stage", "Số ngày ở giai đoạn"),
    "c_probability": ("Probability", "Xác suất"),
    "c_risk": ("Delivery risk", "Rủi ro giao hàng"),
    "c_close": ("Expected close", "Dự kiến chốt"),
    "c_month": ("Month", "Tháng"),
    "c_currency": ("Currency", "Tiền tệ"),
    "c_won": ("Won", "Đã thắng"),
    "c_lost": ("Lost", "Đã thua"),
    "c_open": ("Open", "Đang mở"),
    "c_potential": ("Pipeline", "Tiềm năng"),
    "c_expected": ("Expected", "Dự kiến"),
    "c_entered": ("Entered", "Vào"),
    "c_advanced": ("Advanced", "Đi tiếp"),
    "c_still_open": ("Still open", "Còn mở"),
    "c_conversion": ("Conversion", "Tỷ lệ chuyển"),
    "c_median_days": ("Median days", "Trung vị (ngày)"),
    "c_p90_days": ("p90 days", "p90 (ngày)"),
    "c_backward": ("Moved back", "Lùi lại"),
    "c_skipped": ("Skipped", "Bỏ qua"),
    "c_win_rate": ("Win rate", "Tỷ lệ thắng"),
    "c_won_value": ("Won value", "Doanh thu thắng"),
    "c_avg_deal": ("Average deal", "Giá trị TB"),
    "c_cycle_days": ("Mean cycle (days)", "Chu kỳ TB (ngày)"),
    "c_open_now": ("Open now", "Đang mở"),
    "c_velocity": ("Velocity per day", "Tốc độ mỗi ngày"),
    "c_opened": ("Opened", "Mở mới"),
    "c_weighted_now": ("Weighted pipeline", "Pipeline có trọng số"),
    "c_stuck_now": ("Stuck now", "Đang kẹt"),
    "c_target": ("Target", "Chỉ tiêu"),
    "c_attainment": ("Attainment", "Hoàn thành"),
    "c_won_so_far": ("Won so far", "Đã đạt"),
    "c_wins_needed": ("Wins needed", "Số lần thắng cần"),
    "c_expected_wins": ("Expected wins from open deals", "Số thắng dự kiến từ cơ hội mở"),
    "c_gap": ("Gap (wins)", "Còn thiếu (lần thắng)"),
    "c_p_win": ("Chance to win", "Khả năng thắng"),
    "c_needed": ("New deals needed", "Cơ hội mới cần"),
    "c_source": ("Source", "Nguồn"),
    "c_campaign": ("Campaign", "Chiến dịch"),
    "c_captured": ("Captured", "Thu được"),
    "c_contacted": ("Contacted", "Đã liên hệ"),
    "c_mql": ("MQL", "MQL"),
    "c_sql": ("SQL", "SQL"),
    "c_opportunities": ("Opportunities", "Cơ hội"),
    "c_customers": ("Customers", "Khách hàng"),
    "c_revenue": ("Revenue", "Doanh thu"),
    "c_lead_to_customer": ("Lead → customer", "Lead → khách hàng"),
    "c_minutes_to_contact": ("Median minutes to contact", "Phút đến khi liên hệ (trung vị)"),
    "c_name": ("Name", "Tên"),
    "c_channel": ("Channel", "Kênh"),
    "c_spend": ("Spend", "Chi phí"),
    "c_leads": ("Leads", "Leads"),
    "c_cpl": ("CPL", "CPL"),
    "c_cac": ("CAC", "CAC"),
    "c_roi": ("ROI %", "ROI %"),
    "c_roas": ("ROAS", "ROAS"),
    "c_captured_at": ("Captured at", "Thời điểm thu"),
    "c_status": ("Status", "Trạng thái"),
    "c_score": ("Score", "Điểm"),
    "c_response_minutes": ("Minutes to first contact", "Phút đến lần liên hệ đầu"),
    "c_contact": ("Contact", "Liên hệ"),
    "c_orders": ("Orders", "Số đơn"),
    "c_quantity": ("Quantity", "Số lượng"),
    "c_late": ("Late", "Trễ hạn"),
    "c_oldest": ("Oldest (days)", "Lâu nhất (ngày)"),
    "c_products": ("Products", "Sản phẩm"),
    "c_due": ("Due", "Hạn giao"),
    "c_age": ("Age (days)", "Tuổi (ngày)"),
    "c_hold": ("On hold", "Tạm dừng"),
    "c_shortage": ("Shortage", "Thiếu vật tư"),
    "c_open_orders": ("Open orders", "Đơn đang mở"),
    "c_wip": ("WIP", "Đang làm (WIP)"),
    "c_visits": ("Visits", "Lượt"),
    "c_inspected": ("Units inspected", "Sản phẩm đã kiểm"),
    "c_first_pass": ("Passed first time", "Đạt lần đầu"),
    "c_scrapped_before_inspection": ("Scrapped before inspection", "Phế phẩm trước kiểm tra"),
    "c_fpy": ("First-pass yield", "Tỷ lệ đạt lần đầu"),
    "c_reworked": ("Reworked", "Làm lại"),
    "c_rework_rate": ("Rework rate", "Tỷ lệ làm lại"),
    "c_units_made": ("Units made", "Sản lượng"),
    "c_units_scrapped": ("Units scrapped", "Phế phẩm"),
    "c_scrap_rate": ("Scrap rate", "Tỷ lệ phế phẩm"),
    "c_completed": ("Delivered orders", "Đơn đã giao"),
    "c_on_time": ("On time", "Đúng hạn"),
    "c_otd": ("On-time delivery", "Giao đúng hạn"),
    "c_otif_orders": ("OTIF orders", "Đơn OTIF"),
    "c_otif": ("OTIF", "OTIF"),
    "c_avg_days_late": ("Average days late", "Trễ TB (ngày)"),
    "c_kind": ("Kind", "Loại"),
    "c_entity": ("About", "Đối tượng"),
    "c_summary": ("Summary", "Tóm tắt"),
    "c_raised_at": ("Raised at", "Thời điểm"),
    "c_when": ("When", "Khi nào"),
    "c_recorded": ("Recorded", "Ghi nhận lúc"),
    "c_occurred": ("Occurred", "Xảy ra lúc"),
    "c_service": ("Pipeline", "Quy trình"),
    "c_event": ("Event", "Sự kiện"),
    "c_actor": ("Who", "Ai"),
    "c_version": ("Version", "Phiên bản"),
    "c_reason": ("Why", "Lý do"),
    "c_data": ("Details", "Chi tiết"),
    # production stages
    "new": ("New", "Mới"),
    "planned": ("Planned", "Đã lập kế hoạch"),
    "in_design": ("In design", "Thiết kế"),
    "procuring": ("Procuring", "Mua vật tư"),
    "assembling": ("Assembling", "Lắp ráp"),
    "quality_check": ("Quality check", "Kiểm tra chất lượng"),
    "rework": ("Rework", "Làm lại"),
    "packing": ("Packing", "Đóng gói"),
    "ready_to_ship": ("Ready to ship", "Sẵn sàng giao"),
    "shipped": ("Shipped", "Đã giao vận"),
    "delivered": ("Delivered", "Đã nhận hàng"),
    "on_hold": ("On hold", "Tạm dừng"),
    "cancelled": ("Cancelled", "Đã hủy"),
}
WORDS |= action_words.WORDS  # the actions' texts (services/web/actions/words.py), for the catalogs
WORDS |= ops_words.WORDS  # the marketing and production actions' (services/web/actions/ops_words.py)


def word(key: str, lang: Lang) -> str:
    """A key of ``WORDS`` (or an English msgid) in ``lang``, through the catalog."""
    return gettext(lang, WORDS[key][0] if key in WORDS else key)


def pick_lang(asked: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """The query's ``lang`` first, then the cookie, then the browser's first choice; English otherwise."""
    for choice in (asked, cookie):
        if choice in LANGS:
            return "en" if choice == "en" else "vi"
    first = (accept_language or "").split(",")[0].strip().lower()
    return "vi" if first.startswith("vi") else "en"


def number(value: Any, lang: Lang, *, places: int | None = None) -> str:
    """A number as people write it: 1,234,567.5 in English, 1.234.567,5 in Vietnamese."""
    return formats.number(value, lang, places=places)


def _money(value: Any, lang: Lang, currency: str | None) -> str:
    if isinstance(value, dict):  # {currency: amount}, as the board sums each currency apart
        return " · ".join(formats.money(a, lang, c) for c, a in sorted(value.items())) or formats.money(0, lang)
    return formats.money(value, lang, currency)


def _scaled(value: Any, lang: Lang, places: int) -> str:
    return formats.number(value, lang, places=places)


FORMATS = {
    "pct": lambda v, lang: formats.percent(v, lang),  # a ratio 0..1 shown as a percentage
    "ratio": lambda v, lang: _scaled(v, lang, 2),
    "days": lambda v, lang: _scaled(v, lang, 1),
    "int": lambda v, lang: formats.number(v, lang),
    "date": lambda v, lang: formats.day(v, lang),
}


def fmt(
    value: Any,
    kind: str,
    lang: Lang,
    tz: tzinfo | None = None,
    *,
    currency: str | None = None,
    row: dict[str, Any] | None = None,
) -> str:
    """One cell's text. ``value`` is exactly what the API answered; only its writing changes (times in ``tz``,
    the business's time zone; money in ``currency``, else the row's, else the business's)."""
    if kind == "alert" and isinstance(row, dict):
        return domain_words.alert(row, lang, tz)
    if value is None:
        return "—"
    if kind == "bool":
        return gettext(lang, N_("yes") if value else N_("no"))
    if kind == "money":
        own = currency or (row.get("currency") if isinstance(row, dict) else None)
        return _money(value, lang, own if isinstance(own, str) else None)
    if kind in FORMATS and isinstance(value, int | float | str | Decimal):
        return FORMATS[kind](value, lang)
    if kind == "datetime" and isinstance(value, str):
        return formats.when(value, lang, tz)
    if kind in domain_words.KINDS and isinstance(value, str):
        return domain_words.label(kind, value, lang)
    if kind == "counts" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    if kind == "list" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def zone(tz: tzinfo, lang: Lang) -> str:
    """The business's time zone named, for the page: "Vietnam Time (GMT+7)"."""
    return formats.zone(tz, lang)


def main(argv: list[str]) -> int:
    """``python -m services.web.i18n extract``: extract the texts again, update the catalogs, list what vi lacks."""
    if argv[1:] != ["extract"]:
        print("usage: python -m services.web.i18n extract", file=sys.stderr)
        return 2
    problems = catalogs.refresh(dict(WORDS.values()))
    for msgid in problems.get("vi", []):
        print(f"vi: untranslated or fuzzy: {msgid!r}", file=sys.stderr)
    return 1 if problems.get("vi") else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
