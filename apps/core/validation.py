from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """Validates `data` and returns the cleaned dict; failures become 422 VALIDATION_ERROR."""
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise serializers.ValidationError({"body": ["Expected a JSON object."]})
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
