"""The console's least-privilege roles, as Django groups with explicit permission sets.

- "operator": runs deals and orders (creates and edits deals and products, publishes, pauses,
  resumes, ends, reconciles, replays and discards dead letters, cancels orders) without being a
  superuser: no users, groups or admin log pages.
- "viewer" (support, finance): sees products, the stock trail, deals, live pages, orders and
  reconciliation reports; changes and triggers nothing.

Both need `is_staff` to enter the admin (role_grant sets it). Permissions are named
"app_label.codename"; the deal and order rights that are not plain model permissions are
declared on the models (deals.run_deal, orders.cancel_order). `roles_sync` is idempotent and
sets each group's permissions to exactly these: the data migration runs it, and so do
`manage.py grant_role` and `seed_demo` (a database flushed by a test keeps no groups).
"""

from django.apps import apps as global_apps
from django.db import transaction

from .models import User

OPERATOR = "operator"
VIEWER = "viewer"

_VIEW = [
    "catalog.view_product",
    "catalog.view_stockmovement",
    "deals.view_deal",
    "orders.view_order",
    "orders.view_reconciliationreport",
]
ROLES: dict[str, frozenset[str]] = {
    VIEWER: frozenset(_VIEW),
    OPERATOR: frozenset(
        [
            *_VIEW,
            "catalog.add_product",
            "catalog.change_product",  # descriptive fields, price, stock by delta
            "deals.add_deal",
            "deals.change_deal",
            "deals.delete_deal",  # drafts only (a published deal can't be deleted)
            "deals.run_deal",
            "orders.cancel_order",
        ]
    ),
}


def roles_sync(apps=global_apps) -> None:
    """Creates the groups and sets their permissions to exactly ROLES. `apps`: a migration's
    historical registry, or the real one. A permission missing from the database raises
    LookupError (a typo here must not silently grant less)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    with transaction.atomic():
        for name, perms in ROLES.items():
            group, _ = group_model.objects.get_or_create(name=name)
            found = []
            for perm in sorted(perms):
                app_label, codename = perm.split(".")
                row = permission_model.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).first()
                if row is None:
                    raise LookupError(f"permission {perm} does not exist (migrate first)")
                found.append(row)
            group.permissions.set(found)


def role_grant(*, user: User, role: str) -> None:
    """Makes `user` staff in exactly the `role` group (the other role's group is left), never
    a superuser. Idempotent."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {sorted(ROLES)}")
    group_model = global_apps.get_model("auth", "Group")
    with transaction.atomic():
        roles_sync()
        user.groups.remove(*group_model.objects.filter(name__in=set(ROLES) - {role}))
        user.groups.add(group_model.objects.get(name=role))
        if not user.is_staff:
            User.objects.filter(pk=user.pk).update(is_staff=True)
            user.is_staff = True
