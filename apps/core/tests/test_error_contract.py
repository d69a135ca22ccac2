"""Every error on every path is `{error, message, details}` JSON with the contract's code."""

import pytest
from django.test import Client
from django.urls import path
from rest_framework.views import APIView

from apps.core.errors import RateLimited, ServiceUnavailable
from conftest import assert_error

pytestmark = pytest.mark.django_db


class _BoomApi(APIView):
    authentication_classes: list = []

    def get(self, request):
        raise RuntimeError("boom")


class _BusyApi(APIView):
    authentication_classes: list = []

    def get(self, request):
        raise ServiceUnavailable(retry_after=3)


class _LimitedApi(APIView):
    authentication_classes: list = []

    def get(self, request):
        raise RateLimited(retry_after=2)


def _boom_view(request):
    raise RuntimeError("plain django boom")


urlpatterns = [
    path("boom", _BoomApi.as_view()),
    path("busy", _BusyApi.as_view()),
    path("limited", _LimitedApi.as_view()),
    path("plain-boom", _boom_view),
]
handler404 = "apps.core.exception_handler.not_found_view"
handler500 = "apps.core.exception_handler.server_error_view"


def test_unknown_path_is_json_404(api_client):
    assert_error(api_client.get("/no/such/path"), 404, "NOT_FOUND")
    assert_error(api_client.post("/products/x/y/z", {}, format="json"), 404, "NOT_FOUND")


def test_wrong_method_is_json_405(api_client):
    assert_error(api_client.delete("/health"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api_client.get("/auth/login"), 405, "METHOD_NOT_ALLOWED")


def test_not_acceptable_is_json_406(api_client):
    assert_error(api_client.get("/auth/verify", HTTP_ACCEPT="text/html"), 406, "NOT_ACCEPTABLE")


def test_unhandled_api_exception_is_json_500(settings):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    body = assert_error(client.get("/boom"), 500, "INTERNAL_ERROR")
    assert "boom" not in body["message"]  # no internals leak


def test_unhandled_django_exception_is_json_500(settings):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    assert_error(client.get("/plain-boom"), 500, "INTERNAL_ERROR")


def test_503_and_429_carry_retry_after(settings):
    settings.ROOT_URLCONF = __name__
    client = Client()
    busy = client.get("/busy")
    limited = client.get("/limited")
    assert_error(busy, 503, "SERVICE_UNAVAILABLE")
    assert busy["Retry-After"] == "3"
    assert_error(limited, 429, "RATE_LIMITED")
    assert limited["Retry-After"] == "2"


def test_api_paths_set_no_session_or_csrf_cookies(api_client):
    response = api_client.get("/health")
    assert response.status_code == 200
    assert response.cookies == {} or not response.cookies


@pytest.mark.parametrize(
    "query",
    ["page=" + "9" * 5000, "size=" + "1" * 5000, "category=%00", "category=shoes%00x"],
)
def test_hostile_list_queries_are_422_not_500(api_client, query):
    response = api_client.get(f"/products?{query}")
    assert_error(response, 422, "VALIDATION_ERROR")
