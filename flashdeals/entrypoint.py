"""The settings choice for processes that serve traffic (wsgi, asgi, Celery).

A web or worker process started without DJANGO_SETTINGS_MODULE used to fall back to the local
settings: Silk on, the published dev signing key, `testserver` allowed. A server must say which
settings it runs; `make run` (scripts/devstack.py), the Dockerfile and docker-compose.yml do.
manage.py keeps its local default: it is the developer's tool (see docs/security.md).
"""

import os

from django.core.exceptions import ImproperlyConfigured


def require_settings_module() -> str:
    """Return DJANGO_SETTINGS_MODULE, or refuse to start with a message saying what to set."""
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    if not module:
        raise ImproperlyConfigured(
            "DJANGO_SETTINGS_MODULE is not set. Production: "
            "DJANGO_SETTINGS_MODULE=flashdeals.settings.production (with SECRET_KEY, JWT_SECRET, "
            "DATABASE_URL and REDIS_URL; see deploy/README.md). Development: `make run`, which "
            "sets flashdeals.settings.local."
        )
    return module
