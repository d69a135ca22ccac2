#!/usr/bin/env python
import os
import sys


def main() -> None:
    # The developer's tool: local settings unless told otherwise. Servers (wsgi, asgi, Celery)
    # have no default and refuse to start without DJANGO_SETTINGS_MODULE (flashdeals/entrypoint.py);
    # the Docker image sets flashdeals.settings.production for every command, manage.py included.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashdeals.settings.local")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
