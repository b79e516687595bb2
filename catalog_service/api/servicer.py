"""gRPC servicer of the catalog: translates messages to service calls (and, for the one error
interceptor, the catalog's exceptions to IMGAPI errors)."""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any, Protocol, TypeVar

import grpc
from imgapi.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from catalog_service.adapters.db.listing import State
from catalog_service.api.convert import (
    conditions_of,
    file_entry,
    icon_entry,
    image_message,
    view_only_message,
)
from catalog_service.domain.serialize import format_timestamp
from catalog_service.handlers.operations import Caller, CatalogService, Rendered, View
from imgapi_common.errors import ImgapiError
from imgapi_common.workers import worker_metadata

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _database_down(e: DBAPIError) -> bool:
    """A lost connection, a database that refuses connections, a lock timeout: worth a retry."""
    return bool(e.connection_invalidated) or isinstance(e, OperationalError | InterfaceError)


def translate_error(exc: Exception, method: str) -> ImgapiError | None:
    """The catalog's exceptions other than ImgapiError, as the error a client gets (None: unexpected)."""
    if isinstance(exc, json.JSONDecodeError):
        return ImgapiError("InvalidContent", f"Invalid JSON: {exc}")
    if isinstance(exc, DBAPIError):
        if not _database_down(exc):
            log.error("unexpected database failure in %s", method, exc_info=exc)
            return ImgapiError("InternalError", "internal error")
        log.warning("%s: database unavailable: %s", method, exc.orig)
        return ImgapiError("ServiceUnavailableError", "service unavailable")
    return None


