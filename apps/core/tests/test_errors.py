"""One list of error codes, each spelled once (apps.core.errors.ErrorCode): every domain error
class has a name no other has and a code from the enum, every code is answered somewhere, and
no code is written as a string literal outside the enum."""

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.http import JsonResponse

from apps.catalog.errors import ProductNotFound, UnknownProduct
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.exception_handler import error_body
from apps.core.renderers import OrjsonRenderer
from apps.deals.errors import DealNotFound
from apps.orders.errors import UnknownDeal

APPS_DIR = Path(__file__).resolve().parents[2]
ENUM_MODULE = APPS_DIR / "core" / "errors.py"


def _error_classes() -> list[type[ApplicationError]]:
    """ApplicationError and every subclass defined in the project's apps (not in tests), after
    importing each app's errors module."""
    for config in django_apps.get_app_configs():
        module = f"{config.name}.errors"
        if config.name.startswith("apps.") and importlib.util.find_spec(module):
            importlib.import_module(module)
    found: set[type[ApplicationError]] = set()
    todo = [ApplicationError]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.add(cls)
            todo.extend(cls.__subclasses__())
    ours = [c for c in found if c.__module__.startswith("apps.") and ".tests" not in c.__module__]
    return sorted(ours, key=lambda c: (c.__module__, c.__name__))


def _sources() -> list[Path]:
    """The apps' Python sources that may answer codes: everything but tests and the enum."""
    return [
        path
        for path in sorted(APPS_DIR.rglob("*.py"))
        if "tests" not in path.relative_to(APPS_DIR).parts and path != ENUM_MODULE
    ]


def test_every_app_has_error_classes_to_check():
    modules = {cls.__module__ for cls in _error_classes()}

    assert {f"apps.{app}.errors" for app in ("core", "accounts", "catalog", "deals")} <= modules
    assert "apps.orders.errors" in modules


def test_no_two_error_classes_share_a_name():
    names = [cls.__name__ for cls in _error_classes()]

    duplicates = sorted({name for name in names if names.count(name) > 1})

    assert duplicates == []


def test_every_error_class_answers_a_code_from_the_enum():
    strays = [
        f"{cls.__module__}.{cls.__name__}: {cls.code!r}"
        for cls in _error_classes()
        if not isinstance(cls.code, ErrorCode)
    ]

    assert strays == []


def test_the_enum_spells_each_code_once_as_upper_snake_case():
    # @unique already refuses aliases at import; this pins names == values too.
    assert len(ErrorCode.__members__) == len(ErrorCode)
    for member in ErrorCode:
        assert member.value == member.name
        assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", member.value)


def test_every_code_is_answered_somewhere():
    used = {cls.code for cls in _error_classes()}
    for path in _sources():
        used |= {ErrorCode[name] for name in re.findall(r"ErrorCode\.([A-Z_]+)", path.read_text())}

    assert set(ErrorCode) - used == set()


GATE_DIR = APPS_DIR / "deals" / "gate"
# The gate's reply enums (reservation.Outcome, room.RoomRefusal) spell the Lua scripts' answers,
# a vocabulary of its own that may share a word with a code (reserve.lua's "NOT_ADMITTED",
# queue.lua's "NOT_QUEUED"): in the gate, a member whose value is its own name is such a word.
LUA_REPLY_MEMBER = re.compile(r"""^\s*(\w+) = ["']\1["']""")


def test_no_code_is_written_as_a_string_literal():
    codes = "|".join(ErrorCode)
    literal = re.compile(rf"""["']({codes})["']""")

    found = [
        f"{path.relative_to(APPS_DIR)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if literal.search(line)
        and not (path.is_relative_to(GATE_DIR) and LUA_REPLY_MEMBER.match(line))
    ]

    assert found == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        # An id in the path that names nothing is the contract's plain 404 NOT_FOUND...
        (ProductNotFound, "NOT_FOUND"),  # GET/PATCH /products/{id}
        (DealNotFound, "NOT_FOUND"),  # GET /products/deals/{id}, the operator services
        # ...an id in a request body gets its own code (POST /orders, POST /products/deals).
        (UnknownProduct, "PRODUCT_NOT_FOUND"),
        (UnknownDeal, "DEAL_NOT_FOUND"),
    ],
)
def test_not_found_errors_answer_the_contracts_codes(error, code):
    assert (error().http_status, error().code) == (404, code)


def test_codes_go_on_the_wire_as_plain_strings():
    body = error_body(ErrorCode.DEAL_SOLD_OUT, "Sold out.")
    expected = {"error": "DEAL_SOLD_OUT", "message": "Sold out.", "details": None}

    assert json.loads(OrjsonRenderer().render(body)) == expected
    assert json.loads(JsonResponse(body).content) == expected
    assert f"{ErrorCode.DEAL_SOLD_OUT}: x" == "DEAL_SOLD_OUT: x"  # the admin's messages
