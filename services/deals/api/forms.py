"""The per-command routes' request bodies: the domain's commands as a request gives them, with their OpenAPI
examples, and the ids the edge gives a new activity, quote or follow-up when the request names none (the domain
takes ids as arguments: it makes none). Each form is named as its command, so the API's schemas keep their names;
it is an instance of the command, so the handler takes it as is."""

# No `from __future__ import annotations` here: pydantic reads the overridden fields' types at runtime.

import uuid

from pydantic import ConfigDict, Field

from services.deals import domain


class MoveStage(domain.MoveStage):
    model_config = ConfigDict(json_schema_extra={"examples": [{"stage_id": "quote_sent", "note": "demo went well"}]})


class ChangeValue(domain.ChangeValue):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"value": {"amount": "120000000", "currency": "VND"}, "reason": "scope grew"}]}
    )


class ChangeCloseDate(domain.ChangeCloseDate):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"expected_close_date": "2027-01-15", "reason": "budget approval after Tết"}]}
    )


class LogActivity(domain.LogActivity):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_type": "meeting",
                    "channel": "meeting",
                    "outcome": "agreed on a trial",
                    "duration_minutes": 45,
                }
            ]
        }
    )
    activity_id: uuid.UUID = Field(default_factory=uuid.uuid4)


class SendQuote(domain.SendQuote):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lines": [
                        {
                            "product": "Tủ lạnh 300L",
                            "quantity": "10",
                            "unit_price": {"amount": "9000000", "currency": "VND"},
                            "discount_pct": "5",
                        }
                    ],
                    "valid_until": "2026-12-31",
                    "offer": "year-end promotion",
                }
            ]
        }
    )
    quote_id: uuid.UUID = Field(default_factory=uuid.uuid4)


class WinDeal(domain.WinDeal):
    model_config = ConfigDict(json_schema_extra={"examples": [{"requested_delivery_date": "2027-01-10"}]})


class LoseDeal(domain.LoseDeal):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "price", "competitor": "Rival Co", "note": "they offered 8% less"}]}
    )


class ReopenDeal(domain.ReopenDeal):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "the customer came back", "stage_id": "negotiation"}]}
    )


class StartFollowUp(domain.StartFollowUp):
    follow_up_id: uuid.UUID = Field(default_factory=uuid.uuid4)


class RecordFeedback(domain.RecordFeedback):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "follow_up_id": "6f1f3c8e-2f4e-5b7a-9d0c-1a2b3c4d5e99",
                    "csat": 5,
                    "nps": 9,
                    "comment": "giao hàng nhanh",
                }
            ]
        }
    )


class EraseContact(domain.EraseContact):
    __doc__ = domain.EraseContact.__doc__
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "data subject request #2026-118"}]})


class SetSalesTarget(domain.SetSalesTarget):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"team_id": "north", "period": "2027-Q1", "amount": {"amount": "900000000", "currency": "VND"}},
                {"owner_id": "u-lan", "period": "2026-12", "amount": {"amount": "300000000", "currency": "VND"}},
            ]
        }
    )


FORMS: dict[type[domain.Command], type[domain.Command]] = {
    domain.MoveStage: MoveStage,
    domain.ChangeValue: ChangeValue,
    domain.ChangeCloseDate: ChangeCloseDate,
    domain.LogActivity: LogActivity,
    domain.SendQuote: SendQuote,
    domain.WinDeal: WinDeal,
    domain.LoseDeal: LoseDeal,
    domain.ReopenDeal: ReopenDeal,
    domain.StartFollowUp: StartFollowUp,
    domain.RecordFeedback: RecordFeedback,
    domain.EraseContact: EraseContact,
}
# The bodies of ``POST /deals/{deal_id}/<command>``: every command but opening a deal, as its form where it has one.
COMMAND_BODIES: list[type[domain.Command]] = [
    FORMS.get(cmd, cmd) for cmd in domain.Command.__subclasses__() if cmd is not domain.OpenDeal
]

OPEN_DEAL_EXAMPLES = {
    "manual": {
        "value": {
            "title": "Tủ lạnh cho chuỗi cửa hàng",
            "customer": "Điện máy An Phát",
            "owner_id": "u-lan",
            "team_id": "north",
            "contact_id": "c-123",
            "contact": {"name": "Nguyễn Văn An", "phone": "+84901234567"},
            "lines": [
                {
                    "product": "Tủ lạnh 300L",
                    "quantity": "10",
                    "unit_price": {"amount": "9000000", "currency": "VND"},
                }
            ],
            "expected_close_date": "2026-12-20",
        }
    }
}
