"""Pulling images from other IMGAPI servers and from URLs (endpoints.md §2.6-2.8, §2.10, §2.11).

* AdminImportImage from a source (§2.6) and AddImageFile from a source (§2.10): fetch the manifest /
  the file from ``<source>/images/<uuid>[/file]`` and hand them to the catalog / blob service.
* AdminImportRemoteImage (§2.7) and ImportFromDatacenter (§2.8): validate, resolve the missing
  origin chain, then run an emulated WFAPI job (gateway.jobs) that imports the origins root-first,
  then the image, its file, and activates it; failures roll back what the job created.
* AddImageFileFromUrl (§2.11): one HTTPS GET (no redirects) streamed into the blob service.

Every fetch goes through :mod:`gateway.fetch` (SSRF rules + the operator allow-list).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import grpc
from imgapi.v1 import catalog_pb2, common_pb2, image_pb2
from starlette.responses import Response

from gateway.context import RequestContext, is_uuid
from gateway.fetch import Allowlist, FetchBlocked, FetchError, FetchPolicy, FetchTooLarge, SafeFetcher
from gateway.job_registry import Step
from gateway.jobs import workflow_url
from gateway.responses import image_response, json_response
from gateway.settings import GatewaySettings
from gateway.uploads import KIND_FILE, CallScope, EndChecks, FileMeta, delete_blobs, prepare, store_file_from
from imgapi_common.errors import FieldError, ImgapiError, invalid_parameter, validation_failed
from imgapi_common.grpc_errors import from_rpc_error
from replication.copier import (
    Conflict,
    CopyError,
    Destination,
    DestinationError,
    Progress,
    import_image_with_origins,
)
from replication.sources import HttpReply, RestSource, SourceError

log = logging.getLogger("gateway.remote_import")

TASK = "import-remote-image"
#: Longest origin chain walked (ImportFromDatacenter: more user-owned origins -> 500).
MAX_ORIGINS = 100
MANIFEST_LIMIT = 4 << 20
#: Attempts of a file copy that makes no progress (each resumes from the committed offset).
IMPORT_RETRIES = 3
T = TypeVar("T")


# --- fetching from another IMGAPI ------------------------------------------------------------------


def policy_from(settings: GatewaySettings, **overrides: Any) -> FetchPolicy:
    base = FetchPolicy(
        allowlist=Allowlist.parse(settings.remote_allowlist, "IMGAPI_GATEWAY_REMOTE_ALLOWLIST"),
        allow_insecure=settings.allow_insecure,
        connect_timeout=settings.remote_connect_timeout_seconds,
        read_timeout=max(settings.remote_connect_timeout_seconds, 60.0),
        total_timeout=settings.remote_timeout_seconds,
        user_agent=settings.server_name,
    )
    return FetchPolicy(**{**base.__dict__, **overrides})


def source_url(source: str, path: str, extra: Mapping[str, str] | None = None) -> str:
    """``<source base>/<path>`` keeping the source's own query (``?channel=``) plus ``extra``."""
    parts = urlsplit(source)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += list((extra or {}).items())
    base = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/{path}", urlencode(query), ""))


@dataclass
class RemoteHttpError(Exception):
    """The remote answered with an HTTP error; ``body`` is its JSON error when it had one."""

    status: int
    body: Any

    @property
    def detail(self) -> str:
        if isinstance(self.body, dict):
            msg = self.body.get("message") or self.body.get("code")
            if msg:
                return str(msg)
        return f"HTTP {self.status}"


class Remote:
    """A remote IMGAPI at ``source``."""

    def __init__(self, settings: GatewaySettings, source: str) -> None:
        self.source = source
        self.fetcher = SafeFetcher(policy_from(settings))
        self.file_fetcher = SafeFetcher(policy_from(settings, max_size=settings.max_file_size + 1))

    async def manifest(self, uuid: str, account: str | None = None) -> dict[str, Any]:
        """GET /images/<uuid> (``Accept-Version: *``). Raises FetchError / RemoteHttpError."""
        url = source_url(self.source, f"images/{quote(uuid)}", {"account": account} if account else None)
        status, body = await self.fetcher.get_json(url, headers={"Accept-Version": "*"}, limit=MANIFEST_LIMIT)
        if status != 200:
            raise RemoteHttpError(status, body)
        if not isinstance(body, dict):
            raise FetchError("remote manifest is not a JSON object")
        return body


