"""Ping, ListChannels and the admin routes (state, reload of auth keys)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from imgapi.v1 import catalog_pb2
from starlette.responses import Response

from gateway.context import RequestContext
from gateway.http.responses import empty_response, json_response
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed

# --- Ping ------------------------------------------------------------------------------------------

#: ``GET /ping?error=<Name>``: the sample error answered for each name.
_SAMPLES: dict[str, ImgapiError] = {
    "ValidationFailedError": validation_failed("boom", []),
    "InvalidParameterError": invalid_parameter('invalid "foo"', [FieldError("foo", "Invalid")]),
    "ImageFilesImmutableError": ImgapiError(
        "ImageFilesImmutable", "cannot modify files on activated image 82ce32a2-9cb4-9a4c-a303-7a63254bacf4"
    ),
    "ImageAlreadyActivatedError": ImgapiError(
        "ImageAlreadyActivated", 'image "ed8cd007-2065-0140-8d41-e32247b71748" is already activated'
    ),
    "NoActivationNoFileError": ImgapiError(
        "NoActivationNoFile",
        'image "ed8cd007-2065-0140-8d41-e32247b71748" cannot be activated: it has no file',
    ),
    "OperatorOnlyError": ImgapiError("OperatorOnly", "this endpoint may only be called by an operator"),
    # The reference builds this sample without a uuid: JavaScript prints it as "undefined".
    "ImageUuidAlreadyExistsError": ImgapiError(
        "ImageUuidAlreadyExists", 'image uuid "undefined" already exists'
    ),
    "StorageIsDownError": ImgapiError("StorageIsDown", "storage is down at the moment"),
    "StorageUnsupportedError": ImgapiError("StorageUnsupported", "storage type is unsupported"),
    "RemoteSourceError": ImgapiError("RemoteSourceError", "boom"),
    "InternalError": ImgapiError("InternalError", "boom"),
}
#: Error classes the reference knows but has no sample for: 500.
_NO_SAMPLE = frozenset(
    {
        "UploadError",
        "DownloadError",
        "OwnerDoesNotExistError",
        "ImageNotSharedError",
        "AccountDoesNotExistError",
        "NotImageOwnerError",
        "NotMantaPathOwnerError",
        "OriginDoesNotExistError",
        "OriginIsNotActiveError",
        "InsufficientServerVersionError",
        "ImageHasDependentImagesError",
        "NotAvailableError",
        "NotImplementedError",
        "ResourceNotFoundError",
        "InvalidHeaderError",
        "ServiceUnavailableError",
        "UnauthorizedError",
        "BadRequestError",
    }
)


def sample_error(name: str) -> ImgapiError:
    if not name:
        name = "InternalError"
    elif not name.endswith("Error"):
        name += "Error"
    sample = _SAMPLES.get(name)
    if sample is not None:
        return sample
    if name in _NO_SAMPLE:
        return ImgapiError("InternalError", f'do not have a sample "{name}" error')
    return invalid_parameter(f"unknown error: {name}", [FieldError("error", "Missing")])


async def ping(ctx: RequestContext) -> Response:
    if ctx.query.present("error"):
        raise sample_error(ctx.query.raw("error"))
    body: dict[str, Any] = {"ping": "pong", "version": ctx.settings.version, "imgapi": True}
    if ctx.app.mode == "dc" or ctx.authenticated:
        body["pid"] = os.getpid()
    if ctx.authenticated:
        body["user"] = ctx.remote_user
    return json_response(body)


# --- Channels --------------------------------------------------------------------------------------


async def list_channels(ctx: RequestContext) -> Response:
    resp = await ctx.clients.catalog.ListChannels(catalog_pb2.ListChannelsRequest(), **ctx.rpc)
    if not resp.enabled:
        raise ImgapiError("ResourceNotFound", f"{ctx.raw_path} does not exist")
    out: list[dict[str, Any]] = []
    for c in resp.channels:
        item: dict[str, Any] = {"name": c.name, "description": c.description}
        if c.default:
            item["default"] = True
        out.append(item)
    return json_response(out)


# --- State and auth keys ---------------------------------------------------------------------------


async def get_state(ctx: RequestContext) -> Response:
    keys = ctx.app.keys
    return json_response(
        {
            "cache": {
                "serverConfig": {"mode": ctx.app.mode, "channels": [c.name for c in ctx.app.config.channels]}
            },
            "log": {"level": 30},
            "storageTypes": configured_storage_types(ctx.app.config),
            "authKeys": {"users": keys.users, "loadedAt": keys.loaded_at} if keys is not None else None,
        }
    )


def configured_storage_types(config: catalog_pb2.ServerConfig) -> list[str]:
    """The storage types this server stores to (one blob backend: its name, ``local`` by default),
    not every name ``storage=`` accepts as input."""
    return [config.default_storage or "local"]


async def update_state(ctx: RequestContext) -> Response:
    action = ctx.query.get("action")
    if action is None:
        raise ImgapiError("MissingParameter", '"action" is required')
    if action != "dropcaches":
        raise ImgapiError("InvalidArgument", f'"{action}" is not a valid action')
    # The only cache is the catalog's server config: refresh it.
    ctx.app.config = await ctx.clients.catalog.GetServerConfig(
        catalog_pb2.GetServerConfigRequest(), **ctx.rpc
    )
    return empty_response(202)


async def reload_auth_keys(ctx: RequestContext) -> Response:
    keys = ctx.app.keys
    if keys is not None:
        await asyncio.to_thread(keys.reload)
    return json_response({})
