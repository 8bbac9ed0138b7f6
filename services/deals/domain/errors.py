"""The deals' refusals: each names its rule; the edge maps the kind to a status (shared.edge.problems)."""

from __future__ import annotations

from shared.core.decider import AbsentError, InvalidError, RuleError


class DealRuleError(RuleError):
    """A sales rule refused the command."""


class InvalidCommandError(DealRuleError, InvalidError):
    """The command names something that does not exist in this context (HTTP 422)."""


class NotFoundError(DealRuleError, AbsentError):
    """No such aggregate, or part of one (HTTP 404)."""
