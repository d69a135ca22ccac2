"""Schemathesis over the app's own OpenAPI document, in process (docs/security.md, "Fuzzing").

The fuzzer loads `/api/schema` from the WSGI application and sends every case it generates
through the whole middleware chain, as a client would, with a shopper's or a staff member's
token. Nothing is mocked: PostgreSQL, the gate's Redis and the cache are the test servers.

Each case's response is checked for
- no server error (any 5xx), with the exception Django saw, so a report names the cause;
- the contract's error body: every 4xx/5xx is JSON `{"error", "message", "details"}` with an
  UPPER_SNAKE `error` (the API's error contract);
- conformance to the schema: the status is documented for the operation, the content type is
  the documented one, the body validates against the documented schema, documented headers;
- negative data rejected: a request the schema says is invalid gets a 4xx, not a 2xx;
- ignored auth: an operation that requires a token refuses the same request without one.

Failures are collected rather than raised at the first one, so a run reports every failing case
(grouped by cause) and the figures in docs/security.md can be compared run to run. The seed is
fixed (FUZZ_SEED) so a run in CI is reproducible; FUZZ_MAX_EXAMPLES raises the number of random
cases per operation for a longer run by hand.

Used by apps/core/tests/test_fuzz.py (test settings, in the pytest process) and by
apps/core/tests/fuzz_probe.py (production settings, in a process of its own).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import schemathesis
from django.core.signals import got_request_exception
from django.test import override_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from apps.accounts.models import User
from apps.accounts.roles import OPERATOR, role_grant
from apps.accounts.services import token_pair_for
from apps.core.exception_handler import api_exception_handler
from apps.core.tasks import beat_heartbeat_task
from apps.orders.services import LineInput, OrderInput, order_cancel, order_place
from apps.orders.tests.helpers import make_deal, make_product

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "fuzz"
DEFAULT_SEED = 20260515
DEFAULT_MAX_EXAMPLES = 50
SCHEMA_PATH = "/api/schema?format=json"
# Werkzeug's test client sets no REMOTE_ADDR (the rate limiter would count "unknown"); gunicorn
# always does. The fuzzer is a client on this machine, which RATE_LIMIT_EXEMPT_ADDRESSES exempts.
PEER = {"REMOTE_ADDR": "127.0.0.1"}
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def seed() -> int:
    return int(os.environ.get("FUZZ_SEED", DEFAULT_SEED))


def max_examples() -> int:
    return int(os.environ.get("FUZZ_MAX_EXAMPLES", DEFAULT_MAX_EXAMPLES))


def only_operations() -> list[str] | None:
    """FUZZ_OPERATIONS="POST /orders;GET /orders/{order_id}": fuzz only these (by hand)."""
    names = [n.strip() for n in os.environ.get("FUZZ_OPERATIONS", "").split(";") if n.strip()]
    return names or None


@schemathesis.check
def error_body_in_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is the contract's JSON error body (`{error, message, details}`)."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(f"error answered as {content_type or 'no content type'}, not JSON")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError("error body is not valid JSON") from None
    if not isinstance(body, dict) or set(body) != {"error", "message", "details"}:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise AssertionError(f"error body is not {{error, message, details}}: {keys}")
    if not isinstance(body["error"], str) or not UPPER_SNAKE.match(body["error"]):
        raise AssertionError(f"`error` is not an UPPER_SNAKE code: {body['error']!r}")
    if not isinstance(body["message"], str) or not body["message"]:
        raise AssertionError("`message` is empty or not a string")
    if body["details"] is not None and not isinstance(body["details"], dict):
        raise AssertionError(f"`details` is neither an object nor null: {body['details']!r}")
    return True


CHECKS = [
    not_a_server_error,
    error_body_in_contract,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
    missing_required_header,
    unsupported_method,
]


@dataclass(frozen=True)
class Finding:
    operation: str
    check: str
    status: int
    cause: str  # the exception for a 5xx, else the check's title

    def key(self) -> tuple[str, str, int, str]:
        return (self.operation, self.check, self.status, self.cause)


@dataclass
class Report:
    label: str
    seed: int
    max_examples: int
    operations: int = 0
    cases: int = 0
    failing_cases: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    findings: Counter = field(default_factory=Counter)  # Finding -> failing cases
    examples: dict = field(default_factory=dict)  # Finding -> one reproduction (curl)

    def by_check(self) -> Counter:
        out: Counter = Counter()
        for finding, count in self.findings.items():
            out[finding.check] += count
        return out

    def summary(self) -> dict:
        return {
            "label": self.label,
            "seed": self.seed,
            "max_examples": self.max_examples,
            "operations": self.operations,
            "cases": self.cases,
            "failing_cases": self.failing_cases,
            "distinct_failures": len(self.findings),
            "failures_by_check": dict(self.by_check()),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 1),
        }

    def as_dict(self) -> dict:
        return {
            **self.summary(),
            "findings": [
                {**vars(f), "cases": n, "example": self.examples[f]}
                for f, n in sorted(self.findings.items(), key=lambda kv: kv[0].key())
            ],
        }

    def save(self) -> Path:
        """Writes the report to test-artifacts/fuzz/<label>.json (git-ignored)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.label.replace('/', '-')}.json"
        path.write_text(json.dumps(self.as_dict(), indent=1))
        return path

    def text(self) -> str:
        s = self.summary()
        lines = [
            f"fuzz[{self.label}] seed={self.seed} max_examples={self.max_examples}: "
            f"{s['operations']} operations, {s['cases']} cases, {s['failing_cases']} failing "
            f"({s['distinct_failures']} distinct) in {s['seconds']} s; statuses {s['statuses']}"
        ]
        for finding, count in sorted(self.findings.items(), key=lambda kv: kv[0].key()):
            lines.append(
                f"  {finding.operation} [{finding.check}] {finding.status}: {finding.cause}"
                f" ({count} cases)\n    {self.examples[finding]}"
            )
        return "\n".join(lines)