def _remote_detail(e: Exception) -> str:
    if isinstance(e, RemoteHttpError):
        return e.detail
    if isinstance(e, FetchError):
        return e.message
    return str(e)


def remote_source_error(uuid: str, e: Exception, what: str = "image") -> ImgapiError:
    return ImgapiError(
        "RemoteSourceError",
        f"Unable to get manifest for {what} {uuid}. Error from remote: {_remote_detail(e)}",
    )


async def fetch_manifest(remote: Remote, uuid: str, what: str = "image") -> dict[str, Any]:
    try:
        return await remote.manifest(uuid)
    except (FetchError, RemoteHttpError) as e:
        raise remote_source_error(uuid, e, what) from None


# --- shared checks ---------------------------------------------------------------------------------


def _operator_only(ctx: RequestContext) -> None:
    if ctx.account is not None:
        raise ImgapiError("OperatorOnly", "this endpoint may only be called by an operator")


def _skip_owner_check(ctx: RequestContext) -> bool:
    """``skip_owner_check``: ``true``/``false``; empty reads as absent, as AdminImportImage's catalog
    check does (the catalog's request cannot tell the two apart)."""
    if ctx.query.empty("skip_owner_check"):
        return False
    return ctx.query.boolean("skip_owner_check") is True


def operator_caller(ctx: RequestContext) -> common_pb2.CallerContext:
    """The caller of job steps: the request's operator scope (local channel kept)."""
    c = ctx.caller()
    c.account = ""
    c.account_present = False
    return c


async def local_image(scope: CallScope, uuid: str) -> catalog_pb2.ImageResponse | None:
    """The local image in any channel and state, or None."""
    caller = common_pb2.CallerContext()
    caller.CopyFrom(scope.caller)
    caller.account = ""
    caller.account_present = False
    caller.channel = "*"
    try:
        res: catalog_pb2.ImageResponse = await scope.clients.catalog.GetImage(
            catalog_pb2.GetImageRequest(caller=caller, view=scope.view, uuid=uuid), **scope.rpc
        )
    except grpc.RpcError as e:
        err = from_rpc_error(e)
        if err.code == "ResourceNotFound":
            return None
        raise err from None
    return res


# --- operations (also the job steps) ---------------------------------------------------------------


async def import_manifest(
    scope: CallScope, uuid: str, manifest: dict[str, Any], skip_owner_check: str
) -> Any:
    """AdminImportImage of a manifest fetched from a source (the catalog drops state/files)."""
    res: catalog_pb2.ImageResponse = await scope.clients.catalog.AdminImportImage(
        catalog_pb2.AdminImportImageRequest(
            caller=scope.caller,
            view=scope.view,
            uuid=uuid,
            manifest_json=json.dumps(manifest),
            skip_owner_check=skip_owner_check,
            from_source=True,
        ),
        **scope.rpc,
    )
    return res


