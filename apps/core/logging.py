"""Logs with a request id on every line, carried into the Celery tasks a request starts: JSON
for a log shipper (production), or one short plain line for a terminal (`make run`).

The id comes from the client's `X-Request-ID` (when it is a sane token, so a proxy's id joins
the trail) or is made here; it is answered in `X-Request-ID` and stored in a context variable
that `RequestIdFilter` copies onto every log record. A task published while a request is being
served carries the id in its message headers (`before_task_publish`); the worker puts it back in
the context for the task's lifetime (`task_prerun` / `task_postrun`), so the worker's lines of
that task carry the same id, plus the task's own name and id.

The signal handlers connect when this module is imported, which Django's logging setup does in
every process (web and worker) because LOGGING names the filter and formatter below; in a
worker that happens before Celery sets up logging, so `setup_logging` below takes over.
"""

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_META = "HTTP_X_REQUEST_ID"
TASK_HEADER = "fd_request_id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_var: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

# LogRecord attributes that are not "extra" fields worth printing.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id", "task_name", "task_id", "taskName",
}  # fmt: skip


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE: everything after it, and the tasks it publishes, log with the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # META, not request.headers: that would build a dict of every header on each request.
        incoming = request.META.get(REQUEST_ID_META, "")
        request_id = incoming if _VALID_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Copies the current request id (and Celery task, in a worker) onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a 4xx/5xx after the middleware chain has returned: take the id
        # from the request it attaches.
        request = getattr(record, "request", None)
        record.request_id = request_id_var.get() or getattr(request, "request_id", None) or "-"
        task = task_var.get()
        record.task_name, record.task_id = task if task else (None, None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, task, extras, and
    the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        task_id = getattr(record, "task_id", None)
        if task_id:
            body["task"] = {"name": record.task_name, "id": task_id}
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                body[name] = value
        if record.exc_info:
            body["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


class PlainFormatter(logging.Formatter):
    """One short line for a terminal: `16:41:02 INFO  request POST /orders 202 3.1 ms [id]`.

    The logger's name loses its `apps.` / `flashdeals.` prefix; the request id (or the Celery
    task's) ends the line when there is one. A traceback follows on the next lines. The time is
    the process's local time, which Django sets to TIME_ZONE."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("apps.").removeprefix("flashdeals.")
        line = f"{record.asctime} {record.levelname:<5} {name} {record.message}"
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id and request_id != "-" else line


@setup_logging.connect(weak=False)
def _celery_uses_django_logging(**_) -> None:
    """A worker logs through settings.LOGGING (JSON, request ids) instead of Celery's own
    format: connecting this signal tells Celery not to configure logging itself."""
    # Imported when a worker starts, not when this module loads: settings are read then.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@before_task_publish.connect(weak=False)
def _publish_request_id(headers=None, **_) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers[TASK_HEADER] = request_id


def _header(task, name: str) -> str | None:
    value = getattr(task.request, name, None)
    if value is None and isinstance(getattr(task.request, "headers", None), dict):
        value = task.request.headers.get(name)
    return value


@task_prerun.connect(weak=False)
def _task_started(task_id=None, task=None, **_) -> None:
    request_id_var.set(_header(task, TASK_HEADER) or f"task-{task_id}")
    task_var.set((task.name, task_id))


@task_postrun.connect(weak=False)
def _task_finished(**_) -> None:
    request_id_var.set(None)
    task_var.set(None)
