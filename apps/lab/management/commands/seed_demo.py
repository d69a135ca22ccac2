"""Idempotent demo data for `make run`: an operator, a shopper, products, a live and an
upcoming deal. Safe to run on every start."""

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.lab.demo import seed_demo_catalog


class Command(BaseCommand):
    help = "Create demo users and catalog data if missing (idempotent)."

    def handle(self, *args, **options) -> None:
        admin = self._user(
            settings.DEMO_ADMIN_EMAIL, settings.DEMO_ADMIN_PASSWORD, "Demo Operator", staff=True
        )
        shopper = self._user(
            settings.DEMO_SHOPPER_EMAIL, settings.DEMO_SHOPPER_PASSWORD, "Demo Shopper"
        )
        summary = seed_demo_catalog(operator=admin)
        self.stdout.write(f"demo data ready: {admin.email} (staff), {shopper.email}; {summary}")

    def _user(self, email: str, password: str, name: str, *, staff: bool = False) -> User:
        user = User.objects.filter(email=email.lower()).first()
        if user is None:
            if staff:
                return User.objects.create_superuser(email=email, password=password, name=name)
            return User.objects.create_user(email=email, password=password, name=name)
        return user
