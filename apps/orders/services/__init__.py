"""Order writes. Import from here: `from apps.orders.services import order_place, order_cancel`."""

from .cancel import order_cancel
from .inputs import LineInput, OrderInput
from .placement import order_place

__all__ = ["LineInput", "OrderInput", "order_cancel", "order_place"]
