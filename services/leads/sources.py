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
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from services.leads.domain import CaptureLead
from services.leads.events import Attribution, Consent, LeadContact, Source
from shared.core import normalize
from shared.core.limits import (
    LONE_SURROGATE,
    MAX_ANSWER_CHARS,
    MAX_ANSWERS,
    MAX_CODE_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_URL_CHARS,
    bounded_errors,
    has_lone_surrogate,
    may_hold_surrogates,
)

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
    """The request is not from the source it claims (HTTP 401) or not a lead payload (HTTP 422): ``detail`` says
    why, a sentence or (a field of the wrong type) each field at fault as a validation error."""

    def __init__(self, status: int, detail: str | list[dict[str, Any]]) -> None:
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


# Google Ads puts its key in the body: found in the bytes (the field's string value), so that nothing is parsed for a
# caller without it; the parsed body's own top-level ``google_key`` is checked again after.
_GOOGLE_KEY = re.compile(rb'"google_key"\s*:\s*"((?:[^"\\]|\\.){0,400})"')


def google_key(body: bytes) -> str | None:
    """The ``google_key`` string a Google Ads body carries, read without parsing the body (None: none)."""
    found = _GOOGLE_KEY.search(body)
    if found is None:
        return None
    try:
        key = json.loads(b'"' + found.group(1) + b'"')
    except ValueError:
        return None
    return key if isinstance(key, str) else None


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejectedError(422, "the body is not JSON") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise WebhookRejectedError(422, "the body nests too deep") from None
    if not isinstance(data, dict):
        raise WebhookRejectedError(422, "the body is not a JSON object")
    if may_hold_surrogates(body) and has_lone_surrogate(data):  # "\ud800": no database or topic can hold it
        raise WebhookRejectedError(422, f"the body's text may not hold {LONE_SURROGATE}")
    return data


# ---------------------------------------------------------------------------------------------- payload shapes
# What each source's payload must look like where the mapping reads it: a field of another JSON type (an object for
# a string, a list for an object, a number for text) answers 422 naming it (``loc`` from ``body``); fields the
# mapping does not read are kept as sent, in the raw payload.
def _source_id(value: Any) -> Any:
    """An id a source gives: a string, or a whole number (Google's campaign and form ids are numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("id_type", "Input should be a string or a whole number")
    return str(value)


def _scalar_text(value: Any) -> Any:
    """A form's value: a string, or a number written as one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value if isinstance(value, str) else str(value)


SourceId = Annotated[str, BeforeValidator(_source_id), Field(min_length=1, max_length=MAX_EXTERNAL_ID_CHARS)]
GraphId = Annotated[str, BeforeValidator(_source_id), Field(pattern=r"^[0-9]{1,40}$")]  # goes into the Graph URL
FormValue = Annotated[str, BeforeValidator(_scalar_text), Field(max_length=MAX_NAME_CHARS)]
FormUrl = Annotated[str, Field(max_length=MAX_URL_CHARS)]
M = TypeVar("M", bound=BaseModel)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Form(_Payload):
    """Fields a form's mapping reads beside its questions (which are any string or number)."""

    campaign_id: SourceId | None = None
    utm_source: FormValue | None = None
    utm_medium: FormValue | None = None
    utm_campaign: FormValue | None = None
    utm_term: FormValue | None = None
    utm_content: FormValue | None = None


class WebsiteForm(_Form):
    submission_id: SourceId
    page_url: FormUrl | None = None
    consent: bool | None = None
    consent_text_version: Annotated[str, Field(max_length=MAX_CODE_CHARS)] | None = None


class LadipageForm(_Form):
    submission_id: SourceId | None = None
    id: SourceId | None = None
    url_page: FormUrl | None = None


class FacebookChange(_Payload):
    field: Annotated[str, Field(max_length=MAX_CODE_CHARS)]
    value: Any = None


class FacebookEntry(_Payload):
    changes: list[FacebookChange] | None = None


class FacebookWebhook(_Payload):
    object: Annotated[str, Field(max_length=MAX_CODE_CHARS)]
    entry: list[FacebookEntry] | None = None


