from django.apps import AppConfig


class LabConfig(AppConfig):
    """The top layer: demo data for `make run` and the load-test lab's prepare/check command.
    It may use every app below it; nothing imports it."""

    name = "apps.lab"
