"""Deal domain errors (rendered as `{error, message, details}` by apps.core)."""

from apps.core.errors import ApplicationError, ErrorCode, NotFound


class DealNotFound(NotFound):
    """A deal named in the path does not exist, or is a draft shoppers may not see: the plain
    404 NOT_FOUND of GET /products/deals/{id} and the operator services. (A deal named in a
    purchase's body is apps.orders.errors.UnknownDeal, DEAL_NOT_FOUND.)"""

    default_message = "Deal not found."


class InvalidPeriod(ApplicationError):
    code = ErrorCode.INVALID_PERIOD
    http_status = 400
    default_message = "starts_at must be before ends_at, and ends_at in the future."


class InvalidDealState(ApplicationError):
    """An operator action that the deal's lifecycle does not allow (publish twice, pause an ended
    deal, change the quota of a live deal...)."""

    code = ErrorCode.INVALID_DEAL_STATE
    http_status = 409
    default_message = "The deal's state does not allow this."
