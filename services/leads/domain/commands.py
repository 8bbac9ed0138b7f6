"""The commands on a lead, and the request forms their fields are validated as: the event contract's values as a
request (or a source's webhook) gives them, each bounded (shared.core.limits). Ids and times come in as fields or
as the decision's arguments: no command makes an id or reads a clock."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.leads.events import Attribution, Consent, EngagementKind, LeadContact
from shared.core.channels import Channel
from shared.core.limits import (
    MAX_ANSWER_CHARS,
    MAX_ANSWERS,
    MAX_ANSWERS_BYTES,
    MAX_COUNT,
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    AwareMoment,
    Code,
    Day,
    Email,
    ExternalId,
    Identifier,
    JsonObject,
    Label,
    MoneyField,
    Phone,
    Url,
    ValidatedAs,
    json_bytes_at_most,
)
from shared.core.money import Money

# ---------------------------------------------------------------------------------------------- request forms
# The event contract's values as a request (or a source's webhook) gives them: the same fields, each bounded
# (shared.core.limits). A command field holds the plain value (``ValidatedAs``): events never see these classes.
# A lead's source names it in every count by source (the funnel): never empty.
SourceName = Annotated[Code, Field(min_length=1)]


class LeadContactInput(LeadContact):
    """Bounded as the deal a conversion opens takes it (services.deals.events.Contact), so that it converts."""

    name: Annotated[Label, Field(min_length=1)] | None = None
    email: Email | None = None
    phone: Annotated[Phone, Field(min_length=3)] | None = None
    company: Label | None = None
    title: Label | None = None


class AttributionInput(Attribution):
    """Bounded so that what is accepted converts: the deal a conversion opens takes ``source`` and ``campaign_id``
    with the same limits (services.deals.domain.commands.OpenDeal: ``Code``, ``ExternalId``)."""

    source: SourceName
    channel: Code | None = None
    campaign_id: ExternalId | None = None
    utm_source: Label | None = None
    utm_medium: Label | None = None
    utm_campaign: Label | None = None
    utm_term: Label | None = None
    utm_content: Label | None = None
    landing_page_url: Url | None = None
    ad_id: ExternalId | None = None
    form_id: ExternalId | None = None


class ConsentInput(Consent):
    text_version: Code | None = None
    given_at: AwareMoment | None = None


LeadContactField = Annotated[LeadContact, ValidatedAs(LeadContactInput)]
UNREACHABLE = "a lead needs an email or a phone"


def reachable(contact: LeadContact) -> LeadContact:
    """The one rule every capture keeps, typed in, imported or mapped from a source's webhook: a lead can be
    reached, by email or by phone."""
    if not (contact.email or contact.phone):
        raise PydanticCustomError("contact_unreachable", UNREACHABLE)
    return contact


ReachableContact = Annotated[
    LeadContact,
    ValidatedAs(LeadContactInput),
    AfterValidator(reachable),
    Field(description="the person, with an email or a phone (or both)"),
]
AttributionField = Annotated[Attribution, ValidatedAs(AttributionInput)]
ConsentField = Annotated[Consent, ValidatedAs(ConsentInput)]
# A form's answers, question → answer as asked: a long answer is no reason to lose a lead, up to a limit.
Answers = Annotated[
    dict[Annotated[str, Field(max_length=MAX_NAME_CHARS)], Annotated[str, Field(max_length=MAX_ANSWER_CHARS)]],
    Field(
        max_length=MAX_ANSWERS,
        description=f"question → answer; at most {MAX_ANSWERS_BYTES} bytes together (compact UTF-8 JSON)",
    ),
    AfterValidator(json_bytes_at_most(MAX_ANSWERS_BYTES)),
]


# ---------------------------------------------------------------------------------------------- commands
class Command(BaseModel):
    """A command on a lead. Its strings are at most MAX_TEXT_CHARS unless a field says otherwise (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class CaptureLead(Command):
    """A lead as typed in, imported or mapped from a source's payload (kept whole in ``raw_payload``, bounded): with
    a source, and a contact with an email or a phone (``reachable``), however it comes."""

    name: ClassVar[str] = "capture"
    source: SourceName
    external_id: ExternalId | None = None
    contact: ReachableContact
    answers: Answers | None = None
    attribution: AttributionField | None = None
    consent: ConsentField | None = None
    raw_payload: JsonObject | None = None
    captured_at: AwareMoment | None = None  # when the source says it happened; default: now


class RecordDuplicate(Command):
    name: ClassVar[str] = "record_duplicate"
    duplicate_of: uuid.UUID
    match_keys: tuple[str, ...] = Field(max_length=20)


class MergeInto(Command):
    """On the lead that disappears: it is merged into the survivor."""

    name: ClassVar[str] = "merge_into"
    survivor_id: uuid.UUID


class Absorb(Command):
    name: ClassVar[str] = "absorb"
    other_lead_id: uuid.UUID


class UpdateContact(Command):
    name: ClassVar[str] = "update_contact"
    contact: LeadContactField
    reason: str


class Assign(Command):
    name: ClassVar[str] = "assign"
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    rule: Code = "manual"


class RecordEngagement(Command):
    name: ClassVar[str] = "record_engagement"
    kind: EngagementKind
    channel: Code | None = None
    campaign_id: ExternalId | None = None
    asset_id: ExternalId | None = None
    at: AwareMoment | None = None


class Segment(Command):
    name: ClassVar[str] = "segment"
    segments: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = Field(max_length=MAX_ITEMS)
    criteria_version: Code | None = None


class Score(Command):
    name: ClassVar[str] = "score"


class RecordContact(Command):
    name: ClassVar[str] = "contact"
    channel: Channel  # the one channel list (shared.core.channels)


class StartNurture(Command):
    name: ClassVar[str] = "start_nurture"
    sequence_id: Annotated[str, Field(min_length=1, max_length=60)]


class StopNurture(Command):
    name: ClassVar[str] = "stop_nurture"
    reason: str = "manual"


class RecordNurtureEmail(Command):
    name: ClassVar[str] = "record_nurture_email"
    step: int = Field(ge=1, le=MAX_COUNT)
    message_id: Annotated[str, Field(min_length=1, max_length=200)]


class ExtendOffer(Command):
    name: ClassVar[str] = "extend_offer"
    offer_id: Annotated[str, Field(min_length=1, max_length=60)]
    expires_on: Day | None = None


class StartTrial(Command):
    name: ClassVar[str] = "start_trial"
    product: Annotated[str, Field(min_length=1, max_length=200)]
    ends_on: Day


class Qualify(Command):
    name: ClassVar[str] = "qualify"
    level: Annotated[str, Field(pattern=r"^(mql|sql)$")]


class Disqualify(Command):
    name: ClassVar[str] = "disqualify"
    reason: Annotated[str, Field(pattern=r"^(no_budget|wrong_fit|spam|duplicate|unreachable|other)$")]
    note: str | None = None


class Convert(Command):
    name: ClassVar[str] = "convert"
    customer: Annotated[str, Field(min_length=1, max_length=200)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    owner_id: Identifier | None = None  # default: the lead's owner
    team_id: Identifier | None = None
    estimated_value: MoneyField | None = None
    expected_close_date: Day | None = None
    product_interest: Label | None = None


class Recycle(Command):
    name: ClassVar[str] = "recycle"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class RecordOutcome(Command):
    """From the deals service: the deal this lead became was won or lost."""

    name: ClassVar[str] = "record_outcome"
    deal_id: uuid.UUID
    won: bool
    value: Money | None = None
    reason: str | None = None
    at: AwareMoment


class Erase(Command):
    name: ClassVar[str] = "erase"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


COMMANDS: dict[str, type[Command]] = {c.name: c for c in Command.__subclasses__()}
