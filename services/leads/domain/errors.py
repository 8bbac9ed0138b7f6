"""The marketing rules' refusals: domain-neutral errors (shared.core.decider) the edge maps to status codes."""

from __future__ import annotations

from shared.core.decider import AbsentError, RuleError


class LeadRuleError(RuleError):
    """A marketing rule refused the command."""


class NotFoundError(LeadRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""
