"""Every malformed request is a 4xx in the contract's shape, never a 500; token answers are not
cacheable; the API docs work offline (docs/security.md, "Every malformed
request is a 4xx in the contract's shape" and "No leaks")."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

from apps.accounts.models import User
from apps.catalog.models import Product
from apps.core.exception_handler import api_exception_handler
from apps.orders.models import Order
from apps.orders.tests.helpers import make_product
from conftest import assert_error

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _post_raw(client, path: str, body: bytes, **extra):
    return client.generic("POST", path, body, content_type=JSON, **extra)


# --- parser failures -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register", "/orders", "/products"])
def test_json_nested_past_the_recursion_limit_is_a_422(api_client, path):
    body = b"[" * 950 + b"]" * 950  # 1.9 KB: a RecursionError inside DRF's parser before

    response = _post_raw(api_client, path, body)

    assert response.status_code != 500
    if response.status_code == 401:  # /orders, /products check the token before the body
        return
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["details"] == {"body": ["JSON parse error - nested too deeply"]}


def test_deep_nesting_reaches_the_parser_on_a_protected_route(shopper_client):
    response = _post_raw(shopper_client, "/orders", b'{"items":' + b"[" * 2000 + b"]" * 2000 + b"}")
    assert_error(response, 422, "VALIDATION_ERROR")
    assert Order.objects.count() == 0


# --- body size ----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413(api_client, settings):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b'{"email": "' + b"a" * limit + b'", "password": "x"}'

    response = _post_raw(api_client, "/auth/login", body)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE", {"limit_bytes": limit})


def test_a_huge_content_length_alone_is_a_413(api_client):
    response = _post_raw(api_client, "/auth/login", b"{}", CONTENT_LENGTH="9" * 15)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_the_limit_is_the_setting(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"email": "someone@example.com", "password": "p" * 90}).encode()

    assert_error(_post_raw(api_client, "/auth/login", body), 413, "PAYLOAD_TOO_LARGE")


def test_request_data_too_big_inside_a_view_is_a_413_not_a_500():
    response = api_exception_handler(RequestDataTooBig("too big"), {"view": None})
    assert (response.status_code, response.data["error"]) == (413, "PAYLOAD_TOO_LARGE")


# --- NUL bytes ----------------------------------------------------------------------------------


def test_a_nul_byte_in_a_body_is_a_400(api_client):
    response = _post_raw(api_client, "/auth/register", b'{"email":"a\x00@x.io","password":"p"}')
    assert_error(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("path", ["/products/%00", "/%00", "/auth/login%00"])
def test_a_nul_byte_in_a_path_is_a_400(api_client, path):
    assert_error(api_client.get(path), 400, "BAD_REQUEST")


def test_an_escaped_nul_in_json_is_a_422(api_client):
    body = b'{"email":"a@x.io","password":"pass\\u0000word","name":"N\\u0000"}'
    assert_error(_post_raw(api_client, "/auth/register", body), 422, "VALIDATION_ERROR")


# --- /metrics, /api/schema, /api/docs ---------------------------------------------------------


@pytest.mark.parametrize("token", ["ñandú-token", "€" * 40, "\udcff"])
def test_metrics_with_a_non_ascii_token_is_a_401(settings, token):
    settings.METRICS_TOKEN = "scrape-secret"
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(response, 401, "INVALID_TOKEN")


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_metrics_refuses_writes_with_json(method):
    response = getattr(Client(enforce_csrf_checks=True), method)("/metrics")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "GET"


@pytest.mark.parametrize("path", ["/api/schema", "/api/docs"])
def test_schema_and_docs_answer_a_bad_token_with_json(api_client, path):
    response = api_client.get(path, HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(response, 401, "INVALID_TOKEN")


def test_schema_refuses_a_post_with_json(api_client):
    assert_error(api_client.post("/api/schema"), 405, "METHOD_NOT_ALLOWED")


# --- strict JSON types --------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [b'"1"', b"1.0", b"1E1", b"1e0", b"true", b"null"])
def test_a_quantity_must_be_a_json_integer(shopper_client, quantity):
    product = make_product(stock=50)
    body = b'{"items":[{"product_id":"%s","quantity":%s}]}' % (str(product.id).encode(), quantity)

    response = _post_raw(shopper_client, "/orders", body)

    details = assert_error(response, 422, "VALIDATION_ERROR")["details"]
    assert "quantity" in json.dumps(details)
    assert Order.objects.count() == 0
    product.refresh_from_db()
    assert product.stock == 50


@pytest.mark.parametrize(
    ("field", "value"), [("price", '"1000"'), ("price", "1000.0"), ("stock", "1E1")]
)
def test_staff_numbers_must_be_json_integers(staff_client, field, value):
    fields = {"name": '"Kettle"', "price": "1000", "stock": "1"}
    fields[field] = value
    body = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"

    response = _post_raw(staff_client, "/products", body.encode())

    assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("body", [b"false", b"null", b"[]", b"0", b'"no"'])
def test_cancel_refuses_a_body_that_is_not_an_object(shopper_client, body):
    product = make_product(stock=5)
    line = {"items": [{"product_id": str(product.id), "quantity": 1}]}
    order = shopper_client.post("/orders", line, format="json").json()

    response = _post_raw(shopper_client, f"/orders/{order['id']}/cancel", body)

    assert_error(response, 422, "VALIDATION_ERROR")
    assert Order.objects.get(pk=order["id"]).status == "confirmed"


def test_cancel_with_no_body_still_works(shopper_client):
    product = make_product(stock=5)
    line = {"items": [{"product_id": str(product.id), "quantity": 1}]}
    order = shopper_client.post("/orders", line, format="json").json()

    response = shopper_client.post(f"/orders/{order['id']}/cancel")

    assert (response.status_code, response.json()["status"]) == (200, "cancelled")


# Found by the fuzzer (apps/core/tests/test_fuzz.py): DRF's CharField turns numbers and booleans
# into text and its UUIDField reads an integer as a UUID; a blank query filter listed everything.


@pytest.mark.parametrize("reason", ["6.428006527444086e+16", "5", "true", '["late"]', '{"a": 1}'])
def test_a_cancel_reason_must_be_a_json_string(shopper_client, reason):
    product = make_product(stock=5)
    line = {"items": [{"product_id": str(product.id), "quantity": 1}]}
    order = shopper_client.post("/orders", line, format="json").json()

    response = _post_raw(
        shopper_client, f"/orders/{order['id']}/cancel", b'{"reason": %s}' % reason.encode()
    )

    assert assert_error(response, 422, "VALIDATION_ERROR")["details"] == {
        "reason": ["A JSON string is required."]
    }
    assert Order.objects.get(pk=order["id"]).status == "confirmed"


def test_a_cancel_reason_is_limited_as_sent_not_as_trimmed(shopper_client):
    product = make_product(stock=5)
    line = {"items": [{"product_id": str(product.id), "quantity": 1}]}
    order = shopper_client.post("/orders", line, format="json").json()

    response = shopper_client.post(
        f"/orders/{order['id']}/cancel", {"reason": "\n" * 501}, format="json"
    )  # DRF trimmed it to "" first, so 501 newlines passed the 500-character limit

    assert list(assert_error(response, 422, "VALIDATION_ERROR")["details"]) == ["reason"]
    assert Order.objects.get(pk=order["id"]).status == "confirmed"


@pytest.mark.parametrize(
    ("field", "value"),
    [("category", "0"), ("name", "12345"), ("description", "false"), ("image_url", "1")],
)
def test_product_texts_must_be_json_strings(staff_client, field, value):
    fields = {"name": '"Kettle"', "price": "1000", "stock": "1"}
    fields[field] = value
    body = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"

    response = _post_raw(staff_client, "/products", body.encode())

    assert list(assert_error(response, 422, "VALIDATION_ERROR")["details"]) == [field]
    assert not Product.objects.filter(name__in=["Kettle", "12345"]).exists()


def test_an_id_in_a_body_must_be_a_json_string(shopper_client):
    product = make_product(stock=5)
    body = b'{"items":[{"product_id":%d,"quantity":1}]}' % product.id.int

    response = _post_raw(shopper_client, "/orders", body)  # was read as UUID(int=...)

    assert "product_id" in json.dumps(assert_error(response, 422, "VALIDATION_ERROR")["details"])
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "fields", [{"password": "12345678"}, {"name": "42"}, {"email": "1"}], ids=lambda f: list(f)[0]
)
def test_registration_texts_must_be_json_strings(api_client, fields):
    body = {"email": '"kim@example.com"', "password": '"long-enough-1"', "name": '"Kim"'}
    ((name, value),) = fields.items()
    body[name] = value
    raw = "{" + ",".join(f'"{k}":{v}' for k, v in body.items()) + "}"

    response = _post_raw(api_client, "/auth/register", raw.encode())

    assert list(assert_error(response, 422, "VALIDATION_ERROR")["details"]) == [name]
    assert not User.objects.exists()


def test_a_postal_code_must_be_a_json_string(shopper_client):
    product = make_product(stock=5)
    shipping = {
        "recipient_name": "Kim", "phone": "010-1234-5678", "address": "Seoul", "postal_code": 12345,
    }  # fmt: skip
    body = {"items": [{"product_id": str(product.id), "quantity": 1}], "shipping_address": shipping}

    response = shopper_client.post("/orders", body, format="json")

    assert "postal_code" in json.dumps(assert_error(response, 422, "VALIDATION_ERROR")["details"])
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [("/orders?status=", "status"), ("/orders?page=", "page"), ("/products?size=", "size")],
)
def test_a_blank_query_value_is_a_422_not_ignored(shopper_client, path, field):
    response = shopper_client.get(path)

    assert assert_error(response, 422, "VALIDATION_ERROR")["details"] == {
        field: ["May not be blank."]
    }


def test_a_blank_category_still_means_every_category(api_client):
    make_product()

    response = api_client.get("/products?category=")

    assert (response.status_code, response.json()["total"]) == (200, 1)


# --- no leaks: caching and the docs' assets -------------------------------------------------------


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "") and response["Pragma"] == "no-cache"


def test_token_answers_are_not_cacheable(api_client):
    registered = api_client.post(
        "/auth/register",
        {"email": "c@x.io", "password": "cache-me-not-42", "name": "Cache"},
        format="json",
    )
    login = api_client.post(
        "/auth/login", {"email": "c@x.io", "password": "cache-me-not-42"}, format="json"
    )
    refresh = api_client.post(
        "/auth/refresh", {"refresh_token": login.json()["refresh_token"]}, format="json"
    )
    failed = api_client.post("/auth/login", {"email": "c@x.io", "password": "no"}, format="json")

    assert [r.status_code for r in (registered, login, refresh, failed)] == [201, 200, 200, 401]
    assert all(_no_store(r) for r in (registered, login, refresh, failed))


def test_swagger_ui_is_served_from_the_app_not_a_cdn(settings):
    page = Client().get("/api/docs")
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(
        r'"(/static/[^"]+\.(?:js|css|png))"', html
    )

    # hosts named anywhere in the page (not any substring: the page carries random tokens, and
    # one once contained "cdn"): drf-spectacular's default would be cdn.jsdelivr.net, @latest
    hosts = re.findall(r"(?:https?:)?//([\w.-]+)", html)

    assert page.status_code == 200
    assert not [h for h in hosts if re.search(r"cdn|unpkg|jsdelivr", h, re.I)], hosts
    assert "@latest" not in html
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    scripts = [a for a in assets if a.endswith(".js")]
    assert any("swagger-ui-bundle" in a for a in scripts), assets
    # served: WhiteNoise (the production static server) finds and answers each of them
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    whitenoise = WhiteNoiseMiddleware(lambda request: None)
    local = {a.split("?")[0] for a in assets if a.startswith(settings.STATIC_URL)}
    assert len(local) >= 3, assets  # the bundle, the preset and the stylesheet at least
    for asset in local:
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset
        response = whitenoise(RequestFactory().get(asset))
        assert response is not None and response.status_code == 200, asset
