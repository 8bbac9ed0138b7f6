"""The board's words in English and Vietnamese, and how numbers, money and dates are written in each.

Every label a page shows is a key of ``WORDS``; a missing key is a test failure, not an English fallback.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Lang = Literal["en", "vi"]
LANGS: tuple[Lang, ...] = ("en", "vi")

WORDS: dict[str, tuple[str, str]] = {
    # navigation and chrome
    "app": ("Pipelines", "Pipelines"),
    "sales": ("Sales", "Bán hàng"),
    "marketing": ("Marketing", "Marketing"),
    "production": ("Production", "Sản xuất"),
    "audit": ("Audit", "Kiểm toán"),
    "alerts": ("Alerts", "Cảnh báo"),
    "login": ("Sign in", "Đăng nhập"),
    "logout": ("Sign out", "Đăng xuất"),
    "logout_everywhere": ("Sign out everywhere", "Đăng xuất mọi nơi"),
    "email": ("Email", "Email"),
    "password": ("Password", "Mật khẩu"),
    "or": ("or", "hoặc"),
    "sign_in_with": ("Sign in with", "Đăng nhập bằng"),
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
    "new_password": ("New password", "Mật khẩu mới"),
    "confirm_password": ("The same password again", "Nhập lại mật khẩu"),
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
    "refused_help": (
        "It did not come from this site's page, or the page is out of date. Open it again and resend.",
        "Biểu mẫu không gửi từ trang của hệ thống này, hoặc trang đã cũ. Hãy mở lại trang và gửi lại.",
    ),
    "logout_failed": ("Not signed out", "Chưa đăng xuất"),
    "logout_failed_help": (
        "Your session could not be ended in every service just now. You are still signed in: try again in a moment.",
        "Chưa thể kết thúc phiên của bạn ở mọi dịch vụ. Bạn vẫn đang đăng nhập: hãy thử lại sau giây lát.",
    ),
    "signin_down": ("Sign-in unavailable", "Không đăng nhập được"),
    "signin_down_help": (
        "The sign-in service does not answer right now: try again in a moment",
        "Dịch vụ đăng nhập hiện không phản hồi: hãy thử lại sau giây lát",
    ),
    "back": ("Back to the board", "Quay lại bảng"),
    "signed_in_as": ("Signed in as", "Đăng nhập với"),
    "live": ("live", "trực tiếp"),
    "offline": ("reconnecting…", "đang kết nối lại…"),
    "updated": ("updated", "cập nhật"),
    "csv": ("CSV", "CSV"),
    "show": ("Show", "Xem"),
    "from": ("From", "Từ ngày"),
    "to": ("To", "Đến ngày"),
    "period": ("Period", "Kỳ"),
    "as_of": ("As it stood on", "Tại ngày"),
    "team": ("Team", "Nhóm"),
    "owner": ("Salesperson", "Nhân viên"),
    "everyone": ("All you may see", "Tất cả trong phạm vi của bạn"),
    "deal": ("Deal", "Cơ hội"),
    "empty": ("Nothing here yet", "Chưa có dữ liệu"),
    "forbidden": ("Your role does not see this", "Vai trò của bạn không được xem mục này"),
    "partial": ("Not shown to your role", "Không hiển thị với vai trò của bạn"),
    "not_found": ("Not found", "Không tìm thấy"),
    "unavailable": ("The service does not answer right now", "Dịch vụ hiện không phản hồi"),
    "invalid": ("Check the filters", "Kiểm tra lại bộ lọc"),
    "choose_team": ("Choose a team or a salesperson to see their plan", "Chọn nhóm hoặc nhân viên để xem kế hoạch"),
    "choose_deal": ("Give a deal's id to see its whole story", "Nhập mã cơ hội để xem toàn bộ lịch sử"),
    "now": ("now", "hiện tại"),
    "yes": ("yes", "có"),
    "no": ("no", "không"),
    "details": ("details", "chi tiết"),
    "more": ("more…", "thêm…"),
    # panels
    "p_board": ("Deals by stage", "Cơ hội theo giai đoạn"),
    "p_forecast": ("Forecast", "Dự báo doanh thu"),
    "p_stages": ("Stage conversion", "Chuyển đổi theo giai đoạn"),
    "p_velocity": ("Win rate and velocity", "Tỷ lệ thắng và tốc độ"),
    "p_scorecard": ("Salesperson scorecards", "Bảng điểm nhân viên"),
    "p_target": ("Deals needed per stage for the target", "Số cơ hội cần ở mỗi giai đoạn để đạt chỉ tiêu"),
    "p_target_kpis": ("Target", "Chỉ tiêu"),
    "p_funnel_source": ("Funnel by source", "Phễu theo nguồn"),
    "p_funnel_campaign": ("Funnel by campaign", "Phễu theo chiến dịch"),
    "p_campaigns": ("Campaign ROI and ROAS", "ROI và ROAS chiến dịch"),
    "p_inbox": ("Lead inbox", "Hộp khách hàng tiềm năng"),
    "p_floor": ("Orders by stage", "Đơn hàng theo công đoạn"),
    "p_floor_kpis": ("Work in progress", "Đang sản xuất"),
    "p_cycle": ("Cycle times", "Thời gian chu kỳ"),
    "p_lead_time": ("Order lead time", "Thời gian giao đơn"),
    "p_quality": ("Quality: first-pass yield", "Chất lượng: tỷ lệ đạt lần đầu"),
    "p_delivery": ("Delivery: on time, OTIF", "Giao hàng: đúng hạn, OTIF"),
    "p_alerts_deals": ("Sales alerts", "Cảnh báo bán hàng"),
    "p_alerts_leads": ("Marketing alerts", "Cảnh báo marketing"),
    "p_alerts_production": ("Production alerts", "Cảnh báo sản xuất"),
    "p_timeline": ("Timeline: lead → deal → order → shipment", "Dòng thời gian: khách tiềm năng → cơ hội → đơn → giao"),
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


def word(key: str, lang: Lang) -> str:
    return WORDS[key][0 if lang == "en" else 1]


def pick_lang(asked: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """The query's ``lang`` first, then the cookie, then the browser's first choice; English otherwise."""
    for choice in (asked, cookie):
        if choice in LANGS:
            return "en" if choice == "en" else "vi"
    first = (accept_language or "").split(",")[0].strip().lower()
    return "vi" if first.startswith("vi") else "en"


def _group(digits: str, sep: str) -> str:
    out: list[str] = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return sep.join(out)


def number(value: Any, lang: Lang, *, places: int | None = None) -> str:
    """A number as people write it: 1,234,567.5 in English, 1.234.567,5 in Vietnamese."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places))
    sign = "-" if d < 0 else ""
    whole, _, frac = f"{abs(d):f}".partition(".")
    thousands, point = (",", ".") if lang == "en" else (".", ",")
    text = _group(whole, thousands)
    if frac.strip("0") or (places and frac):
        text += point + (frac if places else frac.rstrip("0"))
    return sign + text


