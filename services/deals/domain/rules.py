"""The rule table managers read: which commands each deal status allows (tested pair by pair), and the refusal a
command meets in a status that does not allow it."""

from __future__ import annotations

from services.deals.domain.commands import (
    AcceptQuote,
    ChangeCloseDate,
    ChangeLines,
    ChangeValue,
    ClearProbabilityOverride,
    Command,
    CompleteFollowUp,
    EraseContact,
    FlagDeliveryRisk,
    LinkCustomer,
    LogActivity,
    LoseDeal,
    MoveStage,
    OpenDeal,
    OverrideProbability,
    Reassign,
    RecordFeedback,
    RecordFollowUpContact,
    RecordNeeds,
    RejectQuote,
    ReopenDeal,
    RescheduleFollowUp,
    ReviseQuote,
    SendQuote,
    StartFollowUp,
    WinDeal,
)
from services.deals.domain.deal import Deal, Status
from services.deals.domain.errors import DealRuleError, NotFoundError

OPEN, WON, LOST = Status.OPEN, Status.WON, Status.LOST
RULES: dict[str, frozenset[Status]] = {
    OpenDeal.name: frozenset({Status.NONE}),
    MoveStage.name: frozenset({OPEN}),
    ChangeValue.name: frozenset({OPEN}),
    ChangeLines.name: frozenset({OPEN}),
    ChangeCloseDate.name: frozenset({OPEN}),
    OverrideProbability.name: frozenset({OPEN}),
    ClearProbabilityOverride.name: frozenset({OPEN}),
    Reassign.name: frozenset({OPEN, WON, LOST}),  # a closed deal's follow-up or win-back changes hands too
    LinkCustomer.name: frozenset({OPEN, WON, LOST}),  # a closed deal's customer counts in its history (the 360)
    LogActivity.name: frozenset({OPEN, WON}),
    RecordNeeds.name: frozenset({OPEN}),
    SendQuote.name: frozenset({OPEN}),
    ReviseQuote.name: frozenset({OPEN}),
    AcceptQuote.name: frozenset({OPEN}),
    RejectQuote.name: frozenset({OPEN}),
    WinDeal.name: frozenset({OPEN}),
    LoseDeal.name: frozenset({OPEN}),
    ReopenDeal.name: frozenset({WON, LOST}),
    StartFollowUp.name: frozenset({WON}),
    RescheduleFollowUp.name: frozenset({WON}),
    RecordFollowUpContact.name: frozenset({WON}),
    RecordFeedback.name: frozenset({WON}),
    CompleteFollowUp.name: frozenset({WON}),
    FlagDeliveryRisk.name: frozenset({OPEN, WON}),
    EraseContact.name: frozenset({OPEN, WON, LOST}),
}


def check_allowed(deal: Deal, command: Command) -> None:
    allowed = RULES[command.name]
    if deal.status in allowed:
        return
    if deal.status == Status.NONE:
        raise NotFoundError("deal_not_found", "no such deal")
    if command.name == OpenDeal.name:
        raise DealRuleError("deal_exists", f"deal {deal.deal_id} is already open")
    if allowed == {WON}:
        raise DealRuleError("deal_not_won", f"{command.name} needs a won deal; this one is {deal.status}")
    if deal.status == OPEN:
        raise DealRuleError("deal_not_closed", f"{command.name} needs a won or lost deal; this one is open")
    raise DealRuleError("deal_closed", f"the deal is {deal.status}: reopen it before {command.name}")
