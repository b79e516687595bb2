"""Image routes served by one catalog call each: ListImages, GetImage, CreateImage, DeleteImage,
CloneImage, ListImageJobs, AdminPushDockerImage."""

from __future__ import annotations

from imgapi.v1 import catalog_pb2, image_pb2
from starlette.responses import Response

from gateway.adapters.list_answers import Answer
from gateway.adapters.orphaned_blobs import delete_orphans
from gateway.context import RequestContext
from gateway.http.list_params import admin_fields, fill_list_request
from gateway.http.responses import (
    bytes_response,
    empty_response,
    image_response,
    images_response,
    json_response,
)
from gateway.routes import docker, workflow_jobs
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed
from imgapi_common.observability import LIST_ANSWERS


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
        # Step **cond** of a write: If-Match, and If-None-Match (a match is a 412 here, where the
        # GetImage call would report "not modified"); the image has no Last-Modified.
        req.preconditions.CopyFrom(ctx.preconditions())
    resp = await ctx.clients.catalog.GetImage(req, **ctx.rpc)
    if resp.not_modified:
        header = req.preconditions.if_none_match.header
        raise ImgapiError("PreconditionFailed", f"if-none-match '{header}' matched etag '{resp.image.etag}'")
    return resp.image


def check_owner(ctx: RequestContext, image: image_pb2.Image) -> None:
    """Step **owner** for the few actions without a catalog call of their own."""
    account = ctx.account
    if account is not None and account != image.owner:
        raise ImgapiError("NotImageOwner", f"account {account} is not the owner of image {image.uuid}")


#: ListImages filters compared as values: given empty (``owner=``) they match no image.
_EXACT_FILTERS = ("owner", "name", "version", "os", "type")


async def list_images(ctx: RequestContext) -> Response:
    """ListImages. The query is parsed here (gateway.http.list_params) and the catalog searches; an empty
    filter matches nothing."""
    q = ctx.query
    req = catalog_pb2.ListImagesRequest(
        caller=ctx.caller(),
        view=ctx.view,
        owner=q.raw("owner"),
        name=q.raw("name"),
        version=q.raw("version"),
        os=q.raw("os"),
        type=q.raw("type"),
        tags=q.prefixed("tag."),
        billing_tags=q.all("billing_tag"),
        page_json_only=True,
    )
    try:
        fill_list_request(req, q, ctx.app.mode, ctx.authenticated)
    except ImgapiError:
        await ctx.check_channel(write=False)  # chan -> parameters
        raise
    empty_filter = any(q.empty(name) for name in _EXACT_FILTERS)
    answers = ctx.app.list_answers
    if not answers.enabled:
        resp = await ctx.clients.catalog.ListImages(req, **ctx.rpc)
        return images_response("[]" if empty_filter else resp.page_json)
    key = answers.key(req, empty_filter)
    kept = answers.get(key)
    if kept is not None:
        req.if_data_version = kept.version
    resp = await ctx.clients.catalog.ListImages(req, **ctx.rpc)
    if resp.unchanged and kept is not None:
        LIST_ANSWERS.labels("kept").inc()
        return bytes_response(kept.body)
    LIST_ANSWERS.labels("rendered").inc()
    response = images_response("[]" if empty_filter else resp.page_json)
    answers.put(key, Answer(resp.data_version, bytes(response.body)))
    return response


async def get_image(ctx: RequestContext) -> Response:
    try:
        admin = admin_fields(ctx.query, ctx.app.mode, ctx.authenticated)
    except ImgapiError:
        await load_image(ctx)  # load -> adminFields
        raise
    req = catalog_pb2.GetImageRequest(
        caller=ctx.caller(),
        view=ctx.view,
        uuid=ctx.uuid,
        preconditions=ctx.preconditions(),
        incl_admin_fields=admin,
        view_only=True,
    )
    resp = await ctx.clients.catalog.GetImage(req, **ctx.rpc)
    if resp.not_modified:
        return empty_response(304)
    return image_response(resp.image.view_json, resp.image.etag)


