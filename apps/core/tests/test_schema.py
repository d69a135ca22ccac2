import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from apps.orders.apis import OrderOutputSerializer
from apps.orders.models import Order
from apps.orders.presenters import order_body
from apps.orders.services import LineInput, OrderInput, order_place
from apps.orders.tests.helpers import make_deal


def test_schema_builds_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yml"

    # --fail-on-warn turns any drf-spectacular warning into an error
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = yaml.safe_load(out.read_text())
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    paths = set(schema["paths"])
    assert {"/auth/login", "/orders", "/orders/{order_id}", "/orders/{order_id}/cancel"} <= paths
    assert {"/health", "/health/ready", "/products", "/products/deals"} <= paths


@pytest.mark.django_db
def test_order_schema_describes_the_order_body(user, settings):
    settings.ORDER_PIPELINE = "db_update"  # a written order row
    deal = make_deal()
    data = OrderInput(items=(LineInput(product_id=deal.product_id, quantity=1, deal_id=deal.id),))
    order_place(user_id=user.id, data=data)
    order = Order.objects.get()

    assert list(order_body(order, list(order.items.all()))) == list(OrderOutputSerializer().fields)


def test_swagger_ui_is_served(api_client):
    response = api_client.get("/api/docs", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_error_response_has_the_contract_body():
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (method, path, status)


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/health", "get", {"200", "406"}),
        ("/auth/login", "post", {"200", "400", "401", "406", "413", "415", "422", "429"}),
        ("/auth/users/me", "get", {"200", "401", "406"}),
        ("/products", "get", {"200", "401", "406", "422"}),
        ("/products", "post", {"201", "400", "401", "403", "406", "413", "415", "422"}),
        ("/products/{product_id}/stock", "get", {"200", "400", "401", "404", "406"}),
        ("/orders/{order_id}", "get", {"200", "400", "401", "404", "406"}),
        (
            "/orders",
            "post",
            {"201", "202", "400", "401", "403", "404", "406", "409", "413", "415", "422", "503"},
        ),
        (
            "/products/deals/{deal_id}/queue",
            "post",
            {"200", "201", "400", "401", "404", "406", "413", "415", "422", "429"},
        ),
        ("/products/deals/{deal_id}/queue/me", "get", {"200", "400", "401", "404", "406"}),
        ("/products/deals/{deal_id}/queue/me", "delete", {"204", "400", "401", "404", "406"}),
    ],
)
def test_each_operation_documents_the_errors_it_can_answer(path, method, statuses):
    """The errors that come from auth, the path and the body (apps.core.schema) are listed
    beside each view's own, so a client and the fuzzer know every status an operation answers."""
    found = {(p, m): set(op["responses"]) for p, m, op in _operations()}

    assert found[(path, method)] == statuses
