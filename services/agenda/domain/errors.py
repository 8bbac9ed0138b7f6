"""The agenda rules' refusals."""

from __future__ import annotations

from shared.core.decider import AbsentError, InvalidError, RuleError


class AgendaRuleError(RuleError):
    """An agenda rule refused the command (HTTP 409)."""


class NotFoundError(AgendaRuleError, AbsentError):
    """No such activity (HTTP 404)."""


class InvalidFieldError(AgendaRuleError, InvalidError):
    """A field of the command cannot be (a due time before the command's time): 422 naming ``field``."""

    def __init__(self, rule: str, message: str, field: str, where: str = "body") -> None:
        super().__init__(rule, message)
        self.field = field
        self.where = where
