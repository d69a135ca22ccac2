"""The floor's settings: `make run`'s, with no middleware and the floor's two paths as the whole
URLconf. The lab sets DJANGO_SETTINGS_MODULE to this module for the floor's stack only."""

from flashdeals.settings.local import *  # noqa: F403

ROOT_URLCONF = "apps.lab.floor.urls"
MIDDLEWARE: list[str] = []
