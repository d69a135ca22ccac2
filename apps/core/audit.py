"""Recording an action on the record: who did what to which object, when and why.

One call, `action_record`, writes both places an operator or an on-call engineer looks:

- a `django.contrib.admin` LogEntry on the object, so the admin's History of a deal (or an
  order) and the deal page's "Recorded actions" list it with the operator's account, the time
  and a message of what and why;
- one structured log line (logger `flashdeals.audit`, fields `actor`, `action`, `object_type`,
  `object_id`, `reason`) for grep and log search.

System actions (beat closing an ended deal, the periodic reconciliation) pass `actor_id=None`:
a LogEntry needs a user, and a pretend "system" account would be one more login to guard, so
they are recorded as a log line with `actor="system"` only (plus their stock trail line, whose
empty actor the admin shows as "system"). Stock changes are recorded by the catalog services in
the stock trail (apps.catalog.models.StockMovement), with the same actor and the reason as note.

Call it inside the transaction of the change it describes (the services do): the LogEntry then
commits or rolls back with the change, and a refused action leaves no entry.
"""

import logging
from uuid import UUID

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

logger = logging.getLogger("flashdeals.audit")

SYSTEM = "system"
REASON_MAX = 500


def action_message(action: str, *, detail: str = "", reason: str = "") -> str:
    """The text the History shows: "end: 12 units back (reason: supplier recall)"."""
    text = action + (f": {detail}" if detail else "")
    return text + (f" (reason: {reason})" if reason else "")


def action_record(
    *,
    actor_id: UUID | None,
    obj: models.Model,
    action: str,
    reason: str = "",
    detail: str = "",
) -> None:
    """Records `action` on `obj` by `actor_id` (None: the system). `detail` says what changed
    beyond the verb (units returned, the order concerned); `reason` is the operator's why."""
    reason = reason.strip()[:REASON_MAX]
    message = action_message(action, detail=detail, reason=reason)
    if actor_id is not None:
        LogEntry.objects.create(
            user_id=actor_id,
            content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
            object_id=str(obj.pk),
            object_repr=str(obj)[:200],
            action_flag=CHANGE,
            change_message=message,
        )
    actor = str(actor_id) if actor_id is not None else SYSTEM
    logger.info(
        "%s %s by %s: %s",
        obj._meta.model_name,
        obj.pk,
        actor,
        message,
        extra={
            "actor": actor,
            "action": action,
            "object_type": obj._meta.label_lower,
            "object_id": str(obj.pk),
            "reason": reason,
        },
    )
