"""Middleware that only browser pages need, kept off the JSON API's hot path."""

from django.utils.module_loading import import_string

# What the admin and Silk need. The API authenticates with Bearer tokens and keeps no session,
# so sessions, CSRF cookies and messages there would be pure overhead (~40% of a trivial view).
BROWSER_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
BROWSER_PATH_PREFIXES = ("/admin", "/silk", "/api/docs")


class BrowserOnlyMiddleware:
    """Runs BROWSER_MIDDLEWARE for browser paths only.

    The wrapped chain runs each middleware's request/response hooks; their `process_view` hooks
    are not run, which only matters for CSRF: every admin view is wrapped in `csrf_protect` by
    `AdminSite.admin_view`, so the admin stays CSRF-protected.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        handler = get_response
        for path in reversed(BROWSER_MIDDLEWARE):
            handler = import_string(path)(handler)
        self.browser_response = handler

    def __call__(self, request):
        if request.path_info.startswith(BROWSER_PATH_PREFIXES):
            return self.browser_response(request)
        return self.get_response(request)