async def add_file_from_source(
    settings: GatewaySettings, scope: CallScope, uuid: str, source: str, storage: str = ""
) -> catalog_pb2.ImageResponse:
    """§2.10 steps 1-6: pre-checks, remote manifest, remote file streamed into a blob, attach."""
    prep = await prepare(scope, uuid, KIND_FILE, compression="none", storage=storage)
    remote = Remote(settings, source)
    manifest = await fetch_manifest(remote, uuid)
    files = manifest.get("files")
    f0 = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
    size = f0.get("size")
    sha1 = f0.get("sha1")
    dataset_guid = f0.get("dataset_guid")
    checks = EndChecks(
        "Download",
        prep.max_size,
        expected_length=size if isinstance(size, int) and size else None,
        length_label="remote image file size",
        sha1=sha1 if isinstance(sha1, str) else None,
        sha1_label="remote image file sha1",
    )
    meta = FileMeta(
        str(f0.get("compression") or "none"),
        prep.stor,
        dataset_guid if isinstance(dataset_guid, str) else None,
    )
    url = source_url(source, f"images/{quote(uuid)}/file")

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Download", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError(
            "RemoteSourceError", f"Unable to get stream for image file {uuid}. Error from remote: {e}"
        )

    try:
        async with remote.file_fetcher.open(url, headers={"Accept-Version": "*"}) as r:
            if r.status_code != 200:
                detail = RemoteHttpError(r.status_code, _json_or_none(await r.read(MANIFEST_LIMIT))).detail
                raise ImgapiError(
                    "RemoteSourceError",
                    f"Unable to get stream for image file {uuid}. Error from remote: {detail}",
                )
            return await store_file_from(
                scope,
                uuid,
                r.iter_bytes(),
                max_size=prep.max_size,
                checks=checks,
                meta=meta,
                too_big_code="Download",
                on_source_error=stream_error,
            )
    except FetchError as e:
        raise stream_error(e) from None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def delete_local(scope: CallScope, uuid: str) -> bool:
    """DeleteImage (all channels) for a rollback; False when it did not exist."""
    try:
        res: catalog_pb2.DeleteImageResponse = await scope.clients.catalog.DeleteImage(
            catalog_pb2.DeleteImageRequest(caller=scope.caller, uuid=uuid, force_all_channels=True),
            **scope.rpc,
        )
    except grpc.RpcError as e:
        if from_rpc_error(e).code == "ResourceNotFound":
            return False
        raise from_rpc_error(e) from None
    await delete_blobs(scope.clients, list(res.orphaned_blob_ids), scope.metadata)
    return True


# --- REST handlers -----------------------------------------------------------------------------------


