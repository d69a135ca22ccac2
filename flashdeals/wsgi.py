from django.core.wsgi import get_wsgi_application

from apps.core.tracing import tracing_setup
from flashdeals.entrypoint import require_settings_module

require_settings_module()  # no silent fallback to the local settings (docs/security.md)

# Before the handler builds its middleware (the request span is one). gunicorn imports this
# module in each worker after the fork (preload_app is off), so each has its own exporter.
tracing_setup(role="web")
application = get_wsgi_application()
