"""``GET /openapi.json``: the OpenAPI document of the routes mounted for this configuration.

The document is built once at start-up (``gateway.openapi.document.build_document`` over the mounted routes)
and kept in :class:`gateway.context.AppState`; this handler only serves it.
"""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import json_response


async def openapi_document(ctx: RequestContext) -> Response:
    """``GET /openapi.json``: the document of the routes mounted for this configuration."""
    return json_response(ctx.app.openapi_document)
