from rest_framework.permissions import BasePermission

from .models import User


class IsStaff(BasePermission):
    """Operator writes. Checked against the database, not the token claim, so a demoted operator
    loses write access at once even with a valid token. Writes are rare; the query is cheap."""

    message = "Staff only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if isinstance(user, User):
            return user.is_staff and user.is_active
        return User.objects.filter(pk=user.pk, is_staff=True, is_active=True).exists()
