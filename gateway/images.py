"""Image routes served by one catalog call each: ListImages, GetImage, CreateImage, DeleteImage,
CloneImage, ListImageJobs, AdminPushDockerImage."""

from __future__ import annotations

import importlib
from typing import Any

from imgapi.v1 import catalog_pb2, image_pb2
from starlette.responses import Response

from gateway.blobs import delete_orphans
from gateway.context import RequestContext
from gateway.responses import empty_response, image_response, images_response, json_response
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed


def operator_only() -> ImgapiError:
    return ImgapiError("OperatorOnly", "this endpoint may only be called by an operator")


def invalid_action(action: str) -> ImgapiError:
    return invalid_parameter(f'"{action}" is not a valid action', [FieldError("action", "Invalid")])


def not_available(what: str) -> ImgapiError:
    return ImgapiError("NotAvailable", what)


async def load_image(ctx: RequestContext, preconditions: bool = False) -> image_pb2.Image:
    """Step **load** (channel, account shape, existence, visibility) through GetImage."""
    req = catalog_pb2.GetImageRequest(caller=ctx.caller(), view=ctx.view, uuid=ctx.uuid)
    if preconditions:
        # Only If-Match applies to non-GET requests here (If-None-Match would mean 304 for GetImage).
        req.preconditions.if_match = ctx.request.headers.get("if-match", "")
    resp = await ctx.clients.catalog.GetImage(req, **ctx.rpc)
    return resp.image


def check_owner(ctx: RequestContext, image: image_pb2.Image) -> None:
    """Step **owner** for the few actions without a catalog call of their own."""
    account = ctx.account
    if account is not None and account != image.owner:
        raise ImgapiError("NotImageOwner", f"account {account} is not the owner of image {image.uuid}")


async def list_images(ctx: RequestContext) -> Response:
    q = ctx.query
    req = catalog_pb2.ListImagesRequest(
        caller=ctx.caller(),
        view=ctx.view,
        owner=q.raw("owner"),
        name=q.raw("name"),
        version=q.raw("version"),
        state=q.raw("state"),
        public=q.raw("public"),
        os=q.raw("os"),
        type=q.raw("type"),
        tags=q.prefixed("tag."),
        billing_tags=q.all("billing_tag"),
        limit=q.raw("limit"),
        marker=q.raw("marker"),
        sort=q.raw("sort"),
        incl_admin_fields=q.raw("inclAdminFields"),
    )
    resp = await ctx.clients.catalog.ListImages(req, **ctx.rpc)
    return images_response([i.view_json for i in resp.images])


async def get_image(ctx: RequestContext) -> Response:
    req = catalog_pb2.GetImageRequest(
        caller=ctx.caller(),
        view=ctx.view,
        uuid=ctx.uuid,
        preconditions=ctx.preconditions(),
        incl_admin_fields=ctx.query.raw("inclAdminFields"),
        view_only=True,
    )
    resp = await ctx.clients.catalog.GetImage(req, **ctx.rpc)
    if resp.not_modified:
        return empty_response(304)
    return image_response(resp.image.view_json, resp.image.etag)


async def create_image(ctx: RequestContext) -> Response:
    """``POST /images``: CreateImage, or the out-of-scope actions (endpoints.md §2.3, §2.4, §2.27)."""
    action = ctx.query.get("action")
    if action is None:
        req = catalog_pb2.CreateImageRequest(caller=ctx.caller(), view=ctx.view, manifest_json=ctx.body.text)
        resp = await ctx.clients.catalog.CreateImage(req, **ctx.rpc)
        return image_response(resp.image.view_json, resp.image.etag)
    await ctx.check_channel(write=True)
    if action == "create-from-vm":
        raise not_available("custom image creation is not currently available")
    if action in ("import-docker-image", "import-lxd-image"):
        if ctx.account is not None:
            raise operator_only()
        kind = "docker" if action == "import-docker-image" else "lxd"
        raise not_available(f"{kind} image import is not available")
    raise invalid_action(action)


async def delete_image(ctx: RequestContext) -> Response:
    req = catalog_pb2.DeleteImageRequest(
        caller=ctx.caller(), uuid=ctx.uuid, force_all_channels=ctx.query.raw("force_all_channels")
    )
    resp = await ctx.clients.catalog.DeleteImage(req, **ctx.rpc)
    await delete_orphans(ctx, resp.orphaned_blob_ids)
    return empty_response(204)


async def clone_image(ctx: RequestContext) -> Response:
    req = catalog_pb2.CloneImageRequest(caller=ctx.caller(), view=ctx.view, uuid=ctx.uuid)
    resp = await ctx.clients.catalog.CloneImage(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def push_docker_image(ctx: RequestContext) -> Response:
    """AdminPushDockerImage (§2.27): load -> owner -> not docker (422) -> 501."""
    image = await load_image(ctx)
    check_owner(ctx, image)
    if image.type != "docker":
        raise validation_failed("image is not a docker image", [FieldError("type", "Invalid")])
    raise not_available("docker image push is not available")


async def list_image_jobs(ctx: RequestContext) -> Response:
    """ListImageJobs (§2.25): load, then the jobs of gateway.jobs about this image."""
    await load_image(ctx)
    jobs: list[dict[str, Any]] = []
    try:
        module = importlib.import_module("gateway.jobs")
    except ImportError:
        module = None
    lister = getattr(module, "list_image_jobs", None)
    if lister is not None:
        jobs = await lister(ctx, ctx.uuid, ctx.query.get("task"), ctx.query.get("execution"))
    return json_response(jobs)
