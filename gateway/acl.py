"""``POST /images/:uuid/acl[?action=add|remove]``: AddImageAcl / RemoveImageAcl.

Chain: auth -> uuid -> chan -> body (dispatcher) -> load -> owner -> action -> body checks.
"""

from __future__ import annotations

from imgapi.v1 import catalog_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.images import check_owner, invalid_action, load_image
from gateway.responses import image_response


async def image_acl(ctx: RequestContext) -> Response:
    action = ctx.query.get("action") or "add"
    req = catalog_pb2.ImageAclRequest(
        caller=ctx.caller(), view=ctx.view, uuid=ctx.uuid, acl_json=ctx.body.text
    )
    if action == "add":
        resp = await ctx.clients.catalog.AddImageAcl(req, **ctx.rpc)
    elif action == "remove":
        resp = await ctx.clients.catalog.RemoveImageAcl(req, **ctx.rpc)
    else:
        # load and owner come before the action check.
        check_owner(ctx, await load_image(ctx))
        raise invalid_action(action)
    return image_response(resp.image.view_json, resp.image.etag)
