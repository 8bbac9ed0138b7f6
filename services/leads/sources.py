"""Where leads come from, as each source really sends them, mapped to one ``CaptureLead``.

- website form: signed ``X-Pipelines-Signature: sha256=<HMAC of the body with the form secret>``; our JSON
  form (below); external id ``submission_id``.
- Ladipage: ``?token=<the landing-page token>`` in the webhook URL (Ladipage cannot sign); its form fields as
  JSON; external id ``submission_id``/``id``, else a hash of the body (a repeated delivery is the same lead).
- Facebook Lead Ads: ``X-Hub-Signature-256: sha256=<HMAC of the body with the app secret>``; only ids, the
  fields are fetched from the Graph API; external id ``leadgen_id``.
- Google Ads lead form: ``google_key`` in the body equals the configured key; ``user_column_data``; external id
  ``lead_id``; test leads (``is_test``) are acknowledged and not captured.

Field mapping (every source): a full name (or first + last) → ``name``; email → ``email``; phone → ``phone``
(normalised to E.164); company → ``company``; job title → ``title``; every other question → ``answers``
under its own label, as asked (Vietnamese kept). UTM parameters and the source's ad/form/campaign ids →
``attribution``. The whole payload is kept (sealed) so a mapping can be re-run on it later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from services.leads import normalize
from services.leads.domain import CaptureLead
from services.leads.events import Attribution, Consent, LeadContact, Source

UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
NAME_KEYS = ("full_name", "name", "fullname", "ho_ten", "họ tên", "họ và tên", "ho_va_ten")
EMAIL_KEYS = ("email", "e-mail", "work_email")
PHONE_KEYS = ("phone", "phone_number", "so_dien_thoai", "số điện thoại", "sdt", "mobile")
COMPANY_KEYS = ("company", "company_name", "cong_ty", "công ty")
TITLE_KEYS = ("title", "job_title", "chuc_vu", "chức vụ")
IGNORED = frozenset(
    {
        *UTM,
        "submission_id",
        "id",
        "url_page",
        "page_url",
        "referrer",
        "consent",
        "form_id",
        "campaign_id",
        "ip",
        "time",
        "token",
    }
)


class WebhookRejectedError(Exception):
    """The request is not from the source it claims (HTTP 401) or not a lead payload (HTTP 422)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def verify_hmac(body: bytes, header: str | None, secret: str, *, prefix: str = "sha256=") -> None:
    if not header or not header.startswith(prefix):
        raise WebhookRejectedError(401, "missing signature")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, header[len(prefix) :].strip().lower()):
        raise WebhookRejectedError(401, "bad signature")


def verify_token(given: str | None, expected: str) -> None:
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejectedError(401, "bad token")


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejectedError(422, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookRejectedError(422, "the body is not a JSON object")
    return data


def _pick(fields: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if fields.get(k):
            return fields[k]
    return None


def contact_from(fields: dict[str, str]) -> tuple[LeadContact | None, dict[str, str]]:
    """The contact and the remaining answers from flat label → value fields."""
    lowered = {normalize.text(k.lower()) or k: v for k, v in fields.items()}
    name = _pick(lowered, NAME_KEYS)
    if name is None and (lowered.get("first_name") or lowered.get("last_name")):
        name = " ".join(p for p in (lowered.get("last_name"), lowered.get("first_name")) if p)
    raw_email = _pick(lowered, EMAIL_KEYS)
    email = normalize.email(raw_email)
    contact = LeadContact(
        name=normalize.text(name),
        email=email,
        phone=normalize.phone(_pick(lowered, PHONE_KEYS)) or normalize.text(_pick(lowered, PHONE_KEYS)),
        company=normalize.text(_pick(lowered, COMPANY_KEYS)),
        title=normalize.text(_pick(lowered, TITLE_KEYS)),
    )
    used = set(NAME_KEYS + EMAIL_KEYS + PHONE_KEYS + COMPANY_KEYS + TITLE_KEYS + ("first_name", "last_name"))
    answers = {
        k: normalize.text(str(v)) or ""
        for k, v in fields.items()
        if (normalize.text(k.lower()) or k) not in used and k not in IGNORED and v not in (None, "")
    }
    empty = not any(contact.model_dump().values())
    return (None if empty else contact), answers


def _utm(data: dict[str, Any]) -> dict[str, str | None]:
    return {k: (str(data[k]) if data.get(k) else None) for k in UTM}


# ---------------------------------------------------------------------------------------------- website form
def website_form(data: dict[str, Any]) -> CaptureLead:
    """Our own website's form: {"submission_id", "name", "email", "phone", "company", "title", "message",
    "consent": bool, "page_url", "utm_*", and any other question}."""
    if not data.get("submission_id"):
        raise WebhookRejectedError(422, "submission_id is required")
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    contact, answers = contact_from(fields)
    if contact is None or not (contact.email or contact.phone):
        raise WebhookRejectedError(422, "a lead needs an email or a phone")
    consent = (
        Consent(
            marketing=bool(data.get("consent")),
            given_at=datetime.now(UTC) if data.get("consent") else None,
            text_version=data.get("consent_text_version"),
        )
        if "consent" in data
        else None
    )
    return CaptureLead(
        source=Source.WEBSITE_FORM,
        external_id=str(data["submission_id"]),
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.WEBSITE_FORM,
            channel="website",
            campaign_id=data.get("campaign_id"),
            landing_page_url=data.get("page_url"),
            **_utm(data),
        ),
        consent=consent,
        raw_payload=data,
    )


# ---------------------------------------------------------------------------------------------- Ladipage
def ladipage(data: dict[str, Any]) -> CaptureLead:
    """A Ladipage form: flat fields (``name``, ``email``, ``phone``, ``form_item…``, ``url_page``, ``utm_*``)."""
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    contact, answers = contact_from(fields)
    if contact is None or not (contact.email or contact.phone):
        raise WebhookRejectedError(422, "a lead needs an email or a phone")
    external = data.get("submission_id") or data.get("id")
    if not external:  # Ladipage repeats a delivery with the same body: its hash identifies it
        external = "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return CaptureLead(
        source=Source.LANDING_PAGE,
        external_id=str(external),
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.LANDING_PAGE,
            channel="landing_page",
            campaign_id=data.get("campaign_id"),
            landing_page_url=data.get("url_page"),
            **_utm(data),
        ),
        raw_payload=data,
    )