def _retry_read(fn: F) -> F:
    """Run a read-only RPC again once if its database connection turned out dead.

    The catalog does not ping connections before use (a round trip per request), so after a
    database restart the first request on each pooled connection finds it dead; SQLAlchemy then
    invalidates the pool, and the retry runs on a fresh connection. Writes are not retried: a
    connection lost during COMMIT leaves it unknown whether the write happened.
    """

    @functools.wraps(fn)
    def wrapper(self: CatalogServicer, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except DBAPIError as e:
            if not e.connection_invalidated:
                raise
            log.warning("%s: database connection lost (%s); retrying once", fn.__name__, e.orig)
            return fn(self, request, context)

    return wrapper  # type: ignore[return-value]


def _caller(c: common_pb2.CallerContext) -> Caller:
    return Caller(
        account=c.account,
        channel=c.channel,
        authenticated=c.authenticated,
        user_agent=c.user_agent,
        account_present=c.account_present,
    )


def _target(request: Any) -> tuple[str, Caller, View]:
    """The (uuid, caller, view) every image-scoped request carries."""
    return request.uuid, _caller(request.caller), _view_of(request)


def _view_of(request: Any) -> View:
    return _view(request.view, request.HasField("view"))


def _view(v: common_pb2.ImageView, has: bool) -> View:
    if not has:  # native gRPC callers that send no view get the full v2 view
        return View(include_channels=True, include_admin_fields=False)
    return View(include_channels=v.include_channels, include_admin_fields=v.include_admin_fields)


class _WithView(Protocol):
    @property
    def view(self) -> common_pb2.ImageView: ...


def _resp(r: Rendered, request: _WithView, *, view_only: bool = False) -> catalog_pb2.ImageResponse:
    """The answer of a call returning one image: every field, or with ``view.view_only`` (the
    REST gateway; ``view_only``: GetImage's own flag of that name) only what a REST answer is made of."""
    image = view_only_message(r) if view_only or request.view.view_only else image_message(r)
    return catalog_pb2.ImageResponse(
        image=image, not_modified=r.not_modified, orphaned_blob_ids=list(r.orphaned_blob_ids)
    )


_L = catalog_pb2.ListImagesRequest
_STATE: dict[int, State] = {
    _L.STATE_ACTIVE: "active",
    _L.STATE_DISABLED: "disabled",
    _L.STATE_UNACTIVATED: "unactivated",
    _L.STATE_CREATING: "creating",
    _L.STATE_FAILED: "failed",
    _L.STATE_ALL: "all",
}


def _marker_time(request: catalog_pb2.ListImagesRequest) -> str:
    if not request.HasField("marker_published_at"):
        return ""
    return format_timestamp(request.marker_published_at.ToDatetime(tzinfo=UTC))


_SUBJECT = {
    common_pb2.Preconditions.SUBJECT_IMAGE: "image",
    common_pb2.Preconditions.SUBJECT_FILE: "file",
    common_pb2.Preconditions.SUBJECT_ICON: "icon",
}


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, service: CatalogService, worker: int = 0, workers: int = 1) -> None:
        self.s = service
        self._watchers = threading.BoundedSemaphore(service.settings.effective_max_watchers)
        self._worker_md = worker_metadata(worker, workers)

    def CreateImage(
        self, request: catalog_pb2.CreateImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.create(_caller(request.caller), _view_of(request), request.manifest_json), request
        )

    @_retry_read
    def GetImage(
        self, request: catalog_pb2.GetImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        r = self.s.get_image(
            *_target(request),
            request.incl_admin_fields,
            conditions_of(request.preconditions),
            _SUBJECT.get(request.preconditions.subject, "image"),  # type: ignore[arg-type]
        )
        return _resp(r, request, view_only=request.view_only)

    @_retry_read
    def ListImages(
        self, request: catalog_pb2.ListImagesRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ListImagesResponse:
        filters: dict[str, Any] = dict(
            owner=request.owner,
            name=request.name,
            version=request.version,
            state=_STATE[request.state],
            public=request.public if request.HasField("public") else None,
            os=request.os,
            type=request.type,
            tags=dict(request.tags),
            billing_tags=list(request.billing_tags),
            limit=request.limit,
            marker_uuid=request.marker_uuid,
            marker_published_at=_marker_time(request),
            descending=request.descending,
            incl_admin_fields=request.incl_admin_fields,
        )
        target = (request.if_data_version, _caller(request.caller), _view_of(request))
        if request.page_json_only:
            page = self.s.list_page_since(*target, **filters)
            if page.answer is None:
                return catalog_pb2.ListImagesResponse(data_version=page.version, unchanged=True)
            return catalog_pb2.ListImagesResponse(page_json=page.answer, data_version=page.version)
        found = self.s.list_images_since(*target, full_records=not request.view_only, **filters)
        rendered = found.answer
        if rendered is None:
            return catalog_pb2.ListImagesResponse(data_version=found.version, unchanged=True)
        message = view_only_message if request.view_only else image_message
        images = [message(r) for r in rendered]
        return catalog_pb2.ListImagesResponse(images=images, data_version=found.version)

    def UpdateImage(
        self, request: catalog_pb2.UpdateImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.update(
                *_target(request),
                request.update_json,
                conditions_of(request.preconditions),
            ),
            request,
        )

    def ActivateImage(
        self, request: catalog_pb2.ImageActionRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.activate(
                *_target(request),
                conditions_of(request.preconditions),
            ),
            request,
        )

    def DisableImage(
        self, request: catalog_pb2.ImageActionRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.set_disabled(
                *_target(request),
                True,
                conditions_of(request.preconditions),
            ),
            request,
        )

    def EnableImage(
        self, request: catalog_pb2.ImageActionRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.set_disabled(
                *_target(request),
                False,
                conditions_of(request.preconditions),
            ),
            request,
        )

    def DeleteImage(
        self, request: catalog_pb2.DeleteImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.DeleteImageResponse:
        deleted, orphaned = self.s.delete(
            request.uuid, _caller(request.caller), force_all_channels=request.force_all_channels
        )
        return catalog_pb2.DeleteImageResponse(deleted=deleted, orphaned_blob_ids=orphaned)

    def AddImageAcl(
        self, request: catalog_pb2.ImageAclRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.change_acl(
                *_target(request),
                request.acl,
                add=True,
            ),
            request,
        )

    def RemoveImageAcl(
        self, request: catalog_pb2.ImageAclRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.change_acl(
                *_target(request),
                request.acl,
                add=False,
            ),
            request,
        )

    def CloneImage(
        self, request: catalog_pb2.CloneImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(self.s.clone(*_target(request)), request)

    def AdminImportImage(
        self, request: catalog_pb2.AdminImportImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        if request.check_request_only:
            self.s.check_import_request(request.uuid, _caller(request.caller), request.manifest_json)
            return catalog_pb2.ImageResponse()
        return _resp(
            self.s.admin_import(
                *_target(request),
                request.manifest_json,
                skip_owner_check=request.skip_owner_check,
                from_source=request.from_source,
            ),
            request,
        )

    def _channels(self) -> list[catalog_pb2.Channel]:
        return [
            catalog_pb2.Channel(name=c.name, description=c.description, default=c.default)
            for c in self.s.settings.channels
        ]

    def ListChannels(
        self, request: catalog_pb2.ListChannelsRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ListChannelsResponse:
        return catalog_pb2.ListChannelsResponse(
            channels=self._channels(), enabled=self.s.cfg.channels_enabled
        )

    def GetServerConfig(
        self, request: catalog_pb2.GetServerConfigRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ServerConfig:
        context.send_initial_metadata(self._worker_md)
        return catalog_pb2.ServerConfig(
            mode=self.s.cfg.mode,
            channels=self._channels(),
            admin_uuid=self.s.cfg.admin_uuid or "",
            storage_names=self.s.settings.storage_names,
            default_storage=self.s.settings.default_storage,
        )

    @_retry_read
    def ResolveChannel(
        self, request: catalog_pb2.ResolveChannelRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ResolveChannelResponse:
        return catalog_pb2.ResolveChannelResponse(
            channel=self.s.resolve_channel(request.channel, write=request.write) or ""
        )

    def ChannelAddImage(
        self, request: catalog_pb2.ChannelAddImageRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.channel_add(
                *_target(request),
                request.channel,
                conditions_of(request.preconditions),
            ),
            request,
        )

    def PrepareImageUpload(
        self, request: catalog_pb2.PrepareImageUploadRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.PrepareImageUploadResponse:
        plan = self.s.prepare_upload(
            request.uuid,
            _caller(request.caller),
            icon=request.kind == catalog_pb2.PrepareImageUploadRequest.KIND_ICON,
            compression=request.compression,
            storage=request.storage,
            content_type=request.content_type,
        )
        if request.plan_only:
            return catalog_pb2.PrepareImageUploadResponse(max_size=plan.max_size, stor=plan.stor)
        view = self.s.render(plan.record, View(), 0)
        return catalog_pb2.PrepareImageUploadResponse(
            image=image_message(view), max_size=plan.max_size, stor=plan.stor
        )

    def AttachImageFile(
        self, request: catalog_pb2.AttachImageFileRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.attach_file(
                *_target(request),
                file_entry(request.file),
            ),
            request,
        )

    def DetachImageFile(
        self, request: catalog_pb2.DetachImageFileRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(self.s.detach_file(*_target(request)), request)

    def AttachImageIcon(
        self, request: catalog_pb2.AttachImageIconRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(
            self.s.attach_icon(
                *_target(request),
                icon_entry(request.icon),
            ),
            request,
        )

    def DetachImageIcon(
        self, request: catalog_pb2.DetachImageIconRequest, context: grpc.ServicerContext
    ) -> catalog_pb2.ImageResponse:
        return _resp(self.s.detach_icon(*_target(request)), request)

    def WatchChanges(
        self, request: catalog_pb2.WatchChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[catalog_pb2.ChangeEvent]:
        if not self._watchers.acquire(blocking=False):
            raise ImgapiError("ServiceUnavailableError", "too many change feed watchers; retry later")
        try:
            head = 0
            for ch in self.s.follow_changes(
                request.after_cursor, replay_only=request.replay_only, is_active=context.is_active
            ):
                if ch.cursor >= head:
                    head = max(ch.cursor, self.s.changes_head())
                ev = catalog_pb2.ChangeEvent(
                    cursor=ch.cursor,
                    image_uuid=ch.image_uuid,
                    kind=ch.kind,
                    changed_at=ch.changed_at,
                    head_cursor=head,
                )
                if ch.record is not None:
                    r = self.s.render(ch.record, View(include_channels=True, include_admin_fields=True), 0)
                    ev.image.CopyFrom(image_message(r))
                yield ev
        finally:
            self._watchers.release()
