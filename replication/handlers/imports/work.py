"""The work of one import job: a copier run in a worker thread and the WFAPI steps that wait for
its milestones, with the rollback of what the job created.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, image_pb2
from pydantic import SecretStr

from blob_client import AsyncBlobClient
from imgapi_common.errors import ImgapiError
from imgapi_common.grpc_errors import from_rpc_error
from imgapi_common.image_uploads import delete_orphans
from imgapi_common.remote_imgapi import Remote, RemoteSettings
from replication.adapters.destination import Destination, DestinationError
from replication.adapters.fetcher_transport import FetcherTransport
from replication.adapters.rest_source import RestSource
from replication.adapters.sources import SourceError
from replication.domain.copy_errors import Conflict, CopyError
from replication.handlers.copy.reports import CopyMilestone
from replication.handlers.imports.registry import Step
from replication.handlers.imports.with_origins import import_image_with_origins

log = logging.getLogger(__name__)

#: Attempts of a file copy that makes no progress (each resumes from the committed offset).
IMPORT_RETRIES = 3


@dataclass(frozen=True)
class Services:
    """This datacenter's catalog and blob services as import jobs call them."""

    catalog: catalog_pb2_grpc.CatalogServiceAsyncStub
    blobs: AsyncBlobClient
    timeout: float
    #: For the copier's own (synchronous) channels.
    catalog_target: str
    blob_target: str
    token: SecretStr
    remote: RemoteSettings


@dataclass(frozen=True)
class Scope:
    """One import request: the services, the operator scope its catalog calls run in and the view
    of the image it answers (an :class:`imgapi_common.image_uploads.UploadScope`)."""

    services: Services
    caller: common_pb2.CallerContext
    view: common_pb2.ImageView = field(default_factory=common_pb2.ImageView)

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceAsyncStub:
        return self.services.catalog

    @property
    def blobs(self) -> AsyncBlobClient:
        return self.services.blobs

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", self.caller.request_id),) if self.caller.request_id else ()

    @property
    def rpc(self) -> dict[str, Any]:
        return {"timeout": self.services.timeout, "metadata": self.metadata}


async def local_image(scope: Scope, uuid: str) -> image_pb2.Image | None:
    """The local image in any channel and state, or None."""
    caller = common_pb2.CallerContext()
    caller.CopyFrom(scope.caller)
    caller.channel = "*"
    view = common_pb2.ImageView(include_channels=True)
    try:
        res: catalog_pb2.ImageResponse = await scope.services.catalog.GetImage(
            catalog_pb2.GetImageRequest(caller=caller, view=view, uuid=uuid), **scope.rpc
        )
    except grpc.RpcError as e:
        err = from_rpc_error(e)
        if err.code == "ResourceNotFound":
            return None
        raise err from None
    return res.image


async def delete_local(scope: Scope, uuid: str) -> bool:
    """DeleteImage (all channels) and its orphaned blobs, for a rollback; False when it did not exist."""
    try:
        res: catalog_pb2.DeleteImageResponse = await scope.services.catalog.DeleteImage(
            catalog_pb2.DeleteImageRequest(caller=scope.caller, uuid=uuid, force_all_channels=True),
            **scope.rpc,
        )
    except grpc.RpcError as e:
        if from_rpc_error(e).code == "ResourceNotFound":
            return False
        raise from_rpc_error(e) from None
    # Best effort: a leftover blob is harmless garbage, never a dangling reference.
    await delete_orphans(scope.blobs, res.orphaned_blob_ids, scope.metadata, strict=False)
    return True


def _job_error(e: BaseException) -> BaseException:
    """A copier failure as the IMGAPI error the job's step records."""
    if isinstance(e, DestinationError):
        return e.error
    if isinstance(e, Conflict):
        return ImgapiError("ImageUuidAlreadyExists", str(e))
    if isinstance(e, CopyError):
        return ImgapiError(e.code or "InternalError", str(e))
    if isinstance(e, SourceError):
        return ImgapiError("RemoteSourceError", str(e))
    return e


