"""The commands on a deal. Ids come in as fields (the edge gives a new activity, quote or follow-up its id) and
times as the decision's arguments: no command makes an id or reads a clock. Request examples are the edge's
(services.deals.api.forms)."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.deals.domain.forms import AddressField, ContactField, LineField
from services.deals.domain.pipeline import DEFAULT_PIPELINE_ID
from services.deals.events import ActivityType, Channel, Name, Probability, Text
from shared.core.limits import (
    MAX_ITEMS,
    MAX_TEXT_CHARS,
    Code,
    Day,
    DecimalText,
    ExternalId,
    Identifier,
    Label,
    MoneyField,
)

MAX_LINES = 200  # lines of a deal or a quote


class Command(BaseModel):
    """A command on a deal. Its strings are at most MAX_TEXT_CHARS unless a field says less (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class OpenDeal(Command):
    name: ClassVar[str] = "open_deal"
    title: Name
    customer: Name
    organisation_id: uuid.UUID | None = None  # the directory's organisation: the deal opens linked to it
    person_ids: tuple[uuid.UUID, ...] = Field((), max_length=MAX_ITEMS)  # its people on the deal
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    stage_id: Identifier | None = None  # default: the pipeline's first open stage
    pipeline_id: Identifier = DEFAULT_PIPELINE_ID
    contact_id: Identifier | None = None
    contact: ContactField | None = None
    value: MoneyField | None = None
    lines: tuple[LineField, ...] = Field((), max_length=MAX_LINES)
    expected_close_date: Day | None = None
    source_lead_id: uuid.UUID | None = None
    source: Code | None = None
    campaign_id: ExternalId | None = None
    previous_deal_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _contact_needs_subject(self) -> OpenDeal:
        if self.contact is not None and not (self.contact_id or self.source_lead_id):
            raise ValueError("contact details need a contact_id (their data subject) or a source_lead_id")
        if self.person_ids and self.organisation_id is None:
            raise ValueError("person_ids need the organisation_id they belong to")
        return self


class MoveStage(Command):
    name: ClassVar[str] = "move_stage"
    stage_id: Identifier
    note: str | None = None


class ChangeValue(Command):
    name: ClassVar[str] = "change_value"
    value: MoneyField
    reason: str | None = None


class ChangeLines(Command):
    name: ClassVar[str] = "change_lines"
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    reason: str | None = None


class ChangeCloseDate(Command):
    name: ClassVar[str] = "change_close_date"
    expected_close_date: Day
    reason: str | None = None


class OverrideProbability(Command):
    name: ClassVar[str] = "override_probability"
    probability: Annotated[Probability, DecimalText()]
    reason: Text


class ClearProbabilityOverride(Command):
    name: ClassVar[str] = "clear_probability_override"
    reason: str | None = None


class Reassign(Command):
    name: ClassVar[str] = "reassign"
    owner_id: Annotated[Identifier, Field(min_length=1)]
    team_id: Identifier | None = None
    reason: str | None = None


class LinkCustomer(Command):
    """Link the deal to its customer in the directory: an organisation and, optionally, its people on the deal
    (decision 0017). The organisation and people must exist and be the caller's to see (an unknown one is a 422
    naming the field, another team's a 404); one merged into another links to the one it was merged into. The
    typed customer stays; a later link replaces this one. Open, won or lost deals alike: old deals get their
    customer too."""

    name: ClassVar[str] = "link_customer"
    organisation_id: uuid.UUID
    person_ids: tuple[uuid.UUID, ...] = Field((), max_length=MAX_ITEMS)
    reason: str | None = None


class LogActivity(Command):
    name: ClassVar[str] = "log_activity"
    activity_id: uuid.UUID
    activity_type: ActivityType
    channel: Channel
    direction: Annotated[str, Field(pattern=r"^(outbound|inbound)$")] = "outbound"
    outcome: str | None = None
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60)
    note: str | None = None


class RecordNeeds(Command):
    name: ClassVar[str] = "record_needs"
    needs: tuple[Text, ...] = Field(min_length=1, max_length=MAX_ITEMS)
    budget: MoneyField | None = None
    decision_date: Day | None = None
    note: str | None = None


class SendQuote(Command):
    name: ClassVar[str] = "send_quote"
    quote_id: uuid.UUID
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    valid_until: Day
    offer: str | None = None


class ReviseQuote(Command):
    name: ClassVar[str] = "revise_quote"
    quote_id: uuid.UUID
    lines: tuple[LineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    valid_until: Day
    offer: str | None = None
    reason: str | None = None


class AcceptQuote(Command):
    name: ClassVar[str] = "accept_quote"
    quote_id: uuid.UUID


class RejectQuote(Command):
    name: ClassVar[str] = "reject_quote"
    quote_id: uuid.UUID
    reason: Text


class WinDeal(Command):
    name: ClassVar[str] = "win"
    quote_id: uuid.UUID | None = None  # default: the accepted quote, if any
    requested_delivery_date: Day | None = None
    delivery_address: AddressField | None = None


class LoseDeal(Command):
    name: ClassVar[str] = "lose"
    reason: Text
    competitor: Label | None = None
    note: str | None = None


class ReopenDeal(Command):
    name: ClassVar[str] = "reopen"
    reason: Text
    stage_id: Identifier | None = None  # default: the first open stage


class StartFollowUp(Command):
    name: ClassVar[str] = "start_follow_up"
    follow_up_id: uuid.UUID
    kind: Annotated[str, Field(pattern=r"^(satisfaction_check|onboarding|next_opportunity)$")] = "satisfaction_check"
    due_on: Day
    order_id: uuid.UUID | None = None
    shipment_id: uuid.UUID | None = None


class RescheduleFollowUp(Command):
    name: ClassVar[str] = "reschedule_follow_up"
    follow_up_id: uuid.UUID
    due_on: Day
    reason: Text


class RecordFollowUpContact(Command):
    name: ClassVar[str] = "record_follow_up_contact"
    follow_up_id: uuid.UUID
    channel: Channel
    note: str | None = None


class RecordFeedback(Command):
    name: ClassVar[str] = "record_feedback"
    follow_up_id: uuid.UUID
    csat: int | None = Field(None, ge=1, le=5)
    nps: int | None = Field(None, ge=0, le=10)
    comment: str | None = None

    @model_validator(mode="after")
    def _something(self) -> RecordFeedback:
        if self.csat is None and self.nps is None and not self.comment:
            raise ValueError("feedback needs a csat score, an nps score or a comment")
        return self


class CompleteFollowUp(Command):
    name: ClassVar[str] = "complete_follow_up"
    follow_up_id: uuid.UUID
    outcome: Text
    next_opportunity: bool = False


class FlagDeliveryRisk(Command):
    name: ClassVar[str] = "flag_delivery_risk"
    order_id: uuid.UUID
    reason: Text
    new_eta: Day | None = None


class EraseContact(Command):
    """Forget the deal's contact: the key of their data subject (``contact_id``) is destroyed, so their contact
    details and delivery address read as null in every service, store, topic and read model, and backups' copies
    within the erasure window (docs/OPERATIONS.md). A contact a lead brought is that lead's person: they are
    forgotten in the leads service too. The deal, its value and its history stay."""

    name: ClassVar[str] = "erase_contact"
    reason: Text


COMMANDS: dict[str, type[Command]] = {c.name: c for c in Command.__subclasses__()}
