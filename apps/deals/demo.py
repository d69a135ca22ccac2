"""Demo catalog for `make run` (filled in by the catalog/deals work)."""

from apps.accounts.models import User


def seed_demo_catalog(*, operator: User) -> str:
    return "no catalog yet"
