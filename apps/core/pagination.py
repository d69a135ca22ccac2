"""`page`/`size` query parameters and the `{items, total, page, size}` list shape."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rest_framework import serializers

from .validation import validated

MAX_PAGE = 1_000_000
MAX_SIZE = 100


class PageQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    size = serializers.IntegerField(min_value=1, max_value=MAX_SIZE, default=20)


@dataclass(frozen=True)
class Page:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def body(self, items: list[Any], total: int) -> dict[str, Any]:
        return {"items": items, "total": total, "page": self.page, "size": self.size}


def page_from_query(query_params: Mapping[str, str]) -> Page:
    """Reads and validates `page` and `size`; out-of-range values are a 422.

    Plain in-range numbers are read by hand (lists are the hottest reads; the serializer costs
    more than a cached page); anything else goes through the serializer, which words the 422."""
    page, size = query_params.get("page", "1"), query_params.get("size", "20")
    short = len(page) <= 7 and len(size) <= 3  # int() of a 5,000-digit string raises
    if short and page.isascii() and page.isdigit() and size.isascii() and size.isdigit():
        page_number, page_size = int(page), int(size)
        if 1 <= page_number <= MAX_PAGE and 1 <= page_size <= MAX_SIZE:
            return Page(page=page_number, size=page_size)
    data = validated(PageQuerySerializer, query_params)
    return Page(page=data["page"], size=data["size"])
