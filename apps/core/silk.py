"""Silk (SILK_ENABLED, on in `make run`, never in production) without the secrets it would store.

Silk 5.6 masks request bodies and request headers by SILKY_SENSITIVE_KEYS, but stores response
bodies, response headers and SQL text as they are: every login's access and refresh tokens,
the admin's session cookie, the refresh token inserted into the blacklist tables. Any staff
user can read them at /silk/, long after. Here:

- request bodies and headers: SILKY_SENSITIVE_KEYS (settings) covers token, access, refresh,
  password, secret, key, authorization; SILKY_HIDE_COOKIES masks the Cookie header;
- response bodies and headers: MaskingResponseModelFactory, installed in place of Silk's own
  factory (`install()`, called from CoreConfig.ready when Silk is on), masks JSON values under
  sensitive keys and the Set-Cookie header;
- SQL: SILKY_IGNORE_QUERIES skips queries whose text carries a token, a session key or a
  password hash.

Checked against django-silk 5.6.0 (pinned): `install()` replaces the name
`silk.middleware.ResponseModelFactory`, which SilkyMiddleware calls once per response.
"""

import base64
import json
import re

from django.conf import settings
from silk import middleware as silk_middleware
from silk.model_factory import RequestModelFactory, ResponseModelFactory
from silk.models import Response as SilkResponse

MASK = RequestModelFactory.CLEANSED_SUBSTITUTE
SENSITIVE_RESPONSE_HEADERS = {"set-cookie"}


def _sensitive_key() -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, settings.SILKY_SENSITIVE_KEYS)), re.I)


def mask_json(value, pattern: re.Pattern[str]):
    """`value` with every value under a key matching `pattern` replaced by the mask."""
    if isinstance(value, dict):
        return {
            k: MASK if pattern.search(str(k)) else mask_json(v, pattern) for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_json(item, pattern) for item in value]
    return value


class MaskingResponseModelFactory(ResponseModelFactory):
    """Silk's response recorder, storing masked JSON bodies and no cookies."""

    def construct_response_model(self):
        body, content = self.body()
        if isinstance(content, str):
            content = content.encode("utf-8")
        try:
            parsed = json.loads(content) if content else None
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            masked = mask_json(parsed, _sensitive_key())
            content = json.dumps(masked).encode()
            body = json.dumps(masked, sort_keys=True, indent=4) if body else ""
        headers = {
            name: MASK if name.lower() in SENSITIVE_RESPONSE_HEADERS else value
            for name, value in self.response.headers.items()
        }
        return SilkResponse.objects.create(
            request_id=self.request.id,
            status_code=self.response.status_code,
            encoded_headers=json.dumps(headers),
            body=body,
            raw_body=base64.b64encode(content or b"").decode("ascii"),
        )


def install() -> None:
    silk_middleware.ResponseModelFactory = MaskingResponseModelFactory  # type: ignore[misc]
