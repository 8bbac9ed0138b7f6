"""The directory rules' refusals."""

from __future__ import annotations

from shared.core.decider import AbsentError, InvalidError, RuleError


class DirectoryRuleError(RuleError):
    """A directory rule refused the command (HTTP 409)."""


class NotFoundError(DirectoryRuleError, AbsentError):
    """No such user or team (HTTP 404)."""


class InvalidReferenceError(DirectoryRuleError, InvalidError):
    """The command names a user or team that does not exist, or cannot take it (HTTP 422 naming ``field``)."""

    def __init__(self, rule: str, message: str, field: str) -> None:
        super().__init__(rule, message)
        self.field = field


class DuplicateError(DirectoryRuleError):
    """Another organisation holds what the command gives (its tax code): 409 naming it (``existing``)."""

    def __init__(self, rule: str, message: str, existing: str) -> None:
        super().__init__(rule, message)
        self.existing = existing
