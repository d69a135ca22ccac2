"""Catalog domain errors (rendered as `{error, message, details}` by apps.core)."""

from apps.core.errors import ApplicationError, ErrorCode, NotFound


class ProductNotFound(NotFound):
    """A product named in the path does not exist: the contract's plain 404 NOT_FOUND, as for any
    path that names nothing. (A product named in a request body is `UnknownProduct`.)"""

    default_message = "Product not found."


class UnknownProduct(ApplicationError):
    """A product named in a request body does not exist (POST /orders, POST /products/deals):
    404 PRODUCT_NOT_FOUND, so a client can tell it from a wrong path."""

    code = ErrorCode.PRODUCT_NOT_FOUND
    http_status = 404
    default_message = "Product not found."


class InsufficientStock(ApplicationError):
    code = ErrorCode.INSUFFICIENT_STOCK
    http_status = 400
    default_message = "Not enough stock."


class PriceNotAboveDeal(ApplicationError):
    """A new price at or below the price of one of the product's open deals: the deal would no
    longer be a discount (spec: deal_price is below the product price)."""

    code = ErrorCode.PRICE_NOT_ABOVE_DEAL
    http_status = 400
    default_message = "The price must stay above the price of the product's open deals."
