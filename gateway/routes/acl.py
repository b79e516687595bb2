"""``POST /images/:uuid/acl[?action=add|remove]``: AddImageAcl / RemoveImageAcl.

Chain: auth -> uuid -> chan -> body (dispatcher) -> load -> owner -> action -> body checks. The
body is checked here (an array of account UUIDs) and sent as a typed list; a malformed one is
refused after load and owner, as IMGAPI does.
"""

from __future__ import annotations

from imgapi.v1 import catalog_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import image_response
from gateway.routes.images import check_owner, invalid_action, load_image
from imgapi_common.acl_channel_rules import check_uuid_list
from imgapi_common.errors import ImgapiError
from imgapi_common.json_depth import check_json_depth


async def image_acl(ctx: RequestContext) -> Response:
    action = ctx.query.get("action") or "add"
    if action not in ("add", "remove"):
        # load and owner come before the action check.
        check_owner(ctx, await load_image(ctx))
        raise invalid_action(action)
    body = ctx.body
    check_json_depth(body.value)  # an unreadable body is refused before the image is looked at
    try:
        accounts = check_uuid_list("acl", body.value if body.present else None)
    except ImgapiError:
        check_owner(ctx, await load_image(ctx))  # load -> owner -> body
        raise
    req = catalog_pb2.ImageAclRequest(caller=ctx.caller(), view=ctx.answer_view, uuid=ctx.uuid, acl=accounts)
    if action == "add":
        resp = await ctx.clients.catalog.AddImageAcl(req, **ctx.rpc)
    else:
        resp = await ctx.clients.catalog.RemoveImageAcl(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)
