"""The deals service's event contract: every event of the sales pipeline, as subscribers receive it.

Streams: ``pipeline-<slug>`` (stage definitions, versioned), ``deal-<uuid>``, ``sales-target-<uuid>``.
The deal a lead's conversion opens has the id ``deal_id_for_lead(lead_id)``; its outcome (``DealWon``, ``DealLost``
with ``source_lead_id``) is the lead's, and no other deal's is (no client can open a deal under that id).
Events carry what a subscriber needs without calling back: a stage change carries both stages' name, order
and probability as they were; a won deal carries the product lines production needs.
Personal data (the customer contact, the delivery address) is sealed under the contact's key; ``DealContactErased``
records that the contact's key was destroyed (the lead's, when the contact came from a lead: the same person).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, model_validator

from shared.core import channels
from shared.core.events import DomainEvent
from shared.core.money import DecimalStr, Money

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Probability = Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4)]

# The deal a converted lead opens: its id derives from the lead's (a name-based UUID, version 5: shared.core.ids).
NS_DEAL_FROM_LEAD = uuid.UUID("6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e01")


def deal_id_for_lead(lead_id: uuid.UUID) -> uuid.UUID:
    """The id of the deal the conversion of ``lead_id`` opens (the only deal whose outcome is the lead's)."""
    return uuid.uuid5(NS_DEAL_FROM_LEAD, str(lead_id))


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------------- pipeline
class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class StageDefinition(_Value):
    stage_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    name: Name
    order: int = Field(ge=0)
    probability: Probability
    stuck_after_days: int | None = Field(None, ge=1, le=3650)
    kind: StageKind = StageKind.OPEN


class StageSnapshot(_Value):
    """A stage as it was defined when the event happened."""

    stage_id: str
    name: str
    order: int
    probability: Probability
    kind: StageKind


class PipelineDefined(DomainEvent):
    """A pipeline's stages were (re)defined; each definition is a new version of the pipeline."""

    event_type: ClassVar[str] = "pipelines.deals.PipelineDefined"
    pipeline_id: str
    name: Name
    stages: tuple[StageDefinition, ...]
    reason: str | None = None

    @model_validator(mode="after")
    def _check_stages(self) -> PipelineDefined:
        ids = [s.stage_id for s in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stage ids must be unique")
        kinds = [s.kind for s in self.stages]
        if kinds.count(StageKind.WON) != 1 or kinds.count(StageKind.LOST) != 1:
            raise ValueError("a pipeline has exactly one won stage and one lost stage")
        if StageKind.OPEN not in kinds:
            raise ValueError("a pipeline needs at least one open stage")
        orders = [s.order for s in self.stages if s.kind == StageKind.OPEN]
        if len(set(orders)) != len(orders):
            raise ValueError("open stages must have distinct orders")
        return self


# ---------------------------------------------------------------------------------------------- deal parts
class ProductLine(_Value):
    product: Name
    quantity: DecimalStr = Field(gt=0, max_digits=18, allow_inf_nan=False)
    unit: Annotated[str, Field(min_length=1, max_length=20)] = "pcs"
    unit_price: Money
    discount_pct: DecimalStr = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)

    def total(self) -> Money:
        return self.unit_price.times(self.quantity * (100 - self.discount_pct) / 100)


class Contact(_Value):
    name: Name | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Field(min_length=3, max_length=30)] | None = None


class Address(_Value):
    line1: Name
    line2: str | None = None
    city: Name
    region: str | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "VN"


# the one channel list of leads, deals and the agenda (issue 25): zalo, in_person and sms added to the deals' own
Channel = channels.Channel