class FacebookLeadgen(_Payload):
    leadgen_id: GraphId
    page_id: SourceId | None = None
    form_id: SourceId | None = None
    ad_id: SourceId | None = None


class GraphField(_Payload):
    name: Annotated[str, Field(max_length=MAX_NAME_CHARS)]
    values: list[Annotated[str, BeforeValidator(_scalar_text), Field(max_length=MAX_ANSWER_CHARS)]] | None = None


def _graph_time(value: Any) -> Any:
    """The Graph API's ``created_time``: ``2026-11-24T09:03:15+0000``."""
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise PydanticCustomError("datetime_format", "Time should be written 2026-11-24T09:03:15+0000") from None
    return value


class GraphLead(_Payload):
    id: SourceId | None = None
    created_time: Annotated[datetime, BeforeValidator(_graph_time)] | None = None
    campaign_id: SourceId | None = None
    ad_id: SourceId | None = None
    form_id: SourceId | None = None
    field_data: list[GraphField] | None = Field(None, max_length=MAX_ANSWERS)


class GoogleColumn(_Payload):
    column_id: Annotated[str, Field(max_length=MAX_CODE_CHARS)] | None = None
    column_name: Annotated[str, Field(max_length=MAX_NAME_CHARS)] | None = None
    string_value: Annotated[str, Field(max_length=MAX_ANSWER_CHARS)] | None = None


class GoogleAdsLead(_Payload):
    lead_id: SourceId
    is_test: bool = False
    campaign_id: SourceId | None = None
    creative_id: SourceId | None = None
    form_id: SourceId | None = None
    user_column_data: list[GoogleColumn] | None = Field(None, max_length=MAX_ANSWERS)


def read(model: type[M], data: Any, *where: str | int) -> M:
    """``data`` read as ``model``; a field of the wrong type or over its bound answers 422 naming it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise WebhookRejectedError(422, bounded_errors(exc.errors(), prefix=where)) from None


def _pick(fields: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        if fields.get(k):
            return fields[k]
    return None


def contact_from(fields: dict[str, str]) -> tuple[LeadContact, dict[str, str]]:
    """The contact (empty if the fields name none) and the remaining answers from flat label → value fields. Whether
    it will do is the capture's rule for every source (``domain.commands.reachable``: an email or a phone)."""
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
    return contact, answers


def _utm(form: _Form) -> dict[str, str | None]:
    return {k: getattr(form, k) or None for k in UTM}


# ---------------------------------------------------------------------------------------------- website form
def website_form(data: dict[str, Any]) -> CaptureLead:
    """Our own website's form: {"submission_id", "name", "email", "phone", "company", "title", "message",
    "consent": bool, "page_url", "utm_*", and any other question}."""
    form = read(WebsiteForm, data, "body")
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    contact, answers = contact_from(fields)
    consent = (
        Consent(
            marketing=bool(form.consent),
            given_at=datetime.now(UTC) if form.consent else None,
            text_version=form.consent_text_version,
        )
        if "consent" in data
        else None
    )
    return CaptureLead(
        source=Source.WEBSITE_FORM,
        external_id=form.submission_id,
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.WEBSITE_FORM,
            channel="website",
            campaign_id=form.campaign_id,
            landing_page_url=form.page_url,
            **_utm(form),
        ),
        consent=consent,
        raw_payload=data,
    )


# ---------------------------------------------------------------------------------------------- Ladipage
def ladipage(data: dict[str, Any]) -> CaptureLead:
    """A Ladipage form: flat fields (``name``, ``email``, ``phone``, ``form_item…``, ``url_page``, ``utm_*``)."""
    form = read(LadipageForm, data, "body")
    fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int | float) and not isinstance(v, bool)}
    contact, answers = contact_from(fields)
    external = form.submission_id or form.id
    if not external:  # Ladipage repeats a delivery with the same body: its hash identifies it
        external = "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return CaptureLead(
        source=Source.LANDING_PAGE,
        external_id=external,
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.LANDING_PAGE,
            channel="landing_page",
            campaign_id=form.campaign_id,
            landing_page_url=form.url_page,
            **_utm(form),
        ),
        raw_payload=data,
    )


