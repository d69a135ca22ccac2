"""HTTP caching headers for answers no cache may keep."""

from django.utils.cache import patch_cache_control


class NoStoreMixin:
    """Every answer of this APIView (errors included) says `Cache-Control: no-store, private`:
    it carries a token or an account's data, which no browser cache, proxy or CDN may keep
    (RFC 6749 section 5.1 asks the same of token responses)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        patch_cache_control(response, no_store=True, private=True)
        response["Pragma"] = "no-cache"  # HTTP/1.0 caches
        return response