class ActivityType(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    DEMO = "demo"
    FREE_TRIAL = "free_trial"
    OFFER = "offer"
    SITE_VISIT = "site_visit"
    NOTE = "note"


class DealEvent(DomainEvent):
    deal_id: uuid.UUID


# ---------------------------------------------------------------------------------------------- deal
class DealOpened(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealOpened"
    personal_fields: ClassVar[tuple[str, ...]] = ("contact",)
    subject_field: ClassVar[str | None] = "contact_id"
    erased_by: ClassVar[str | None] = "pipelines.deals.DealContactErased"

    pipeline_id: str
    pipeline_version: int
    stage: StageSnapshot
    title: Name
    customer: Name
    contact_id: str | None  # the data subject: the source lead's id, or a contact id given at opening
    contact: Contact | None
    owner_id: str
    team_id: str | None
    value: Money
    lines: tuple[ProductLine, ...] = ()
    expected_close_date: date | None
    source_lead_id: uuid.UUID | None = None
    source: str | None = None  # e.g. facebook_lead_ads, website_form, referral
    campaign_id: str | None = None
    previous_deal_id: uuid.UUID | None = None
    opened_at: AwareDatetime


class StageChanged(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.StageChanged"
    from_stage: StageSnapshot
    to_stage: StageSnapshot
    direction: Annotated[str, Field(pattern=r"^(forward|backward)$")]
    skipped_stage_ids: tuple[str, ...] = ()
    entered_from_at: AwareDatetime  # when the deal entered the stage it leaves
    changed_at: AwareDatetime
    note: str | None = None


class DealValueChanged(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealValueChanged"
    old: Money
    new: Money
    reason: str | None = None


class DealLinesChanged(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealLinesChanged"
    lines: tuple[ProductLine, ...]
    value: Money  # the new total of the lines
    reason: str | None = None


class ExpectedCloseDateChanged(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.ExpectedCloseDateChanged"
    old: date | None
    new: date
    push_count: int  # how many times the date has been pushed later, this change included
    reason: str | None = None


class DealProbabilityOverridden(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealProbabilityOverridden"
    probability: Probability
    reason: Text


class DealProbabilityOverrideCleared(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealProbabilityOverrideCleared"
    reason: str | None = None


class DealReassigned(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealReassigned"
    from_owner_id: str
    to_owner_id: str
    from_team_id: str | None
    to_team_id: str | None
    reason: str | None = None


class ActivityLogged(DealEvent):
    """v2 added ``direction``: who reached out. v1 activities were all logged by the salesperson reaching out."""

    event_type: ClassVar[str] = "pipelines.deals.ActivityLogged"
    schema_version: ClassVar[int] = 2
    activity_id: uuid.UUID
    activity_type: ActivityType
    channel: Channel
    direction: Annotated[str, Field(pattern=r"^(outbound|inbound)$")]
    stage_id: str  # the stage the deal was in: "what converting deals did at each stage"
    outcome: str | None = None
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60)
    note: str | None = None

    @classmethod
    def upcast(cls, from_version: int, data: dict[str, Any]) -> dict[str, Any]:
        if from_version == 1:
            return {**data, "direction": "outbound"}
        return super().upcast(from_version, data)


class CustomerNeedsRecorded(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.CustomerNeedsRecorded"
    needs: tuple[Text, ...]
    budget: Money | None = None
    decision_date: date | None = None
    note: str | None = None


class QuoteSent(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.QuoteSent"
    quote_id: uuid.UUID
    version: int
    lines: tuple[ProductLine, ...]
    total: Money
    valid_until: date
    offer: str | None = None  # a promotion or time-limited offer attached (seed S9)


class QuoteRevised(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.QuoteRevised"
    quote_id: uuid.UUID
    version: int  # supersedes every earlier version of the quote
    lines: tuple[ProductLine, ...]
    total: Money
    valid_until: date
    offer: str | None = None
    reason: str | None = None


class QuoteAccepted(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.QuoteAccepted"
    quote_id: uuid.UUID
    version: int
    total: Money


class QuoteRejected(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.QuoteRejected"
    quote_id: uuid.UUID
    version: int
    reason: Text


class DealWon(DealEvent):
    """The customer signed: production starts an order from these lines."""

    event_type: ClassVar[str] = "pipelines.deals.DealWon"
    personal_fields: ClassVar[tuple[str, ...]] = ("delivery_address",)
    subject_field: ClassVar[str | None] = "contact_id"
    erased_by: ClassVar[str | None] = "pipelines.deals.DealContactErased"

    value: Money
    lines: tuple[ProductLine, ...]
    quote_id: uuid.UUID | None
    customer: str
    owner_id: str
    team_id: str | None
    stage_at_win: StageSnapshot
    opened_at: AwareDatetime
    won_at: AwareDatetime
    requested_delivery_date: date | None = None
    contact_id: str | None = None
    delivery_address: Address | None = None
    source_lead_id: uuid.UUID | None = None


class DealLost(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealLost"
    reason: Text
    competitor: str | None = None
    stage_at_loss: StageSnapshot
    value: Money
    lost_at: AwareDatetime
    source_lead_id: uuid.UUID | None = None
    note: str | None = None


class DealReopened(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DealReopened"
    was: Annotated[str, Field(pattern=r"^(won|lost)$")]
    to_stage: StageSnapshot
    reason: Text
    reopened_at: AwareDatetime


class FollowUpStarted(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.FollowUpStarted"
    follow_up_id: uuid.UUID
    order_id: uuid.UUID | None
    shipment_id: uuid.UUID | None
    kind: Annotated[str, Field(pattern=r"^(satisfaction_check|onboarding|next_opportunity)$")]
    due_on: date


class FollowUpDueChanged(DealEvent):
    """A delivery moved the follow-up's due date (e.g. a satisfaction check after delivery)."""

    event_type: ClassVar[str] = "pipelines.deals.FollowUpDueChanged"
    follow_up_id: uuid.UUID
    due_on: date
    reason: str


class FollowUpContactRecorded(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.FollowUpContactRecorded"
    follow_up_id: uuid.UUID
    channel: Channel
    note: str | None = None


class CustomerFeedbackRecorded(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.CustomerFeedbackRecorded"
    follow_up_id: uuid.UUID
    csat: int | None = Field(None, ge=1, le=5)
    nps: int | None = Field(None, ge=0, le=10)
    comment: str | None = None


class FollowUpCompleted(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.FollowUpCompleted"
    follow_up_id: uuid.UUID
    outcome: Text
    next_opportunity: bool = False


class DeliveryRiskFlagged(DealEvent):
    event_type: ClassVar[str] = "pipelines.deals.DeliveryRiskFlagged"
    order_id: uuid.UUID
    reason: Text
    new_eta: date | None = None


class DealCustomerLinked(DealEvent):
    """The deal's customer is this organisation of the directory, and these its people (decision 0017): set by a
    command on the deal, by ``organisation_id`` when it was opened, or by the reaction to the directory's link of a
    converted lead (``lead_id``, ``matched_by``: what the directory matched the lead's contact by). The typed
    ``customer`` string stays as it was. A later link replaces the earlier one."""

    event_type: ClassVar[str] = "pipelines.deals.DealCustomerLinked"
    organisation_id: uuid.UUID
    person_ids: tuple[uuid.UUID, ...] = ()
    reason: str | None = None
    lead_id: uuid.UUID | None = None
    matched_by: str | None = None


class DealContactErased(DealEvent):
    """The deal's contact was forgotten: the key of their data subject (``contact_id``) is destroyed, so their
    contact details and delivery address read as null in every service, store, topic and read model (within the
    erasure window for copies in backups: docs/OPERATIONS.md). ``reason``: the request's basis, not its details."""

    event_type: ClassVar[str] = "pipelines.deals.DealContactErased"
    subject_field: ClassVar[str | None] = "contact_id"
    erasure: ClassVar[bool] = True
    contact_id: str
    reason: Text
    erased_at: AwareDatetime


# ---------------------------------------------------------------------------------------------- targets
class SalesTargetSet(DomainEvent):
    """A revenue quota for an owner or a team over a period (calendar month or quarter, business time zone)."""

    event_type: ClassVar[str] = "pipelines.deals.SalesTargetSet"
    target_id: uuid.UUID
    owner_id: str | None
    team_id: str | None
    period: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2]|Q[1-4])$")]
    amount: Money
    reason: str | None = None
