"""``POST /images/:uuid?action=...``: the action dispatcher, in the order IMGAPI checks the actions.

auth(strict) -> uuid -> chan(write) -> body are done by the dispatcher (``body=True`` route). Then:
import-remote / import / import-from-datacenter (no load) -> load -> change-stor -> owner -> export
-> cond -> activate / enable / disable / channel-add / update -> invalid or missing action.
Each catalog action RPC performs load, owner and cond itself, in that order.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable

from imgapi.v1 import catalog_pb2, common_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import image_response
from gateway.routes import remote_files, remote_imports
from gateway.routes.images import check_owner, invalid_action, load_image, operator_only
from imgapi_common.acl_channel_rules import unknown_channel
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed
from imgapi_common.json_depth import check_json_depth


async def image_action(ctx: RequestContext) -> Response:
    action = ctx.query.get("action")
    if action == "import-remote":
        return await remote_imports.import_remote(ctx)  # AdminImportRemoteImage
    if action == "import":
        if ctx.query.get("source") is not None:
            return await remote_files.import_from_source(ctx)  # AdminImportImage with ?source=
        return await admin_import_image(ctx)
    if action == "import-from-datacenter":
        return await remote_imports.import_from_datacenter(ctx)  # ImportFromDatacenter
    if action == "change-stor":
        return await change_stor(ctx)
    if action == "export":
        return await export_image(ctx)
    rpc = _ACTIONS.get(action or "")
    if rpc is not None:
        return await rpc(ctx)
    if action == "channel-add" and ctx.app.has_channels:
        return await channel_add(ctx)
    # Not an action: load -> owner -> cond still come first (a missing image is a 404).
    image = await load_image(ctx, preconditions=True)
    check_owner(ctx, image)
    if action is not None:
        raise invalid_action(action)
    raise invalid_parameter('no image "action" was specified', [FieldError("action", "MissingParameter")])


async def admin_import_image(ctx: RequestContext) -> Response:
    """AdminImportImage (no source): the catalog does every check but ``skip_owner_check``'s, which
    comes after the request's own (channel, operator, body uuid)."""
    req = catalog_pb2.AdminImportImageRequest(
        caller=ctx.caller(),
        view=ctx.answer_view,
        uuid=ctx.uuid,
        manifest_json=ctx.body.text,
        from_source=False,
    )
    try:
        req.skip_owner_check = remote_files.wants_skip_owner_check(ctx)
    except ImgapiError:
        req.check_request_only = True
        await ctx.clients.catalog.AdminImportImage(req, **ctx.rpc)
        raise
    resp = await ctx.clients.catalog.AdminImportImage(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


def _action_request(ctx: RequestContext) -> catalog_pb2.ImageActionRequest:
    return catalog_pb2.ImageActionRequest(
        caller=ctx.caller(), view=ctx.answer_view, uuid=ctx.uuid, preconditions=ctx.preconditions()
    )


async def activate(ctx: RequestContext) -> Response:
    resp = await ctx.clients.catalog.ActivateImage(_action_request(ctx), **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def enable(ctx: RequestContext) -> Response:
    resp = await ctx.clients.catalog.EnableImage(_action_request(ctx), **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def disable(ctx: RequestContext) -> Response:
    resp = await ctx.clients.catalog.DisableImage(_action_request(ctx), **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def update(ctx: RequestContext) -> Response:
    req = catalog_pb2.UpdateImageRequest(
        caller=ctx.caller(),
        view=ctx.answer_view,
        uuid=ctx.uuid,
        update_json=ctx.body.text,
        preconditions=ctx.preconditions(),
    )
    resp = await ctx.clients.catalog.UpdateImage(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def channel_add(ctx: RequestContext) -> Response:
    """ChannelAddImage: ``{"channel": "<name>"}``. A body naming no channel (or a non-string) is
    refused where IMGAPI refuses an unknown one: after load, owner and cond."""
    body = ctx.body
    check_json_depth(body.value)  # an unreadable body is refused before the image is looked at
    given = body.present and isinstance(body.value, dict) and "channel" in body.value
    name = body.value["channel"] if given else None
    if not isinstance(name, str):
        image = await load_image(ctx)
        check_owner(ctx, image)
        await load_image(ctx, preconditions=True)
        raise unknown_channel(name, given=given)
    req = catalog_pb2.ChannelAddImageRequest(
        caller=ctx.caller(),
        view=ctx.answer_view,
        uuid=ctx.uuid,
        channel=name,
        preconditions=ctx.preconditions(),
    )
    resp = await ctx.clients.catalog.ChannelAddImage(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


_ACTIONS: dict[str, Callable[[RequestContext], Awaitable[Response]]] = {
    "activate": activate,
    "enable": enable,
    "disable": disable,
    "update": update,
}


async def change_stor(ctx: RequestContext) -> Response:
    """AdminChangeImageStor: load -> operator only -> stor -> NotImplemented -> (no-op move).

    One blob backend: moving is a no-op. The answer is the admin view for the latest API version.
    """
    await load_image(ctx)
    if ctx.account is not None:
        raise operator_only()
    stor = ctx.query.get("stor")
    if stor is None:
        raise validation_failed('missing "stor" query parameter', [FieldError("stor", "MissingParameter")])
    if stor not in ctx.app.config.storage_names:
        raise validation_failed(f'unknown storage type "{stor}"', [FieldError("stor", "Invalid")])
    req = catalog_pb2.GetImageRequest(
        caller=ctx.caller(),
        view=common_pb2.ImageView(include_channels=True, include_admin_fields=True),
        uuid=ctx.uuid,
    )
    image = (await ctx.clients.catalog.GetImage(req, **ctx.rpc)).image
    if image.HasField("icon"):
        raise ImgapiError(
            "NotImplemented", "changing the storage of an image with an icon is not implemented"
        )
    if len(image.files) > 1:
        raise ImgapiError(
            "NotImplemented", "changing the storage of an image with several files is not implemented"
        )
    return image_response(image.view_json, None)


async def export_image(ctx: RequestContext) -> Response:
    """ExportImage: load -> owner -> manta_path checks -> 503 StorageUnsupported (no Manta)."""
    image = await load_image(ctx)
    check_owner(ctx, image)
    manta_path = ctx.query.get("manta_path")
    if manta_path is None:
        raise validation_failed(
            'missing "manta_path" query parameter', [FieldError("manta_path", "MissingParameter")]
        )
    parts = posixpath.normpath(manta_path).split("/")
    user = parts[1] if len(parts) > 1 else ""
    if not user:
        raise invalid_parameter(f'invalid manta_path "{manta_path}"', [FieldError("manta_path", "Invalid")])
    raise ImgapiError("StorageUnsupported", "storage type is unsupported")
