from django.core.wsgi import get_wsgi_application

from flashdeals.entrypoint import require_settings_module

require_settings_module()  # no silent fallback to the local settings (docs/security.md)

application = get_wsgi_application()