class _ExceptionLog(logging.Handler):
    """The exception behind the current case's 5xx: one that left the view (Django's
    got_request_exception) or one the API's exception handler turned into a 500 (it logs it)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.seen: list[str] = []

    def __call__(self, sender: Any, request: Any = None, **kwargs: Any) -> None:
        self._add(sys.exc_info()[1])

    def emit(self, record: logging.LogRecord) -> None:
        self._add(record.exc_info[1] if record.exc_info else None)

    def _add(self, exc: BaseException | None) -> None:
        if exc is None:
            return
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/site-packages/" not in f.filename] or frames
        where = f"{os.path.relpath(ours[-1].filename)}:{ours[-1].lineno}" if ours else "?"
        self.seen.append(f"{type(exc).__name__} at {where}: {str(exc)[:120]}")


@dataclass
class FuzzData:
    """Real rows for the fuzzer to reach deep paths: ids it mixes into path parameters and
    bodies alongside the random ones it generates."""

    product_ids: list[str]
    deal_ids: list[str]
    order_ids: list[str]

    def path_values(self, name: str) -> list[str]:
        return {
            "product_id": self.product_ids,
            "deal_id": self.deal_ids,
            "order_id": self.order_ids,
        }.get(name, [])


def make_data() -> tuple[FuzzData, dict[str, str]]:
    """Users with tokens, a product with stock, a live deal with stock loaded into the gate, a
    scheduled deal, and orders of each user (one confirmed, one cancelled, one deal order).
    Returns the ids and a token per role."""
    shopper = User.objects.create_user("fuzz-shopper@example.com", "fuzz-pass-123", name="Fuzz")
    staff = User.objects.create_user(
        "fuzz-staff@example.com", "fuzz-pass-123", name="Fuzz Staff", is_staff=True
    )
    role_grant(user=staff, role=OPERATOR)  # the API's writes need the operator role
    product = make_product(price=10_000, stock=1_000, name="Fuzz widget")
    live = make_deal(deal_stock=500, per_user_limit=3, deal_price=5_000)
    later = make_deal(deal_price=4_000, starts_in=timedelta(hours=2))
    orders = []
    for user in (shopper, staff):
        regular = OrderInput(items=(LineInput(product_id=product.id, quantity=1),))
        orders.append(_order_id(order_place(user_id=user.id, data=regular)))
        cancelled = _order_id(order_place(user_id=user.id, data=regular))
        order_cancel(order_id=cancelled, user_id=user.id)
        orders.append(cancelled)
        deal_line = LineInput(product_id=live.product_id, quantity=1, deal_id=live.id)
        with override_settings(ORDER_PIPELINE="db_update"):  # a written row, not a pending one
            deal_order = order_place(user_id=user.id, data=OrderInput(items=(deal_line,)))
        orders.append(_order_id(deal_order))
    data = FuzzData(
        product_ids=[str(product.id), str(live.product_id)],
        deal_ids=[str(live.id), str(later.id)],
        order_ids=[str(o) for o in orders],
    )
    tokens = {
        "shopper": token_pair_for(shopper).access_token,
        "staff": token_pair_for(staff).access_token,
    }
    return data, tokens


def _order_id(placed: Any) -> uuid.UUID:
    return placed.order.id


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _install_hooks(schema: Any, data: FuzzData) -> None:
    """Swap some generated ids for real ones (hypothesis chooses, so a seed replays them).
    Only values that already are UUIDs are swapped: a negative case's deliberately invalid
    path parameter stays invalid."""

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy:
        if not isinstance(path_parameters, dict):
            return st.just(path_parameters)
        choices = {}
        for name, value in path_parameters.items():
            real = data.path_values(name)
            if real and _is_uuid(value):
                choices[name] = st.sampled_from([value, *real])
            else:
                choices[name] = st.just(value)
        return st.fixed_dictionaries(choices)

    @schema.hook
    def filter_query(context: Any, query: Any) -> bool:
        # An empty list is no value at all on the wire (`?a=` is not even sent): a negative case
        # that only adds such "parameters" sends a valid request, and its 200 is no failure.
        return not (isinstance(query, dict) and any(v == [] for v in query.values()))

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
        if not isinstance(body, dict):
            return st.just(body)
        strategies: dict[str, st.SearchStrategy] = {}
        for key, value in body.items():
            if key == "product_id" and _is_uuid(value):
                strategies[key] = st.sampled_from([value, *data.product_ids])
            elif key == "items" and isinstance(value, list):
                strategies[key] = st.tuples(*[_line(item, data) for item in value]).map(list)
            else:
                strategies[key] = st.just(value)
        return st.fixed_dictionaries(strategies)


def _line(item: Any, data: FuzzData) -> st.SearchStrategy:
    if not isinstance(item, dict):
        return st.just(item)
    if not (_is_uuid(item.get("product_id")) and data.deal_ids):
        return st.just(item)

    def real_deal(index: int) -> dict:
        return {**item, "product_id": data.product_ids[0], "deal_id": data.deal_ids[index]}

    options = [st.just(item), st.just({**item, "product_id": data.product_ids[-1]})]
    options.append(st.integers(0, len(data.deal_ids) - 1).map(real_deal))
    return st.one_of(options)


def load_schema(app: Any, base_url: str = "http://localhost") -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": seed(),
            "suppress-health-check": ["all"],
            "generation": {
                "mode": "all",
                "max-examples": max_examples(),
                "database": "none",
                "no-shrink": True,
                # Unknown query parameters are ignored by design (cache-busters, tracking tags):
                # adding one is not "invalid data" for this API. Unknown body fields are still
                # generated; product writes refuse them, the others ignore them.
                "allow-extra-parameters": False,
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    return schemathesis.openapi.from_wsgi(SCHEMA_PATH, app, config=config, base_url=base_url)


def run(
    app: Any,
    *,
    label: str,
    token: str,
    data: FuzzData,
    base_url: str = "http://localhost",
    operations: Iterable[str] | None = None,
    on_case: Callable[[], None] | None = None,
) -> Report:
    """Fuzz every operation of the schema once with this token; returns the report."""
    operations = operations or only_operations()
    schema = load_schema(app, base_url)
    _install_hooks(schema, data)
    report = Report(label=label, seed=seed(), max_examples=max_examples())
    headers = {"Authorization": f"Bearer {token}"}
    log = _ExceptionLog()
    got_request_exception.connect(log, weak=False)
    handler_logger = logging.getLogger(api_exception_handler.__module__)
    handler_logger.addHandler(log)
    started = time.monotonic()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operations is not None and operation.label not in operations:
                continue
            report.operations += 1
            _worker_heartbeat()

            def run_case(case: Any) -> None:
                if on_case:
                    on_case()
                report.cases += 1
                log.seen.clear()
                response = case.call(base_url=base_url, headers=headers, environ_overrides=PEER)
                report.statuses[response.status_code] += 1
                try:
                    case.validate_response(
                        response,
                        checks=CHECKS,
                        headers=headers,
                        transport_kwargs={
                            "base_url": base_url,
                            "headers": headers,
                            "app": app,
                            "environ_overrides": PEER,
                        },
                    )
                except FailureGroup as group:
                    report.failing_cases += 1
                    curl = case.as_curl_command(headers=headers)
                    for failure in group.exceptions:
                        if response.status_code >= 500 and log.seen:
                            cause = log.seen[0]
                        else:
                            cause = _cause(failure)
                        finding = Finding(
                            operation=case.operation.label,
                            check=_check_name(failure),
                            status=response.status_code,
                            cause=cause,
                        )
                        report.findings[finding] += 1
                        report.examples.setdefault(finding, _reproduction(failure, case, curl))

            test = build_operation_test(
                config=schema.config,
                operation=operation,
                test_func=run_case,
                given_kwargs={},
                feedback=FeedbackSources(),
            )
            test()
    finally:
        got_request_exception.disconnect(log)
        handler_logger.removeHandler(log)
        report.seconds = time.monotonic() - started
        report.save()
    return report


def _cause(failure: Any) -> str:
    """A check's title ("Undocumented status code"); for our own check, what it asserted."""
    if type(failure).__name__ == "CustomFailure":
        lines = str(getattr(failure, "message", "") or failure).strip().splitlines()
        return lines[0][:160] if lines else "custom check failed"
    return str(getattr(failure, "title", "") or failure)[:160]