async def import_from_source(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import&source=<url>`` (§2.6)."""
    await ctx.check_channel(write=True)
    _operator_only(ctx)
    _skip_owner_check(ctx)
    source = ctx.query.get("source") or ""
    manifest = await fetch_manifest(Remote(ctx.settings, source), ctx.uuid)
    res = await import_manifest(CallScope.of(ctx), ctx.uuid, manifest, ctx.query.raw("skip_owner_check"))
    return image_response(res.image.view_json, res.image.etag)


async def add_image_file_from_source(ctx: RequestContext) -> Response:
    """``PUT /images/:uuid/file?source=<url>`` (§2.10); the request body is ignored."""
    res = await add_file_from_source(
        ctx.settings, CallScope.of(ctx), ctx.uuid, ctx.query.get("source") or "", ctx.query.raw("storage")
    )
    return image_response(res.image.view_json, res.image.etag)


async def add_image_file_from_url(ctx: RequestContext) -> Response:
    """``POST /images/:uuid/file/from-url`` (§2.11).

    Chain: load -> owner -> body -> ImageFilesImmutable -> compression -> file_url -> storage; the
    catalog's PrepareImageUpload runs load..storage at once, so errors are re-ordered here.
    """
    scope = CallScope.of(ctx)
    body_error: ImgapiError | None = None
    try:
        body = await ctx.read_json_body()
    except ImgapiError as e:
        body_error = e
        body = None
    url_error: ImgapiError | None = None
    file_url = body.value.get("file_url") if body is not None and isinstance(body.value, dict) else None
    if not isinstance(file_url, str) or not file_url:
        url_error = invalid_parameter(
            'missing "file_url" field from request body', [FieldError("file_url", "Missing")]
        )
    elif not file_url.startswith("https:"):
        url_error = invalid_parameter(
            "Only URLs using the https: scheme are supported", [FieldError("file_url", "Invalid")]
        )
    compression = ctx.query.raw("compression")
    try:
        prep = await prepare(
            scope, ctx.uuid, KIND_FILE, compression=compression, storage=ctx.query.raw("storage")
        )
    except grpc.RpcError as e:
        err = from_rpc_error(e)
        fields = {fe.field for fe in err.errors}
        if err.code in ("ResourceNotFound", "NotImageOwner") or fields & {"account", "channel"}:
            raise err from None
        if body_error is not None:
            raise body_error from None
        if url_error is not None and "storage" in fields:
            raise url_error from None
        raise err from None
    if body_error is not None:
        raise body_error
    if url_error is not None:
        raise url_error
    assert isinstance(file_url, str)
    settings = ctx.settings
    fetcher = SafeFetcher(
        policy_from(settings, https_only=True, max_size=prep.max_size + 1, read_timeout=300.0)
    )
    checks = EndChecks("Download", prep.max_size, sha1=ctx.query.get("sha1"))
    meta = FileMeta(compression, prep.stor, ctx.query.get("dataset_guid"))

    def stream_error(e: BaseException) -> ImgapiError:
        if isinstance(e, FetchTooLarge):
            return ImgapiError("Upload", f"image file exceeds the maximum size, {prep.max_size} bytes")
        return ImgapiError("Download", f"Error getting image: {e}")

    try:
        async with fetcher.open(file_url, follow_redirects=False) as r:
            if r.status_code != 200:
                raise ImgapiError("Download", f"HTTP {r.status_code} error attempting to download image")
            res = await store_file_from(
                scope,
                ctx.uuid,
                r.iter_bytes(),
                max_size=prep.max_size,
                checks=checks,
                meta=meta,
                on_source_error=stream_error,
            )
    except FetchError as e:
        raise stream_error(e) from None
    return image_response(res.image.view_json, res.image.etag)


# --- AdminImportRemoteImage / ImportFromDatacenter ------------------------------------------------------


async def resolve_origins(scope: CallScope, remote: Remote, manifest: dict[str, Any]) -> list[str]:
    """§2.7 step 7: the origins missing locally, base first."""
    origins: list[str] = []
    cur = manifest.get("origin")
    while cur:
        if not isinstance(cur, str) or len(origins) > MAX_ORIGINS:
            raise ImgapiError("InternalError", "origin chain too long or invalid")
        local = await local_image(scope, cur)
        if local is not None:
            if local.image.state != "active":
                raise ImgapiError("OriginIsNotActive", f'origin image "{cur}" is not active')
            break
        m = await fetch_manifest(remote, cur, what="origin image")
        if m.get("state") != "active":
            raise ImgapiError("OriginIsNotActive", f'origin image "{cur}" is not active')
        origins.insert(0, cur)
        cur = m.get("origin")
    return origins


class FetcherTransport:
    """The :class:`replication.sources.RestTransport` of import jobs: every GET goes through the
    gateway's SSRF-safe fetchers (policy, allow-list, size and time limits) on the app's event loop,
    called from the copier's worker thread. ``stopped`` (the job is being cancelled) or a closed
    loop ends a wait with a non-transient :class:`SourceError`, so the worker thread never hangs."""

    def __init__(
        self,
        settings: GatewaySettings,
        source: str,
        loop: asyncio.AbstractEventLoop,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.remote = Remote(settings, source)
        self.loop = loop
        self.stopped = stopped

    def close(self) -> None:
        pass

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            coro.close()
            raise SourceError("the gateway is shutting down", transient=False)
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        while True:
            try:
                return fut.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                if self.stopped() or self.loop.is_closed() or not self.loop.is_running():
                    fut.cancel()
                    raise SourceError("import job stopped", transient=False) from None

    @staticmethod
    def _error(path: str, e: FetchError) -> SourceError:
        transient = not isinstance(e, FetchBlocked | FetchTooLarge)
        return SourceError(f"GET {path}: {e.message}", transient=transient)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> HttpReply:
        url = source_url(self.remote.source, path.lstrip("/"), params)

        async def go() -> HttpReply:
            async with self.remote.fetcher.open(url, headers={"Accept-Version": "*"}) as r:
                return HttpReply(r.status_code, await r.read(MANIFEST_LIMIT), dict(r.headers))

        try:
            return self._run(go())
        except FetchError as e:
            raise self._error(path, e) from None

    @contextlib.contextmanager
    def stream(self, path: str) -> Iterator[tuple[int, Iterator[bytes]]]:
        """One task on the loop reads the response into a small queue the thread drains."""
        url = source_url(self.remote.source, path.lstrip("/"))
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=4)

        async def produce() -> None:
            try:
                async with self.remote.file_fetcher.open(url, headers={"Accept-Version": "*"}) as r:
                    await q.put(("status", r.status_code))
                    if r.status_code == 200:
                        async for chunk in r.iter_bytes():
                            await q.put(("data", chunk))
                await q.put(("end", None))
            except FetchError as e:
                await q.put(("error", self._error(path, e)))

        task = asyncio.run_coroutine_threadsafe(produce(), self.loop)

        def take() -> tuple[str, Any]:
            item = self._run(q.get())
            if item[0] == "error":
                raise item[1]
            return item

        def chunks() -> Iterator[bytes]:
            while True:
                kind, value = take()
                if kind != "data":
                    return
                yield value

        try:
            kind, status = take()
            yield (status if kind == "status" else 599), chunks()
        finally:
            task.cancel()


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
    """One :func:`replication.copier.import_image_with_origins` call in a worker thread, with the
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
        self.progress: list[Progress] = []
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[image_pb2.Image] | None = None

    def on_progress(self, p: Progress) -> None:  # called in the worker thread
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._record, p)

    def _record(self, p: Progress) -> None:
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

    async def wait(self, milestone: str | None) -> None:
        """Until ``milestone`` of the image is reached (None: the end of the run); the run's
        failure before it is raised as an IMGAPI error."""
        assert self.task is not None
        try:
            if milestone is not None:
                reached = asyncio.create_task(self.reached[milestone].wait())
                pending: set[asyncio.Future[Any]] = {reached, self.task}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
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
    settings: GatewaySettings, scope: CallScope, uuid: str, source: str, origins: list[str], skip: bool
) -> tuple[list[Step], list[Step]]:
    """The WFAPI chain of an import job and its rollback (only what the job created is deleted).

    The work is one :func:`replication.copier.import_image_with_origins` run (origins root-first,
    the image, its file through a resumable blob upload, activation) reading the source through the
    gateway's SSRF-safe fetcher; each step waits for its milestone of that run.
    """
    run = CopierRun(uuid)

    def work(r: CopierRun) -> image_pb2.Image:
        assert r.loop is not None
        transport = FetcherTransport(settings, source, r.loop, stopped=lambda: r.stopping)
        source_ = RestSource(source, transport=transport)
        dest = Destination(
            settings.catalog_target,
            settings.blob_target,
            timeout=settings.rpc_timeout_seconds,
            caller=scope.caller,
            token=settings.internal_token,
        )
        try:
            return import_image_with_origins(
                source_,
                dest,
                uuid,
                skip_owner_check=skip,
                require_active=False,
                on_progress=r.on_progress,
                # AdminImportImage from source (§2.6): the remote manifest as it is (the catalog drops
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
        return f"Image {uuid} file added"  # the reference's text (spec transcript §5)

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


async def start_import_job(
    ctx: RequestContext, uuid: str, source: str, manifest: dict[str, Any], skip: bool
) -> Response:
    """§2.7 steps 7-9: resolve origins, create the job, answer ``{image_uuid, job_uuid}``."""
    scope = CallScope(
        ctx.clients, operator_caller(ctx), common_pb2.ImageView(include_channels=True), ctx.metadata
    )
    origins = await resolve_origins(scope, Remote(ctx.settings, source), manifest)
    chain, onerror = job_steps(ctx.settings, scope, uuid, source, origins, skip)
    params = {
        "image_uuid": uuid,
        "source": source,
        "origins": origins,
        "skip_owner_check": skip,
        "target": f"/import-remote-{uuid}",
    }
    job = ctx.app.jobs.submit(TASK, params, chain, onerror)
    return json_response(
        {"image_uuid": uuid, "job_uuid": job.uuid}, headers={"workflow-api": workflow_url(ctx)}
    )


async def _must_not_exist(scope: CallScope, uuid: str) -> None:
    if await local_image(scope, uuid) is not None:
        raise ImgapiError("ImageUuidAlreadyExists", f'image uuid "{uuid}" already exists')


async def import_remote(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import-remote&source=<url>`` (§2.7)."""
    await ctx.check_channel(write=True)
    source = ctx.query.get("source")
    if source is None:
        raise validation_failed("missing source parameter", [FieldError("source", "MissingParameter")])
    _operator_only(ctx)
    skip = _skip_owner_check(ctx)
    scope = CallScope.of(ctx)
    await _must_not_exist(scope, ctx.uuid)
    manifest = await fetch_manifest(Remote(ctx.settings, source), ctx.uuid)
    return await start_import_job(ctx, ctx.uuid, source, manifest, skip)


def _passthrough(e: RemoteHttpError) -> Response:
    """ImportFromDatacenter: a remote HTTP error is answered unchanged (status, code, message)."""
    body = e.body if isinstance(e.body, dict) else {"code": "RemoteSourceError", "message": e.detail}
    out = {"code": body.get("code", "RemoteSourceError"), "message": body.get("message", e.detail)}
    if isinstance(body.get("errors"), list):
        out["errors"] = body["errors"]
    return json_response(out, status=e.status)


async def import_from_datacenter(ctx: RequestContext) -> Response:
    """``POST /images/:uuid?action=import-from-datacenter&datacenter=<dc>&account=<uuid>`` (§2.8)."""
    await ctx.check_channel(write=True)
    settings = ctx.settings
    account = ctx.query.get("account")
    if account is None or not is_uuid(account):
        raise validation_failed(
            f'invalid image "account" (not a UUID): {account or ""}', [FieldError("account", "Invalid")]
        )
    dc = ctx.query.get("datacenter")
    if dc is None:
        raise validation_failed(
            "missing datacenter parameter", [FieldError("datacenter", "MissingParameter")]
        )
    urls = settings.imgapi_url_from_datacenter
    valid = ", ".join(n for n in urls if n != settings.datacenter_name)
    if dc not in urls:
        raise validation_failed(
            f'datacenter "{dc}" is not supported, valid datacenters names are: {valid}',
            [FieldError("datacenter", "Invalid")],
        )
    if dc == settings.datacenter_name:
        raise validation_failed(
            f'datacenter "{dc}" is the same datacenter as this one, valid datacenters names are: {valid}',
            [FieldError("datacenter", "Invalid")],
        )
    source = urls[dc]
    remote = Remote(settings, source)
    uuid = ctx.uuid
    try:
        manifest = await remote.manifest(uuid, account)
    except RemoteHttpError as e:
        return _passthrough(e)
    except FetchError as e:
        raise remote_source_error(uuid, e) from None
    if manifest.get("state") != "active":
        raise validation_failed(f"Cannot import image {uuid} - image is not active.")
    if manifest.get("owner") != account:
        raise ImgapiError("UnauthorizedError", f"Cannot import image {uuid} - you are not the owner.")
    scope = CallScope.of(ctx)
    await _must_not_exist(scope, uuid)
    cur = manifest.get("origin")
    walked = 0
    while isinstance(cur, str) and cur:
        try:
            om = await remote.manifest(cur, account)
        except RemoteHttpError as e:
            return _passthrough(e)
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
        if walked > MAX_ORIGINS:
            raise ImgapiError("InternalError", f"origin chain of image {uuid} is too long")
        cur = om.get("origin")
    return await start_import_job(ctx, uuid, source, manifest, skip=False)


__all__ = [
    "FetchBlocked",
    "add_image_file_from_source",
    "add_image_file_from_url",
    "import_from_datacenter",
    "import_from_source",
    "import_remote",
]
