from apps.core.errors import ApplicationError, Conflict, ErrorCode


class EmailExists(Conflict):
    code = ErrorCode.EMAIL_EXISTS
    default_message = "An account with this email already exists."


class InvalidCredentials(ApplicationError):
    code = ErrorCode.INVALID_CREDENTIALS
    http_status = 401
    default_message = "Email or password is incorrect."


class InvalidToken(ApplicationError):
    code = ErrorCode.INVALID_TOKEN
    http_status = 401
    default_message = "The token is invalid or expired."


class AccessRevoked(InvalidToken):
    """A token of a user deactivated or deleted since it was issued: what authentication
    answers (apps.accounts.revocation), and what a service answers when PostgreSQL finds the
    user gone first."""

    default_message = "The token was revoked: its user signed out, or was deactivated or deleted."
