"""SDC 6 ``/datasets`` redirects (to ``/images``), the docs redirect and the favicon (404)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response

from gateway.context import RequestContext, is_uuid
from gateway.http.responses import empty_response
from imgapi_common.errors import ImgapiError

#: Printable ASCII stays as it is; anything else (controls, non-ASCII) is percent-encoded as UTF-8,
#: since a header value cannot carry it.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x20, 0x7F))


def redirect(location: str) -> Response:
    return empty_response(301, {"Location": quote(location, safe=_LOCATION_SAFE)})


async def list_datasets(ctx: RequestContext) -> Response:
    return redirect("/images")


def dataset_location(arg: str) -> str:
    if is_uuid(arg):
        return f"/images/{arg}"
    parts = arg.split(":")
    if len(parts) == 2:
        return f"/images/?name={parts[0]}&version={parts[1]}"
    if len(parts) == 3:
        return f"/images/?name={parts[2]}"
    if len(parts) == 4:
        return f"/images/?name={parts[2]}&version={parts[3]}"
    return f"/images/?name={arg}"


async def get_dataset(ctx: RequestContext) -> Response:
    return redirect(dataset_location(ctx.params["arg"]))


async def docs_redirect(ctx: RequestContext) -> Response:
    return redirect("/docs/")


_DOCS_INDEX = b"""<!doctype html>
<html><head><title>IMGAPI</title></head>
<body><h1>IMGAPI</h1><p>An IMGAPI-compatible image registry (REST API versions 1.0.0 and 2.0.0).</p>
</body></html>
"""


async def docs(ctx: RequestContext) -> Response:
    if ctx.raw_path.rstrip("/") == "/docs":
        return Response(_DOCS_INDEX, media_type="text/html")
    raise ImgapiError("ResourceNotFound", f"{ctx.raw_path} does not exist")


async def favicon(ctx: RequestContext) -> Response:
    raise ImgapiError("ResourceNotFound", f"{ctx.raw_path} does not exist")
