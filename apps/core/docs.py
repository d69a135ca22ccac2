"""The OpenAPI document and Swagger UI, answering errors in the contract's JSON shape.

drf-spectacular's views render whatever they answer with their own renderers: a bad token on
/api/schema came back as a YAML error, on /api/docs as an HTML page. Errors here are rendered as
JSON like everywhere else. Swagger UI's files come from drf-spectacular-sidecar (settings
SPECTACULAR_SETTINGS), served by this app: no CDN, works offline.
"""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer


class _JsonErrors:
    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class SchemaApi(_JsonErrors, SpectacularAPIView):
    pass


class SwaggerDocsApi(_JsonErrors, SpectacularSwaggerView):
    pass
