"""Revoking a user's access tokens whenever the user is deactivated or deleted, whichever path
does it (the admin's form or bulk delete, a shell, a command): the tokens are stateless, so
without this a deactivated or deleted user keeps buying for the rest of their token's hour.

Signals, not a service the admin calls, because this is a security property every write path
must keep; the receivers hold no business logic and delegate to `user_access_revoke`. They run
inside the writer's transaction, so a Redis error fails the deactivation instead of silently
leaving the tokens valid. A queryset `.update(is_active=False)` sends no signal: deactivate
with `user.save()` (the admin does). Connected in AccountsConfig.ready()."""

from typing import Any

from .models import User
from .revocation import user_access_revoke


def revoke_on_deactivation(sender: type[User], instance: User, **kwargs: Any) -> None:
    if not instance.is_active and not kwargs.get("raw"):
        user_access_revoke(user_id=instance.pk)


def revoke_on_deletion(sender: type[User], instance: User, **kwargs: Any) -> None:
    user_access_revoke(user_id=instance.pk)
