"""A purchase whose shopper PostgreSQL no longer has.

Authentication refuses a deactivated or deleted user's token (apps.accounts.revocation), but a
process sees another's revocation up to a second late: in that window the order's foreign key
to its user is what refuses the write. The request then answers what authentication would
have, 401, never a 500 with the database's words."""

import uuid

from django.db import IntegrityError

from apps.accounts.errors import AccessRevoked
from apps.accounts.models import User

FOREIGN_KEY_VIOLATION = "23503"


def raise_if_shopper_gone(exc: IntegrityError, *, user_id: uuid.UUID) -> None:
    """Raises AccessRevoked (401) when `exc` is a foreign key refusal and the shopper is gone.
    Runs after the failed transaction rolled back (one query, on this failure path only)."""
    if getattr(exc.__cause__, "sqlstate", None) != FOREIGN_KEY_VIOLATION:
        return
    if not User.objects.filter(pk=user_id).exists():
        raise AccessRevoked() from exc
