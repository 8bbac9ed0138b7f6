"""The production rules' refusals."""

from __future__ import annotations

from shared.core.decider import AbsentError, RuleError


class OrderRuleError(RuleError):
    """A production rule refused the command."""


class NotFoundError(OrderRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""
