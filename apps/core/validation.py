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


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """Validates `data` and returns the cleaned dict; failures become 422 VALIDATION_ERROR."""
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise serializers.ValidationError({"body": ["Expected a JSON object."]})
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
