from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers


class StrictIntegerField(serializers.IntegerField):
    """An integer in a JSON body must be a JSON integer: `1`, never `"1"`, `1.0`, `1E1` or `true`
    (DRF's IntegerField accepts all of those). A client that sends a string or a float has a
    bug worth hearing about; a quantity or a price is never guessed. Query parameters, which
    are always strings, keep DRF's IntegerField."""

    default_error_messages = {"not_integer": "A JSON integer is required (not a string or float)."}

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int:  # bool is an int subclass: excluded too
            self.fail("not_integer")
        return super().to_internal_value(data)


class _StrictString:
    """A string in a JSON body must be a JSON string: DRF's CharField (and its Email, URL, Regex
    subclasses) turns `5`, `6.4e16` or `true` into text, and its UUIDField reads an integer as
    a UUID, so a client's type bug became a stored "6.4e16" or a lookup of an id nobody sent."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_StrictString, serializers.CharField):
    """Also: `max_length` bounds the string as sent, as the schema's maxLength says. DRF checks
    it after trimming, so 501 newlines passed a 500-character limit (found by the fuzzer)."""

    default_error_messages = {"invalid": "A JSON string is required."}

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # DRF's run_validation answers a whitespace-only string with "" before any validator.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class StrictEmailField(_StrictString, serializers.EmailField):
    pass


class StrictURLField(_StrictString, serializers.URLField):
    pass


class StrictRegexField(_StrictString, serializers.RegexField):
    pass


class StrictUUIDField(_StrictString, serializers.UUIDField):
    pass


class StrictDateTimeField(serializers.DateTimeField):
    """An ISO 8601 JSON string for a time between 2000 and 2100. DRF took any year: year 404 came
    back in Asia/Seoul's 1908 local mean time, offset `+08:27:52`, which is not an RFC 3339 time
    (the fuzzer caught the deal it created); a sale outside this range is a typo."""

    EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
    LATEST = datetime(2100, 1, 1, tzinfo=UTC)
    default_error_messages = {"out_of_range": "Must be from 2000-01-01 to 2099-12-31 (UTC)."}

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid", format="an ISO 8601 string")
        parsed = super().to_internal_value(value)
        if not self.EARLIEST <= parsed < self.LATEST:
            self.fail("out_of_range")
        return parsed


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """Validates `data` and returns the cleaned dict; failures become 422 VALIDATION_ERROR."""
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise serializers.ValidationError({"body": ["Expected a JSON object."]})
    if hasattr(data, "getlist"):
        _refuse_blank_query_values(serializer_class(), data)
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _refuse_blank_query_values(serializer: serializers.Serializer, query: Any) -> None:
    """`?status=` is a 422 like `?status=nope`: DRF reads a blank form value of an optional
    field as "not sent", so a client's empty filter silently listed everything."""
    blank = {
        name: ["May not be blank."]
        for name, field in serializer.fields.items()
        if query.get(name) == "" and not getattr(field, "allow_blank", False)
    }
    if blank:
        raise serializers.ValidationError(blank)
