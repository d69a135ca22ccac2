"""What production refuses as a signing key, in one place (docs/security.md, "Secrets").

Anyone who knows SECRET_KEY can forge sessions and password-reset links; anyone who knows
JWT_SECRET can mint an access token for any user id, the operator's included. A value that was
ever published (in .env.example, docker-compose.yml, the Dockerfile or base.py's dev default) is
known to everyone, so production settings refuse it, and anything short or low-entropy enough
to guess, and the two keys being one (a leak of either would then be a leak of both).
"""

from django.core.exceptions import ImproperlyConfigured

MIN_LENGTH = 50  # Django's own check_deploy threshold (security.W009)
MIN_UNIQUE_CHARACTERS = 5  # ditto
GENERATE_HINT = (
    'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(64))" '
    "(a different value for each key)."
)
# Every value this repository ever shipped as a default or an example. The test
# flashdeals/tests/test_production_settings.py checks that .env.example's are listed here.
PUBLISHED_SECRETS = frozenset(
    {
        "dev-only-insecure-secret-key-change-me-0123456789",  # base.py's local default
        "change-me-to-a-long-random-string",  # .env.example
        "change-me-to-another-long-random-string",  # .env.example
        "compose-dev-secret-change-me-0123456789abcdef",  # an early docker-compose.yml
        "compose-dev-jwt-secret-change-me-0123456789",  # an early docker-compose.yml
        "build",  # an early Dockerfile's collectstatic
    }
)
# Substrings that mark a placeholder someone forgot to replace.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "insecure", "placeholder", "example", "secret-key")


def secret_problem(value: str | None) -> str | None:
    """Why `value` must not sign anything in production, or None when it may."""
    if not value:
        return "is not set"
    if value in PUBLISHED_SECRETS or value.startswith("django-insecure"):
        return "is a published example value"
    lowered = value.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "looks like a placeholder"
    if len(value) < MIN_LENGTH:
        return f"is {len(value)} characters long; it needs at least {MIN_LENGTH}"
    if len(set(value)) < MIN_UNIQUE_CHARACTERS:
        return f"has fewer than {MIN_UNIQUE_CHARACTERS} different characters"
    return None


def check_signing_keys(*, secret_key: str | None, jwt_secret: str | None) -> None:
    """Raise ImproperlyConfigured naming every problem with the two keys, and how to fix it."""
    problems = [
        f"{name} {problem}"
        for name, value in (("SECRET_KEY", secret_key), ("JWT_SECRET", jwt_secret))
        if (problem := secret_problem(value))
    ]
    if not problems and secret_key == jwt_secret:
        problems.append("JWT_SECRET equals SECRET_KEY; they must be two different keys")
    if problems:
        raise ImproperlyConfigured(
            "production settings refuse to start: " + "; ".join(problems) + ". " + GENERATE_HINT
        )