def _check_name(failure: Any) -> str:
    name = type(failure).__name__
    return {
        "ServerError": "not_a_server_error",
        "UndefinedStatusCode": "status_code_conformance",
        "UndefinedContentType": "content_type_conformance",
        "MalformedMediaType": "content_type_conformance",
        "JsonSchemaError": "response_schema_conformance",
        "MissingContentType": "content_type_conformance",
        "MissingHeaders": "response_headers_conformance",
        "JsonHeaderError": "response_headers_conformance",
        "AcceptedNegativeData": "negative_data_rejection",
        "IgnoredAuth": "ignored_auth",
        "MissingHeaderNotRejected": "missing_required_header",
        "UnsupportedMethodResponse": "unsupported_method",
        "CustomFailure": "error_body_in_contract",
    }.get(name, name)


def _reproduction(failure: Any, case: Any, curl: str) -> str:
    message = str(getattr(failure, "message", "") or "").strip().splitlines()
    first = message[0][:200] if message else ""
    how = ""
    if case.meta is not None:
        negated = [
            str(location)
            for location, info in case.meta.components.items()
            if info.mode == schemathesis.GenerationMode.NEGATIVE
        ]
        negation = f" negated {','.join(negated)}, query {case.query!r}" if negated else ""
        how = f"[{case.meta.phase.name.value}{negation}] "
    return f"{how}{first} | {curl[:2000]}"


def _worker_heartbeat() -> None:
    """Stands in for the Celery worker the readiness probe looks for (its heartbeat lives
    BEAT_HEARTBEAT_MAX_AGE seconds; a long run outlives one)."""
    beat_heartbeat_task()