# ---------------------------------------------------------------------------------------------- Facebook
class FacebookGraph(Protocol):
    async def fetch_lead(self, leadgen_id: str) -> dict[str, Any]: ...


class GraphAPIError(Exception):
    pass


class HttpFacebookGraph:
    """The Graph API's lead endpoint: GET /{version}/{leadgen_id}?fields=…&access_token=…"""

    FIELDS = "created_time,id,ad_id,adset_id,campaign_id,form_id,field_data,platform,is_organic"

    def __init__(self, access_token: str, *, version: str = "v21.0", client: httpx.AsyncClient | None = None) -> None:
        self._token = access_token
        self._version = version
        self._client = client or httpx.AsyncClient(base_url="https://graph.facebook.com", timeout=10)

    async def fetch_lead(self, leadgen_id: str) -> dict[str, Any]:
        response = await self._client.get(
            f"/{self._version}/{leadgen_id}", params={"fields": self.FIELDS, "access_token": self._token}
        )
        if response.status_code != 200:
            raise GraphAPIError(f"Graph API answered {response.status_code} for lead {leadgen_id}")
        data: dict[str, Any] = response.json()
        return data


def facebook_leadgen_ids(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``leadgen`` changes of a Page webhook: each with leadgen_id, page_id, form_id, ad_id, created_time."""
    if data.get("object") != "page":
        raise WebhookRejectedError(422, "not a Page webhook")
    out = []
    for entry in data.get("entry") or []:
        for change in entry.get("changes") or []:
            if change.get("field") == "leadgen" and change.get("value", {}).get("leadgen_id"):
                out.append(change["value"])
    return out


def facebook_lead(notification: dict[str, Any], lead: dict[str, Any]) -> CaptureLead:
    """A lead fetched from the Graph API: ``field_data`` is [{name, values: [...]}, …]."""
    fields = {f["name"]: ", ".join(str(v) for v in f.get("values") or []) for f in lead.get("field_data") or []}
    contact, answers = contact_from(fields)
    created = lead.get("created_time")
    captured_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z") if created else None
    return CaptureLead(
        source=Source.FACEBOOK_LEAD_ADS,
        external_id=str(lead.get("id") or notification["leadgen_id"]),
        contact=contact,
        answers=answers or None,
        captured_at=captured_at,
        attribution=Attribution(
            source=Source.FACEBOOK_LEAD_ADS,
            channel="facebook",
            campaign_id=_str(lead.get("campaign_id")),
            ad_id=_str(lead.get("ad_id") or notification.get("ad_id")),
            form_id=_str(lead.get("form_id") or notification.get("form_id")),
        ),
        raw_payload={"notification": notification, "lead": lead},
    )


# ---------------------------------------------------------------------------------------------- Google Ads
GOOGLE_COLUMNS = {
    "FULL_NAME": "name",
    "FIRST_NAME": "first_name",
    "LAST_NAME": "last_name",
    "EMAIL": "email",
    "WORK_EMAIL": "email",
    "PHONE_NUMBER": "phone",
    "WORK_PHONE": "phone",
    "COMPANY_NAME": "company",
    "JOB_TITLE": "title",
}


def google_ads(data: dict[str, Any]) -> CaptureLead | None:
    """A Google Ads lead form delivery; None for a test lead (``is_test``: not a real person)."""
    if not data.get("lead_id"):
        raise WebhookRejectedError(422, "lead_id is required")
    if data.get("is_test"):
        return None
    fields: dict[str, str] = {}
    for column in data.get("user_column_data") or []:
        key = GOOGLE_COLUMNS.get(column.get("column_id", ""), column.get("column_name") or column.get("column_id"))
        if key and column.get("string_value"):
            fields[key] = column["string_value"]
    contact, answers = contact_from(fields)
    return CaptureLead(
        source=Source.GOOGLE_ADS_LEAD_FORM,
        external_id=str(data["lead_id"]),
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.GOOGLE_ADS_LEAD_FORM,
            channel="google_ads",
            campaign_id=_str(data.get("campaign_id")),
            ad_id=_str(data.get("creative_id")),
            form_id=_str(data.get("form_id")),
        ),
        raw_payload={k: v for k, v in data.items() if k != "google_key"},
    )


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


MAPPINGS: dict[str, Callable[[dict[str, Any]], CaptureLead]] = {
    Source.WEBSITE_FORM.value: website_form,
    Source.LANDING_PAGE.value: ladipage,
}


def remap(source: str, raw: dict[str, Any]) -> CaptureLead | None:
    """Run a source's current mapping again on a kept raw payload."""
    if source in MAPPINGS:
        return MAPPINGS[source](raw)
    if source == Source.FACEBOOK_LEAD_ADS:
        return facebook_lead(raw["notification"], raw["lead"])
    if source == Source.GOOGLE_ADS_LEAD_FORM:
        return google_ads(raw)
    return None
