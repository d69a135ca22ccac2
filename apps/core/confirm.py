"""The admin's confirmation step for destructive actions (ending a deal early, cancelling
orders, discarding a dead letter): an intermediate page, in the manner of the admin's own
delete_selected, that asks for a reason and posts the request again with it.

A POST that carries the confirmation without a reason is refused: the page comes back with an
error message and nothing changes. The reason is what the audit records (apps.core.audit).
"""

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

CONFIRMED = "_confirmed"
REASON = "reason"
REASON_MAX = 500


def confirmed_reason(
    request,
    model_admin,
    *,
    title: str,
    question: str,
    objects: Iterable[str],
    confirm_label: str,
    cancel_url: str,
    action: str | None = None,
    selected: Iterable[str] = (),
) -> tuple[str, None] | tuple[None, TemplateResponse]:
    """(reason, None) when the operator confirmed and gave a reason; otherwise (None, the
    confirmation page), which the caller returns untouched. `action` and `selected`: for a
    changelist action, posted back so the admin runs the action again."""
    reason = request.POST.get(REASON, "").strip()[:REASON_MAX]
    if request.POST.get(CONFIRMED) and reason:
        return reason, None
    if request.POST.get(CONFIRMED):
        messages.error(request, "A reason is required: nothing was changed.")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "objects": list(objects),
        "confirm_label": confirm_label,
        "cancel_url": cancel_url,
        "opts": model_admin.model._meta,
        "form_url": request.get_full_path(),
        "action": action,
        "selected": [str(pk) for pk in selected],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_field": CONFIRMED,
        "reason_field": REASON,
        "reason_max": REASON_MAX,
    }
    return None, TemplateResponse(request, "admin/confirm_reason.html", context)