def fmt(value: Any, kind: str, lang: Lang, tz: tzinfo | None = None) -> str:  # noqa: C901 - a flat table: one arm per kind of cell
    """One cell's text. ``value`` is exactly what the API answered; only its writing changes (times in ``tz``,
    the business's time zone)."""
    if value is None:
        return "—"
    if kind == "bool":
        return word("yes" if value else "no", lang)
    if kind == "money":
        if isinstance(value, dict):  # {currency: amount}, as the board sums each currency apart
            return " · ".join(f"{number(a, lang)} {c}" for c, a in sorted(value.items())) or "0"
        return number(value, lang, places=0)
    if kind == "pct" and isinstance(value, int | float | str):  # a ratio 0..1 shown as a percentage
        try:
            return number(Decimal(str(value)) * 100, lang, places=1) + " %"
        except InvalidOperation:
            return str(value)
    if kind == "ratio":
        return number(value, lang, places=2)
    if kind == "days":
        return number(value, lang, places=1)
    if kind == "int":
        return number(value, lang)
    if kind == "datetime" and isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
        if tz is not None and at.tzinfo is not None:
            at = at.astimezone(tz)
        return f"{at:%Y-%m-%d %H:%M}"
    if kind == "stage" and isinstance(value, str) and value in WORDS:
        return word(value, lang)
    if kind == "counts" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
    if kind == "list" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
