#!/usr/bin/env python
import os
import sys


def main() -> None:
    # The developer's tool: local settings unless told otherwise. Servers (wsgi, asgi, Celery)
    # have no default and refuse to start without DJANGO_SETTINGS_MODULE (flashdeals/entrypoint.py);
    # the Docker image sets flashdeals.settings.production for every command, manage.py included.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashdeals.settings.local")
    from django.core.management import execute_from_command_line

    from flashdeals.envfile import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:  # a bad setting: one line naming it, not a traceback
        sys.exit(f"configuration error: {error}")


if __name__ == "__main__":
    main()
