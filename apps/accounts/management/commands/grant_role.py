"""`manage.py grant_role EMAIL operator|viewer`: gives an existing account a console role (staff,
in exactly that group; never a superuser). `--revoke` takes the roles and staff away.
The groups are (re)created first, so this also repairs them."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.roles import ROLES, role_grant, roles_sync


class Command(BaseCommand):
    help = "Give an account the operator or viewer role in the admin (or --revoke it)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument("role", nargs="?", choices=sorted(ROLES))
        parser.add_argument("--revoke", action="store_true", help="remove every role and staff")

    def handle(self, *args, email: str, role: str | None, revoke: bool, **options) -> None:
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            raise CommandError(f"no account {email}")
        if revoke:
            roles_sync()
            user.groups.remove(*user.groups.filter(name__in=ROLES))
            User.objects.filter(pk=user.pk).update(is_staff=False)
            self.stdout.write(f"{user.email}: no role, not staff")
            return
        if role is None:
            raise CommandError("name a role: " + ", ".join(sorted(ROLES)))
        role_grant(user=user, role=role)
        self.stdout.write(f"{user.email}: staff, role {role}")
