import orjson
from rest_framework.renderers import JSONRenderer


class OrjsonRenderer(JSONRenderer):
    """DRF's JSONRenderer through orjson: same output (UUIDs and aware datetimes as ISO 8601 with
    offset), several times cheaper to encode."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
