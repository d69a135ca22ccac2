"""Idempotent demo data for `make run`: an operator, a shopper, products, a live and an
upcoming deal. Safe to run on every start.

The demo operator is staff in the "operator" group (apps.accounts.roles), not a superuser: it
runs deals and orders in the admin (and reaches /silk/ and /metrics, which need staff) but not
users and groups. An existing account is only added to the group, its flags left as they are.

Under production settings (DEMO_PUBLISHED_PASSWORDS_ALLOWED false) no account is ever created
from a password this repository publishes (README, .env.example, base.py): the operator is
created only on request (`--operator`) with a DEMO_ADMIN_PASSWORD the operator chose, and the
documented way is `manage.py createsuperuser`; the demo shopper only with a DEMO_SHOPPER_PASSWORD
of the operator's. The catalog is created either way.
"""

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.roles import OPERATOR, role_grant
from apps.lab.demo import seed_demo_catalog

# Every demo password the repository shows anyone who reads it.
PUBLISHED_PASSWORDS = frozenset({"admin-pass-123", "shopper-pass-123"})


class Command(BaseCommand):
    help = "Create demo users and catalog data if missing (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--operator",
            action="store_true",
            help="under production settings, also create the demo operator (staff, operator "
            "role) with the password in DEMO_ADMIN_PASSWORD, which must be your own",
        )

    def handle(self, *args, operator: bool = False, **options) -> None:
        strict = not settings.DEMO_PUBLISHED_PASSWORDS_ALLOWED
        notes = []
        admin = None
        if not strict:
            admin = self._user(
                settings.DEMO_ADMIN_EMAIL, settings.DEMO_ADMIN_PASSWORD, "Demo Operator", staff=True
            )
        elif operator:
            password = settings.DEMO_ADMIN_PASSWORD
            if problem := self._password_problem(password):
                raise CommandError(f"seed_demo --operator: DEMO_ADMIN_PASSWORD {problem}")
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError(f"seed_demo --operator: {' '.join(exc.messages)}") from exc
            admin = self._user(settings.DEMO_ADMIN_EMAIL, password, "Demo Operator", staff=True)
        else:
            notes.append(
                "no operator created (production settings): create one with "
                "`python manage.py createsuperuser`"
            )

        shopper = None
        password = settings.DEMO_SHOPPER_PASSWORD
        if not strict or not self._password_problem(password):
            shopper = self._user(settings.DEMO_SHOPPER_EMAIL, password, "Demo Shopper")
        else:
            notes.append(
                f"no demo shopper created (production settings): DEMO_SHOPPER_PASSWORD "
                f"{self._password_problem(password)}"
            )
        summary = seed_demo_catalog(operator=admin)
        users = ", ".join(
            label
            for label in (
                admin and f"{admin.email} (staff, operator role)",
                shopper and shopper.email,
            )
            if label
        )
        self.stdout.write(f"demo data ready: {users or 'no users'}; {summary}")
        for note in notes:
            self.stdout.write(note)

    @staticmethod
    def _password_problem(password: str) -> str | None:
        if not password:
            return "is not set"
        if password in PUBLISHED_PASSWORDS:
            return "is a published demo password; choose your own"
        return None

    def _user(self, email: str, password: str, name: str, *, staff: bool = False) -> User:
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            user = User.objects.create_user(email=email, password=password, name=name)
        if staff:
            role_grant(user=user, role=OPERATOR)
        return user