async def create_image(ctx: RequestContext) -> Response:
    """``POST /images``: CreateImage, or the other actions (create-from-vm, the Docker and LXD imports)."""
    action = ctx.query.get("action")
    if action is None:
        req = catalog_pb2.CreateImageRequest(
            caller=ctx.caller(), view=ctx.answer_view, manifest_json=ctx.body.text
        )
        resp = await ctx.clients.catalog.CreateImage(req, **ctx.rpc)
        return image_response(resp.image.view_json, resp.image.etag)
    await ctx.check_channel(write=True)
    if action == "create-from-vm":
        raise not_available("custom image creation is not currently available")
    if action == "import-docker-image":
        if ctx.account is not None:
            raise operator_only()
        check_docker_import_params(ctx)
        if ctx.clients.docker is not None:
            return await docker.import_docker_image(ctx, ctx.clients.docker)
        ctx.query.boolean("public")
        raise not_available("docker image import is not available")
    if action == "import-lxd-image":
        if ctx.account is not None:
            raise operator_only()
        check_lxd_import_params(ctx)
        raise not_available("lxd image import is not available")
    raise invalid_action(action)


def check_docker_import_params(ctx: RequestContext) -> None:
    """AdminImportDockerImage's first input checks: repo, tag or digest (the importer checks the rest)."""
    q = ctx.query
    errors: list[FieldError] = []
    if q.get("repo") is None:
        errors.append(FieldError("repo", "MissingParameter"))
    tag, digest = q.get("tag"), q.get("digest")
    if tag is None and digest is None:
        errors.append(FieldError("tag", "MissingParameter", 'one of "tag" or "digest" is required'))
    elif tag is not None and digest is not None:
        errors.append(FieldError("digest", "Invalid", 'cannot specify both "tag" and "digest"'))
    if errors:
        raise validation_failed("missing parameters", errors)


def check_lxd_import_params(ctx: RequestContext) -> None:
    """AdminImportLxdImage's input checks (before the 501): ``alias`` given, ``<registry>:<alias>``."""
    alias = ctx.query.get("alias")
    if alias is None:
        raise validation_failed("missing parameters", [FieldError("alias", "MissingParameter")])
    if ":" not in alias:
        raise invalid_parameter("alias must include a semicolon", [FieldError("alias", "Invalid")])


async def delete_image(ctx: RequestContext) -> Response:
    try:
        force = ctx.query.boolean("force_all_channels")
    except ImgapiError:
        check_owner(ctx, await load_image(ctx))  # load -> owner -> force_all_channels
        raise
    req = catalog_pb2.DeleteImageRequest(caller=ctx.caller(), uuid=ctx.uuid, force_all_channels=bool(force))
    resp = await ctx.clients.catalog.DeleteImage(req, **ctx.rpc)
    await delete_orphans(ctx, resp.orphaned_blob_ids)
    return empty_response(204)


async def clone_image(ctx: RequestContext) -> Response:
    req = catalog_pb2.CloneImageRequest(caller=ctx.caller(), view=ctx.answer_view, uuid=ctx.uuid)
    resp = await ctx.clients.catalog.CloneImage(req, **ctx.rpc)
    return image_response(resp.image.view_json, resp.image.etag)


async def push_docker_image(ctx: RequestContext) -> Response:
    """AdminPushDockerImage: load -> owner -> not docker (422) -> the replication service's push
    (501 without a replication target)."""
    image = await load_image(ctx)
    check_owner(ctx, image)
    if image.type != "docker":
        raise validation_failed("image is not a docker image", [FieldError("type", "Invalid")])
    if ctx.clients.docker is not None:
        return await docker.push_docker_image(ctx, ctx.clients.docker)
    raise not_available("docker image push is not available")


async def list_image_jobs(ctx: RequestContext) -> Response:
    """ListImageJobs: load, then the import jobs of this image (the replication service)."""
    await load_image(ctx)
    return json_response(
        await workflow_jobs.list_image_jobs(ctx, ctx.uuid, ctx.query.get("task"), ctx.query.get("execution"))
    )
