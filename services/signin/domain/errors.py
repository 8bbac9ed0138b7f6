"""What the sign-in service refuses, each with its HTTP status and rule (``services.signin.api.app`` answers them
as problem+json, with ``Retry-After`` when ``retry_after`` is set)."""

from __future__ import annotations


class SignInError(Exception):
    status = 400
    rule = "refused"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class SignInRefusedError(SignInError):
    """Wrong email or password, an inactive user, or a user the directory does not know: one answer for all."""

    status, rule = 401, "bad_credentials"


class LockedError(SignInError):
    status, rule = 423, "locked"


class TooManyAttemptsError(SignInError):
    status, rule = 429, "too_many_requests"


class SessionEndedError(SignInError):
    """No such session, or it is over (idle, absolute, signed out, the user deactivated)."""

    status, rule = 401, "session_ended"


class ResetInvalidError(SignInError):
    """No such reset link, or already used, or expired."""

    status, rule = 400, "reset_invalid"


class PasswordRejectedError(SignInError):
    """The new password breaks the policy (422 naming the field)."""

    status, rule = 422, "password_policy"


class UnavailableError(SignInError):
    """The directory or Kafka did not answer: nothing was done; try again."""

    status, rule = 503, "unavailable"


class UnknownUserError(SignInError):
    status, rule = 404, "not_found"
