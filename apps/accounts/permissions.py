from rest_framework.permissions import BasePermission

from .models import User


class IsStaff(BasePermission):
    """Operator writes: an active staff user who holds the view's `required_permissions` (the
    operator role's, or a superuser's; apps.accounts.roles). A viewer is staff too and holds
    none of the write permissions, so the API refuses it exactly as the admin does. Checked
    against the database, not the token claim, so a demoted operator loses write access at once
    even with a valid token. Writes are rare; the queries are cheap."""

    message = "Staff with a role that may do this only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        row = user if isinstance(user, User) else User.objects.filter(pk=user.pk).first()
        required = getattr(view, "required_permissions", ())
        return bool(row and row.is_staff and row.is_active and row.has_perms(required))
