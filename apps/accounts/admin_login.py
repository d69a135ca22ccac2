"""The admin's login page behind the same rate limits as `POST /auth/login`.

The operator console's login form checks a password with the same hasher, so it is the same
brute-force target and the same CPU sink. This view runs the API login's limits (sharing its
budgets: one account's guesses count wherever they come in) before Django's LoginView, and so
before the password hash; apps/accounts/urls.py routes `/admin/login/` here ahead of the admin.
"""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import RateLimited
from apps.core.exception_handler import error_body
from apps.core.ratelimit import client_address

from .services import login_attempt_allow


def admin_login(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            login_attempt_allow(
                email=str(request.POST.get("username", "")),
                client_address=client_address(request),
            )
        except RateLimited as exc:
            # The contract's body, as everywhere (a browser shows the JSON and its message).
            return JsonResponse(
                error_body(exc.code, exc.message, exc.details),
                status=exc.http_status,
                headers=exc.headers,
            )
    return admin.site.login(request)