# ---------------------------------------------------------------------------------------------- Facebook
class FacebookGraph(Protocol):
    async def fetch_lead(self, leadgen_id: str) -> dict[str, Any]: ...


class GraphAPIError(Exception):
    """The Graph API could not give the lead (unreachable, an error, not JSON): Facebook delivers it again later."""


class HttpFacebookGraph:
    """The Graph API's lead endpoint: GET /{version}/{leadgen_id}?fields=…&access_token=…"""

    FIELDS = "created_time,id,ad_id,adset_id,campaign_id,form_id,field_data,platform,is_organic"

    def __init__(
        self,
        access_token: str,
        *,
        version: str = "v21.0",
        base_url: str = "https://graph.facebook.com",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._token = access_token
        self._version = version
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=10)

    async def fetch_lead(self, leadgen_id: str) -> dict[str, Any]:
        try:
            response = await self._client.get(
                f"/{self._version}/{leadgen_id}", params={"fields": self.FIELDS, "access_token": self._token}
            )
        except httpx.HTTPError as exc:  # never its text: the request's URL carries the access token
            raise GraphAPIError(f"the Graph API could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise GraphAPIError(f"Graph API answered {response.status_code} for lead {leadgen_id}")
        try:
            data = response.json()
        except ValueError:
            raise GraphAPIError(f"Graph API answered lead {leadgen_id} with something other than JSON") from None
        if not isinstance(data, dict):
            raise GraphAPIError(f"Graph API answered lead {leadgen_id} with something other than a JSON object")
        return data


def facebook_leadgen_ids(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``leadgen`` changes of a Page webhook: each with leadgen_id, page_id, form_id, ad_id, created_time."""
    webhook = read(FacebookWebhook, data, "body")
    if webhook.object != "page":
        raise WebhookRejectedError(422, "not a Page webhook")
    out = []
    for i, entry in enumerate(webhook.entry or []):
        for j, change in enumerate(entry.changes or []):
            if change.field == "leadgen":
                read(FacebookLeadgen, change.value, "body", "entry", i, "changes", j, "value")
                out.append(change.value)
    return out


def facebook_lead(notification: dict[str, Any], lead: dict[str, Any]) -> CaptureLead:
    """A lead fetched from the Graph API: ``field_data`` is [{name, values: [...]}, …]."""
    leadgen = read(FacebookLeadgen, notification, "body", "notification")
    graph = read(GraphLead, lead, "graph_lead")
    fields = {f.name: ", ".join(f.values or []) for f in graph.field_data or []}
    contact, answers = contact_from(fields)
    return CaptureLead(
        source=Source.FACEBOOK_LEAD_ADS,
        external_id=graph.id or leadgen.leadgen_id,
        contact=contact,
        answers=answers or None,
        captured_at=graph.created_time,
        attribution=Attribution(
            source=Source.FACEBOOK_LEAD_ADS,
            channel="facebook",
            campaign_id=graph.campaign_id,
            ad_id=graph.ad_id or leadgen.ad_id,
            form_id=graph.form_id or leadgen.form_id,
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
    form = read(GoogleAdsLead, data, "body")
    if form.is_test:
        return None
    fields: dict[str, str] = {}
    for column in form.user_column_data or []:
        key = GOOGLE_COLUMNS.get(column.column_id or "", column.column_name or column.column_id)
        if key and column.string_value:
            fields[key] = column.string_value
    contact, answers = contact_from(fields)
    return CaptureLead(
        source=Source.GOOGLE_ADS_LEAD_FORM,
        external_id=form.lead_id,
        contact=contact,
        answers=answers or None,
        attribution=Attribution(
            source=Source.GOOGLE_ADS_LEAD_FORM,
            channel="google_ads",
            campaign_id=form.campaign_id,
            ad_id=form.creative_id,
            form_id=form.form_id,
        ),
        raw_payload={k: v for k, v in data.items() if k != "google_key"},
    )


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