class CopierRun:
    """One :func:`replication.handlers.imports.with_origins.import_image_with_origins` call in a worker thread, with the
    milestones of ``uuid`` the job's steps wait for (``begin``: its origins are done, ``imported``,
    ``attached``; the end of the call: activated and in sync) and the images it created."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.reached: dict[str, asyncio.Event] = {
            k: asyncio.Event() for k in ("begin", "imported", "attached")
        }
        self.file_sha1 = ""
        #: Images AdminImportImage created during the run, in order (the rollback deletes them).
        self.created: list[str] = []
        self.progress: list[CopyMilestone] = []
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[image_pb2.Image] | None = None

    def on_progress(self, p: CopyMilestone) -> None:  # called in the worker thread
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._record, p)

    def _record(self, p: CopyMilestone) -> None:
        if p.kind != "bytes":
            self.progress.append(p)
        if p.kind == "imported":
            self.created.append(p.uuid)
        if p.uuid != self.uuid:
            return
        if p.kind == "attached":
            self.file_sha1 = p.detail
        milestone = "imported" if p.kind == "found" else p.kind
        if milestone in self.reached:
            self.reached[milestone].set()

    def start(self, work: Callable[[CopierRun], image_pb2.Image]) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.create_task(asyncio.to_thread(work, self), name=f"import-{self.uuid}")
        # A run whose job was cancelled ends with an error nobody waits for any more.
        self.task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def wait(self, milestone: str | None) -> None:
        """Until ``milestone`` of the image is reached (None: the end of the run); the run's
        failure before it is raised as an IMGAPI error."""
        assert self.task is not None
        try:
            if milestone is not None:
                reached = asyncio.create_task(self.reached[milestone].wait())
                pending: set[asyncio.Future[Any]] = {reached, self.task}
                try:
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    reached.cancel()
                if self.reached[milestone].is_set():
                    return
            await asyncio.shield(self.task)
        except asyncio.CancelledError:
            self.stopping = True  # the copier ends at its next chunk
            raise
        except Exception as e:
            raise _job_error(e) from None

    @property
    def created_origins(self) -> list[str]:
        return [u for u in self.created if u != self.uuid]


def job_steps(
    scope: Scope, uuid: str, source: str, origins: list[str], skip: bool
) -> tuple[list[Step], list[Step]]:
    """The WFAPI chain of an import job and its rollback (only what the job created is deleted).

    The work is one :func:`replication.handlers.imports.with_origins.import_image_with_origins` run (origins root-first,
    the image, its file through a resumable blob upload, activation) reading the source through the
    SSRF-safe fetcher; each step waits for its milestone of that run.
    """
    run = CopierRun(uuid)
    svc = scope.services

    def work(r: CopierRun) -> image_pb2.Image:
        assert r.loop is not None
        transport = FetcherTransport(Remote(svc.remote, source), r.loop, stopped=lambda: r.stopping)
        source_ = RestSource(source, transport=transport)
        dest = Destination(
            svc.catalog_target, svc.blob_target, timeout=svc.timeout, caller=scope.caller, token=svc.token
        )
        try:
            return import_image_with_origins(
                source_,
                dest,
                uuid,
                skip_owner_check=skip,
                require_active=False,
                on_progress=r.on_progress,
                # AdminImportImage from a source: the remote manifest as it is (the catalog drops
                # state and files and validates the rest).
                import_body=dict,
                retries=IMPORT_RETRIES,
                stopped=lambda: r.stopping,
            )
        finally:
            source_.close()
            dest.close()

    async def origin_import_images() -> str:
        run.start(work)
        await run.wait("begin")
        if not origins:
            return "No origins (skipping import of origins)"
        return f"Imported origins: {', '.join(origins)}"

    async def import_image() -> str:
        await run.wait("imported")
        return f"Image {uuid} created"

    async def add_image_file() -> str:
        await run.wait("attached")
        return f"Image {uuid} file added"  # the original IMGAPI's text

    async def activate_image() -> str:
        await run.wait(None)
        return f"Image {uuid} activated"

    async def delete_image() -> str:
        if uuid not in run.created:
            return f"Image {uuid} not created by this job (nothing to delete)"
        existed = await delete_local(scope, uuid)
        return f"Image {uuid} deleted" if existed else f"Image {uuid} did not exist"

    async def origin_delete_images() -> str:
        created_origins = run.created_origins
        if not created_origins:
            return "No origins to delete"
        for o in reversed(created_origins):
            await delete_local(scope, o)
        return f"Deleted origins: {', '.join(reversed(created_origins))}"

    chain = [
        Step("origin_import_images", origin_import_images),
        Step("import_image", import_image),
        Step("add_image_file", add_image_file),
        Step("activate_image", activate_image),
    ]
    onerror = [Step("delete_image", delete_image), Step("origin_delete_images", origin_delete_images)]
    return chain, onerror
