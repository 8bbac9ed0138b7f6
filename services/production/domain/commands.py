"""The commands on a production order. Ids come in (the edge makes the ones a request leaves out)."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.production.domain.forms import (
    MAX_LINES,
    DefectField,
    DeliveryAddressField,
    MaterialField,
    OrderLineField,
)
from shared.core.limits import MAX_COUNT, MAX_TEXT_CHARS, AwareMoment, Day, ExternalId, Identifier, Label, Quantity


class Command(BaseModel):
    """A command on an order. Its strings are at most MAX_TEXT_CHARS unless a field says less (shared.core.limits)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT_CHARS)
    name: ClassVar[str]


class CreateOrder(Command):
    name: ClassVar[str] = "create"
    customer: Annotated[str, Field(min_length=1, max_length=200)]
    lines: tuple[OrderLineField, ...] = Field(min_length=1, max_length=MAX_LINES)
    due_date: Day
    priority: Annotated[str, Field(pattern=r"^(low|normal|high|urgent)$")] = "normal"
    deal_id: uuid.UUID | None = None
    contact_id: Identifier | None = None
    delivery_address: DeliveryAddressField | None = None

    @model_validator(mode="after")
    def _address_needs_subject(self) -> CreateOrder:
        if self.delivery_address is not None and self.contact_id is None:
            raise ValueError("a delivery address needs a contact_id (its data subject)")
        return self


class Plan(Command):
    name: ClassVar[str] = "plan"
    planned_start: Day
    planned_end: Day
    materials: tuple[MaterialField, ...] = Field((), max_length=MAX_LINES)
    work_centre: Label | None = None


class StartDesign(Command):
    name: ClassVar[str] = "start_design"


class ApproveDesign(Command):
    name: ClassVar[str] = "approve_design"


class RequestMaterials(Command):
    name: ClassVar[str] = "request_materials"
    materials: tuple[MaterialField, ...] = Field(min_length=1, max_length=MAX_LINES)
    supplier: Label | None = None
    expected_on: Day | None = None


class ReceiveMaterials(Command):
    name: ClassVar[str] = "receive_materials"
    materials: tuple[MaterialField, ...] = Field(min_length=1, max_length=MAX_LINES)
    complete: bool = True


class ReportShortage(Command):
    name: ClassVar[str] = "report_shortage"
    component: Annotated[str, Field(min_length=1, max_length=200)]
    quantity_short: Quantity
    expected_date: Day | None = None


class StartAssembly(Command):
    name: ClassVar[str] = "start_assembly"
    work_centre: Label | None = None


class RecordOutput(Command):
    name: ClassVar[str] = "record_output"
    product: Label
    quantity: Quantity


class Scrap(Command):
    name: ClassVar[str] = "scrap"
    product: Label
    quantity: Quantity
    cause: Annotated[str, Field(min_length=1, max_length=200)]


class CompleteAssembly(Command):
    name: ClassVar[str] = "complete_assembly"


class RecordInspection(Command):
    name: ClassVar[str] = "record_inspection"
    passed: bool
    inspected_quantity: Quantity
    defects: tuple[DefectField, ...] = Field((), max_length=MAX_LINES)

    @model_validator(mode="after")
    def _defects_when_failed(self) -> RecordInspection:
        if not self.passed and not self.defects:
            raise ValueError("a failed inspection names its defects")
        return self


class CompleteRework(Command):
    name: ClassVar[str] = "complete_rework"
    quantity: Quantity


class Pack(Command):
    name: ClassVar[str] = "pack"
    packages: int = Field(ge=1, le=MAX_COUNT)
    quantity: Quantity | None = None  # default: everything produced and not yet packed


class Ship(Command):
    name: ClassVar[str] = "ship"
    shipment_id: uuid.UUID  # a request may leave it out: the edge gives a new shipment its id
    carrier: Annotated[str, Field(min_length=1, max_length=100)]
    tracking_no: ExternalId | None = None
    quantity: Quantity


class ConfirmDelivery(Command):
    name: ClassVar[str] = "confirm_delivery"
    shipment_id: uuid.UUID
    delivered_at: AwareMoment | None = None


class Hold(Command):
    name: ClassVar[str] = "hold"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Resume(Command):
    name: ClassVar[str] = "resume"
    reason: str | None = None


class ChangeDueDate(Command):
    name: ClassVar[str] = "change_due_date"
    due_date: Day
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Cancel(Command):
    name: ClassVar[str] = "cancel"
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class EraseContact(Command):
    """Forget the order's contact: the key of their data subject (``contact_id``) is destroyed, so the delivery
    address reads as null in every store, topic and read model, and backups' copies within the erasure window
    (docs/OPERATIONS.md); whatever else is sealed under that key in any service (the deal's contact, the lead's
    details) goes with it. The order, its lines and its history stay."""

    name: ClassVar[str] = "erase_contact"
    reason: Annotated[str, Field(min_length=1, max_length=500)]
