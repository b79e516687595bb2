"""IMGAPI's remote imports in the replication service: the checks made before a job starts, then
the job; and AdminImportImage of a source's manifest (no job).

* AdminImportRemoteImage (a ``source`` URL): the image must not exist here; its manifest is read
  from the source, then the origins missing here (each must be active), base first.
* ImportFromDatacenter (a datacenter name and an ``account``): the datacenter must be a configured
  other one; the image must be active there and owned by the account, and must not exist here;
  its origins owned by the account are imported with it, while the first one owned by someone
  else must already exist here. A datacenter's HTTP error answer is handed back unchanged.

Every fetch goes through :mod:`imgapi_common.fetch` (SSRF rules + the operator allow-list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from imgapi.v1 import catalog_pb2, common_pb2, image_pb2

from imgapi_common.errors import FieldError, ImgapiError, validation_failed
from imgapi_common.fetch import FetchError
from imgapi_common.manifest_fields import MAX_ORIGIN_CHAIN
from imgapi_common.remote_imgapi import Remote, RemoteHttpError, fetch_manifest, remote_source_error
from replication.handlers.imports.registry import Job, JobRegistry
from replication.handlers.imports.work import Scope, job_steps, local_image

TASK = "import-remote-image"


@dataclass(frozen=True)
class Datacenters:
    """This datacenter's name and the IMGAPI URL of each datacenter (ImportFromDatacenter)."""

    name: str | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def source_of(self, dc: str) -> str:
        valid = ", ".join(n for n in self.urls if n != self.name)
        if dc not in self.urls:
            raise validation_failed(
                f'datacenter "{dc}" is not supported, valid datacenters names are: {valid}',
                [FieldError("datacenter", "Invalid")],
            )
        if dc == self.name:
            raise validation_failed(
                f'datacenter "{dc}" is the same datacenter as this one, valid datacenters names are: {valid}',
                [FieldError("datacenter", "Invalid")],
            )
        return self.urls[dc]


@dataclass(frozen=True)
class RemoteAnswer:
    """A remote's HTTP error answer, to be passed on as it is."""

    status: int
    body: dict[str, Any]


def passthrough(e: RemoteHttpError) -> RemoteAnswer:
    """ImportFromDatacenter: a remote HTTP error is answered unchanged (status, code, message)."""
    body = e.body if isinstance(e.body, dict) else {"code": "RemoteSourceError", "message": e.detail}
    out = {"code": body.get("code", "RemoteSourceError"), "message": body.get("message", e.detail)}
    if isinstance(body.get("errors"), list):
        out["errors"] = body["errors"]
    return RemoteAnswer(e.status, out)


async def must_not_exist(scope: Scope, uuid: str) -> None:
    if await local_image(scope, uuid) is not None:
        raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{uuid}" already exists')


async def resolve_origins(scope: Scope, remote: Remote, manifest: dict[str, Any]) -> list[str]:
    """The origins missing locally, base first (each must be active)."""
    origins: list[str] = []
    cur = manifest.get("origin")
    while cur:
        if not isinstance(cur, str) or len(origins) > MAX_ORIGIN_CHAIN:
            raise ImgapiError("InternalError", "origin chain too long or invalid")
        local = await local_image(scope, cur)
        if local is not None:
            if local.state != "active":
                raise ImgapiError("OriginIsNotActive", f'origin image "{cur}" is not active')
            break
        m = await fetch_manifest(remote, cur, what="origin image")
        if m.get("state") != "active":
            raise ImgapiError("OriginIsNotActive", f'origin image "{cur}" is not active')
        origins.insert(0, cur)
        cur = m.get("origin")
    return origins


async def start_job(
    jobs: JobRegistry, scope: Scope, remote: Remote, uuid: str, manifest: dict[str, Any], skip: bool
) -> Job:
    """Resolve the missing origins, then start the job."""
    origins = await resolve_origins(scope, remote, manifest)
    chain, onerror = job_steps(scope, uuid, remote.source, origins, skip)
    params = {
        "image_uuid": uuid,
        "source": remote.source,
        "origins": origins,
        "skip_owner_check": skip,
        "target": f"/import-remote-{uuid}",
    }
    return jobs.submit(TASK, params, chain, onerror)


async def import_remote(jobs: JobRegistry, scope: Scope, uuid: str, source: str, skip: bool) -> Job:
    """AdminImportRemoteImage from ``source``."""
    await must_not_exist(scope, uuid)
    remote = Remote(scope.services.remote, source)
    manifest = await fetch_manifest(remote, uuid)
    return await start_job(jobs, scope, remote, uuid, manifest, skip)


async def import_from_datacenter(
    jobs: JobRegistry, scope: Scope, dcs: Datacenters, uuid: str, dc: str, account: str
) -> Job | RemoteAnswer:
    """ImportFromDatacenter: ``account``'s image ``uuid`` of datacenter ``dc``."""
    remote = Remote(scope.services.remote, dcs.source_of(dc))
    try:
        manifest = await remote.manifest(uuid, account)
    except RemoteHttpError as e:
        return passthrough(e)
    except FetchError as e:
        raise remote_source_error(uuid, e) from None
    if manifest.get("state") != "active":
        raise validation_failed(f"Cannot import image {uuid} - image is not active.")
    if manifest.get("owner") != account:
        raise ImgapiError("UnauthorizedError", f"Cannot import image {uuid} - you are not the owner.")
    await must_not_exist(scope, uuid)
    cur = manifest.get("origin")
    walked = 0
    while isinstance(cur, str) and cur:
        try:
            om = await remote.manifest(cur, account)
        except RemoteHttpError as e:
            return passthrough(e)
        except FetchError as e:
            raise remote_source_error(cur, e, "origin image") from None
        if om.get("owner") != account:
            if await local_image(scope, cur) is None:
                raise ImgapiError(
                    "ResourceNotFound",
                    f"Unable to import - origin image {cur} must already exist in the datacenter "
                    "(as this image is not owned by you).",
                )
            break
        walked += 1
        if walked > MAX_ORIGIN_CHAIN:
            raise ImgapiError("InternalError", f"origin chain of image {uuid} is too long")
        cur = om.get("origin")
    return await start_job(jobs, scope, remote, uuid, manifest, skip=False)


async def import_manifest(
    scope: Scope, view: common_pb2.ImageView, uuid: str, source: str, skip: bool
) -> image_pb2.Image:
    """AdminImportImage of the manifest ``source`` has for ``uuid`` (the catalog drops its state
    and files and validates the rest)."""
    manifest = await fetch_manifest(Remote(scope.services.remote, source), uuid)
    res: catalog_pb2.ImageResponse = await scope.services.catalog.AdminImportImage(
        catalog_pb2.AdminImportImageRequest(
            caller=scope.caller,
            view=view,
            uuid=uuid,
            manifest_json=json.dumps(manifest),
            skip_owner_check=skip,
            from_source=True,
        ),
        **scope.rpc,
    )
    return res.image
