"""`page`/`size` query parameters and the `{items, total, page, size}` list shape."""

from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from .validation import validated


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    size = serializers.IntegerField(min_value=1, max_value=100, default=20)


@dataclass(frozen=True)
class Page:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def body(self, items: list[Any], total: int) -> dict[str, Any]:
        return {"items": items, "total": total, "page": self.page, "size": self.size}


def page_from_query(query_params) -> Page:
    """Reads and validates `page` and `size`; out-of-range values are a 422."""
    data = validated(PageQuerySerializer, query_params)
    return Page(page=data["page"], size=data["size"])
